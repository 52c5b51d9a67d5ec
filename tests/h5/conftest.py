"""The H5 action page, served on a real port so the link in a text message opens as-is."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from tests.conftest import AUTH
from tests.e2e.conftest import deliver, e2e_settings, wecom  # noqa: F401  (fixture)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
async def text_mode_lead(aiohttp_server, engine, clock, store, wecom) -> dict[str, Any]:
    """A rep in text mode receives a lead as plain text with a link; returns what they got."""
    from bot.app import create_app

    await store.import_reps([{"id": "r1", "name": "刘洋", "wecom_userid": "liuyang", "team": "华东",
                              "role": "rep", "delivery": "text"}])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = e2e_settings(wecom.base_url)
    settings = settings.replace(server=settings.server.__class__(**{
        **{f: getattr(settings.server, f) for f in settings.server.__dataclass_fields__}, "public_url": base}))
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    server = await aiohttp_server(app, port=port)
    wecom.callback_url = f"{base}/callbacks/wecom"
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/leads", json={"name": "赵敏", "phone": "13900001111",
                                                           "company": "明教科技"}, headers=AUTH) as resp:
            lead = await resp.json()

    class _Cli:  # deliver() needs .app
        pass

    cli = _Cli()
    cli.app = server.app  # type: ignore[attr-defined]
    await deliver(cli)
    texts = [m for m in wecom.messages_for("liuyang") if m["msgtype"] == "text"]
    assert texts, wecom.messages_for("liuyang")
    content = texts[-1]["content"]["content"]
    link = re.search(r"https?://\S+/a/\S+", content)
    assert link, content
    return {"lead": lead, "text": content, "link": link.group(0), "base": base}
