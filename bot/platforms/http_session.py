"""The aiohttp session both platform clients use: injected (tests, shared pools) or their own,
created lazily on the event loop and closed only if they made it."""

from __future__ import annotations

import aiohttp


class OwnedSession:
    _session: aiohttp.ClientSession | None
    _own_session: bool
    timeout: aiohttp.ClientTimeout

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._own_session = True
        return self._session
