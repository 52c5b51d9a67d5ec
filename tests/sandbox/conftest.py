"""The sandbox (`leadbot demo`) started in-process on free loopback ports."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from sandbox.demo import Demo


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the sandbox page in headless Chromium (skipped without it)")


@pytest.fixture
async def demo(tmp_path) -> AsyncIterator[Demo]:
    d = Demo(port=0, db_path=str(tmp_path / "demo.db"))
    await d.start()
    try:
        yield d
    finally:
        await d.stop()
