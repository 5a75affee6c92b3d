"""How ``grantly serve`` runs uvicorn: the limits that keep slow or idle clients from holding
connections, and the HTTP protocol that adds the deadlines uvicorn lacks.

uvicorn bounds the idle time of a kept-alive connection (``timeout_keep_alive``) and the
connections a worker serves (``limit_concurrency``: 503 beyond), but not the time a client
takes to send a request: a client trickling its headers, or a body nobody reads, holds its
connection for as long as it keeps sending, and httptools keeps headers of any size in memory.
``BoundedHttpToolsProtocol`` adds those deadlines, and a bound on the headers' size, to
uvicorn's httptools protocol (the one uvicorn picks when httptools is installed, as
``uvicorn[standard]`` does). The body a handler reads is bounded by the application
(``web.middleware.BodyLimit``), which answers its 408 like any response.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .observability import log
from .settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that bound slow and idle clients."""
    return {
        # A partial of a module-level class: uvicorn pickles it into each worker process.
        "http": functools.partial(
            BoundedHttpToolsProtocol,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
        ),
        "timeout_keep_alive": settings.keep_alive_timeout,
        # uvicorn answers 503 once the open connections, the new one included, reach the
        # limit: one more lets max_connections connections be served at once.
        "limit_concurrency": settings.max_connections + 1,
    }


# The request line and header fields of one request: nginx's default (large_client_header_buffers
# 4 8k) holds as much. A session cookie and a Bearer token take well under 1 KiB.
MAX_HEADER_BYTES = 32 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with two deadlines per request, and a size for headers.

    - The headers must be complete ``header_timeout`` seconds after the request's first byte
      (after the connection opened, for its first request), however steadily they trickle:
      otherwise 408 and the connection closes (RFC 9110 §15.5.9). A connection that sent
      nothing is closed without an answer: browsers open connections ahead of their requests,
      and one that finds a 408 waiting may take it for the answer to its next request.
    - A body the handler answered without reading (a 401, a 405, a 413 by its declared
      length) is read and dropped as it arrives, so that the client gets to read the answer
      (RFC 9112 §9.6), but only until ``body_timeout`` seconds after the headers; then the
      connection closes. uvicorn alone waits for it as long as bytes keep coming, and, once it
      has come, forgets to arm the keep-alive timeout again.
    - Headers over ``MAX_HEADER_BYTES`` get 431 and the connection closes (RFC 6585 §5).
    """

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
        body_timeout: float,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._between_requests = True  # the next byte belongs to a request's headers
        self._request_began = False  # and one has come
        self._body_due = 0.0  # loop time by which the current request's body must be in
        self._header_bytes = 0  # received since the current request's headers began

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, self._headers_overdue)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._between_requests:
            self._request_began = True
            self._header_bytes += len(data)
            if self._deadline is None:
                self._arm(self.header_timeout, self._headers_overdue)
        super().data_received(data)
        # Still in the headers (a chunk that completes them counts from zero again).
        if self._between_requests and self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(431, "request headers too large")

    # httptools' callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A request that begins in the chunk that ended the one before (pipelined) has had
        # no deadline armed by data_received.
        self._request_began = True
        if self._deadline is None:
            self._arm(self.header_timeout, self._headers_overdue)

    def on_headers_complete(self) -> None:
        self._disarm()
        # A keep-alive timer armed earlier in this chunk of data must not close the connection
        # under the request now starting.
        self._unset_keepalive_if_required()
        self._between_requests = False
        self._header_bytes = 0
        self._body_due = self.loop.time() + self.body_timeout
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._between_requests = True
        self._request_began = False
        super().on_message_complete()
        if self._deadline is not None:
            # The last of a body dropped after its answer: the connection is idle now.
            self._disarm()
            if not self.transport.is_closing():
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

    # uvicorn's

    def on_response_complete(self) -> None:
        super().on_response_complete()
        answered = self.cycle.response_complete  # not a pipelined request super() just started
        if answered and not self._between_requests and not self.transport.is_closing():
            # Answered before its body was in: drop the rest as it comes, until it is due.
            self._unset_keepalive_if_required()
            delay = max(self._body_due - self.loop.time(), 0.0)
            self._arm(delay, self.transport.close)

    # the deadlines

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, self._fire, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _fire(self, callback: Any) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            callback()

    def _headers_overdue(self) -> None:
        if self._request_began:
            self._refuse(408, "request headers timed out")
        else:  # a connection that never sent a byte
            self.transport.close()

    def _refuse(self, status: int, event: str) -> None:
        """Answer ``status`` to a request whose headers will not do, and close."""
        if self.transport.is_closing():
            return
        log.info(event, status=status)
        if self.cycle is not None and not self.cycle.response_complete:
            # A response is being written on this connection (the headers are those of a
            # pipelined request): finish it, then close; read nothing more meanwhile.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        phrase = STATUS_LINE[status].split(b" ", 2)[2].strip()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(phrase),
            b"connection: close\r\n\r\n",
            phrase,
        ]
        self.transport.write(b"".join(head))
        self.transport.close()
