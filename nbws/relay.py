"""
A relay: nbws between a real client and a real server.

A :class:`Relay` listens like an :class:`nbws.Server`. For each client that
connects it first opens a connection to the upstream server (the client's
path and query appended to the upstream URL, or a URL a routing function
chose), and only then answers the client, with the subprotocol the upstream
chose or with the upstream's own refusal. From then on it forwards every
message both ways, in order, through the ordinary hooks of both legs::

    browser ──client leg──▶ Relay ──upstream leg──▶ server
            ◀── Connection ──      ── WebSocket ──▶

The client leg is a server-side :class:`nbws.Connection`, the upstream leg an
:class:`nbws.WebSocket`; together they are a :class:`Pair`. A message on a
relay carries ``message.leg`` (``"client"`` or ``"upstream"``) and
``message.flow`` (``"client->upstream"`` or ``"upstream->client"``), so
plugins, the intercept and recordings can tell where it was. ``pair.inject()``
sends a new message to either side, marked ``message.injected``.

Closes travel through with their code and reason. An upstream that drops
without a closing handshake (or fails) is closed towards the client with
1014 (bad gateway), the WebSocket twin of HTTP 502, as a browser-facing proxy
should: 1011 would blame the relay itself. A client that drops is closed
towards the upstream with 1001 (going away), as a browser leaving the page.

Backpressure: the relay stops reading from one side while more than
``high_water`` bytes wait to be written to the other, so a slow reader slows
the writer down through TCP instead of filling memory.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl as _ssl
import time as _time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import InvalidStatus, InvalidURI
from websockets.uri import parse_uri

from . import views
from ._connection import CLOSED, CONNECTING, OPEN, BaseConnection
from ._events import CloseEvent, ErrorEvent, Flow, Leg, Listeners, Message, Watchers, call_listener
from ._loop import Pending, running_loop
from ._plugins import PluginRegistry
from ._plugins import plugins as global_plugins
from .client import WebSocket
from .exceptions import BufferFullError, InvalidStateError, InvalidURLError, describe
from .hookspecs import hookimpl
from .server import Connection, Request, Server

__all__ = ["DEFAULT_FORWARD_HEADERS", "Pair", "Relay", "leg_of"]

logger = logging.getLogger("nbws")

DEFAULT_FORWARD_HEADERS: tuple[str, ...] = ("Cookie", "Authorization", "Origin", "User-Agent")
"""Request headers a relay passes from the client to the upstream unless told otherwise."""

DEFAULT_RESPONSE_HEADERS: tuple[str, ...] = ("Set-Cookie", "WWW-Authenticate", "Retry-After")
"""Upstream response headers a relay passes back to the client (on acceptance and on refusal)."""

Route = Callable[[Request], "str | Awaitable[str | None] | None"]

# Close codes a relay may pass on (RFC 6455 section 7.4.1); 1005, 1006 and 1015 are never sent.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
_ids = itertools.count(1)
_legs: weakref.WeakKeyDictionary[BaseConnection, tuple[Pair, Leg]] = weakref.WeakKeyDictionary()


def leg_of(conn: BaseConnection) -> tuple[Pair, Leg] | None:
    """Return ``(pair, leg)`` if ``conn`` is a leg of a relay pair, else None."""
    return _legs.get(conn)


def _check_upstream(url: str) -> str:
    try:
        uri = parse_uri(url)
    except (InvalidURI, ValueError) as exc:
        raise InvalidURLError(f"upstream {url!r} is not a ws:// or wss:// URL ({exc})") from None
    if "#" in url:
        raise InvalidURLError(f"upstream {url!r} has a fragment (#...), which WebSocket URLs cannot have")
    del uri
    return url


def join_url(base: str, target: str) -> str:
    """The upstream URL for a request: ``base`` with the request's path appended and the queries merged."""
    parts = urlsplit(base)
    path, _, query = target.partition("?")
    root = parts.path.rstrip("/")
    full_path = root + path if path.startswith("/") else f"{root}/{path}"
    full_query = "&".join(q for q in (parts.query, query) if q)
    return urlunsplit((parts.scheme, parts.netloc, full_path or "/", full_query, ""))


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _has_deflate(values: Iterable[str]) -> bool:
    """Whether ``Sec-WebSocket-Extensions`` header values name permessage-deflate (RFC 7692)."""
    return any(
        item.split(";", 1)[0].strip().lower() == "permessage-deflate" for value in values for item in value.split(",")
    )


def _to_upstream(event: CloseEvent) -> tuple[int, str]:
    """The close to pass to the upstream when the client's leg closed."""
    code, reason = event.code, event.reason
    if code == 1005:
        return 1000, ""
    if code == 1006 or code == 1015 or not (code in _SENDABLE or 3000 <= code <= 4999):
        return 1001, "client went away"
    return code, reason


def _to_client(event: CloseEvent) -> tuple[int, str]:
    """The close to pass to the client when the upstream's leg closed."""
    code, reason = event.code, event.reason
    if code == 1005:
        return 1000, ""
    if not event.was_clean or code in (1006, 1015) or not (code in _SENDABLE or 3000 <= code <= 4999):
        return 1014, f"bad gateway: upstream closed abnormally ({code})"[:123]
    return code, reason


class _UpstreamSide(WebSocket):
    """
    The relay's client to the upstream server.

    Unlike a browser's, it may close with any code RFC 6455 lets an endpoint
    send (a relay passes on the client's 1001 or 1011), it uses the relay's
    plugins after its own, and it takes the relay's TLS context. Its errors
    go to the relay's error listeners too. All through the core's public
    API for such subclasses: ``endpoint_close_codes``, ``awaited_by_owner``
    and ``pass_error_on()``.
    """

    endpoint_close_codes = True
    # The relay awaits the opening itself, only to answer the client: that does not tell the user.
    awaited_by_owner = True

    def __init__(
        self,
        relay: Relay,
        pair: Pair,
        url: str,
        protocols: list[str],
        headers: list[tuple[str, str]],
        compression: Literal["deflate"] | None,
    ) -> None:
        self._relay = relay
        self._pair = pair
        super().__init__(
            url,
            protocols or None,
            headers=headers,
            open_timeout=relay.open_timeout,
            max_size=relay._max_size,
            max_buffered=relay._max_buffered,
            recv_buffer=1,
            compression=compression,
            ssl=relay.ssl if url.startswith("wss:") else None,
            # The relay's plugins apply to both legs: after this leg's own, before the global ones.
            # The leg's own registry stays lazy: made, and put first, on first use of .plugins.
            parent_plugins=relay.plugins,
        )

    def pass_error_on(self, event: ErrorEvent) -> bool:
        # Its errors go to the relay's error listeners, as a server's connection's go to the server's,
        # and count as handled only if there is one: "nbws.errors" logs them once, a warning otherwise.
        return self._relay._leg_error(self._pair, event)


class Pair:
    """
    One client relayed to the upstream: the two legs of one relayed connection.

    Attributes:
        id: A short id unique in this process, such as ``"p1"``.
        relay: The :class:`Relay`.
        request: The client's :class:`nbws.Request`.
        upstream_url: The URL the upstream leg connected to.
        client_side: The :class:`nbws.Connection` to the client (None until
            the client's handshake completed).
        upstream_side: The :class:`nbws.WebSocket` to the upstream.
        counts: Messages delivered each way, by flow
            (``"client->upstream"``, ``"upstream->client"``), injected ones included.
        injected: Of those, the messages injected each way.
        opened_at, closed_at: When the pair opened and closed (seconds since the epoch).
    """

    def __init__(self, relay: Relay, request: Request, upstream_url: str) -> None:
        self.id = f"p{next(_ids)}"
        self.relay = relay
        self.request = request
        self.upstream_url = upstream_url
        self.client_side: Connection | None = None
        self.upstream_side: WebSocket = None  # type: ignore[assignment]  # set at once by the relay
        self.counts: dict[Flow, int] = {"client->upstream": 0, "upstream->client": 0}
        self.injected: dict[Flow, int] = {"client->upstream": 0, "upstream->client": 0}
        self.opened_at = _time.time()
        self.closed_at: float | None = None
        self.open_error: str | None = None
        self._joined = asyncio.Event()
        # A drain waiting for the leg that writes to that side to get below the low-water mark.
        self._drains: dict[Leg, asyncio.Future[None]] = {}
        self._early: list[Message] = []
        self._done = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        c2u, u2c = self.counts["client->upstream"], self.counts["upstream->client"]
        state = "closed" if self.closed else "open"
        return f"<Pair {self.id} {self.request.target} -> {self.upstream_url} {state} ↑{c2u} ↓{u2c}>"

    @property
    def closed(self) -> bool:
        """True once both legs are closed."""
        return self._done.done()

    def side(self, to: Literal["client", "upstream"]) -> BaseConnection:
        """The leg that writes to ``to``: ``client_side`` for ``"client"``, ``upstream_side`` for ``"upstream"``."""
        if to == "upstream":
            return self.upstream_side
        if to == "client":
            if self.client_side is None:
                raise InvalidStateError(f"pair {self.id}: the client has not completed its handshake yet")
            return self.client_side
        raise ValueError(f"to must be 'client' or 'upstream', not {to!r}")

    # -- injecting and closing ------------------------------------------------------

    def inject(
        self, data: str | bytes | bytearray | memoryview, to: Literal["client", "upstream"] = "upstream"
    ) -> Message:
        """
        Send a new message to one side of the pair, as if the other side had sent it; return it.

        It goes through the send hooks of that leg like a forwarded message,
        after the messages already on their way, and is marked
        ``message.injected`` in hooks, logs and recordings.

        Raises:
            TypeError: if ``data`` is neither str nor bytes-like.
            ValueError: if ``to`` is not ``"client"`` or ``"upstream"``.
            nbws.InvalidStateError: if that side is not open.
            nbws.BufferFullError: if too much is already waiting to be written there.
        """
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"inject() takes str (text) or bytes (binary), not {type(data).__name__}")
        conn = self.side(to)
        leg: Leg = "client" if to == "client" else "upstream"
        message = Message(data, "send", leg=leg, injected=True)
        conn.send_message(message)
        return message

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close both legs with ``code`` and ``reason``; return at once (``await pair.wait_closed()`` waits)."""
        if self.client_side is not None and self.client_side.ready_state is OPEN:
            self.client_side.close(code, reason)
        up = self.upstream_side
        if up.ready_state in (CONNECTING, OPEN):
            up.close(code, reason)

    def wait_closed(self, timeout: float | None = None) -> Pending[Pair]:
        """Wait until both legs are closed; return this pair."""
        return Pending(self.relay.server.loop, self._wait_closed(timeout), f"pair {self.id} closing")

    async def _wait_closed(self, timeout: float | None) -> Pair:
        await asyncio.wait_for(asyncio.shield(self._done), timeout)
        return self

    # -- forwarding ---------------------------------------------------------------

    # One listener per leg, each a plain method: they run for every relayed message.

    def _from_client(self, message: Message) -> None:
        """The client's leg delivered ``message``: send it on to the upstream."""
        self._send(self.upstream_side, Message(message.data, "send", leg="upstream"), "client")

    def _from_upstream(self, message: Message) -> None:
        """The upstream's leg delivered ``message``: send it on to the client."""
        target = self.client_side
        if target is None:
            self._early.append(message)  # the client's handshake is still being answered
            return
        self._send(target, Message(message.data, "send", leg="client"), "upstream")

    def _send(self, target: BaseConnection, message: Message, from_leg: Leg) -> None:
        if target.ready_state is not OPEN:
            logger.info("%s: %s closed, a message from the %s was not relayed", self.id, message.leg, from_leg)
            return
        try:
            # The received payload as it is (str or bytes, no copy): a new Message only because
            # it is a new event of the other leg, with its own seq, time and send hooks.
            target.send_message(message)
        except BufferFullError as exc:
            # Backpressure keeps this from happening; if it does, failing loudly beats losing a message.
            self.relay.server.report_error(exc, "send", f"{self.id}: {exc}", conn=target)
            self.close(1011, "relay buffer full")

    async def _drain(self, target: BaseConnection, leg: Leg) -> None:
        """Wait until ``target`` (the ``leg`` side) has at most half of ``high_water`` left to write."""
        low = self.relay.high_water // 2
        loop = asyncio.get_running_loop()
        while target.ready_state is OPEN and target.buffered_amount > low:
            # Woken once, by the first message written that leaves the target below the mark
            # (nbws_message_sent), not by every one; the timer covers bytes still in the
            # transport's buffer after the last message was written.
            waiter = self._drains[leg] = loop.create_future()
            timer = loop.call_later(0.05, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                if self._drains.get(leg) is waiter:
                    del self._drains[leg]

    def _written(self, conn: BaseConnection, leg: Leg) -> None:
        """The ``leg`` side wrote a message: wake the drain waiting for it once it is below the mark."""
        waiter = self._drains.get(leg)
        if waiter is not None and not waiter.done() and conn.buffered_amount <= self.relay.high_water // 2:
            waiter.set_result(None)

    # -- joining and closing ------------------------------------------------------

    def _join(self, conn: Connection) -> None:
        self.client_side = conn
        self.relay._mark(conn, self, "client")
        conn.on("message", self._from_client)
        conn.on("close", self._client_closed)
        early, self._early = self._early, []
        for message in early:
            self._from_upstream(message)
        self._joined.set()
        up = self.upstream_side
        if up.close_event is not None and up.ready_state is CLOSED:
            self._upstream_closed(up.close_event)

    def _client_closed(self, event: CloseEvent) -> None:
        if self.client_side is not None:
            self.relay._unmark(self.client_side)
        up = self.upstream_side
        if up.ready_state in (CONNECTING, OPEN):
            up.close(*_to_upstream(event))
        self._check_done()

    def _upstream_closed(self, event: CloseEvent) -> None:
        self.relay._unmark(self.upstream_side)
        conn = self.client_side
        if conn is not None and conn.ready_state is OPEN:
            conn.close(*_to_client(event))
        self._joined.set()  # nothing more will come from the upstream
        self._check_done()

    def _check_done(self) -> None:
        conn = self.client_side
        if self._done.done() or conn is None or conn.close_event is None or self.upstream_side.close_event is None:
            return
        self.closed_at = _time.time()
        self._done.set_result(None)
        self.relay._pair_closed(self)


class _RelayCore:
    """
    The relay's own plugin, in ``relay.plugins``: it opens the upstream during
    the client's handshake, marks each message with its leg, counts what each
    leg writes, and applies backpressure. One plugin for every pair (rather
    than one per leg) keeps the hook caches of other connections warm.
    """

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        # The legs of the open pairs, for the hooks below (they run for every message): a plain
        # dict costs a fraction of the weak one behind leg_of(), which a closed leg falls back to.
        self.live = relay._live

    @hookimpl(trylast=True)
    async def nbws_handshake(self, request: Request) -> None:
        await self.relay._open_upstream(request)

    @hookimpl(tryfirst=True)
    def nbws_error(self, conn: BaseConnection | None) -> None:
        # Before the server's error listeners hear it: the relay's own is among them again if a
        # user's relay.server.off("error") took it off.
        self.relay._follow_server_errors()

    @hookimpl(tryfirst=True)
    def nbws_open(self, conn: BaseConnection) -> None:
        # Known as a leg from its very first event, so that recorders and loggers can say so.
        request = getattr(conn, "request", None)
        pair = self.relay._pending.get(request) if isinstance(request, Request) else None
        if pair is not None:
            self.relay._mark(conn, pair, "client")

    @hookimpl(tryfirst=True)
    def nbws_message_receive(self, conn: BaseConnection, message: Message) -> None:
        found = self.live.get(conn) or _legs.get(conn)
        if found is not None:
            message.leg = found[1]

    @hookimpl(trylast=True)
    def nbws_message_received(self, conn: BaseConnection) -> Awaitable[Any] | None:
        # The handlers ran (one of them forwarded the message) and the observers saw it: before
        # this leg reads the next one, wait while the other side has too much to write, or has
        # not joined yet.
        found = self.live.get(conn) or _legs.get(conn)
        if found is None:
            return None
        pair, leg = found
        if leg == "client":
            target: BaseConnection | None = pair.upstream_side
        elif not pair._joined.is_set():
            return pair._joined.wait()
        else:
            target = pair.client_side
        if target is None or target.buffered_amount <= self.relay.high_water:
            return None
        return pair._drain(target, "upstream" if leg == "client" else "client")

    @hookimpl(tryfirst=True)
    def nbws_message_sent(self, conn: BaseConnection, message: Message) -> None:
        found = self.live.get(conn) or _legs.get(conn)
        if found is None:
            return
        pair, leg = found
        if message.leg is None:
            message.leg = leg
        if not message.dropped:
            # What a leg writes travels towards its own side.
            flow: Flow = "client->upstream" if leg == "upstream" else "upstream->client"
            pair.counts[flow] += 1
            if message.injected:
                pair.injected[flow] += 1
        if pair._drains:
            pair._written(conn, leg)


class _RelayTab:
    """A global plugin while the relay runs: it adds the relay's panel to every new dashboard."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    @hookimpl
    def nbws_panel(self, dashboard: Any) -> tuple[str, Any]:
        return ("Relay", self.relay.panel())


class Relay:
    """
    Relay WebSocket clients to an upstream server, through nbws's hooks, like a debugging proxy.

    Create it, ``start()`` it, and point the client at ``relay.url`` instead
    of the server: each client that connects gets its own connection to the
    upstream, and every message, close and refusal goes through.

    Args:
        upstream: The upstream ``ws://`` or ``wss://`` URL (the client's path
            and query are appended), or a routing function that takes the
            client's :class:`nbws.Request` and returns the full upstream URL
            for it (plain or ``async def``; None refuses the client with 404).
        host: The interface to listen on (loopback by default).
        port: The port to listen on; 0 picks a free one.
        forward_headers: Request headers passed from the client to the
            upstream (``Cookie``, ``Authorization``, ``Origin`` and
            ``User-Agent`` by default).
        response_headers: Upstream response headers passed back to the client
            (``Set-Cookie``, ``WWW-Authenticate``, ``Retry-After`` by default).
        ssl: An :class:`ssl.SSLContext` for ``wss://`` upstreams; by default
            the system's trusted certificates, with verification on.
        open_timeout: Seconds allowed to open the upstream connection (then
            the client is refused with 504).
        high_water: Bytes that may wait to be written to one side before the
            relay stops reading from the other.
        max_size: Largest message in bytes, on both legs.
        compression: ``"deflate"`` to let the peers compress as they ask
            (permessage-deflate on both legs when the client offers it and
            the upstream accepts it, on neither otherwise), or None to
            compress on neither leg.
        plugins: Plugins for both legs of every pair (more can be added with
            ``relay.plugins.register``).

    Raises:
        nbws.InvalidURLError: if ``upstream`` is a string but not a WebSocket URL.
    """

    _event_names: ClassVar[tuple[str, ...]] = ("pair", "close", "error")

    def __init__(
        self,
        upstream: str | Route,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        forward_headers: Sequence[str] = DEFAULT_FORWARD_HEADERS,
        response_headers: Sequence[str] = DEFAULT_RESPONSE_HEADERS,
        ssl: _ssl.SSLContext | None = None,
        open_timeout: float | None = 10,
        high_water: int = 2**20,
        max_size: int | None = 2**20,
        compression: Literal["deflate"] | None = "deflate",
        plugins: Iterable[object] = (),
    ) -> None:
        if isinstance(upstream, str):
            _check_upstream(upstream)
        elif not callable(upstream):
            raise TypeError(f"upstream must be a ws:// URL or a routing function, not {type(upstream).__name__}")
        if isinstance(forward_headers, str) or not all(isinstance(h, str) for h in forward_headers):
            raise TypeError("forward_headers must be a list of header names")
        if isinstance(response_headers, str) or not all(isinstance(h, str) for h in response_headers):
            raise TypeError("response_headers must be a list of header names")
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise TypeError(f"ssl must be an ssl.SSLContext, not {type(ssl).__name__}")
        if not isinstance(high_water, int) or high_water < 1:
            raise ValueError(f"high_water must be a positive number of bytes, not {high_water!r}")
        self.upstream = upstream
        self.forward_headers = list(forward_headers)
        self.response_headers = list(response_headers)
        self.ssl = ssl
        self.open_timeout = open_timeout
        self.high_water = high_water
        self._max_size = max_size
        # A message larger than high_water must still fit: room for it on top of a full buffer.
        self._max_buffered = high_water * 2 + (max_size or high_water)
        self._compression = compression
        self.server = Server(
            host,
            port,
            max_size=max_size,
            max_buffered=self._max_buffered,
            recv_buffer=1,
            compression=compression,
        )
        self.plugins: PluginRegistry = self.server.plugins
        """The plugins of both legs of every pair (the client legs' server's registry)."""
        self._live: dict[BaseConnection, tuple[Pair, Leg]] = {}
        self.plugins.register(_RelayCore(self), "relay")
        for plugin in plugins:
            self.plugins.register(plugin)
        self.server.on("connection", self._on_connection)
        self._listeners = Listeners(self._event_names)
        self._server_error_listener = self._server_errors
        self._pending: dict[Request, Pair] = {}
        self._pairs: dict[str, Pair] = {}
        self.closed_pairs: deque[Pair] = deque(maxlen=100)
        """The last 100 pairs that closed, oldest first."""
        self._watchers = Watchers("relay")
        self._tab = _RelayTab(self)
        self._tab_id = next(_ids)

    # -- state ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The ``ws://`` URL clients connect to instead of the upstream's."""
        return self.server.url

    @property
    def port(self) -> int | None:
        """The port it listens on, once started."""
        return self.server.port

    @property
    def pairs(self) -> list[Pair]:
        """The open pairs, oldest first."""
        return list(self._pairs.values())

    def pair(self, id: str) -> Pair:
        """The open pair with this id."""
        try:
            return self._pairs[id]
        except KeyError:
            raise InvalidStateError(f"no open pair {id!r} (open: {', '.join(self._pairs) or 'none'})") from None

    def __repr__(self) -> str:
        where = self.url if self.port is not None else "not started"
        upstream = self.upstream if isinstance(self.upstream, str) else getattr(self.upstream, "__name__", "route")
        return f"<Relay {where} -> {upstream} pairs={len(self._pairs)}>"

    def inject(
        self,
        pair: Pair | str,
        data: str | bytes | bytearray | memoryview,
        to: Literal["client", "upstream"] = "upstream",
    ) -> Message:
        """Inject a message into a pair (or a pair's id); see :meth:`Pair.inject`."""
        target = pair if isinstance(pair, Pair) else self.pair(pair)
        return target.inject(data, to)

    # -- listeners ----------------------------------------------------------------

    def on(self, name: str, fn: Callable[..., Any] | None = None) -> Any:
        """
        Add a listener; usable as a decorator. Returns ``fn``.

        - ``"pair"``: ``fn(pair)`` once a client is relayed (both legs open).
        - ``"close"``: ``fn(pair)`` once both legs of a pair are closed.
        - ``"error"``: ``fn(pair, error_event)``, for an upstream that could
          not be reached or refused the client (the client was refused with
          the matching HTTP status), an error on either leg, or one of the
          relay itself (its routing function, a listener that raised, its
          server); ``pair`` is None when no pair is concerned.

        Errors are reported as every endpoint's are: to the ``nbws_error``
        hooks of ``relay.plugins`` (and the global ones) first, then to these
        listeners, then logged once by the default plugin ``"nbws.errors"``
        (a warning while the relay has no ``"error"`` listener, else a debug line).
        """
        if fn is None:
            self._listeners.check(name)

            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.on(name, fn)
                return fn

            return decorator
        self._listeners.on(name, fn)
        self._follow_server_errors()
        return fn

    def off(self, name: str, fn: Callable[..., Any] | None = None) -> None:
        """Remove listener ``fn`` of ``name``, or all of them."""
        self._listeners.remove(name, fn)
        self._follow_server_errors()

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when a pair opens or closes (panels use it)."""
        self._watchers.add(callback)

    def unwatch(self, callback: Callable[[], None]) -> None:
        """Stop calling a callback given to :meth:`watch`."""
        self._watchers.remove(callback)

    def _emit(self, name: str, *args: Any) -> None:
        for fn in self._listeners.get(name):
            call_listener(fn, args, self._listener_failed)

    def _listener_failed(self, error: BaseException, fn: Callable[..., Any]) -> None:
        name = getattr(fn, "__qualname__", repr(fn))
        self.server.report_error(error, "handler", f"relay listener {name} raised {describe(error)}")

    # -- errors -------------------------------------------------------------------
    #
    # The relay reports nothing itself: its errors are its server's (report_error) or its legs'
    # (each reports its own), and its "error" listeners hear them the way a server's listeners
    # hear its connections'. They count as handled, for the one line "nbws.errors" logs, only
    # while the relay has error listeners, so its server follows them only then. A user's
    # relay.server.off("error") takes that listener off with theirs: the relay's own plugin puts
    # it back in nbws_error, which every error of the server and its connections passes before
    # the server's listeners are called.

    def _follow_server_errors(self) -> None:
        # Always the same bound method, so that adding it again keeps it in its place, silently.
        if self._listeners.get("error"):
            self.server.on("error", self._server_error_listener)
        else:
            self.server.off("error", self._server_error_listener)

    def _server_errors(self, conn: BaseConnection | None, event: ErrorEvent) -> None:
        """An error of the relay's server or of a client leg: to the relay's error listeners, with its pair."""
        found = leg_of(conn) if conn is not None else None
        self._tell_error_listeners(found[0] if found else None, event, _error_listener_failed)

    def _leg_error(self, pair: Pair, event: ErrorEvent) -> bool:
        """An error of an upstream leg: kept as the reason it did not open, and told to the error listeners."""
        if pair.open_error is None and pair.upstream_side.ready_state is not OPEN and pair.client_side is None:
            pair.open_error = event.message
        return self._tell_error_listeners(pair, event, _error_listener_failed) > 0

    def _tell_error_listeners(
        self, pair: Pair | None, event: ErrorEvent, on_error: Callable[[BaseException, Any], None]
    ) -> int:
        listeners = self._listeners.get("error")
        for fn in listeners:
            # A listener of errors that raises is logged only (as on every endpoint): reporting it could loop.
            call_listener(fn, (pair, event), on_error)
        return len(listeners)

    # -- starting and stopping ------------------------------------------------------

    def start(self) -> Pending[Relay]:
        """Listen now and return at once; await the result (or ``.wait()``) to know it accepts clients."""
        serving = self.server.start()
        return Pending(self.server.loop, self._started(serving), "starting relay")

    async def _started(self, serving: Pending[Server]) -> Relay:
        await serving
        if global_plugins.name_of(self._tab) is None:
            global_plugins.register(self._tab, f"relay-panel-{self._tab_id}")
        self._watchers.notify()
        return self

    def stop(self, code: int = 1001, reason: str = "") -> Pending[None]:
        """
        Close every pair (both legs with ``code``) and stop listening; return at once.

        Await the result (or ``.wait()``) to know that every leg is closed.
        """
        return Pending(self.server.loop, self._stop(code, reason), "stopping relay")

    async def _stop(self, code: int, reason: str) -> None:
        for pair in list(self._pending.values()):
            pair.upstream_side.close(1001 if code == 1001 else code, reason)
        pairs = self.pairs
        for pair in pairs:
            pair.upstream_side.close(code, reason)
        await self.server.stop(code, reason)
        for pair in pairs + list(self._pending.values()):
            await pair.upstream_side.closed()
        if global_plugins.name_of(self._tab) is not None:
            global_plugins.unregister(self._tab)
        self._watchers.notify()

    async def __aenter__(self) -> Relay:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __enter__(self) -> Relay:
        if running_loop() is self.server.loop:
            raise InvalidStateError("use 'async with' inside a running event loop")
        return self.start().wait()

    def __exit__(self, *exc_info: object) -> None:
        self.stop().wait()

    # -- widgets ------------------------------------------------------------------

    def panel(self) -> Any:
        """
        The :class:`nbws.RelayPanel` of this relay, made on first use; a cell ending with ``relay`` shows it.

        Found through :mod:`nbws.views` (the core never imports a widget) and kept by the widgets layer until it is closed.
        """
        return views.view(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self)

    # -- the handshake ------------------------------------------------------------

    async def _route(self, request: Request) -> str | None:
        upstream = self.upstream
        if isinstance(upstream, str):
            return join_url(upstream, request.target)
        result = upstream(request)
        if isinstance(result, Awaitable):
            result = await result
        if result is not None:
            _check_upstream(result)
        return result

    def _forwarded(self, request: Request) -> list[tuple[str, str]]:
        return [(name, value) for name in self.forward_headers for value in request.headers.get_all(name)]

    async def _open_upstream(self, request: Request) -> None:
        try:
            url = await self._route(request)
        except Exception as exc:
            request.reject(502, f"the relay's routing function failed: {exc}")
            self.server.report_error(exc, "handshake", f"routing {request.target} failed: {exc}")
            return
        if url is None:
            request.reject(404, f"no upstream for {request.target}")
            return
        pair = Pair(self, request, url)
        # Compression as the peers ask (RFC 7692 is negotiated hop by hop): the upstream is offered
        # permessage-deflate only if the client offered it, and the client gets it only if the
        # upstream accepted it. So a relayed connection compresses exactly when the direct one would,
        # and the relay inflates and deflates nothing when either peer does without.
        extensions = "Sec-WebSocket-Extensions"
        offered = self._compression is not None and _has_deflate(request.headers.get_all(extensions))
        try:
            up = _UpstreamSide(
                self, pair, url, request.subprotocols, self._forwarded(request), self._compression if offered else None
            )
        except ValueError as exc:
            request.reject(400, f"cannot relay this request: {exc}")
            return
        pair.upstream_side = up
        self._mark(up, pair, "upstream")
        up.on("message", pair._from_upstream)
        up.on("close", pair._upstream_closed)
        self._pending[request] = pair
        try:
            await up.opened()
        except Exception as exc:
            self._pending.pop(request, None)
            self._refuse(request, pair, up, exc)
            return
        if up.protocol:
            request.subprotocol = up.protocol
        headers = up.response_headers
        if offered and not _has_deflate(v for k, v in headers.items() if k.lower() == extensions.lower()):
            # The upstream declined it: the client's leg goes without too (it accepts what the request offers).
            del request.headers[extensions]
        for name in self.response_headers:
            value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
            if value is not None:
                request.response_headers.append((name, value))
        # If the client never completes its side (it went away meanwhile), let the upstream go.
        asyncio.get_running_loop().call_later(max(self.open_timeout or 10, 10), self._abandon, request)

    def _refuse(self, request: Request, pair: Pair, up: WebSocket, exc: BaseException) -> None:
        """The upstream could not be opened: answer the client as the upstream answered us."""
        cause = up.last_error
        what = pair.open_error or str(exc)
        if isinstance(cause, InvalidStatus):
            response = cause.response
            status = response.status_code
            for name in self.response_headers:
                for value in response.headers.get_all(name):
                    request.response_headers.append((name, value))
            body = response.body.decode("utf-8", "replace").strip() if response.body else ""
            reason = f"upstream refused the handshake: HTTP {status} {response.reason_phrase}"
            if body:
                reason += f": {body[:200]}"
            if not 400 <= status <= 599:
                status = 502
            request.reject(status, reason)
        elif isinstance(cause, (asyncio.TimeoutError, TimeoutError)):
            request.reject(504, f"upstream did not answer in time: {what}")
        else:
            request.reject(502, f"upstream unreachable: {what}")

    def _abandon(self, request: Request) -> None:
        pair = self._pending.pop(request, None)
        if pair is not None and pair.client_side is None:
            logger.info("%s: the client never completed its handshake; closing the upstream", pair.id)
            pair.upstream_side.close(1001, "client went away")

    def _on_connection(self, conn: Connection) -> None:
        pair = self._pending.pop(conn.request, None)
        if pair is None:
            # The relay's own plugin was switched off, or the upstream was abandoned.
            self._unmark(conn)
            conn.close(1011, "relay has no upstream for this connection")
            return
        self._pairs[pair.id] = pair
        pair._join(conn)
        self._emit("pair", pair)
        self._watchers.notify()

    def _mark(self, conn: BaseConnection, pair: Pair, leg: Leg) -> None:
        """``conn`` is ``leg`` of ``pair``: for leg_of() (as long as it lives) and for the hooks (while it is open)."""
        _legs[conn] = (pair, leg)
        self._live[conn] = (pair, leg)

    def _unmark(self, conn: BaseConnection) -> None:
        self._live.pop(conn, None)

    def _pair_closed(self, pair: Pair) -> None:
        self._pairs.pop(pair.id, None)
        self.closed_pairs.append(pair)
        self._emit("close", pair)
        self._watchers.notify()


def _error_listener_failed(error: BaseException, fn: Callable[..., Any]) -> None:
    logger.error("relay error listener %r raised", fn, exc_info=error)
