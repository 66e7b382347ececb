"""
What a client :class:`~nbws.WebSocket` and a server-side :class:`~nbws.Connection`
share: the ready state, the send and receive pipelines through the plugin
hooks, the events, and the ways to wait.

A connection has no task of its own while it is open. Its
:class:`~nbws._protocol.Wire` hands it each message inside ``data_received``:
the ``nbws_message_receive`` transforms, the handlers and ``recv()``, and the
``nbws_message_received`` observers run right there. Only when a hook returns
an awaitable does the connection hold delivery (the Wire stops reading and
keeps what arrived, in order) and finish in a task. Sending frames the
message at once when nothing is queued before it and no transform is
registered; otherwise it goes through the outbox, in order, the transforms
first; a close request waits its turn behind the messages sent before it, as
in the browser. The frames of a loop turn leave in one write, after which the
``nbws_message_sent`` observers run.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn, cast, overload

from mypy_extensions import mypyc_attr
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.protocol import State as _WsState

from ._events import (
    CloseEvent,
    ErrorEvent,
    Listeners,
    Message,
    OpenEvent,
    _message,
    _now,
    call_listener,
    describe,
    follow_listener,
)
from ._hooks import Hooks, Rest, fault_message, run, run_all
from ._loop import Pending, call_in_loop, running_loop
from ._plugins import PluginRegistry, default_plugins, plugins
from ._protocol import KEEPALIVE_TIMEOUT as _KEEPALIVE_TIMEOUT
from .exceptions import BufferFullError, ConnectionClosed, InvalidStateError, TimeoutError

if TYPE_CHECKING:
    from ._protocol import Wire

__all__ = ["CLOSED", "CLOSING", "CONNECTING", "OPEN", "BaseConnection", "ReadyState"]

logger = logging.getLogger("nbws")


# Codes an endpoint may send (RFC 6455 section 7.4.1 and the IANA registry), beside 3000-4999.
_ENDPOINT_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


class ReadyState(enum.IntEnum):
    """The state of a connection, numbered as the browser's ``WebSocket.readyState``."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


CONNECTING = ReadyState.CONNECTING
OPEN = ReadyState.OPEN
CLOSING = ReadyState.CLOSING
CLOSED = ReadyState.CLOSED

DEFAULT_MAX_BUFFERED = 4 * 2**20
DEFAULT_RECV_BUFFER = 4096
DEFAULT_RECV_BUFFER_BYTES = 4 * 2**20

# One count per kind, so that a notebook's clients read c1, c2, c3 and its server's connections s1, s2.
_ids: dict[str, itertools.count[int]] = {}
_WS_CLOSED = _WsState.CLOSED
_running_loop = asyncio._get_running_loop
_isawaitable = inspect.isawaitable  # the loop running in this thread or None, without raising

# Codes websockets closes with when it fails a connection for what the peer sent (RFC 6455 7.4.1).
_FAIL_CODES = frozenset({1002, 1007, 1009})

# Keep close-hook tasks referenced until they finish (asyncio holds only weak references).
_tasks: set[asyncio.Future[Any]] = set()


class _CloseRequest:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def not_iterable(connection: object) -> NoReturn:
    """Raise the TypeError that explains how to read a connection's messages (``for m in ws``, ``ws[0]``)."""
    raise TypeError(
        f"{type(connection).__name__} messages arrive over time: read them with 'async for message in ws' "
        "(or 'message = await ws.recv()'), not 'for' or [...]"
    )


def coerce_data(data: object) -> str | bytes:
    """Check what ``send()`` was given: str for text, bytes-like for binary."""
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        f"send() takes str (a text message) or bytes, bytearray or memoryview "
        f"(a binary message), not {type(data).__name__}; for JSON use json.dumps(...)"
    )


# The checks of what users pass take `object`: compiled by mypyc, a parameter typed `float` or `int` would
# be checked (or a bool taken as 1) by the compiled code before nbws could say which argument is wrong.


def check_timeout(name: str, value: object) -> float | None:
    """Refuse a timeout that is not None or a positive number of seconds; return it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be None or a positive number of seconds, not {value!r}")
    return value


def _shortest(*timeouts: float | None) -> float | None:
    found = [t for t in timeouts if t is not None]
    return min(found) if found else None


def check_recv_buffer_bytes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"recv_buffer_bytes must be a positive number of bytes, not {value!r}")
    return value


def check_reason(reason: object) -> str:
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be str, not {type(reason).__name__}")
    size = len(reason.encode())
    if size > 123:
        raise ValueError(f"close reason is {size} bytes in UTF-8; it must be at most 123")
    return reason


async def with_timeout(coro: Coroutine[Any, Any, Any], timeout: float | None, what: str) -> Any:
    if timeout is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"{what}: still waiting after {timeout:g} seconds") from None


@mypyc_attr(allow_interpreted_subclasses=True)  # mypyc: client.WebSocket and server.Connection subclass it
class BaseConnection:
    """
    One end of a WebSocket connection, on the client or the server side.

    Attributes:
        id: A short id unique in this process, such as ``"c1"`` or ``"s2"``.
        role: ``"client"`` or ``"server"``.
        plugins: This connection's own :class:`~nbws.PluginRegistry`.
        messages_sent, messages_received: Counts of messages written and delivered.
        bytes_sent, bytes_received: Their payload sizes in bytes.
        close_event: The last :class:`~nbws.CloseEvent`, or None.
    """

    role: ClassVar[Literal["client", "server"]]
    _id_prefix: ClassVar[str]
    _event_names: ClassVar[tuple[str, ...]] = ("open", "message", "close", "error")
    endpoint_close_codes: ClassVar[bool] = False
    """
    Whether ``close()`` also accepts the RFC 6455 codes 1001-1003 and 1007-1014
    that any endpoint may send, besides 1000 and 3000-4999. False (a browser's
    rules) for :class:`~nbws.WebSocket`; True for a server's
    :class:`~nbws.Connection`. A subclass may set it, as the relay's upstream
    leg does to pass on a client's 1001 or 1011.
    """
    awaited_by_owner: ClassVar[bool] = False
    """
    Whether what awaits this connection's ``opened()`` is the code that owns
    it rather than a user. False by default: a failure to connect that an
    awaited ``opened()`` or ``recv()`` raises has reached the user, so the
    default plugin ``"nbws.errors"`` logs it as a debug line only. A subclass
    opened on someone's behalf sets it True (the relay's upstream leg, which
    the relay awaits to answer its client): such a failure then counts as
    handled only if a listener took it, its own or its owner's through
    :meth:`pass_error_on`, and is logged as a warning otherwise.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        plugin_registry: PluginRegistry | None = None,
        parent_registry: PluginRegistry | None = None,
        max_buffered: object = DEFAULT_MAX_BUFFERED,
        recv_buffer: object = DEFAULT_RECV_BUFFER,
        recv_buffer_bytes: object = DEFAULT_RECV_BUFFER_BYTES,
        close_timeout: object = 10,
        hook_timeout: object = None,
        shared_hooks: Hooks | None = None,
    ) -> None:
        # `object`: checked here (see check_timeout); the subclasses' signatures give the types.
        hook_timeout = check_timeout("hook_timeout", hook_timeout)
        close_timeout = check_timeout("close_timeout", close_timeout)
        if not isinstance(max_buffered, int) or max_buffered < 1:
            raise ValueError(f"max_buffered must be a positive number of bytes, not {max_buffered!r}")
        if not isinstance(recv_buffer, int) or recv_buffer < 1:
            raise ValueError(f"recv_buffer must be a positive number of messages, not {recv_buffer!r}")
        recv_buffer_bytes = check_recv_buffer_bytes(recv_buffer_bytes)
        self.id = f"{self._id_prefix}{next(_ids.setdefault(self._id_prefix, itertools.count(1)))}"
        self._loop = loop
        # A connection's own registry is made on first use of .plugins: a pluggy PluginManager costs
        # hundreds of microseconds, which every accepted connection would pay before its first read.
        self._plugins = plugin_registry
        chain = tuple(
            registry
            for registry in (plugin_registry, parent_registry, plugins, default_plugins)
            if registry is not None
        )
        # The call lists of an endpoint with the same registries (a server's, for its connections), until
        # this connection gets its own registry: a thousand connections then share one set of call lists
        # (built once, not once each, and the same few objects read for every copy of a broadcast).
        self._hooks = shared_hooks if shared_hooks is not None and shared_hooks.registries == chain else Hooks(*chain)
        self._calls = self._hooks._cache  # hook name -> call list, for the message path
        self._close_timeout = close_timeout
        self._hook_timeout = hook_timeout
        # Done when hooks still awaited on this connection must be abandoned (see _hook_stop).
        self._hooks_stop: asyncio.Future[str] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._close_emitted = True  # until an opening: no close event is owed
        self._awaiting: tuple[str, str] | None = None  # (hook, plugin) awaited now, if any
        self._listeners = Listeners(self._event_names)
        self._message_listeners = self._listeners.get("message")  # the same list for the connection's life
        # Its server's "message" listeners, called as fn(conn, message): a server-side connection's.
        self._parent_message_listeners: list[Callable[..., Any]] | tuple[()] = ()
        self._state = CONNECTING
        self._ws: Wire | None = None
        self._max_buffered = max_buffered
        self._outbox: deque[Message | _CloseRequest] = deque()
        self._outbox_bytes = 0  # given to send() and not yet handed to the transport
        self._unflushed = 0  # of which framed, waiting for the end of the loop turn
        self._pumping: asyncio.Task[None] | None = None  # the outbox waits for an async transform
        self._pump_handle: asyncio.Handle | None = None
        # Written this turn, for the nbws_message_sent observers: a Message, or a message sent with
        # no transform as three items (its data, seq and time), made into a Message when observed.
        # A burst of sends then keeps no object the garbage collector tracks until the turn ends.
        self._sent: list[Any] = []
        self._observing: asyncio.Task[None] | None = None
        self._holding: asyncio.Task[None] | None = None  # delivery waits for an async hook
        self._ended: asyncio.Future[None] | None = None  # done once an opening has ended
        self._done = loop.create_future()  # done once no more openings will come
        self._send_seq = 0
        self._recv_seq = 0
        # Kept for recv(), at most recv_buffer: a full deque drops its oldest as a new one comes, in C.
        self._inbox: deque[Message] = deque(maxlen=recv_buffer)
        # Their sizes, in the same order: beside them rather than in a (message, size) tuple, so that keeping a message allocates nothing the garbage collector tracks.
        self._inbox_sizes: deque[int] = deque(maxlen=recv_buffer)
        self._inbox_bytes = 0
        self._recv_buffer = recv_buffer
        self._recv_buffer_bytes = recv_buffer_bytes
        self._recv_waiters: deque[asyncio.Future[Message]] = deque()
        self._open_waiters: list[asyncio.Future[None]] = []
        self._close_waiters: list[asyncio.Future[None]] = []
        self._ending_waiters: list[asyncio.Future[str]] | None = None  # see ending()
        self._finished = False
        self._local_close: _CloseRequest | None = None
        self._close_cause: BaseException | None = None
        self.recv_overflow = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.opened_at: float | None = None
        self.close_event: CloseEvent | None = None
        self.onopen: Callable[[OpenEvent], Any] | None = None
        self.onmessage: Callable[[Message], Any] | None = None
        self.onclose: Callable[[CloseEvent], Any] | None = None
        self.onerror: Callable[[ErrorEvent], Any] | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop this connection runs on (read-only)."""
        return self._loop

    @property
    def plugins(self) -> PluginRegistry:
        """This connection's own :class:`~nbws.PluginRegistry`, for plugins that apply to it alone."""
        registry = self._plugins
        if registry is None:
            registry = self._plugins = PluginRegistry()
            # Its own call lists from now on: the hooks it may share with others are left as they are.
            self._hooks = Hooks(registry, *self._hooks.registries)
            self._calls = self._hooks._cache
        return registry

    # -- state --------------------------------------------------------------

    @property
    def ready_state(self) -> ReadyState:
        """``CONNECTING``, ``OPEN``, ``CLOSING`` or ``CLOSED`` (0 to 3)."""
        return self._state

    @property
    def buffered_amount(self) -> int:
        """Bytes given to ``send()`` and not yet handed to the network."""
        wire = self._ws
        return self._outbox_bytes + (wire.buffered if wire is not None else 0)

    @property
    def protocol(self) -> str:
        """The subprotocol the server selected, or ``""``."""
        wire = self._ws
        return (wire.proto.subprotocol or "") if wire is not None else ""

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """The peer's (host, port), once connected."""
        wire = self._ws
        return wire.remote_address if wire is not None else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self._state.name}>"

    # -- listeners ----------------------------------------------------------

    def on(self, name: str, fn: Callable[..., Any] | None = None) -> Any:
        """
        Add a listener for event ``name``; usable as a decorator.

        ``"open"`` listeners get an :class:`~nbws.OpenEvent`, ``"message"``
        ones a :class:`~nbws.Message`, ``"close"`` ones a
        :class:`~nbws.CloseEvent`, ``"error"`` ones an :class:`~nbws.ErrorEvent`.
        A listener may be ``async def``. Returns ``fn``.
        """
        return self._listeners.on(name, fn)

    def off(self, name: str, fn: Callable[..., Any] | None = None) -> None:
        """Remove listener ``fn`` of event ``name``, or all of them if ``fn`` is None."""
        self._listeners.remove(name, fn)

    def _emit(self, name: str, event: Any) -> None:
        handler = getattr(self, "on" + name, None)
        if handler is not None:
            call_listener(handler, (event,), self._handler_failed)
        for fn in self._listeners.get(name):
            call_listener(fn, (event,), self._handler_failed)
        self._emit_to_parent(name, event)

    def _emit_to_parent(self, name: str, event: Any) -> None:
        """Server-side connections also notify their server's listeners."""

    def _has_message_listeners(self) -> bool:
        """Whether a handler takes the messages (``onmessage`` or a ``"message"`` listener)."""
        return self.onmessage is not None or bool(self._listeners.get("message"))

    def _handler_failed(self, error: BaseException, fn: Callable[..., Any]) -> None:
        name = getattr(fn, "__qualname__", repr(fn))
        self._report(error, "handler", message=f"handler {name} raised {describe(error)}")

    # -- errors -------------------------------------------------------------

    def _report(
        self,
        error: BaseException,
        phase: str,
        message: str | None = None,
        plugin: str | None = None,
        *,
        log: bool = True,
    ) -> None:
        """Report an error through nbws_error, the log, and the error event; never raise.

        With ``log=False`` the caller logs it (one line for many, as ``broadcast()`` does).
        """
        event = ErrorEvent(self, error, phase, message, plugin)
        calls = self._hooks.calls("nbws_error")
        if calls:
            run_all("nbws_error", calls, (self, error, phase, plugin))
        # An error handler that raises is logged only: reporting it again could loop.
        handled = self._emit_error_safely(event) or self._a_waiter_will_raise(phase)
        # Like an 'error' event nobody listens to in Node, an unhandled error must be seen: the
        # default plugin "nbws.errors" logs it as a warning (a handled one as a debug line).
        calls = self._hooks.calls("nbws_error_reported")
        if calls:
            run_all("nbws_error_reported", calls, (event, bool(handled) or not log))

    def _a_waiter_will_raise(self, phase: str) -> bool:
        """Whether a failure to connect reaches the user as the exception of an ``opened()`` or ``recv()`` they await (then it is not also logged)."""
        return (
            phase in ("connect", "handshake")
            and not self.awaited_by_owner
            and not self._can_queue()
            and bool(self._open_waiters or self._recv_waiters)
        )

    def _emit_error_safely(self, event: ErrorEvent) -> int:
        """Give an error event to its listeners; return how many there were."""

        def log_only(error: BaseException, fn: Callable[..., Any]) -> None:
            logger.error("error handler %r raised", fn, exc_info=error)

        listeners = self._listeners.get("error")
        handler = self.onerror
        if handler is not None:
            call_listener(handler, (event,), log_only)
        for fn in listeners:
            call_listener(fn, (event,), log_only)
        told = (handler is not None) + len(listeners) + self._emit_error_to_parent(event, log_only)
        try:
            return told + bool(self.pass_error_on(event))
        except Exception as exc:
            log_only(exc, self.pass_error_on)
            return told

    def pass_error_on(self, event: ErrorEvent) -> bool:
        """
        Pass an error of this connection on to what owns it; return whether a listener there took it.

        Called once for every error reported on this connection, after its
        ``onerror`` and ``"error"`` listeners (and a server's connection's
        server's). The default passes it nowhere and returns False. A subclass
        that belongs to something with error listeners of its own overrides
        it, as the relay's upstream leg does to tell the relay's. True counts
        the error as handled: the default plugin ``"nbws.errors"`` logs it as
        a debug line rather than a warning. It is called on the connection's
        loop; an exception it raises is logged, and the error is then handled
        only if a listener took it.
        """
        return False

    def _emit_error_to_parent(self, event: ErrorEvent, on_error: Callable[[BaseException, Any], None]) -> int:
        """Server-side connections also notify their server's error listeners; return how many."""
        return 0

    # -- hooks --------------------------------------------------------------

    async def _call_hooks(self, hook: str, args: tuple[Any, ...], message: Message | None = None) -> None:
        """Call every enabled implementation of ``hook`` with ``args``; isolate and report faults.

        With ``message``, stop once a transform drops it.
        """
        calls = self._hooks.calls(hook)
        if calls:
            rest = run(hook, calls, args, self._plugin_failed, message)
            if rest is not None:
                await self._finish_hooks(rest)

    def _finish_hooks(self, rest: Rest) -> Coroutine[Any, Any, None]:
        """
        Await what is left of a hook call, abandoning an implementation that outlives the connection.

        While the connection is open or closing, a hook still awaited when it
        closes (or when ``close()`` has waited ``close_timeout``) is cancelled
        and reported by name; after the close (``nbws_close``), each may take
        ``close_timeout``. ``hook_timeout``, if set, bounds each one anyway.
        """
        hook = rest.hook

        def waiting(name: str | None) -> None:
            self._awaiting = None if name is None else (hook, name)

        if self._state is CLOSED:
            timeout = _shortest(self._hook_timeout, self._close_timeout)
            return rest.finish(None, timeout, "", waiting)
        return rest.finish(self._hook_stop(), self._hook_timeout, "", waiting)

    def _hook_stop(self) -> asyncio.Future[str]:
        """A future done (with the reason) when hooks awaited on this connection must be abandoned."""
        stop = self._hooks_stop
        if stop is None:
            stop = self._hooks_stop = self._loop.create_future()
            wire = self._ws
            if wire is not None:
                wire.lost.add_done_callback(lambda _: self._abandon_hooks(stop, "the connection closed"))
        return stop

    def _abandon_hooks(self, stop: asyncio.Future[str] | None, why: str) -> None:
        if stop is not None and not stop.done():
            stop.set_result(why)

    def _plugin_failed(self, hook: str, name: str, exc: BaseException) -> None:
        self._report(exc, "plugin", fault_message(hook, name, exc), name)

    # -- sending ------------------------------------------------------------

    def _can_queue(self) -> bool:
        """Whether sends are held while not open (a reconnecting client)."""
        return False

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """
        Send a message: ``str`` as a text frame, bytes-like as a binary frame.

        Returns at once; the message is written in order after those sent
        before it. Plugins see it through ``nbws_message_send`` first.

        Raises:
            TypeError: if ``data`` is neither str nor bytes-like.
            InvalidStateError: if the connection is not open (a client with
                ``reconnect`` holds messages while it reconnects instead).
            BufferFullError: if more than ``max_buffered`` bytes would be waiting.
        """
        if type(data) is not str and type(data) is not bytes:
            data = coerce_data(data)
        wire = self._ws
        if (
            self._state is OPEN
            and not self._outbox
            and wire is not None
            and not wire.paused
            and not self._calls["nbws_message_send"]
            and _running_loop() is self._loop
        ):
            # _reserve() and _enqueue()'s first case, inlined (this runs for every message): nothing
            # waits in the outbox and no transform may change or delay the message: frame it now.
            size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
            waiting = self._outbox_bytes
            if (not waiting or waiting + size <= self._max_buffered) and wire.send(data):
                self._outbox_bytes = waiting + size
                _framed_at_once(self, data, size)
                return
        size = self._reserve(data)
        if _running_loop() is self._loop:
            self._enqueue(data, size, None)
        else:
            self._loop.call_soon_threadsafe(self._enqueue, data, size, None)

    def send_message(self, message: Message) -> None:
        """
        Send a :class:`~nbws.Message` the caller made, with the checks and pipeline of :meth:`send`.

        For senders that mark their messages, such as :func:`nbws.replay`
        (``message.replayed``) or a relay (``message.leg``,
        ``message.injected``); plugins see that very object. The connection
        sets its ``seq`` and ``connection`` (its id).

        Raises:
            TypeError: if ``message`` is not a :class:`~nbws.Message` (``send()`` takes data).
            InvalidStateError: if the connection is not open.
            BufferFullError: if more than ``max_buffered`` bytes would be waiting.
        """
        if not isinstance(cast(object, message), Message):  # cast: the check of what a caller passed
            raise TypeError(f"send_message() takes an nbws.Message, not {type(message).__name__}; use send(data)")
        size = self._reserve(message.data)
        call_in_loop(self._loop, self._enqueue, message.data, size, message)

    def _reserve(self, data: str | bytes, size: int | None = None) -> int:
        """Check that ``data`` (of ``size`` bytes, if known) may be sent now and count it as waiting; return its size."""
        state = self._state
        if state is not OPEN and not self._can_queue():
            raise InvalidStateError(self._not_open_message(state))
        if size is None:
            size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        # One message of any size may go out on an idle connection, as in the browser: the limit
        # bounds what piles up behind a slow reader, not the size of a message.
        if self._outbox_bytes and self._outbox_bytes + size > self._max_buffered:
            raise BufferFullError(
                f"{self.id}: {self._outbox_bytes} bytes are already waiting to be sent and "
                f"max_buffered is {self._max_buffered}; the peer is not reading fast enough"
            )
        self._outbox_bytes += size
        return size

    def _not_open_message(self, state: ReadyState) -> str:
        if state is CONNECTING:
            return f"{self.id} is still connecting: await ws.opened() before send(), or pass reconnect=True to queue messages"
        return f"{self.id} is {state.name.lower()}: messages can only be sent on an open connection"

    def _send_copy(self, data: str | bytes, encoded: bytes | None, size: int) -> None:
        """
        ``send(data)`` for one copy of a broadcast: ``data`` is already checked, ``encoded`` is its
        UTF-8 (text) shared by every copy, ``size`` its size in bytes.
        """
        self._reserve(data, size)
        if _running_loop() is not self._loop:
            self._loop.call_soon_threadsafe(self._enqueue, data, size, None, encoded)
            return
        wire = self._ws
        if (
            self._state is OPEN
            and not self._outbox
            and wire is not None
            and not self._calls["nbws_message_send"]
            and wire.write_now(data, encoded)
        ):
            # As websockets' own broadcast does: framed and handed to the transport at once. It counts
            # as waiting until the end of the loop turn, as a send() does (max_buffered per turn), and
            # the observers see it then, as they see a send()'s.
            _framed_at_once(self, data, size)
            return
        self._enqueue(data, size, None, encoded)

    def _enqueue(self, data: str | bytes, size: int, message: Message | None, encoded: bytes | None = None) -> None:
        wire = self._ws
        if (
            message is None
            and not self._outbox
            and self._state is OPEN
            and wire is not None
            and not wire.paused
            and not self._calls["nbws_message_send"]
            and wire.send(data, encoded)
        ):
            # Framed at once: nothing waits before it and no transform may change or delay it.
            _framed_at_once(self, data, size)
            return
        self._send_seq += 1
        if message is None:
            message = _message(data, "send", self._send_seq, self.id)
        else:
            message.seq = self._send_seq
            message.connection = self.id
        message._size = size
        message._prepared = False
        self._outbox.append(message)
        if self._pump_handle is None:
            # At the next turn, as a writer would: the transforms run after the current handler
            # and the hooks of the message it answers, as they always did.
            self._pump_handle = self._loop.call_soon(self._pump_now)

    def _pump_now(self) -> None:
        self._pump_handle = None
        self._pump()

    def _pump(self) -> None:
        """
        Write what the outbox holds, in order, while the connection is open and the transport takes it.

        A message stays at the head of the outbox until it is written: while
        a transform awaits, while writing is paused (``resume_writing`` pumps
        again), and while a reconnecting client is away.
        """
        if self._pumping is not None:
            return  # a task is finishing an async transform: it pumps again after
        outbox = self._outbox
        wire = self._ws
        while outbox:
            if wire is None or self._state is CONNECTING or self._state is CLOSED or wire.paused:
                return
            item = outbox[0]
            if isinstance(item, _CloseRequest):
                outbox.popleft()
                wire.close(item.code, item.reason)
                return
            size = item._size
            if not item._prepared:
                item._prepared = True
                transforms = self._calls["nbws_message_send"]
                if transforms:
                    rest = run("nbws_message_send", transforms, (self, item), self._plugin_failed, item)
                    if rest is not None:
                        self._pumping = self._loop.create_task(self._pump_after(rest))
                        return
            if item._dropped:
                self._outbox_bytes -= size
            elif wire.send(item._data):
                self._unflushed += size
                self.messages_sent += 1
                self.bytes_sent += size
            else:
                return  # not open any more: kept for a reconnection, or discarded at the end
            outbox.popleft()
            if self._calls["nbws_message_sent"]:
                self._sent.append(item)
                if item._dropped:
                    self._wire_flushed()  # nothing to write: observe it now

    async def _pump_after(self, rest: Rest) -> None:
        try:
            await self._finish_hooks(rest)
        finally:
            self._pumping = None
        self._pump()

    def _wire_flushed(self) -> None:
        """The frames of this loop turn were handed to the transport: they no longer count, observe them."""
        if self._unflushed:
            self._outbox_bytes -= self._unflushed
            self._unflushed = 0
        if self._sent and self._observing is None:
            sent, self._sent = self._sent, []
            self._observe(sent, 0)

    def _observe(self, sent: list[Any], index: int) -> None:
        observers = self._calls["nbws_message_sent"]
        if not observers:
            return
        fail = self._plugin_failed
        observe = observers.observe  # run()'s own fast path for these observers, called directly
        while index < len(sent):
            message = sent[index]
            if isinstance(message, Message):
                index += 1
            else:
                message = _message(message, "send", sent[index + 1], self.id, sent[index + 2])
                index += 3
            rest = (
                observe(fail, self, message)
                if observe is not None
                else run("nbws_message_sent", observers, (self, message), fail)
            )
            if rest is not None:
                self._observing = self._loop.create_task(self._observe_after(rest, sent, index))
                return

    async def _observe_after(self, rest: Rest, sent: list[Any], index: int) -> None:
        try:
            await self._finish_hooks(rest)
        finally:
            self._observing = None
        self._observe_rest(sent, index)

    def _observe_rest(self, sent: list[Any], index: int) -> None:
        # A method of its own: in _observe_after, mypy takes self._observing for None after the
        # `finally`, and mypyc compiles that in (a TypeError when _observe() started another task).
        self._observe(sent, index)
        if self._observing is None and self._sent:
            self._wire_flushed()

    def _wire_resumed(self) -> None:
        """The transport's buffer drained: write what waited."""
        self._pump()

    # -- receiving ----------------------------------------------------------

    def _wire_message(self, data: str | bytes, time: float | None = None) -> None:
        """
        A message arrived (called inside the Wire's ``data_received``): run it through the pipeline now.

        ``time``: when the bytes that completed it were read; None (now) for a frame the Wire kept
        while delivery was held, which is stamped when delivered.
        """
        self._recv_seq = seq = self._recv_seq + 1
        message = _message(data, "receive", seq, self.id, time)
        transforms = self._calls["nbws_message_receive"]
        if transforms:
            rest = run("nbws_message_receive", transforms, (self, message), self._plugin_failed, message)
            if rest is not None:
                self._hold(self._receive_after(rest, message))
                return
        after = _deliver(self, message)
        if after is not None:
            self._hold(self._finish_hooks(after))

    async def _receive_after(self, rest: Rest, message: Message) -> None:
        await self._finish_hooks(rest)
        after = _deliver(self, message)
        if after is not None:
            await self._finish_hooks(after)

    def _hold(self, pending: Coroutine[Any, Any, None]) -> None:
        """A hook returned an awaitable: hold delivery (and reading) until it is done, then go on in order."""
        wire = self._ws
        assert wire is not None
        wire.hold()
        self._holding = self._loop.create_task(self._release_after(pending, wire))

    async def _release_after(self, pending: Coroutine[Any, Any, None], wire: Wire) -> None:
        try:
            await pending
        finally:
            self._holding = None
            wire.release()

    # -- opening and closing ---------------------------------------------------

    async def _opened(self, wire: Wire) -> None:
        """
        The handshake succeeded: become OPEN and tell everyone.

        Messages are delivered once the caller attaches the Wire (after the
        server's ``connection`` event, so that its listeners see the first).
        """
        self._ws = wire
        wire.owner = self
        self._close_cause = None
        self._state = OPEN
        self._close_emitted = False
        self._hooks_stop = None
        self._ended = self._loop.create_future()
        self.opened_at = time.time()
        self._pump()  # what a reconnecting client held meanwhile
        await self._call_hooks("nbws_open", (self,))
        self._emit("open", OpenEvent(self))
        for waiter in self._open_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._open_waiters.clear()

    def _wire_lost(self) -> None:
        """The transport closed and every message that arrived was delivered: end this opening."""
        self._abandon_hooks(self._hooks_stop, "the connection closed")
        task = self._loop.create_task(self._ending())
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    async def _ending(self) -> None:
        """
        Report how the connection ended and give its close event.

        Whatever happens meanwhile (a hook that raised ``CancelledError``, this
        task cancelled), the connection ends with exactly one close event and
        one ``nbws_close``.
        """
        try:
            self._wire_flushed()  # observe what was written just before the end
            code, reason, was_clean, cause = self._close_outcome()
            if cause is not None:
                self._report(cause, "receive", self._protocol_error_message(cause))
            elif code == 1006 and self._local_close is None:
                error = ConnectionClosed(1006, "connection dropped without a closing handshake")
                self._report(error, "receive", f"{self.id}: the connection dropped without a closing handshake")
            await self._closed(code, reason, was_clean)
        finally:
            self._close_now()
            ended = self._ended
            if ended is not None and not ended.done():
                ended.set_result(None)

    def _close_outcome(self) -> tuple[int, str, bool, BaseException | None]:
        """How the connection ended: (code, reason, was_clean, the error that ended it or None)."""
        wire = self._ws
        assert wire is not None
        protocol = wire.proto
        # The error that made this side fail the connection: ours (invalid UTF-8) or the parser's,
        # which websockets chains to its close exception.
        cause = wire.cause or self._close_cause
        if cause is None and protocol.state is _WS_CLOSED:
            cause = protocol.close_exc.__cause__
        if isinstance(cause, EOFError):
            cause = None  # the peer closed TCP without a close frame: a drop, reported below
        sent, rcvd = protocol.close_sent, protocol.close_rcvd
        if sent is not None and rcvd is None and sent.code == 1011 and sent.reason == _KEEPALIVE_TIMEOUT:
            cause = ConnectionClosed(1011, _KEEPALIVE_TIMEOUT)
        if (
            cause is None
            and self._local_close is None
            and rcvd is None
            and sent is not None
            and sent.code in _FAIL_CODES
        ):
            cause = ConnectionClosed(sent.code, sent.reason)
        if cause is not None and rcvd is None and sent is not None:
            # We failed the connection (RFC 6455 7.1.7): report the code we closed with.
            code, reason = sent.code, sent.reason
        else:
            code, reason = protocol.close_code or 1006, protocol.close_reason or ""
        was_clean = code != 1006 and rcvd is not None and sent is not None
        return int(code), reason, was_clean, cause

    def _close_now(self) -> None:
        """
        Give the close event now if it is still owed (the ending was interrupted), without waiting.

        ``nbws_close`` implementations run at once; one that returns an
        awaitable runs on as a task, bounded by ``close_timeout``.
        """
        if self._close_emitted:
            return
        wire = self._ws
        try:
            code, reason, was_clean, _ = self._close_outcome() if wire is not None else (1006, "", False, None)
        except Exception:
            code, reason, was_clean = 1006, "", False
        self._close_emitted = True
        self._state = CLOSED
        event = CloseEvent(self, code, reason, was_clean)
        self.close_event = event
        calls = self._hooks.calls("nbws_close")
        if calls:
            rest = run("nbws_close", calls, (self, code, reason, was_clean), self._plugin_failed)
            if rest is not None:
                timeout = _shortest(self._hook_timeout, self._close_timeout)
                task = self._loop.create_task(rest.finish(None, timeout))
                _tasks.add(task)
                task.add_done_callback(_tasks.discard)
        self._emit("close", event)

    def _protocol_error_message(self, error: BaseException) -> str:
        code = error.code if isinstance(error, ConnectionClosed) else None
        if isinstance(error, PayloadTooBig) or code == 1009:
            return f"{self.id}: message too big, closing with 1009 ({error})"
        if isinstance(error, UnicodeDecodeError) or code == 1007:
            return f"{self.id}: invalid UTF-8 in a text frame, closing with 1007"
        if isinstance(error, ConnectionClosed) and error.reason == _KEEPALIVE_TIMEOUT:
            return f"{self.id}: no pong to a keepalive ping within ping_timeout: closing with 1011"
        if isinstance(error, ProtocolError) or code == 1002:
            return f"{self.id}: protocol error, closing with 1002 ({error})"
        return f"{self.id}: {describe(error)}"

    async def _closed(self, code: int, reason: str, was_clean: bool) -> CloseEvent:
        """The connection (or an attempt to open one) ended: tell everyone, once."""
        # A close() while connecting (CLOSING, as in the browser) still owes its close event.
        if self._close_emitted and self._state is not CONNECTING and self._state is not CLOSING:
            assert self.close_event is not None
            return self.close_event
        self._close_emitted = True
        self._state = CLOSED
        self._tell_ending("closed")
        self._abandon_hooks(self._hooks_stop, "the connection closed")
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        code = int(code)  # websockets gives a CloseCode enum for the codes it knows
        event = CloseEvent(self, code, reason, was_clean)
        self.close_event = event
        await self._call_hooks("nbws_close", (self, code, reason, was_clean))
        self._emit("close", event)
        return event

    def _finish(self) -> None:
        """No more openings will come: release everyone waiting."""
        self._finished = True
        self._state = CLOSED
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if not self._done.done():
            self._done.set_result(None)
        for waiters in (self._open_waiters, self._close_waiters):
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            waiters.clear()
        for receiver in self._recv_waiters:
            if not receiver.done():
                receiver.set_exception(self._open_failure())
        self._recv_waiters.clear()
        unsent = sum(1 for item in self._outbox if isinstance(item, Message))
        if unsent:
            # As in the browser, what was sent on a connection that then closed is discarded.
            logger.info("%s closed with %d message(s) never sent", self.id, unsent)
        self._outbox.clear()
        self._outbox_bytes = 0

    @overload
    def close(self) -> None: ...
    @overload
    def close(self, code: int, reason: str = "") -> None: ...
    def close(self, code: object = 1000, reason: object = "") -> None:
        """
        Start the closing handshake and return at once; ``await closed()`` waits for it.

        Messages sent before ``close()`` are written first. Closing a
        connection that is closing or closed does nothing.

        Raises:
            ValueError: for a close code the browser would refuse (it must be
                1000 or 3000-4999; a server connection also accepts the
                RFC 6455 codes 1001-1003 and 1007-1014), or a reason longer
                than 123 bytes in UTF-8.
        """
        call_in_loop(self._loop, self._close, self._check_close_code(code), check_reason(reason))

    def _check_close_code(self, code: object) -> int:
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError(f"close code must be an int, not {type(code).__name__}")
        if self.endpoint_close_codes:
            if code not in _ENDPOINT_CODES and not 3000 <= code <= 4999:
                raise ValueError(f"close code {code} is not allowed: use 1000-1003, 1007-1014 or 3000-4999")
        elif not (code == 1000 or 3000 <= code <= 4999):
            raise ValueError(f"close code {code} is not allowed: use 1000 or a code from 3000 to 4999")
        return code

    def _close(self, code: int, reason: str) -> None:
        if self._state is CLOSING or self._finished:
            return
        self._local_close = _CloseRequest(code, reason)
        if self._state is OPEN:
            self._state = CLOSING
            self._tell_ending("closing")
            self._outbox.append(self._local_close)
            self._pump()
            if self._close_timeout is not None and self._outbox:
                # A hook holding the messages sent before close() must not hold the close forever.
                self._close_timer = self._loop.call_later(self._close_timeout, self._close_overdue)
        else:
            self._state = CLOSING  # as the browser's close() while CONNECTING does
            self._abort_connecting()

    def _close_overdue(self) -> None:
        """close() waited ``close_timeout`` for the messages before it: abandon the hooks holding them."""
        self._close_timer = None
        if self._state is CLOSING:
            self._abandon_hooks(self._hook_stop(), f"close() had waited close_timeout={self._close_timeout:g}s for it")
            request = self._local_close
            wire = self._ws
            if request is not None and request in self._outbox and wire is not None and self._pumping is None:
                # The peer does not read what was sent before: close now, it is discarded.
                self._outbox.clear()
                self._outbox_bytes = self._unflushed
                wire.close(request.code, request.reason)

    def _abort_connecting(self) -> None:
        """close() while not open: give up connecting (clients override this)."""

    def ending(self) -> asyncio.Future[str]:
        """
        A future of :attr:`loop`, done as soon as this opening of the connection starts to end.

        Its result says how: ``"closing"`` once ``close()`` was called on this
        side (the state is CLOSING; what was sent before is still written
        first), ``"closed"`` once the peer's side closed (the transport is
        gone, even while a hook still holds messages that arrived) or the
        connection is closed. Done at once for a connection that is not open.
        For code that holds messages (as :class:`nbws.Intercept` does): it
        tells without polling when to let them go. Cancel it to stop waiting.
        Call it on the connection's loop.
        """
        future: asyncio.Future[str] = self._loop.create_future()
        wire = self._ws
        if self._state is not OPEN or wire is None or wire.lost.done():
            future.set_result("closing" if self._state is CLOSING else "closed")
            return future
        if self._ending_waiters is None:
            self._ending_waiters = []
        waiters = self._ending_waiters
        waiters.append(future)

        def lost(_lost: asyncio.Future[None]) -> None:
            if not future.done():
                future.set_result("closed")

        def forget(_future: asyncio.Future[str]) -> None:  # done or cancelled: keep nothing for it
            wire.lost.remove_done_callback(lost)
            if future in waiters:
                waiters.remove(future)

        wire.lost.add_done_callback(lost)
        future.add_done_callback(forget)
        return future

    def _tell_ending(self, how: str) -> None:
        waiters, self._ending_waiters = self._ending_waiters, None
        for future in waiters or ():
            if not future.done():
                future.set_result(how)

    # -- waiting --------------------------------------------------------------

    def _pending(
        self, coro: Coroutine[Any, Any, Any], timeout: object, what: str, hint: str | None = None
    ) -> Pending[Any]:
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            coro.close()  # never awaited: closed, so no "never awaited" warning on top of the error
            raise TypeError(f"timeout must be None or a number of seconds, not {timeout!r}")
        return Pending(self._loop, with_timeout(coro, timeout, f"{self.id} {what}"), what, hint)

    def opened(self, timeout: float | None = None) -> Pending[Any]:
        """
        Wait until the connection is open; return this connection.

        Raises:
            nbws.ConnectError: if it closes for good before opening.
            nbws.TimeoutError: after ``timeout`` seconds.
        """
        return self._pending(
            self._wait_open(), timeout, "opening", "write 'await ws.opened()' (or ws.opened().wait() in a script)"
        )

    async def _wait_open(self) -> Any:
        while self._state is not OPEN:
            if self._finished:
                raise self._open_failure()
            waiter = self._loop.create_future()
            self._open_waiters.append(waiter)
            await waiter
        return self

    def _open_failure(self) -> Exception:
        event = self.close_event
        code = event.code if event else 1006
        return ConnectionClosed(code, event.reason if event else "")

    def closed(self, timeout: float | None = None) -> Pending[CloseEvent]:
        """Wait until the connection is closed for good; return the last :class:`~nbws.CloseEvent`."""
        return self._pending(self._wait_closed(), timeout, "closing")

    async def _wait_closed(self) -> CloseEvent:
        while not self._finished:
            waiter = self._loop.create_future()
            self._close_waiters.append(waiter)
            await waiter
        assert self.close_event is not None
        return self.close_event

    def recv(self, timeout: float | None = None, *, latest: bool = False) -> Pending[Message]:
        """
        Wait for the next message not yet taken by ``recv()`` and return it.

        Messages are kept for ``recv()`` from the moment the connection opens,
        whether or not handlers also see them, up to ``recv_buffer`` of them
        and ``recv_buffer_bytes`` bytes (4 MiB by default), the oldest
        discarded first; a message received while ``recv()`` waits goes
        straight to it and is not kept.
        With ``latest=True`` the older ones waiting are discarded and the
        newest is returned (or the next one, if none waits): for live feeds
        where only the current value matters. See also :meth:`drain`.

        Raises:
            nbws.ConnectionClosed: once the connection is closed and every
                message received was taken.
            nbws.TimeoutError: after ``timeout`` seconds.
        """
        if running_loop() is self._loop:
            if latest:
                self._keep_newest()
            # On the connection's own loop the wait is a plain future the reader fulfils:
            # no task to start and finish, so the message reaches its caller a turn sooner.
            return Pending.of_future(self._loop, self._recv_future(timeout), "recv")
        return self._pending(self._recv(latest), timeout, "recv")

    async def _recv(self, latest: bool = False) -> Message:
        if latest:
            self._keep_newest()
        message: Message = await self._recv_future(None)
        return message

    def _keep_newest(self) -> None:
        inbox = self._inbox
        while len(inbox) > 1:
            inbox.popleft()
            self._inbox_bytes -= self._inbox_sizes.popleft()

    def drain(self) -> int:
        """
        Discard the messages waiting for ``recv()`` and return how many there were.

        For live feeds: after ``drain()``, ``recv()`` returns what arrives
        next, not what piled up meanwhile. Handlers and plugins saw them all.
        """
        inbox = self._inbox
        count = len(inbox)
        if running_loop() is self._loop:
            inbox.clear()
            self._inbox_sizes.clear()
            self._inbox_bytes = 0
        else:
            self._loop.call_soon_threadsafe(self._drop_oldest, count)
        return count

    def _drop_oldest(self, count: int) -> None:
        inbox = self._inbox
        for _ in range(min(count, len(inbox))):
            inbox.popleft()
            self._inbox_bytes -= self._inbox_sizes.popleft()

    def _recv_future(self, timeout: float | None) -> asyncio.Future[Message]:
        """
        A future for the next message not yet taken: the reader hands messages to these in order.

        Call it on the connection's loop. It fails with the connection's
        close (or connect) error once closed with nothing left, and with
        :class:`~nbws.TimeoutError` after ``timeout`` seconds.
        """
        loop = self._loop
        future: asyncio.Future[Message] = loop.create_future()
        if self._inbox:
            future.set_result(self._take_kept())
        elif self._finished:
            future.set_exception(self._open_failure())
        else:
            self._recv_waiters.append(future)
            if timeout is not None:
                expiry = loop.call_later(timeout, self._recv_expired, future, timeout)
                future.add_done_callback(lambda _: expiry.cancel())
        return future

    def _discarded(self) -> None:
        """Count a message dropped from the ``recv()`` buffer; warn the first time if nothing else took it."""
        self.recv_overflow += 1
        # Handlers that take every message make the recv() buffer a spare copy:
        # only a connection read by recv() alone loses something the user may want.
        if self.recv_overflow == 1 and not self._has_message_listeners():
            logger.warning(
                "%s: more than %d messages or %d bytes wait for recv(); the oldest are discarded "
                "(plugins still saw them); call recv() more often or raise recv_buffer / recv_buffer_bytes",
                self.id,
                self._recv_buffer,
                self._recv_buffer_bytes,
            )

    def _take_kept(self) -> Message:
        self._inbox_bytes -= self._inbox_sizes.popleft()
        return self._inbox.popleft()

    def _recv_expired(self, future: asyncio.Future[Message], timeout: float) -> None:
        if not future.done():
            future.set_exception(TimeoutError(f"{self.id} recv: still waiting after {timeout:g} seconds"))

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    def __getitem__(self, index: object) -> Any:
        # Not __iter__: that would make a connection an Iterable, which it is not. 'for m in ws'
        # still lands here (the sequence protocol), and so can say what to write instead. Compiled
        # by mypyc, this is only a subscript: WebSocket and Connection repeat it in Python for 'for'.
        not_iterable(self)

    def _iterate(self) -> AsyncIterator[Message]:
        # mypyc: async generators are unimplemented; an explicit async iterator instead.
        return _Messages(self)


class _Messages:
    """``async for message in ws``: each message until the connection is closed."""

    __slots__ = ("_connection",)

    def __init__(self, connection: BaseConnection) -> None:
        self._connection = connection

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self._connection._recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None


# -- the message path's hottest steps, as functions -------------------------------------------------
# Functions of the connection rather than its methods: compiled by mypyc, a call to a module function is
# a direct C call, while a method of BaseConnection (a class open to interpreted subclasses, which
# WebSocket and Connection are) is dispatched through Python for their instances. Interpreted, the same.
def _deliver(conn: BaseConnection, message: Message) -> Rest | None:
    """Give a message to ``recv()`` and the handlers, then to the observers; return what is left to await."""
    if not message._dropped:
        data = message._data
        size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        conn.messages_received += 1
        conn.bytes_received += size
        waiters = conn._recv_waiters
        while waiters and waiters[0].done():  # cancelled or timed out
            waiters.popleft()
        if waiters and not conn._inbox:
            # Someone waits: hand it over, nothing is kept.
            waiters.popleft().set_result(message)
        else:
            _keep_for_recv(conn, message, size)
        # the message handler, listeners and the parent's listeners, inlined: it runs for every message.
        handler = conn.onmessage
        if handler is not None:
            try:
                result = handler(message)
            except Exception as exc:
                conn._handler_failed(exc, handler)
            else:
                if result is not None and _isawaitable(result):
                    follow_listener(result, handler, conn._handler_failed)
        listeners = conn._message_listeners
        if listeners:
            for fn in listeners:
                call_listener(fn, (message,), conn._handler_failed)
        parent = conn._parent_message_listeners
        if parent:
            for fn in parent:
                try:
                    result = fn(conn, message)
                except Exception as exc:
                    conn._handler_failed(exc, fn)
                else:
                    if result is not None and _isawaitable(result):
                        follow_listener(result, fn, conn._handler_failed)
    observers = conn._calls["nbws_message_received"]
    if observers:
        observe = observers.observe  # run()'s own fast path for these observers, called directly
        if observe is not None:
            return observe(conn._plugin_failed, conn, message)
        return run("nbws_message_received", observers, (conn, message), conn._plugin_failed)
    return None


def _keep_for_recv(conn: BaseConnection, message: Message, size: int) -> None:
    """Keep a message for a later ``recv()``, within ``recv_buffer`` messages and ``recv_buffer_bytes`` bytes."""
    inbox = conn._inbox
    sizes = conn._inbox_sizes
    if len(inbox) == conn._recv_buffer:
        # Full: appending drops the oldest (the deques' maxlen), which no longer counts.
        conn._inbox_bytes -= sizes[0]
        conn._discarded()
    inbox.append(message)
    sizes.append(size)
    conn._inbox_bytes += size
    if conn._inbox_bytes > conn._recv_buffer_bytes:
        while len(inbox) > 1 and conn._inbox_bytes > conn._recv_buffer_bytes:
            inbox.popleft()
            conn._inbox_bytes -= sizes.popleft()
            conn._discarded()


def _framed_at_once(conn: BaseConnection, data: str | bytes, size: int) -> None:
    """Count a message the Wire framed without the outbox; the sent observers see it at the end of the turn."""
    conn._unflushed += size
    conn._send_seq += 1
    conn.messages_sent += 1
    conn.bytes_sent += size
    if conn._calls["nbws_message_sent"]:
        conn._sent += (data, conn._send_seq, _now())  # its Message is made when observed
