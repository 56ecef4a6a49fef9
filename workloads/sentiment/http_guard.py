"""The HTTP/1.1 connection protocol of the sentiment server: uvicorn's httptools protocol with limits.

uvicorn (with httptools) keeps a request's headers in memory whole, without a
bound on their size or count, and waits for them, and for a body, without a
deadline: a 64 MB header was answered 200 after the process grew by 62 MB, and
a client sending one byte a second held its connection open for ever. Its
answers to framing errors are plain text. ``GuardedHttpToolsProtocol`` adds,
per connection:

- a size bound on the request head (request line + headers, MAX_HEADER_BYTES),
  counted on the raw bytes *before* the parser sees them (httptools concatenates
  one header's pieces before any callback fires, so a callback cannot count in
  time), and a bound on the number of headers (MAX_HEADERS): 431;
- a deadline for the head (HEADER_TIMEOUT_S, from its first byte, or from the
  connection's opening) and one for the body (BODY_TIMEOUT_S, from the end of
  the head): 408, then the connection is closed. Idle keep-alive connections
  stay bounded by uvicorn's own KEEPALIVE_TIMEOUT_S;
- JSON answers ``{"error": ..., "detail": ...}`` (the app's error shape) to
  requests the parser refuses: a malformed request line, a bad Content-Length,
  invalid chunked encoding (400).

Every refusal closes the connection and counts in ``sentiment_rejected_total``.
Closing while the client may still be sending (a refused head, a body not
read: the app's answers with ``Connection: close``) is a lingering close: the
answer is written, the sending side shut, and what still arrives is discarded
unread for up to LINGER_S, so the client reads the answer instead of a reset.
Header bytes of a pipelined request that arrive in the same read as the end of
the previous request are not counted (at most one socket read, 256 KiB).
"""
from __future__ import annotations

import functools
import http
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("sentiment.server")

#: Longest a closing connection discards what its client still sends (see the module docstring).
LINGER_S = 2.0


@dataclass(frozen=True)
class HttpLimits:
    """The per-connection bounds (config.py: MAX_HEADER_BYTES, MAX_HEADERS, HEADER_TIMEOUT_S, BODY_TIMEOUT_S)."""

    max_header_bytes: int = 16384
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0


#: ``shed(content_length) -> None`` (serve it) or the app's answer (a ``shedding.ShedAnswer``),
#: asked when a ``POST /analyze`` head is complete, before its body is read.
ShedCheck = Callable[[Optional[bytes]], Any]
SHED_METHOD, SHED_PATH = b"POST", b"/analyze"


class Refused(Exception):
    """A refusal: raised inside a parser callback, it stops parsing; answered as a JSON error.

    ``endpoint``: the request's path when it is known (a shed request), counted in the request metrics too;
    ``hold_s``: how long the answer is held back (``shedding``)."""

    def __init__(self, status: int, message: str, detail: Any, reason: str,
                 headers: Optional[Dict[str, str]] = None, endpoint: Optional[str] = None, hold_s: float = 0.0) -> None:
        super().__init__(message)
        self.status, self.message, self.detail, self.reason = status, message, detail, reason
        self.headers = headers or {}
        self.endpoint = endpoint
        self.hold_s = hold_s

    def response(self, default_headers=()) -> bytes:
        """A complete HTTP/1.1 response: the JSON error, ``Connection: close``."""
        body = json.dumps({"error": self.message, "detail": self.detail}, separators=(",", ":")).encode()
        head = [f"HTTP/1.1 {self.status} {http.HTTPStatus(self.status).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in default_headers]
        head += [f"{name.lower()}: {value}\r\n".encode("latin-1") for name, value in self.headers.items()
                 if name.lower() != "connection"]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                    % len(body))
        return b"".join(head) + body

    def count(self) -> None:
        from workloads.sentiment import metrics  # lazily: the multiprocess env is set before the first import

        metrics.rejected_total.labels(self.reason).inc()
        if self.endpoint is not None:
            metrics.requests_total.labels(metrics.endpoint_label(self.endpoint), "POST", str(self.status)).inc()


class _LingeringTransport:
    """The transport as uvicorn's code sees it: ``close()`` lingers while a request body is still arriving."""

    def __init__(self, transport, protocol: "GuardedHttpToolsProtocol") -> None:
        self._transport = transport
        self._protocol = protocol
        self.write = transport.write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._transport.is_closing() or self._protocol.lingering

    def close(self) -> None:
        if self._protocol.body_pending and not self.is_closing():
            self._protocol.linger()
        else:
            self._transport.close()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the head bounded in bytes, count and time and the body in time.

    State: ``_head_bytes`` is the bytes of the current request head seen so far, or
    None while a body is being received (between the end of the head and the end of
    the message), when nothing is counted.
    """

    def __init__(self, *args: Any, limits: HttpLimits = HttpLimits(), shed: Optional[ShedCheck] = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.shed = shed
        self._head_bytes: Optional[int] = 0
        self._header_count = 0
        self._timer: Any = None  # the head's or the body's deadline, or the lingering close's
        self.lingering = False
        self._raw: Any = None  # the transport itself (self.transport is the lingering one)

    @property
    def body_pending(self) -> bool:
        """A request's head was read and its body has not all arrived."""
        return self._head_bytes is None

    # ------------------------------------------------------------------ transport callbacks
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._raw = transport
        self.transport = _LingeringTransport(transport, self)  # type: ignore[assignment]
        self._arm(self.limits.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; while in a head, never more than the bytes the head may still have."""
        if self.lingering:
            return  # discarded unread
        self._unset_keepalive_if_required()
        while data and not self.transport.is_closing():
            if self._head_bytes is None:  # a body: no byte bound here (the app enforces MAX_BODY_BYTES)
                self._feed(data)
                return
            room = self.limits.max_header_bytes - self._head_bytes
            if room <= 0:
                self._refuse(Refused(431, "request headers too large",
                                     {"max_header_bytes": self.limits.max_header_bytes}, "header_too_large"))
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            self._feed(piece)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # served as plain HTTP: the server has no WebSocket support
            log.info("unsupported upgrade request from %s", self.client)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, Refused):
                self._refuse(exc.__context__)
            else:
                log.info("malformed HTTP request from %s: %s", self.client, exc)
                self._refuse(Refused(400, "malformed HTTP request", str(exc) or type(exc).__name__, "bad_framing"))

    # ------------------------------------------------------------------ parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        if self._timer is None:  # a keep-alive connection's next request: its head's deadline starts now
            self._arm(self.limits.header_timeout_s, self._head_timed_out)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise Refused(431, "too many request headers", {"max_headers": self.limits.max_headers},
                          "header_too_large")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.shed is not None and self.parser.get_method() == SHED_METHOD:
            self._shed_check()
        self._head_bytes = None
        self._arm(self.limits.body_timeout_s, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_bytes = 0
        super().on_message_complete()

    def _shed_check(self) -> None:
        """Shed a ``POST /analyze`` the app has no room for now, from its head alone: no ASGI task, no body read."""
        if httptools.parse_url(self.url).path != SHED_PATH:
            return
        length = next((v for k, v in self.headers if k == b"content-length"), None)
        a = self.shed(length)
        if a is not None:
            raise Refused(a.status, a.message, a.detail, "queue_full", a.headers, SHED_PATH.decode(), a.hold_s)

    # ------------------------------------------------------------------ deadlines
    def _arm(self, seconds: float, callback) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._head_bytes:  # part of a head arrived: say why; a silent connection is just closed
            self._refuse(Refused(408, "request headers not received in time",
                                 {"header_timeout_s": self.limits.header_timeout_s}, "header_timeout"))
        elif not self.transport.is_closing():
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._timer = None
        self._refuse(Refused(408, "request body not received in time", {"body_timeout_s": self.limits.body_timeout_s},
                             "body_timeout"))

    def linger(self) -> None:
        """Shut the sending side, discard what arrives, close at the client's EOF or after LINGER_S."""
        self.lingering = True
        self._raw.resume_reading()  # paused while an answer was held
        if not self._raw.can_write_eof():
            self._raw.close()
            return
        self._raw.write_eof()
        self._arm(LINGER_S, self._raw.close)

    # ------------------------------------------------------------------ answering
    def _refuse(self, refused: Refused) -> None:
        """Answer the refusal (JSON) unless a response is already under way, and close the connection.

        A request already handed to the app is marked disconnected first (as when the
        client goes away), so the app can no longer write a second response. A body
        still arriving after its request was answered (e.g. 413 from Content-Length)
        is cut off without a second answer."""
        self._disarm()
        if self.transport.is_closing():
            return
        refused.count()
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            answer = True
        else:  # answered already: a new answer only for a new request (its head is being read)
            answer = cycle.response_complete and self._head_bytes is not None
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if not answer:
            self._raw.close()
            return
        self.lingering = True  # nothing more is read or parsed on this connection
        if refused.hold_s > 0:
            self._raw.pause_reading()
            self._arm(refused.hold_s, functools.partial(self._answer, refused))
        else:
            self._answer(refused)

    def _answer(self, refused: Refused) -> None:
        self._timer = None
        if self._raw.is_closing():
            return
        self._raw.write(refused.response(self.server_state.default_headers))
        self.linger()


def protocol_factory(limits: HttpLimits, shed: Optional[ShedCheck] = None):
    """The ``http=`` argument of ``uvicorn.Config``: the guarded protocol with these limits (and shedding)."""
    return functools.partial(GuardedHttpToolsProtocol, limits=limits, shed=shed)
