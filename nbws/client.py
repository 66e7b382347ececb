"""
The client: :class:`WebSocket`, shaped like the browser's ``WebSocket``.

It starts connecting as soon as it is created, fires ``open``, ``message``,
``close`` and ``error`` events, and can reconnect by itself with exponential
backoff, holding the messages sent meanwhile and sending them in order once
it is open again.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import re
import socket
import ssl as _ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus, InvalidURI
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.http11 import USER_AGENT
from websockets.typing import Origin, Subprotocol
from websockets.uri import WebSocketURI, parse_uri

from . import redact, views
from ._connection import (
    CLOSING,
    CONNECTING,
    DEFAULT_MAX_BUFFERED,
    DEFAULT_RECV_BUFFER,
    DEFAULT_RECV_BUFFER_BYTES,
    OPEN,
    BaseConnection,
    not_iterable,
)
from ._events import describe
from ._live import track
from ._loop import detached, get_loop
from ._plugins import PluginRegistry
from ._protocol import Wire
from .exceptions import ConnectError, InvalidURLError

__all__ = ["Reconnect", "WebSocket"]

DEFAULT_CLIENT_MAX_SIZE = 64 * 2**20
"""A client's default ``max_size``: far above a server's 1 MiB, as a browser takes large messages."""

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# True while WebSocket.clone() builds a client: __init__ then sets it up without starting to connect,
# and clone() starts it (_begin) once its plugins and handlers are in place.
_unstarted: contextvars.ContextVar[bool] = contextvars.ContextVar("nbws_unstarted", default=False)
_UNSAFE_URL = re.compile(r"[\x00-\x20\x7f]")
_HEADER_VALUE = re.compile(r"[\x09\x20-\x7e\x80-\xff]*")


@dataclass(frozen=True)
class Reconnect:
    """
    How a :class:`WebSocket` reconnects after its connection closes or fails.

    The n-th attempt waits ``min(max_delay, initial_delay * factor ** (n - 1))``
    seconds, reduced by a random fraction of up to ``jitter`` so that many
    clients do not come back at the same instant. The count starts again after
    every successful open. After ``max_attempts`` failed attempts in a row
    (None: no limit) the client gives up and stays closed.

    Only ``ws.close()`` stops a reconnecting client for good; a close from the
    server, even a clean one, is followed by a new attempt.
    """

    initial_delay: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not self.initial_delay >= 0:
            raise ValueError(f"initial_delay must be >= 0, not {self.initial_delay!r}")
        if not self.max_delay >= self.initial_delay:
            raise ValueError(f"max_delay must be >= initial_delay, not {self.max_delay!r}")
        if not self.factor >= 1:
            raise ValueError(f"factor must be >= 1, not {self.factor!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter!r}")
        if self.max_attempts is not None and (not isinstance(self.max_attempts, int) or self.max_attempts < 1):
            raise ValueError(f"max_attempts must be a positive int or None, not {self.max_attempts!r}")

    def delay(self, attempt: int) -> float:
        """Return the seconds to wait before attempt number ``attempt`` (from 1)."""
        base = min(self.max_delay, self.initial_delay * self.factor ** (attempt - 1))
        return base * (1 - self.jitter * random.random())


def _reconnect_policy(value: object) -> Reconnect | None:
    if value is None or value is False:
        return None
    if value is True:
        return Reconnect()
    if isinstance(value, Reconnect):
        return value
    if isinstance(value, Mapping):
        return Reconnect(**value)
    raise TypeError(f"reconnect must be True, False, None, a dict or an nbws.Reconnect, not {type(value).__name__}")


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str such as 'ws://127.0.0.1:8765/', not {type(url).__name__}")
    if not url.strip():
        raise InvalidURLError("the URL is empty: use ws://host:port/path or wss://...")
    # As current browsers do (WHATWG WebSockets standard): http:// means ws://, https:// means wss://.
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        url = ("ws" if scheme.lower() == "http" else "wss") + "://" + rest
    shown = redact.url(url)  # error messages end up in logs and saved outputs
    if "#" in url:
        raise InvalidURLError(f"{shown!r} has a fragment (#...), which WebSocket URLs cannot have")
    if _UNSAFE_URL.search(url):
        # They would end up raw in the request line (RFC 7230 section 3.1.1), which the server cannot parse.
        raise InvalidURLError(f"{shown!r} contains a space or a control character: percent-encode it (a space is %20)")
    try:
        parse_uri(url)
    except (InvalidURI, ValueError) as exc:
        raise InvalidURLError(
            f"{shown!r} is not a valid WebSocket URL: use ws://host:port/path or wss://... ({redact.text(str(exc))})"
        ) from None
    return url


def _check_protocols(protocols: str | Sequence[str] | None) -> list[str]:
    if protocols is None:
        return []
    items = [protocols] if isinstance(protocols, str) else list(protocols)
    for item in items:
        if not isinstance(item, str) or not _TOKEN.fullmatch(item):
            raise ValueError(f"subprotocol {item!r} is not a valid token (letters, digits and !#$%&'*+-.^_`|~)")
    if len(set(items)) != len(items):
        raise ValueError(f"subprotocols must not repeat: {items!r}")
    return items


def _check_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise TypeError(f"headers must map str names to str values; got {pair!r}")
        _check_header(*pair)
    return pairs


def _check_header(name: str, value: str) -> None:
    """Refuse what would break the handshake request or smuggle a header into it (RFC 7230 section 3.2)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"header name {name!r} is not a valid token (letters, digits and !#$%&'*+-.^_`|~)")
    if not _HEADER_VALUE.fullmatch(value):
        raise ValueError(
            f"header {name} has a character HTTP does not allow in its value {value!r}: "
            "a control character such as CR or LF, or one beyond U+00FF"
        )


def _body_excerpt(body: bytes | bytearray | None, limit: int = 300) -> str:
    """The start of an HTTP response body, as text on one line: servers say there why they refused."""
    if not body:
        return ""
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[:limit] + "…"


class WebSocket(BaseConnection):
    """
    A WebSocket client that connects as soon as it is created, like ``new WebSocket(url)``.

    In a notebook cell it runs on the kernel's loop: create it, set handlers,
    ``send()`` and ``close()`` without ``await``; ``await ws.opened()``,
    ``await ws.recv()`` and ``await ws.closed()`` wait. In a plain script use
    ``ws.opened().wait()`` and the like.

    Args:
        url: A ``ws://`` or ``wss://`` URL.
        protocols: A subprotocol or a list of them, offered in order.
        headers: Extra HTTP headers for the opening handshake.
        origin: The ``Origin`` header to send, as a browser would.
        reconnect: True, a dict of :class:`Reconnect` fields, or a
            :class:`Reconnect` to reconnect by itself; while it reconnects,
            ``send()`` holds messages (up to ``max_buffered`` bytes).
        open_timeout: Seconds allowed for the TCP connection and handshake.
        ping_interval: Seconds between keepalive pings (None: no pings).
        ping_timeout: Seconds to wait for a pong before closing (None: forever).
        close_timeout: Seconds to wait for the closing handshake to complete
            before dropping the TCP connection (None: forever).
        max_size: Largest incoming message in bytes; a larger one closes the
            connection with 1009. None: no limit. The default, 64 MiB, takes
            what real services send (browsers take hundreds of MB) while
            still bounding memory; a server keeps 1 MiB.
        max_buffered: Bytes that may wait to be sent before ``send()`` raises
            :class:`~nbws.BufferFullError`.
        recv_buffer: Messages kept for ``recv()`` before the oldest is discarded.
        recv_buffer_bytes: Bytes of messages kept for ``recv()`` (4 MiB)
            before the oldest is discarded.
        compression: ``"deflate"`` (permessage-deflate, the default) or None.
        ssl: An :class:`ssl.SSLContext` for ``wss://`` URLs (a private
            certificate authority, client certificates); by default the
            system's trusted certificates, verified against the host name.
        plugins: Plugins for this client alone (more can be added with
            ``ws.plugins.register``).
        parent_plugins: A :class:`~nbws.PluginRegistry` whose plugins apply
            after this client's own and before the global ones (as a
            server's do for its connections; :class:`nbws.relay.Relay` passes
            its own for the upstream leg).
        hook_timeout: Seconds an awaited (``async def``) hook implementation
            may take before it is cancelled and reported by name (None, the
            default: no limit; hooks are still cancelled when the connection
            closes, and ``close()`` waits at most ``close_timeout`` for them).
        transport: Where the connection goes instead of a TCP socket: a
            :class:`nbws.testing.MemoryTransport` connects to an in-process
            :class:`~nbws.Server` over an in-memory pipe (for tests).

    Raises:
        nbws.InvalidURLError: (a ValueError) if ``url`` is not a ws:// or wss:// URL.
        ValueError: for invalid subprotocols, headers or options.
    """

    role: ClassVar[Literal["client"]] = "client"
    _id_prefix = "c"

    def __init__(
        self,
        url: str,
        protocols: str | Sequence[str] | None = None,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        origin: str | None = None,
        reconnect: bool | Reconnect | Mapping[str, Any] | None = None,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_size: int | None = DEFAULT_CLIENT_MAX_SIZE,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        recv_buffer: int = DEFAULT_RECV_BUFFER,
        recv_buffer_bytes: int = DEFAULT_RECV_BUFFER_BYTES,
        compression: Literal["deflate"] | None = "deflate",
        ssl: _ssl.SSLContext | None = None,
        plugins: Iterable[object] = (),
        parent_plugins: PluginRegistry | None = None,
        hook_timeout: float | None = None,
        transport: Any = None,
    ) -> None:
        self.url = _check_url(url)
        self._protocols = _check_protocols(protocols)
        self._headers = _check_headers(headers)
        if origin is not None:
            if not isinstance(origin, str):
                raise TypeError(f"origin must be a str such as 'http://127.0.0.1:8888', not {type(origin).__name__}")
            _check_header("Origin", origin)
        self._reconnect = _reconnect_policy(reconnect)
        self._parent_plugins = parent_plugins
        self._transport = transport
        if compression not in ("deflate", None):
            raise ValueError(f"compression must be 'deflate' or None, not {compression!r}")
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise TypeError(f"ssl must be an ssl.SSLContext, not {type(ssl).__name__}")
        if parent_plugins is not None and not isinstance(parent_plugins, PluginRegistry):
            raise TypeError(f"parent_plugins must be a PluginRegistry, not {type(parent_plugins).__name__}")
        self._connect_options: dict[str, Any] = {
            "subprotocols": self._protocols or None,
            "additional_headers": self._headers or None,
            "origin": origin,
            "open_timeout": open_timeout,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": close_timeout,
            "max_size": max_size,
            "compression": compression,
            "ssl": ssl,
        }
        # Without plugins given here, the registry is made on first use of .plugins (it costs ~0.3 ms).
        registry = PluginRegistry() if plugins else None
        for plugin in plugins:
            assert registry is not None
            registry.register(plugin)
        super().__init__(
            get_loop(),
            plugin_registry=registry,
            parent_registry=parent_plugins,
            max_buffered=max_buffered,
            recv_buffer=recv_buffer,
            recv_buffer_bytes=recv_buffer_bytes,
            close_timeout=close_timeout,
            hook_timeout=hook_timeout,
        )
        self.last_error: BaseException | None = None
        """The last connection error, if any."""
        self.reconnect_attempt = 0
        """The current reconnection attempt (0 while open or never dropped)."""
        self._task: asyncio.Task[None] | None = None
        self._connector: Callable[[Wire], Awaitable[None]] | None = getattr(transport, "connect", None)
        if not _unstarted.get():
            self._begin()

    def _begin(self) -> None:
        """Start connecting, on the client's loop (from any thread): its plugins and handlers are in place by now."""
        track(self)
        self._loop.call_soon_threadsafe(self._start)

    @property
    def reconnect(self) -> Reconnect | None:
        """
        The reconnection policy, or None if the client does not reconnect.

        Assign True, False, None, a dict or a :class:`Reconnect` to change it
        while the client runs: it applies from the next time the connection
        closes or an attempt fails (the client panel's reconnect toggle does this).
        """
        return self._reconnect

    @reconnect.setter
    def reconnect(self, value: bool | Reconnect | Mapping[str, Any] | None) -> None:
        self._reconnect = _reconnect_policy(value)

    def _start(self) -> None:
        if self._local_close is None:
            # Detached from the cell that made the client: handlers print where the user looks.
            self._task = detached(self._loop.create_task, self._run())

    def _can_queue(self) -> bool:
        return self._reconnect is not None and not self._finished and self._local_close is None

    def _abort_connecting(self) -> None:
        if self._task is None:
            # close() before the first attempt even started.
            self._loop.create_task(self._closed_before_start())
        elif not self._task.done():
            self._task.cancel()

    async def _closed_before_start(self) -> None:
        await self._closed(1006, "", False)
        self._finish()

    async def _run(self) -> None:
        try:
            attempt = 0
            while True:
                opened = await self._connect_once()
                if opened:
                    attempt = 0
                if self._local_close is not None or self._reconnect is None:
                    break
                attempt += 1
                policy = self._reconnect
                if policy.max_attempts is not None and attempt > policy.max_attempts:
                    break
                delay = policy.delay(attempt)
                self._state = CONNECTING
                self.reconnect_attempt = attempt
                await self._call_hooks("nbws_reconnect", (self, attempt, delay))
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if self._local_close is None:
                raise
        finally:
            # Whatever ended this task, an opened connection ends with one close event.
            wire = self._ws
            if wire is not None and not wire.lost.done():
                wire.abort()
            self._close_now()
            self.reconnect_attempt = 0
            self._finish()

    async def _connect_once(self) -> bool:
        """Try to open one connection and run it until it closes; return whether it opened."""
        try:
            wire = await self._open_wire()
        except asyncio.CancelledError:
            if self._local_close is None:
                raise
            await self._closed(1006, "", False)
            return False
        except Exception as exc:
            self.last_error = exc
            phase, message = self._connect_failure(exc)
            self._report(exc, phase, message)
            await self._closed(1006, "", False)
            return False
        await self._opened(wire)
        if self._local_close is not None and self._state is OPEN:
            # close() raced with the handshake: honour it.
            self._state = CLOSING
            self._tell_ending("closing")
            wire.close(self._local_close.code, self._local_close.reason)
        wire.attach(self)
        ended = self._ended
        assert ended is not None
        await ended
        return True

    async def _open_wire(self) -> Wire:
        """Connect and complete the opening handshake within ``open_timeout``; return the open Wire."""
        options = self._connect_options
        uri = parse_uri(self.url)
        extensions = enable_client_permessage_deflate(None) if options["compression"] == "deflate" else None
        origin = options["origin"]
        proto = ClientProtocol(
            uri,
            origin=Origin(origin) if origin is not None else None,
            extensions=extensions,
            subprotocols=[Subprotocol(p) for p in self._protocols] or None,
            max_size=options["max_size"],
        )
        wire = Wire(
            proto,
            self._loop,
            ping_interval=options["ping_interval"],
            ping_timeout=options["ping_timeout"],
            close_timeout=options["close_timeout"],
        )
        timeout = options["open_timeout"]
        try:
            if timeout is None:
                await self._handshake(wire, uri)
            else:
                await asyncio.wait_for(self._handshake(wire, uri), timeout)
        except BaseException:
            wire.abort()
            raise
        return wire

    async def _handshake(self, wire: Wire, uri: WebSocketURI) -> None:
        connector = self._connector
        if connector is not None:
            await connector(wire)
        else:
            ssl: Any = None
            if uri.secure:
                ssl = self._connect_options["ssl"] or _ssl.create_default_context()
            await self._loop.create_connection(
                lambda: cast(asyncio.Protocol, wire),
                uri.host,
                uri.port,
                ssl=ssl,
                server_hostname=uri.host if ssl else None,
            )
        proto = wire.proto
        assert isinstance(proto, ClientProtocol)
        request = proto.connect()
        for name, value in self._headers:
            request.headers[name] = value
        request.headers.setdefault("User-Agent", USER_AGENT)
        proto.send_request(request)
        wire.flush()
        await wire.handshake
        if proto.handshake_exc is not None:
            raise proto.handshake_exc
        if wire.response is None:
            raise InvalidMessage("did not receive a valid HTTP response")

    def _connect_failure(self, exc: BaseException) -> tuple[str, str]:
        where = f"could not connect to {redact.url(self.url)}"
        if isinstance(exc, InvalidStatus):
            response = exc.response
            status = f"HTTP {response.status_code} {response.reason_phrase}"
            if 200 <= response.status_code < 400:
                # A web page or a redirect: an HTTP server, but no WebSocket endpoint at this URL.
                return (
                    "handshake",
                    f"{where}: it answered {status} instead of switching protocols: "
                    "the URL is not a WebSocket endpoint (check the host, port and path)",
                )
            body = _body_excerpt(response.body)
            return (
                "handshake",
                f"{where}: the server rejected the handshake with {status}" + (f": {body}" if body else ""),
            )
        if isinstance(exc, InvalidHandshake):
            return "handshake", f"{where}: invalid handshake: {redact.text(str(exc))}"
        if isinstance(exc, socket.gaierror):
            host = parse_uri(self.url).host
            return "connect", f"{where}: cannot resolve host {host!r} ({exc.strerror})"
        if isinstance(exc, ConnectionRefusedError):
            return "connect", f"{where}: connection refused, nothing is listening there"
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            timeout = self._connect_options["open_timeout"]
            return "connect", f"{where}: no answer within open_timeout={timeout}s"
        return "connect", f"{where}: {redact.text(describe(exc))}"

    def _open_failure(self) -> Exception:
        if self.last_error is not None:
            _, message = self._connect_failure(self.last_error)
            error = ConnectError(message)
            error.__cause__ = self.last_error
            return error
        return super()._open_failure()

    @property
    def response_headers(self) -> dict[str, str]:
        """The headers of the server's handshake response (empty before the first open)."""
        wire = self._ws
        if wire is None or wire.response is None:
            return {}
        return dict(wire.response.headers.raw_items())

    def __getitem__(self, index: object) -> Any:
        # In Python on purpose: compiled by mypyc, BaseConnection's is only a subscript, not what 'for' falls back on.
        not_iterable(self)

    def __repr__(self) -> str:
        return f"<WebSocket {self.id} {redact.url(self.url)} {self._state.name}>"

    # -- making another like it ----------------------------------------------

    @property
    def options(self) -> dict[str, Any]:
        """
        The options this client was made with, as keyword arguments of :class:`WebSocket` (a new dict each time).

        ``nbws.WebSocket(ws.url, **ws.options)`` makes a client like this one
        (without its plugins and handlers: :meth:`clone` copies those too).
        ``reconnect`` is the current policy (see :attr:`reconnect`).
        """
        settings = self._connect_options
        return {
            "protocols": list(self._protocols) or None,
            "headers": list(self._headers) or None,
            "origin": settings["origin"],
            "reconnect": self._reconnect,
            "open_timeout": settings["open_timeout"],
            "ping_interval": settings["ping_interval"],
            "ping_timeout": settings["ping_timeout"],
            "close_timeout": settings["close_timeout"],
            "max_size": settings["max_size"],
            "max_buffered": self._max_buffered,
            "recv_buffer": self._recv_buffer,
            "recv_buffer_bytes": self._recv_buffer_bytes,
            "compression": settings["compression"],
            "ssl": settings["ssl"],
            "parent_plugins": self._parent_plugins,
            "hook_timeout": self._hook_timeout,
            "transport": self._transport,
        }

    def clone(self, url: str | None = None, **changes: Any) -> WebSocket:
        """
        Connect a new client like this one and return it: a closed WebSocket cannot be reopened, as in the browser.

        The new client has the same :attr:`options` (``changes`` override
        them, such as ``reconnect=None``), the plugins of this client's own
        registry (enabled or not, under the same names; those nbws adds
        itself, such as a panel's, excepted), and the same ``on*`` handlers
        and ``on()`` listeners, all in place before it starts connecting
        (so they see its first ``nbws_open`` and ``open`` event, whatever
        thread runs its loop). It connects to ``url`` (default: this
        client's URL). The client panel's Connect uses it after a close.

        Raises:
            TypeError: for an option :class:`WebSocket` does not take.
            nbws.InvalidURLError, ValueError: as :class:`WebSocket` does.
        """
        options = self.options
        unknown = set(changes) - set(options)
        if unknown:
            raise TypeError(f"clone() got options WebSocket does not take: {', '.join(sorted(unknown))}")
        options.update(changes)
        # Set up unconnected, given its plugins and handlers, and only then connecting: on another
        # thread's loop it could otherwise open (nbws_open, onopen) before they are there.
        token = _unstarted.set(True)
        try:
            ws = WebSocket(self.url if url is None else url, **options)
        finally:
            _unstarted.reset(token)
        ws.onopen, ws.onmessage, ws.onclose, ws.onerror = self.onopen, self.onmessage, self.onclose, self.onerror
        for name in self._event_names:
            for fn in self._listeners.get(name):
                ws.on(name, fn)
        registry = self._plugins
        if registry is not None:
            for info in registry:
                if not info.internal:
                    ws.plugins.register(info.plugin, info.name, enabled=info.enabled)
        ws._begin()
        return ws

    # -- widgets --------------------------------------------------------------

    def panel(self) -> Any:
        """
        The :class:`nbws.ClientPanel` showing this client, made on first use; a cell ending with ``ws`` shows it.

        The panel is found through :mod:`nbws.views` (the core never imports
        a widget) and kept by the widgets layer until it is closed, not on the client.
        """
        return views.view(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self)

    async def __aenter__(self) -> WebSocket:
        await self.opened()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.closed()
