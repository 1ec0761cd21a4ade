"""HTTP connection hygiene that uvicorn does not do by itself: a deadline for request headers.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but only once a
response has been sent: a client that connects and then sends nothing, or trickles a
header byte every few seconds (slowloris), holds its connection, and its file descriptor,
forever. Here each request's headers must be complete within HEADER_TIMEOUT_SECONDS of
the connection opening or the previous response finishing; otherwise the connection is closed.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Read from the settings in each worker process (workers are spawned, not forked)."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # The next request on this keep-alive connection gets the same deadline.

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(get_settings().header_timeout_seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()
