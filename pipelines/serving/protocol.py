"""uvicorn's httptools protocol with the limits it lacks: a deadline and a size cap for the request head, and a
cap on open connections (issue 21.8).

Written by hand because uvicorn 0.55 has no setting for them: its keep-alive timer runs only between two
requests and is cancelled by the first byte of the next one, so a connection that sends nothing, or sends its
headers a byte at a time, stays open forever; httptools (llhttp) accumulates a header line of any length, and
uvicorn any number of headers (3 million headers took a worker to 385 MB); and `limit_concurrency` answers 503
only once a request head is complete, leaving connections over the cap open until then. The body deadline is
the app's (`app._body`), keep-alive is uvicorn's `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pipelines.serving.app import Settings
from pipelines.serving.errors import ERROR_TYPE_HEADER, error_body

MAX_HEAD_BYTES = 64 * 1024
"""Request line and headers together (nginx allows 4 x 8 KB by default, Node 16 KB)."""
_last_warning = 0.0


_configured: tuple[float, int] | None = None


def configure(*, header_seconds: float, max_connections: int) -> None:
    """Set this worker's limits (the app factory does, before the first connection)."""
    global _configured
    _configured = (header_seconds, max_connections)


def _limits() -> tuple[float, int]:
    if _configured is None:
        defaults = Settings()
        return defaults.header_seconds, defaults.max_connections
    return _configured


def _refusal(status: bytes, message: str) -> bytes:
    body, kind = error_body(int(status.split(b" ", 1)[0]), message)
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + ERROR_TYPE_HEADER + b": " + kind
            + b"\r\nconnection: close\r\n\r\n" + body)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One connection: the request head must be complete within `header_seconds` of the connection opening
    (or of its first byte, for a later request on a kept-alive connection) and within MAX_HEAD_BYTES."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_seconds, self.max_connections = _limits()
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            global _last_warning
            if time.monotonic() - _last_warning >= 1.0:  # at most once a second, whatever the flood
                _last_warning = time.monotonic()
                self.logger.warning("connection refused: %d open, the cap is %d per worker",
                                    len(self.connections) - 1, self.max_connections)
            self._close_with(b"503 Service Unavailable",
                             f"too many connections (the cap is {self.max_connections} per worker): retry later")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self._head_begun and not self.transport.is_closing():
            # Still inside a request head after this chunk, so the chunk was head bytes (but for the tail of a
            # pipelined request before it: an overcount by at most one read, only for pipelining clients).
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._close_with(b"431 Request Header Fields Too Large",
                                 f"the request line and headers are over {MAX_HEAD_BYTES:,} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        self._head_bytes = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._head_begun = False
        super().on_headers_complete()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_seconds, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head behind a request still being answered: wait for that one
            return
        if not self._head_begun:
            self.transport.close()  # nothing sent at all: close quietly, as an idle keep-alive connection
            return
        self._close_with(b"408 Request Timeout",
                         f"the request line and headers did not arrive within {self.header_seconds:g} s")

    def _close_with(self, status: bytes, message: str) -> None:
        self._cancel_head_timer()
        self.transport.write(_refusal(status, message))
        self.transport.close()
