"""
The server: :class:`Server`, shaped like Node's ``ws`` ``WebSocketServer``.

It fires ``listening``, ``connection``, ``message``, ``close`` and ``error``
events; each client is a :class:`Connection` with ``send()``, ``close()`` and
events of its own. ``start()`` binds the port at once, so a port in use fails
right there and ``server.url`` is known before the first ``await``.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import errno
import hmac
import http
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal, cast
from urllib.parse import parse_qsl

from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.http11 import SERVER
from websockets.http11 import Request as _WsRequest
from websockets.http11 import Response as _WsResponse
from websockets.protocol import State as _WsState
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from . import views
from ._connection import (
    DEFAULT_MAX_BUFFERED,
    DEFAULT_RECV_BUFFER,
    DEFAULT_RECV_BUFFER_BYTES,
    OPEN,
    BaseConnection,
    check_recv_buffer_bytes,
    check_timeout,
    coerce_data,
    not_iterable,
)
from ._events import ErrorEvent, Listeners, call_listener, describe
from ._hooks import Hooks, StuckHook, fault_message, run, run_all
from ._live import from_a_cell, listening_on, track
from ._loop import Pending, detached, get_loop, running_loop
from ._plugins import PluginRegistry, default_plugins
from ._plugins import plugins as global_plugins
from ._protocol import Wire
from .client import _check_header, _check_protocols
from .exceptions import BufferFullError, InvalidStateError, PluginError, ServerError

__all__ = ["Connection", "Request", "Server"]

# The handshake Server._answer is accepting (accept() is synchronous), for _select_subprotocol.
_answering: contextvars.ContextVar[tuple[ServerProtocol, Request] | None] = contextvars.ContextVar(
    "nbws_answering", default=None
)


def _select_subprotocol(proto: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """The subprotocol for ``proto.accept()``: the one a hook set on the request being answered, if any."""
    # Not a closure over the wire, which the protocol would keep (a cycle that outlives the connection).
    answering = _answering.get()
    if answering is not None and answering[0] is proto and answering[1].subprotocol is not None:
        return Subprotocol(answering[1].subprotocol)  # checked against the offer when it was set
    return ServerProtocol.select_subprotocol(proto, offered)


logger = logging.getLogger("nbws")

_WS_OPEN = _WsState.OPEN

# The default plugin that checks a server's path, origins and token (nbws.builtins.handshake).
_GUARD = "nbws.handshake"

# What a socket over max_connections gets before it is closed (as nginx's limit_conn answers).
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 32\r\n"
    b"Connection: close\r\nRetry-After: 1\r\n\r\ntoo many connections, try later\n"
)


def _phrase(status: int) -> str:
    """The reason phrase of an HTTP status, or "Rejected" for one without a registered name (such as 430)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Rejected"


class Request:
    """
    A client's opening handshake, as the server received it.

    Attributes:
        path: The path, without the query string.
        query: The query parameters, first value of each.
        headers: The HTTP headers (case-insensitive look-up).
        remote_address: The client's (host, port).
        rejected: ``(status, reason)`` once :meth:`reject` was called, else None.
        response_headers: ``(name, value)`` pairs a ``nbws_handshake`` hook
            appends to add them to the handshake response.
    """

    __slots__ = ("_raw", "_subprotocol", "headers", "path", "query", "rejected", "remote_address", "response_headers")

    def __init__(self, raw: _WsRequest, remote_address: tuple[str, int] | None) -> None:
        self._raw = raw
        # The request target is a path and a query (RFC 7230 section 5.3.1), never a URL:
        # urlsplit() would read "//host/x" as a host and the path "/x".
        path, _, query = raw.path.partition("?")
        self.path = path
        self.query: dict[str, str] = {}
        for name, value in parse_qsl(query):
            self.query.setdefault(name, value)  # the first value of each, as documented
        self.headers = raw.headers
        self.remote_address = remote_address
        self.rejected: tuple[int, str] | None = None
        self.response_headers: list[tuple[str, str]] = []
        self._subprotocol: str | None = None

    @property
    def target(self) -> str:
        """The request target as the client sent it: the path and the query string, still percent-encoded."""
        return self._raw.path

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header, which browsers always send."""
        return self.headers.get("Origin")

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered."""
        return [p.strip() for value in self.headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",")]

    @property
    def subprotocol(self) -> str | None:
        """
        The subprotocol to accept, chosen by a ``nbws_handshake`` hook (None: the server's own choice).

        It must be one the client offered (see :attr:`subprotocols`); it
        overrides the server's ``protocols`` preference.
        """
        return self._subprotocol

    @subprotocol.setter
    def subprotocol(self, value: str | None) -> None:
        if value is not None and value not in self.subprotocols:
            raise ValueError(f"subprotocol {value!r} was not offered by the client (it offered {self.subprotocols!r})")
        self._subprotocol = value

    def reject(self, status: int = 403, reason: str = "") -> None:
        """Refuse this connection with an HTTP ``status`` and a reason text."""
        status = int(status)
        if not 400 <= status <= 599:
            raise ValueError(f"reject() takes an HTTP error status from 400 to 599, not {status}")
        self.rejected = (status, reason or _phrase(status))

    def __repr__(self) -> str:
        return f"<Request {self.path} from {self.remote_address}>"


class Connection(BaseConnection):
    """
    One client connected to a :class:`Server`, like a ``ws`` socket in Node.

    Its events are ``"message"`` (a :class:`~nbws.Message`), ``"close"`` (a
    :class:`~nbws.CloseEvent`) and ``"error"`` (an :class:`~nbws.ErrorEvent`);
    the server's listeners see them too, with the connection first.

    Attributes:
        server: The :class:`Server` it belongs to.
        request: The :class:`Request` it opened with.
    """

    role: ClassVar[Literal["server"]] = "server"
    _id_prefix = "s"
    endpoint_close_codes: ClassVar[bool] = True

    def __init__(self, server: Server, wire: Wire, request: Request) -> None:
        super().__init__(
            server._loop,
            parent_registry=server.plugins,
            max_buffered=server._max_buffered,
            recv_buffer=server._recv_buffer,
            recv_buffer_bytes=server._recv_buffer_bytes,
            close_timeout=server._options["close_timeout"],
            hook_timeout=server._hook_timeout,
            shared_hooks=server._hooks,
        )
        self.server = server
        self.request = request
        self._ws = wire
        wire.owner = self
        self._parent_message_listeners = server._listeners.get("message")  # the same list for the server's life

    def _emit_to_parent(self, name: str, event: Any) -> None:
        if name != "open":
            # Server._emit(name, self, event, on_error=self._handler_failed); _deliver calls the message listeners itself.
            listeners = self.server._listeners.get(name)
            if listeners:
                failed = self._handler_failed
                for fn in listeners:
                    call_listener(fn, (self, event), failed)

    def _has_message_listeners(self) -> bool:
        return super()._has_message_listeners() or bool(self.server._listeners.get("message"))

    def _emit_error_to_parent(self, event: ErrorEvent, on_error: Callable[[BaseException, Any], None]) -> int:
        listeners = self.server._listeners.get("error")
        for fn in listeners:
            call_listener(fn, (self, event), on_error)
        return len(listeners)

    def __getitem__(self, index: object) -> Any:
        # In Python on purpose: compiled by mypyc, BaseConnection's is only a subscript, not what 'for' falls back on.
        not_iterable(self)

    def __repr__(self) -> str:
        return f"<Connection {self.id} from {self.remote_address} {self._state.name}>"

    async def _serve(self) -> None:
        """The handshake succeeded: open, tell the server's listeners, then deliver messages."""
        server = self.server
        wire = self._ws
        assert wire is not None
        self._state = OPEN
        server._clients[self.id] = self
        try:
            await self._opened(wire)
            server._emit("connection", self, on_error=self._handler_failed)
        finally:
            ended = self._ended
            if ended is None or ended.done():
                self._ended_now(None)
            else:
                ended.add_done_callback(self._ended_now)
            wire.attach(self)

    def _ended_now(self, _: object) -> None:
        """This connection's only opening ended: whatever happened, one close event, then release everyone."""
        if self._ws is not None and not self._ws.lost.done():
            self._ws.abort()
        self._close_now()
        self.server._clients.pop(self.id, None)
        self._finish()


class Server:
    """
    A WebSocket server running in this process, like Node's ``new WebSocketServer()``.

    Create it, add listeners, then ``start()``: in a notebook cell no ``await``
    is needed (``await server.start()`` waits until it accepts connections);
    in a script, ``server.start().wait()``.

    Args:
        host: The interface to bind; loopback by default, so nothing outside
            this machine can connect unless you say so (``"0.0.0.0"``).
        port: The TCP port; 0 picks a free one (see ``server.port``).
        path: Accept only this path (others get HTTP 404); None accepts any.
        origins: Accepted ``Origin`` header values (others get HTTP 403);
            include None to accept clients that send no Origin. None: any.
        token: A secret clients must present as ``?token=...`` in the URL or
            ``Authorization: Bearer ...`` (others get HTTP 401).
        protocols: Subprotocols the server supports, in order of preference.
        max_size: Largest incoming message in bytes; a larger one closes that
            connection alone with 1009. None: no limit.
        max_buffered: Bytes that may wait to be sent to one client before
            ``send()`` raises :class:`~nbws.BufferFullError`: a slow reader
            cannot make the server buffer without bound.
        recv_buffer: Messages kept per connection for ``recv()``.
        recv_buffer_bytes: Bytes of messages kept per connection for
            ``recv()`` (4 MiB), the oldest discarded first: a client flooding
            a server whose handlers take the messages costs it no more.
        ping_interval: Seconds between keepalive pings (None: no pings).
        ping_timeout: Seconds to wait for a pong before closing (None: forever).
        close_timeout: Seconds to wait for the closing handshake to complete
            before dropping the TCP connection (None: forever).
        compression: ``"deflate"`` (the default) or None.
        plugins: Plugins for this server and its connections alone.
        hook_timeout: Seconds an awaited (``async def``) hook implementation
            may take before it is cancelled and reported by name (None, the
            default: no limit; hooks are still cancelled when their
            connection closes, and ``stop()`` gives them ``close_timeout``).
        handshake_timeout: Seconds a client has, once connected, to complete
            the opening handshake (the HTTP request and the hooks that decide
            on it); after that its socket is closed.
        max_connections: The most sockets served at once, handshakes under
            way included (None: no limit). When it is reached a new socket
            gets HTTP 503 and is closed at once, without reading its request;
            clients get in again as others leave.
    """

    _event_names: ClassVar[tuple[str, ...]] = ("listening", "connection", "message", "close", "error")

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str | None = None,
        origins: Sequence[str | None] | None = None,
        token: str | None = None,
        protocols: Sequence[str] | None = None,
        max_size: int | None = 2**20,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        recv_buffer: int = DEFAULT_RECV_BUFFER,
        recv_buffer_bytes: int = DEFAULT_RECV_BUFFER_BYTES,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        compression: Literal["deflate"] | None = "deflate",
        plugins: Iterable[object] = (),
        hook_timeout: float | None = None,
        handshake_timeout: float | None = 10,
        max_connections: int | None = None,
    ) -> None:
        check_timeout("hook_timeout", hook_timeout)
        check_timeout("handshake_timeout", handshake_timeout)
        check_timeout("close_timeout", close_timeout)
        if max_connections is not None and (
            isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1
        ):
            raise ValueError(f"max_connections must be None or a positive int, not {max_connections!r}")
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty str such as '127.0.0.1', not {host!r}")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int from 0 to 65535 (0 picks a free port), not {port!r}")
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise ValueError(f"path must start with '/', not {path!r}")
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty str")
        if origins is not None and (
            isinstance(origins, str) or not all(o is None or isinstance(o, str) for o in origins)
        ):
            raise TypeError("origins must be a list of str (and None to accept clients without Origin)")
        if compression not in ("deflate", None):
            raise ValueError(f"compression must be 'deflate' or None, not {compression!r}")
        if not isinstance(max_buffered, int) or max_buffered < 1:
            raise ValueError(f"max_buffered must be a positive number of bytes, not {max_buffered!r}")
        if not isinstance(recv_buffer, int) or recv_buffer < 1:
            raise ValueError(f"recv_buffer must be a positive number of messages, not {recv_buffer!r}")
        self.host = host
        self._requested_port = port
        self.path = path
        self.origins = list(origins) if origins is not None else None
        self._token = token
        self.protocols = _check_protocols(protocols)
        self._max_buffered = max_buffered
        self._recv_buffer = recv_buffer
        check_recv_buffer_bytes(recv_buffer_bytes)
        self._recv_buffer_bytes = recv_buffer_bytes
        self._hook_timeout = hook_timeout
        self.max_connections = max_connections
        self._sockets = 0
        self._refused = 0
        self._handshakes: set[Wire] = set()
        self._handshake_tasks: set[asyncio.Task[None]] = set()
        self._options: dict[str, Any] = {
            "open_timeout": handshake_timeout,
            "max_size": max_size,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": close_timeout,
            "compression": compression,
        }
        self._loop = get_loop()
        self.plugins = PluginRegistry()
        for plugin in plugins:
            self.plugins.register(plugin)
        self._hooks = Hooks(self.plugins, global_plugins, default_plugins)
        self._listeners = Listeners(self._event_names)
        self._clients: dict[str, Connection] = {}
        self._sock: socket.socket | None = None
        self._server: Any = None
        self._serving: Pending[Server] | None = None
        self._stopping: Pending[None] | None = None
        self.port: int | None = None
        """The port it listens on, known once ``start()`` returned."""
        track(self)

    # -- listeners ----------------------------------------------------------

    def on(self, name: str, fn: Callable[..., Any] | None = None) -> Any:
        """
        Add a listener for event ``name``; usable as a decorator. Returns ``fn``.

        - ``"listening"``: ``fn(server)`` once it accepts connections.
        - ``"connection"``: ``fn(conn)`` for each new :class:`Connection`.
        - ``"message"``: ``fn(conn, message)`` for each received message.
        - ``"close"``: ``fn(conn, close_event)`` when a connection closes.
        - ``"error"``: ``fn(conn, error_event)``; ``conn`` is None for an
          error of the server itself.

        A listener may be ``async def``.
        """
        return self._listeners.on(name, fn)

    def off(self, name: str, fn: Callable[..., Any] | None = None) -> None:
        """Remove listener ``fn`` of event ``name``, or all of them if ``fn`` is None."""
        self._listeners.remove(name, fn)

    def _emit(self, name: str, *args: Any, on_error: Callable[[BaseException, Any], None] | None = None) -> None:
        """Call the listeners of ``name``; a listener's fault goes to ``on_error`` (the connection's, if any)."""
        for fn in self._listeners.get(name):
            call_listener(fn, args, on_error or self._handler_failed)

    def _handler_failed(self, error: BaseException, fn: Callable[..., Any]) -> None:
        name = getattr(fn, "__qualname__", repr(fn))
        self._report(None, error, "handler", f"server handler {name} raised {describe(error)}")

    def report_error(
        self,
        error: BaseException,
        phase: str,
        message: str | None = None,
        *,
        conn: BaseConnection | None = None,
        plugin: str | None = None,
    ) -> None:
        """
        Report an error the way the server reports its own; never raise.

        For code built on a server (:class:`nbws.Relay`, an application)
        whose errors users, panels, recorders and plugins should see as they
        see the server's: the ``nbws_error`` hooks get it, then the ``error``
        listeners (an :class:`~nbws.ErrorEvent` whose ``target`` is the
        server), then ``nbws_error_reported``, where the default plugin
        ``"nbws.errors"`` logs it once: a warning if no listener took it,
        else a debug line.

        Args:
            error: The exception.
            phase: Where it happened, one of the phases of :class:`~nbws.ErrorEvent`
                (``"handshake"``, ``"send"``, ``"handler"``...).
            message: What went wrong, in words (default: the error described).
            conn: The connection it happened on, if any: it is reported there
                instead (its hooks and its listeners; a connection of this
                server passes it on to the server's listeners).
            plugin: For phase ``"plugin"``, the name of the plugin at fault.
        """
        self._report(conn, error, phase, message, plugin)

    def _report(
        self,
        conn: BaseConnection | None,
        error: BaseException,
        phase: str,
        message: str | None = None,
        plugin: str | None = None,
    ) -> None:
        """Report a server-level error (no connection) through nbws_error, the log and the error event."""
        if conn is not None:
            conn._report(error, phase, message, plugin)
            return
        event = ErrorEvent(self, error, phase, message, plugin)
        calls = self._hooks.calls("nbws_error")
        if calls:
            # The same runner as on a connection: an async implementation is awaited in a task.
            run_all("nbws_error", calls, (None, error, phase, plugin))

        def log_only(exc: BaseException, fn: Callable[..., Any]) -> None:
            logger.error("server error handler %r raised", fn, exc_info=exc)

        listeners = self._listeners.get("error")
        for fn in listeners:
            call_listener(fn, (None, event), log_only)
        # The default plugin "nbws.errors" logs unhandled errors as warnings, handled ones as debug lines.
        calls = self._hooks.calls("nbws_error_reported")
        if calls:
            run_all("nbws_error_reported", calls, (event, bool(listeners)))

    async def _call_hooks(
        self,
        hook: str,
        args: tuple[Any, ...],
        until: Callable[[], bool] | None = None,
        fail: Callable[[str, str, BaseException], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Call every enabled implementation of ``hook`` (until ``until()`` is true); isolate and report faults."""
        calls = self._hooks.calls(hook)
        if calls:
            rest = run(hook, calls, args, fail or self._plugin_failed, until=until)
            if rest is not None:
                await rest.finish(None, timeout or self._hook_timeout)

    def _plugin_failed(self, hook: str, name: str, exc: BaseException) -> None:
        self._report(None, exc, "plugin", fault_message(hook, name, exc), name)

    # -- state ----------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server and its connections run on (read-only)."""
        return self._loop

    @property
    def listening(self) -> bool:
        """True while the server accepts connections."""
        return self._server is not None and self._server.is_serving()

    @property
    def url(self) -> str:
        """The ``ws://`` URL clients connect to (with the path, if one is set)."""
        if self.port is None:
            raise InvalidStateError("the server has no port yet: call server.start() first")
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self.port}{self.path or '/'}"

    @property
    def clients(self) -> list[Connection]:
        """The connected clients, oldest first."""
        return list(self._clients.values())

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port is not None else self.host
        state = "listening" if self.listening else "stopped"
        return f"<Server {where} {state} clients={len(self._clients)}>"

    def panel(self) -> Any:
        """
        The :class:`nbws.ServerPanel` showing this server, made on first use; a cell ending with ``server`` shows it.

        The panel is found through :mod:`nbws.views` (the core never imports
        a widget) and kept by the widgets layer until it is closed, not on the server.
        """
        return views.view(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self)

    # -- starting and stopping ------------------------------------------------

    @property
    def requested_port(self) -> int:
        """The port asked for (0: any free one); :attr:`port` is the one bound, once started."""
        return self._requested_port

    def start(self, *, host: str | None = None, port: int | None = None) -> Pending[Server]:
        """
        Bind the port now and start accepting connections; return at once.

        Await the result (or ``.wait()`` on it) to know that the server
        accepts connections. Starting a started server does nothing.

        Args:
            host: Listen on this interface from now on instead of :attr:`host`.
            port: Listen on this port from now on instead of
                :attr:`requested_port` (0 picks a free one): a stopped server
                can start again elsewhere, as the server panel's Start does.
                If that address cannot be bound, the server stays stopped
                with the host and port it had.

        Raises:
            nbws.ServerError: if the port is in use or the host cannot be
                bound (the message names the address tried; the error is
                also reported, phase ``"listen"``).
            nbws.InvalidStateError: for another ``host`` or ``port`` while it runs.
            TypeError, ValueError: for a ``host`` or ``port`` the constructor would refuse.
        """
        running = self._serving is not None and (self._stopping is None or not self._stopping.done())
        # Where it was: a bind that fails leaves the server there, so that url, repr and the next
        # start() never show or try an address it did not get.
        previous = (self.host, self._requested_port, self._stopping)
        if host is not None or port is not None:
            if host is not None and (not isinstance(host, str) or not host):
                raise TypeError(f"host must be a non-empty str such as '127.0.0.1', not {host!r}")
            if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535):
                raise ValueError(f"port must be an int from 0 to 65535 (0 picks a free port), not {port!r}")
            moved = (host is not None and host != self.host) or (port is not None and port != self._requested_port)
            if running and moved:
                raise InvalidStateError("the server is running: stop() it before starting it on another host or port")
            if host is not None:
                self.host = host
            if port is not None:
                self._requested_port = port
        if running:
            assert self._serving is not None
            return self._serving
        self._stopping = None
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            # A name no socket can take fails here, not in create_server(), which leaks its socket then.
            if "\x00" in self.host:
                raise ValueError("a host name cannot contain a NUL character")
            self.host.encode("idna")  # UnicodeError (a ValueError) for one that cannot be encoded
            try:
                sock = socket.create_server((self.host, self._requested_port), family=family)
            except OSError as exc:
                # A re-run notebook cell: the port is held by an earlier Server of this process.
                if exc.errno != errno.EADDRINUSE or not self._replace_orphan():
                    raise
                sock = socket.create_server((self.host, self._requested_port), family=family)
        except (OSError, ValueError) as exc:
            error = self._bind_error(exc)  # names the address it tried
            self.host, self._requested_port, self._stopping = previous
            self._report(None, error, "listen", str(error))
            raise error from exc
        except BaseException:
            self.host, self._requested_port, self._stopping = previous
            raise
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        # Detached from the cell that started it: the connections' handlers print where the user looks.
        self._serving = detached(Pending, self._loop, self._serve(sock), f"starting server on port {self.port}")
        return self._serving

    def _replace_orphan(self) -> bool:
        """
        Stop the earlier server of this process that holds our explicit port, with a notice; return whether one did.

        Re-running ``server = nbws.Server(port=8765); server.start()`` must not
        fail against the user's own server of the previous run, which no
        variable may name any more. Its clients are closed with 1001.
        """
        old = listening_on(self.host, self._requested_port) if self._requested_port else None
        if old is None or old is self or not (from_a_cell(old) and from_a_cell(self)):
            return False
        count = len(old.clients)
        old._release_port()
        old.stop()
        logger.warning(
            "nbws: stopped the earlier server on %s:%d (%d client(s) closed with 1001, going away) "
            "to start this one; nbws.endpoints() lists what is still running",
            self.host,
            self._requested_port,
            count,
        )
        return True

    def _release_port(self) -> None:
        """Close the listening socket now, so that the port can be bound again before stop() finishes."""
        server = self._server
        if server is not None:
            server.close()  # the asyncio server: closes its listening sockets at once (stop() still ends the clients)
        elif self._sock is not None:
            self._sock.close()

    def _bind_error(self, exc: OSError | ValueError) -> ServerError:
        port = self._requested_port
        if not isinstance(exc, OSError):
            return ServerError(f"cannot listen on host {self.host!r}: not a valid host name ({exc})")
        holder = listening_on(self.host, port) if exc.errno == errno.EADDRINUSE else None
        if holder is not None:
            return ServerError(
                f"port {port} on {self.host} is already in use by {holder!r} of this process: "
                "stop it with its .stop() (nbws.endpoints() lists them all, nbws.close_all() closes them), "
                "or use another port"
            )
        if exc.errno == errno.EADDRINUSE:
            return ServerError(
                f"port {port} on {self.host} is already in use: stop what uses it, choose another port, or use port=0 for a free one"
            )
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
            return ServerError(f"cannot listen on host {self.host!r}: it is not an address of this machine")
        if exc.errno == errno.EACCES:
            return ServerError(
                f"no permission to listen on port {port}: ports below 1024 need privileges, use a higher one"
            )
        return ServerError(f"cannot listen on {self.host}:{port}: {exc.strerror or exc}")

    async def _serve(self, sock: socket.socket) -> Server:
        # A Wire is an asyncio protocol by its methods, not by its class (see nbws._protocol).
        self._server = await self._loop.create_server(lambda: cast(asyncio.Protocol, self._wire()), sock=sock)
        await self._call_hooks("nbws_server_start", (self,))
        self._emit("listening", self)
        return self

    def _wire(self) -> Wire:
        """A Wire for a new socket, driving websockets' sans-I/O server protocol with this server's settings."""
        options = self._options
        proto = ServerProtocol(
            extensions=enable_server_permessage_deflate(None) if options["compression"] == "deflate" else None,
            subprotocols=[Subprotocol(p) for p in self.protocols] or None,
            select_subprotocol=_select_subprotocol,
            max_size=options["max_size"],
        )
        wire = Wire(
            proto,
            self._loop,
            ping_interval=options["ping_interval"],
            ping_timeout=options["ping_timeout"],
            close_timeout=options["close_timeout"],
            on_made=self._wire_made,
            on_gone=self._wire_gone,
        )
        return wire

    def _wire_made(self, wire: Wire) -> bool:
        """A socket was accepted: refuse it at once over ``max_connections``, else start its handshake."""
        transport = wire.transport
        assert transport is not None
        limit = self.max_connections
        if limit is not None and self._sockets >= limit:
            # Refused before reading anything: a flood of half-open handshakes cannot hold more
            # than max_connections sockets (nginx's limit_conn answers 503 too).
            transport.write(_BUSY)
            transport.close()
            self._refused += 1
            return False
        self._sockets += 1
        wire.counted = True
        self._handshakes.add(wire)
        task = detached(self._loop.create_task, self._handshake(wire))
        self._handshake_tasks.add(task)
        task.add_done_callback(self._handshake_tasks.discard)
        return True

    def _wire_gone(self, wire: Wire) -> None:
        if wire.counted:
            wire.counted = False
            self._sockets -= 1
        self._handshakes.discard(wire)

    async def _handshake(self, wire: Wire) -> None:
        """Read the opening handshake, decide on it (plugins included), answer, and open the connection."""
        timeout = self._options["open_timeout"]
        try:
            if timeout is None:
                request = await self._answer(wire)
            else:
                request = await asyncio.wait_for(self._answer(wire), timeout)
        except asyncio.TimeoutError:
            wire.abort()  # too slow: a client that never finishes its handshake loses its socket
            return
        except Exception as exc:
            self._report(None, exc, "handshake", f"handshake failed: {describe(exc)}")
            wire.abort()
            return
        finally:
            self._handshakes.discard(wire)
        if request is None:
            return
        conn = Connection(self, wire, request)
        await conn._serve()

    async def _answer(self, wire: Wire) -> Request | None:
        """Answer the handshake; return the Request if the connection is open."""
        proto = wire.proto
        assert isinstance(proto, ServerProtocol)
        raw = await wire.handshake
        if not isinstance(raw, _WsRequest):
            return None  # the connection was lost, or websockets refused a malformed request itself
        transport = wire.transport
        assert transport is not None
        wire._pause_reading()  # nothing more until it is decided
        request = Request(raw, wire.remote_address)
        wire.request = request
        response = await self._process_request(proto, request)
        if response is None:
            answering = _answering.set((proto, request))
            try:
                response = proto.accept(raw)
            finally:
                _answering.reset(answering)
        # Added to refusals too: a relay passes an upstream's WWW-Authenticate or Retry-After on.
        for name, value in request.response_headers:
            try:
                _check_header(name, value)
            except (TypeError, ValueError) as exc:
                self._report(None, exc, "handshake", f"response header {name!r} not sent: {exc}")
            else:
                response.headers[name] = value
        response.headers.setdefault("Server", SERVER)
        proto.send_response(response)
        wire.flush()
        if proto.state is not _WS_OPEN:
            transport.close()
            return None
        return request  # reading resumes once the connection is attached

    async def _process_request(self, proto: ServerProtocol, request: Request) -> _WsResponse | None:
        # The path, origins and token are checked by the default plugin "nbws.handshake" (nbws.builtins).
        faults: list[tuple[str, BaseException]] = []

        def refuse(hook: str, name: str, exc: BaseException) -> None:
            # A hook that decides access and fails must not let the client in (fail closed).
            faults.append((name, exc))
            message = fault_message(hook, name, exc) + "; the handshake was refused with HTTP 500"
            self._report(None, exc, "plugin", message, name)

        await self._call_hooks(
            "nbws_handshake",
            (self, request),
            until=lambda: request.rejected is not None or bool(faults),
            fail=refuse,
        )
        if not faults and request.rejected is None and not self._guarded():
            # path=, origins= or token= with no guard to check them: fail closed, not open.
            exc = PluginError(
                f"this server has {self._checks()} but the default plugin {_GUARD!r} that checks them is "
                "disabled or unregistered; register a replacement under that name"
            )
            refuse("nbws_handshake", _GUARD, exc)
        if faults:
            return proto.reject(http.HTTPStatus.INTERNAL_SERVER_ERROR, "the server failed to check this request\n")
        if request.rejected is not None:
            status, reason = request.rejected
            # websockets only builds responses for registered statuses: build one, then set ours.
            response = proto.reject(http.HTTPStatus.FORBIDDEN, reason + "\n")
            return dataclasses.replace(response, status_code=status, reason_phrase=_phrase(status))
        return None

    def _checks(self) -> str:
        return ", ".join(
            name
            for name, on in (
                ("path=", self.path is not None),
                ("origins=", self.origins is not None),
                ("token=", self.requires_token),
            )
            if on
        )

    def _guarded(self) -> bool:
        """Whether nothing needs checking, or the plugin that checks path, origins and token is on."""
        if not self._checks():
            return True
        return _GUARD in default_plugins and default_plugins.info(_GUARD).enabled

    @property
    def requires_token(self) -> bool:
        """Whether clients must present a token (the server was made with ``token=``)."""
        return self._token is not None

    def check_token(self, given: str | None) -> bool:
        """Whether ``given`` is this server's token, compared in constant time; True for anything without a token."""
        token = self._token
        if token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), token.encode())

    def stop(self, code: int = 1001, reason: str = "") -> Pending[None]:
        """
        Close every client with ``code`` (1001, going away) and free the port; return at once.

        Await the result (or ``.wait()`` on it) to know it is done: every
        client's close event has fired and the port can be bound again.
        """
        if self._stopping is not None:
            return self._stopping
        self._stopping = Pending(self._loop, self._stop(code, reason), "stopping server")
        return self._stopping

    async def _stop(self, code: int, reason: str) -> None:
        if self._serving is not None:
            try:
                await self._serving
            except Exception:
                pass
        server = self._server
        if server is not None:
            server.close()  # no new sockets
        elif self._sock is not None:
            self._sock.close()
        # In-memory connections (nbws.testing) end here too, listening or not.
        for wire in list(self._handshakes):
            wire.abort()
        for conn in self.clients:
            conn._close(code, reason)
        await self._wait_connections_ended()
        self._server = None
        self._sock = None
        self._serving = None
        await self._call_hooks("nbws_server_stop", (self,), timeout=self._options["close_timeout"])

    async def _wait_connections_ended(self) -> None:
        """
        Wait until every connection has ended, for at most about twice ``close_timeout``, whatever plugins do.

        Each connection is closed (and dropped after close_timeout if the
        peer does not answer); hooks still awaited then are abandoned;
        ``nbws_close`` hooks get close_timeout. A connection still not ended
        after that is reported with the plugin it waits for, dropped and
        given its close event.
        """
        close_timeout = self._options["close_timeout"]
        waiting = {conn._done for conn in self.clients} | set(self._handshake_tasks)
        if not waiting:
            return
        limit = None if close_timeout is None else 2 * close_timeout + 0.5
        _, pending = await asyncio.wait(waiting, timeout=limit)
        if not pending:
            return
        for conn in self.clients:
            stuck = conn._awaiting
            what = f"plugin {stuck[1]!r} ({stuck[0]} hook)" if stuck else "its handlers"
            error = StuckHook(f"{conn.id} had not ended {limit:g} s after stop(): waiting for {what}")
            self._report(None, error, "plugin" if stuck else "close", str(error), stuck[1] if stuck else None)
            conn._ended_now(None)
        for task in self._handshake_tasks:
            task.cancel()

    # -- sending ------------------------------------------------------------------

    def broadcast(
        self, data: str | bytes | bytearray | memoryview, exclude: Connection | Iterable[Connection] | None = None
    ) -> int:
        """
        Send ``data`` to every open client except ``exclude``; return how many got it.

        A client that cannot take it (its buffer is full) is reported through
        its error event and skipped; the others still get it. The ``nbws``
        logger gets one warning per broadcast naming the skipped clients,
        not one per copy.
        """
        data = coerce_data(data)
        # Encoded once for every copy (each copy is still framed, and compressed, per connection).
        encoded = data.encode() if isinstance(data, str) else None
        size = len(data) if encoded is None else len(encoded)
        skip = {exclude} if isinstance(exclude, Connection) else set(exclude or ())
        count = 0
        skipped: list[str] = []
        for conn in list(self._clients.values()):
            if conn in skip or conn._state is not OPEN:
                continue
            try:
                conn._send_copy(data, encoded, size)
            except BufferFullError as exc:
                skipped.append(conn.id)
                conn._report(exc, "send", log=False)
            else:
                count += 1
        if skipped:
            shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
            logger.warning(
                "broadcast skipped %d slow client(s) whose send buffer is full (max_buffered=%d): %s",
                len(skipped),
                self._max_buffered,
                shown,
            )
        return count

    # -- context managers -------------------------------------------------------

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __enter__(self) -> Server:
        if running_loop() is self._loop:
            raise InvalidStateError("use 'async with' inside a running event loop")
        return self.start().wait()

    def __exit__(self, *exc_info: object) -> None:
        self.stop().wait()
