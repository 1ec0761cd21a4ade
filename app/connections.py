"""HTTP connection hygiene that uvicorn does not do by itself: deadlines for a request's headers and body.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but only once a
response has been sent: a client that connects and then sends nothing, or trickles a
header byte every few seconds (slowloris), holds its connection, and its file descriptor,
forever. Here each request's headers must be complete within HEADER_TIMEOUT_SECONDS of
the connection opening or the previous response finishing, or the connection is closed;
then its body must be complete within BODY_TIMEOUT_SECONDS of the headers, or the client
gets a 408 (JSON, as every error here) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings

_TIMEOUT_BODY = json.dumps({"detail": "the request body did not arrive within the body deadline"}).encode()
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"x-content-type-options: nosniff\r\ncontent-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n"
) + _TIMEOUT_BODY


class DeadlineProtocol(HttpToolsProtocol):
    """Read from the settings in each worker process (workers are spawned, not forked)."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm(get_settings().body_timeout_seconds, self._body_expired)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # The next request on this keep-alive connection gets the same deadline.

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float | None = None, expire: Callable[[], None] | None = None) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(
            get_settings().header_timeout_seconds if seconds is None else seconds, expire or self._expire
        )

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _body_expired(self) -> None:
        """The body is late: answer 408 unless the app already answered, then close (the app sees a disconnect)."""
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_started:
            self.cycle.response_started = self.cycle.response_complete = True  # The app's answer, if any, is dropped.
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()
