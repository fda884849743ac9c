"""The HTTP connection: how long a client may take, and the uvicorn options that bound it.

uvicorn closes a keep-alive connection that stays idle after a response (`timeout_keep_alive`), but
it waits forever for the first bytes of a connection and for the rest of a request head: 4,000
clients that connect and send their headers one byte at a time would be held open for good. The
protocol `timed_protocol` builds adds that missing clock on top of uvicorn's own HTTP/1.1 protocol
(httptools, else h11):

- the request head (request line and headers) must be complete within `header_timeout` seconds
  of the connection opening, or of the previous response being sent; otherwise the connection is
  closed (with a JSON 408 when part of a head had arrived, silently when nothing had);
- the body is bounded by the app (`schemas.read_limited`: `body_timeout`, 408), the time between
  requests by uvicorn's `timeout_keep_alive`.

    connect ─► head within header_timeout ─► body within body_timeout ─► response
                   ▲                                                         │
                   └────── idle at most keep_alive_timeout, head again ◄─────┘
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loraguard.server.service import ServeConfig

__all__ = ["timed_protocol", "uvicorn_options"]


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps(
        {
            "error": {
                "code": "request_timeout",
                "message": f"the request head did not arrive within {seconds:g} s",
                "details": [],
            }
        }
    ).encode("utf-8")
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def timed_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol class with a request-head timeout (see the module docstring)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class TimedHTTPProtocol(base):
        """Closes a connection whose request head is not complete `header_timeout` s after it opened
        or after the previous response."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_timer: asyncio.TimerHandle | None = None
            self._head_bytes = 0

        def _arm(self) -> None:
            self._disarm()
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _in_flight(self) -> bool:
            cycle = getattr(self, "cycle", None)
            return cycle is not None and not cycle.response_complete

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport is None or self.transport.is_closing() or self._in_flight():
                return
            if self._head_bytes:
                self.transport.write(_timeout_response(header_timeout))
            self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            before = getattr(self, "cycle", None)
            super().data_received(data)
            if self._head_timer is None:
                return
            cycle = getattr(self, "cycle", None)
            if cycle is not None and cycle is not before:  # a head was completed: the app takes over
                self._disarm()
            else:
                self._head_bytes += len(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport is not None and not self.transport.is_closing() and not self._in_flight():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    TimedHTTPProtocol.__name__ = TimedHTTPProtocol.__qualname__ = f"Timed{base.__name__}"
    return TimedHTTPProtocol


def uvicorn_options(config: ServeConfig) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run`/`uvicorn.Config` that apply `config`'s connection limits."""
    return {
        "http": timed_protocol(config.header_timeout),
        "timeout_keep_alive": config.keep_alive_timeout,
        "h11_max_incomplete_event_size": 64 * 1024,  # a request head larger than this is refused
    }
