"""leadbot's services outside the web server, for CLI commands that must act like the server
(re-route a leaving rep's leads, send notices through the outbox): the same create_app wiring,
started without listening on a port and without background workers."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from aiohttp import web

from bot.context import CTX, AppContext
from leadbot.settings import Settings


@asynccontextmanager
async def offline_context(settings: Settings) -> AsyncIterator[AppContext]:
    from bot.app import create_app

    app = create_app(settings, start_workers=False)
    runner = web.AppRunner(app)
    await runner.setup()  # runs on_startup: signer, flow and services are ready
    try:
        yield app[CTX]
    finally:
        await runner.cleanup()
