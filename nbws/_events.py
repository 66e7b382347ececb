"""
What handlers and plugins receive: messages and events, and the listener registry.

A received or sent message is one :class:`Message` from end to end: the same
object goes through the plugins' transform hooks, to the handlers, to the
observers and to recordings, so that an edit or a drop is seen by all.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time as _time
import weakref
from collections.abc import Callable, Iterator
from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES
from typing import TYPE_CHECKING, Any, Final

from mypy_extensions import mypyc_attr

from .exceptions import describe as describe  # re-exported: it lived here first
from .typing import Data as Data  # the public aliases live in nbws.typing; these names stay
from .typing import Direction as Direction
from .typing import Flow as Flow
from .typing import Leg as Leg
from .typing import Listener as Listener

if TYPE_CHECKING:
    from ._connection import BaseConnection
    from .codecs import Decoded

__all__ = [
    "CloseEvent",
    "Direction",
    "ErrorEvent",
    "Listeners",
    "Message",
    "Observers",
    "OpenEvent",
    "Watchers",
    "same_value",
]


@mypyc_attr(allow_interpreted_subclasses=True)  # public: a user may subclass it, compiled or not
class Message:
    """
    One WebSocket message, text or binary, going one way on one connection.

    Attributes:
        direction: ``"send"`` or ``"receive"``, seen from the local endpoint,
            as browser developer tools and HAR files name them.
        time: When the message was sent (``send()`` was called) or received
            (the socket read that completed it: messages read together share
            it; one held back by an ``async`` receive hook, when delivered),
            in seconds since the epoch.
        seq: Its number among the messages of its connection and direction,
            from 1.
        connection: The id of its connection (``conn.id``).
        original: The data as it was before any plugin changed it.
        replayed: True for a message re-sent by :func:`nbws.replay`.
        leg: On a :class:`nbws.Relay`, the leg it travels on: ``"client"``
            (between the client and the relay) or ``"upstream"`` (between
            the relay and the upstream server); None elsewhere.
        injected: True for a message a relay injected
            (:meth:`nbws.relay.Pair.inject`) rather than forwarded.
    """

    __slots__ = (
        "_data",
        "_decoded",
        "_dropped",
        "_meta",
        "_prepared",
        "_size",
        "connection",
        "direction",
        "injected",
        "leg",
        "original",
        "replayed",
        "seq",
        "time",
    )

    type = "message"

    def __init__(
        self,
        data: Data,
        direction: Direction,
        *,
        seq: int = 0,
        connection: str = "",
        time: float | None = None,
        replayed: bool = False,
        leg: Leg | None = None,
        injected: bool = False,
    ) -> None:
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"message data must be str or bytes, not {type(data).__name__}")
        self._data = data
        self.original = data
        self.direction = direction
        self.time = _time.time() if time is None else time
        self.seq = seq
        self.connection = connection
        self.replayed = replayed
        self.leg = leg
        self.injected = injected
        self._dropped = self._prepared = False
        self._size = 0
        self._meta: dict[str, Any] | None = None
        self._decoded: tuple[Data, Decoded | None] | None = None

    @property
    def meta(self) -> dict[str, Any]:
        """A dict where plugins may keep notes about the message (made on first use)."""
        meta = self._meta
        if meta is None:
            meta = self._meta = {}
        return meta

    @meta.setter
    def meta(self, value: dict[str, Any]) -> None:
        self._meta = value

    @property
    def data(self) -> Data:
        """The payload: :class:`str` for a text message, :class:`bytes` for a binary one.

        Plugins may assign a new ``str`` or ``bytes`` to transform the message.
        """
        return self._data

    @data.setter
    def data(self, value: str | bytes | bytearray | memoryview) -> None:  # what it accepts (stored as bytes)
        if isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        if not isinstance(value, (str, bytes)):
            raise TypeError(f"message data must be str or bytes, not {type(value).__name__}")
        self._data = value

    @property
    def flow(self) -> Flow | None:
        """
        On a relay, which way the message travels: ``"client->upstream"`` or ``"upstream->client"``; else None.

        A message the client leg receives, or the upstream leg sends, goes
        to the upstream; the other two go to the client.
        """
        leg = self.leg
        if leg is None:
            return None
        return "client->upstream" if (leg == "client") == (self.direction == "receive") else "upstream->client"

    @property
    def is_binary(self) -> bool:
        """True for a binary message (``bytes``), False for a text message (``str``)."""
        return isinstance(self._data, bytes)

    @property
    def size(self) -> int:
        """The payload's size in bytes (UTF-8 encoded for text)."""
        data = self._data
        return len(data) if isinstance(data, bytes) else len(data.encode())

    @property
    def changed(self) -> bool:
        """True if a plugin changed the data since the message was created."""
        return self._data is not self.original and self._data != self.original

    @property
    def dropped(self) -> bool:
        """True once :meth:`drop` was called: the message goes no further."""
        return self._dropped

    def drop(self) -> None:
        """Stop this message: it is not sent (or not delivered to handlers)."""
        self._dropped = True

    def json(self) -> Any:
        """Parse the payload as JSON and return the value."""
        return json.loads(self._data)

    @property
    def decoded(self) -> Decoded | None:
        """
        The message as its protocol sees it (:class:`nbws.codecs.Decoded`), or
        None if no codec recognises its connection.

        Decoded on first access only, then kept until ``data`` changes; bad
        data gives a view whose ``error`` says why, never an exception.
        """
        from .codecs import decode

        return decode(self)

    def __repr__(self) -> str:
        preview = repr(self._data if len(self._data) <= 60 else self._data[:57])
        if len(self._data) > 60:
            preview += "..."
        flag = " dropped" if self._dropped else ""
        flag += " injected" if self.injected else ""
        return f"<Message {self.direction} #{self.seq} on {self.connection}{flag}: {preview}>"


_new_object = object.__new__
_now = _time.time

#: Whether this module runs compiled by mypyc (a wheel built with ``HATCH_BUILD_HOOKS_ENABLE=1``; README, "Compiled build").
COMPILED: Final = __file__.endswith(tuple(_EXTENSION_SUFFIXES))  # an extension module; Final: a C static, compiled


def _message(data: Data, direction: Direction, seq: int, connection: str, time: float | None = None) -> Message:
    """``Message(data, direction, seq=seq, connection=connection)`` for the core's message path.

    Made without ``__init__``'s keyword parsing and type check: the core passes ``str``
    or ``bytes`` it checked itself. Every attribute ``__init__`` sets is set here too.
    ``time`` is when it happened, if not now (a sent message observed at the end of the turn).
    """
    if COMPILED:
        # mypyc: a native class refuses object.__new__; its constructor is a direct C call.
        return Message(data, direction, seq=seq, connection=connection, time=_now() if time is None else time)
    message: Message = _new_object(Message)
    message._data = message.original = data
    message.direction = direction
    message.time = _now() if time is None else time
    message.seq = seq
    message.connection = connection
    message.replayed = message.injected = message._dropped = message._prepared = False
    message.leg = message._decoded = message._meta = None
    message._size = 0
    return message


@mypyc_attr(allow_interpreted_subclasses=True)  # public: a user may subclass it, compiled or not
class OpenEvent:
    """The connection is open: messages can be sent."""

    __slots__ = ("target",)
    type = "open"

    def __init__(self, target: BaseConnection) -> None:
        self.target = target

    def __repr__(self) -> str:
        return f"<OpenEvent {self.target.id}>"


@mypyc_attr(allow_interpreted_subclasses=True)  # public: a user may subclass it, compiled or not
class CloseEvent:
    """
    The connection is closed.

    Attributes:
        code: The close code: 1000 normal, 1001 going away, 1006 dropped
            without a closing handshake (or never opened), and so on.
        reason: The close reason sent by the peer, possibly empty.
        was_clean: True if the closing handshake completed on both sides.
    """

    __slots__ = ("_target", "code", "reason", "was_clean")
    type = "close"

    def __init__(self, target: BaseConnection, code: int, reason: str, was_clean: bool) -> None:
        # Weakly: the connection keeps its last close event, and a cycle between them would keep
        # a closed connection (and the messages it still holds) alive until a full collection.
        self._target = weakref.ref(target)
        self.code = code
        self.reason = reason
        self.was_clean = was_clean

    @property
    def target(self) -> BaseConnection:
        """The connection that closed (the event refers to it weakly: None once nothing else holds it)."""
        return self._target()  # type: ignore[return-value]

    def __repr__(self) -> str:
        target = self._target()
        return f"<CloseEvent {target.id if target is not None else '?'} code={self.code} reason={self.reason!r} was_clean={self.was_clean}>"


@mypyc_attr(allow_interpreted_subclasses=True)  # public: a user may subclass it, compiled or not
class ErrorEvent:
    """
    Something went wrong on an endpoint.

    Attributes:
        error: The exception.
        message: What went wrong, in words.
        phase: Where it happened: ``"connect"``, ``"handshake"``,
            ``"receive"``, ``"send"``, ``"close"``, ``"listen"``,
            ``"handler"`` (a user handler raised) or ``"plugin"`` (a plugin
            hook raised).
        plugin: The name of the plugin at fault, for phase ``"plugin"``.
        target: The connection or server where it happened.

    A connection error (phases connect, handshake, receive, send) is followed
    by a close event, as in the browser. A handler or plugin error is only
    reported: the connection carries on.
    """

    __slots__ = ("error", "message", "phase", "plugin", "target")
    type = "error"

    def __init__(
        self,
        target: Any,
        error: BaseException,
        phase: str,
        message: str | None = None,
        plugin: str | None = None,
    ) -> None:
        self.target = target
        self.error = error
        self.phase = phase
        self.plugin = plugin
        self.message = message or describe(error)

    def __repr__(self) -> str:
        who = f" plugin {self.plugin}" if self.plugin else ""
        return f"<ErrorEvent {self.phase}{who}: {self.message}>"

    def __str__(self) -> str:
        return self.message


def _same_function(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two functions were made by the same code, with the same defaults and closure (a re-run cell)."""
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    if code_a is None or code_b is None or code_a != code_b:
        return False
    if (a.__module__, a.__qualname__) != (b.__module__, b.__qualname__):
        return False
    if getattr(a, "__self__", None) is not getattr(b, "__self__", None):
        return False  # the same method of two objects (two panels on one endpoint)
    if a.__defaults__ != b.__defaults__ or a.__kwdefaults__ != b.__kwdefaults__:
        return False
    cells_a, cells_b = a.__closure__ or (), b.__closure__ or ()
    try:
        return len(cells_a) == len(cells_b) and all(
            same_value(x.cell_contents, y.cell_contents, depth) for x, y in zip(cells_a, cells_b, strict=True)
        )
    except ValueError:  # a cell not filled yet
        return False


def same_value(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two values are the same thing made again: identical, equal, or functions of the same code."""
    if a is b:
        return True
    if depth > 3:
        return False
    if callable(a) and hasattr(a, "__code__"):
        return _same_function(a, b, depth + 1)
    try:
        return bool(type(a) is type(b) and a == b)
    except Exception:
        return False


@mypyc_attr(allow_interpreted_subclasses=True)  # public: a user may subclass it, compiled or not
class Observers:
    """
    The callbacks told of one kind of event, in the order they were added: nbws's one observer mechanism.

    Endpoints keep one per event name (:class:`Listeners`, behind
    ``on()``/``off()``); registries, recorders, replayers, relays and panels
    keep one for "something changed" (``watch()``/``unwatch()``, a panel's
    ``refreshed``). Hooks stay the plugin API; this is for code in the same
    process that wants to be told.

    :meth:`notify` calls every callback with the same arguments; one that
    raises is logged (or given to ``on_error``) and the others are still
    told: a broken panel must not stop a recorder or a replay. A callback
    that returns an awaitable (an ``async def``) runs as a task of its own.

    Args:
        what: What is observed, for the log line of a callback that raises.
        replace_same: Adding a function made by the same code as one already
            there (a re-run notebook cell) replaces it instead of adding a
            second, with a warning in the log.
    """

    __slots__ = ("_callbacks", "_replace_same", "_what")

    def __init__(self, what: str = "observer", *, replace_same: bool = False) -> None:
        self._what = what
        self._replace_same = replace_same
        self._callbacks: list[Listener] = []

    def add(self, fn: Listener) -> Listener:
        """Add ``fn`` (after the others) and return it, so that ``add`` works as a decorator."""
        if not callable(fn):
            raise TypeError(f"a listener must be callable, not {type(fn).__name__}")
        callbacks = self._callbacks
        if self._replace_same:
            for index, other in enumerate(callbacks):
                if other is fn or _same_function(other, fn):
                    # A re-run cell adds the same handler again: replace it rather than call it twice.
                    callbacks[index] = fn
                    if other is not fn:
                        logging.getLogger("nbws").warning(
                            "nbws: replaced the %s %s added earlier by the same code (a re-run cell?)",
                            self._what,
                            getattr(fn, "__qualname__", fn),
                        )
                    return fn
        callbacks.append(fn)
        return fn

    def remove(self, fn: Listener) -> None:
        """Remove ``fn`` if it is there (nothing happens otherwise)."""
        if fn in self._callbacks:
            self._callbacks.remove(fn)

    def clear(self) -> None:
        """Remove every callback."""
        self._callbacks.clear()

    def notify(self, *args: Any, on_error: Callable[[BaseException, Listener], None] | None = None) -> None:
        """Call every callback with ``args``; isolate and log (or give ``on_error``) what one raises."""
        if not self._callbacks:
            return
        for fn in list(self._callbacks):
            call_listener(fn, args, on_error or self._failed)

    def _failed(self, error: BaseException, fn: Listener) -> None:
        logging.getLogger("nbws").error("%s %r raised", self._what, fn, exc_info=error)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __iter__(self) -> Iterator[Listener]:
        return iter(list(self._callbacks))

    def __contains__(self, fn: object) -> bool:
        return fn in self._callbacks

    def __repr__(self) -> str:
        return f"<Observers {self._what}: {len(self._callbacks)}>"


class Watchers(Observers):
    """
    Callbacks told of a change (panels watch registries, recorders, replayers): :class:`Observers` under its older name.

    ``Watchers(what)`` logs a callback that raises as "<what> watcher ... raised".
    """

    __slots__ = ()

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} watcher")


class Listeners:
    """
    The listeners of an endpoint's events: one :class:`Observers` per event name.

    ``on(name, fn)`` adds one (and returns it, so it works as a decorator);
    ``off(name, fn)`` removes it. A listener may be a plain function or an
    ``async def`` one; the latter runs as a task of its own. Adding the same
    function again from a re-run cell replaces it.
    """

    __slots__ = ("_by_name", "_names", "_observers")

    def __init__(self, names: tuple[str, ...]) -> None:
        self._names = names
        self._observers = {name: Observers(f"{name!r} listener", replace_same=True) for name in names}
        # The lists themselves, for the hot path: get() is called for every message.
        self._by_name: dict[str, list[Listener]] = {name: obs._callbacks for name, obs in self._observers.items()}

    def observers(self, name: str) -> Observers:
        """The :class:`Observers` of event ``name``."""
        try:
            return self._observers[name]
        except KeyError:
            valid = ", ".join(repr(n) for n in self._names)
            if not isinstance(name, str):  # a TypeError, as the compiled build's own check of `name: str` raises
                raise TypeError(f"an event name is a str, one of {valid}; not {type(name).__name__}") from None
            raise ValueError(f"unknown event {name!r}: use one of {valid}") from None

    def check(self, name: str) -> list[Listener]:
        """The listeners of ``name``; a ValueError naming the valid events for an unknown one."""
        return self.observers(name)._callbacks

    def on(self, name: str, fn: Listener | None = None) -> Any:
        """Add ``fn`` as a listener of ``name`` and return it; without ``fn``, return a decorator that does."""
        if fn is None:
            self.check(name)

            def decorator(fn: Listener) -> Listener:
                self.add(name, fn)
                return fn

            return decorator
        self.add(name, fn)
        return fn

    def add(self, name: str, fn: Listener) -> None:
        """Add ``fn`` as a listener of ``name`` (replacing one made by the same code)."""
        self.observers(name).add(fn)

    def remove(self, name: str, fn: Listener | None) -> None:
        """Remove listener ``fn`` of ``name``, or every listener of ``name`` if ``fn`` is None."""
        observers = self.observers(name)
        if fn is None:
            observers.clear()
        else:
            observers.remove(fn)

    def get(self, name: str) -> list[Listener]:
        """The listeners of ``name`` (a known name), as the list itself: do not change it."""
        return self._by_name[name]


def call_listener(
    fn: Listener,
    args: tuple[Any, ...],
    on_error: Callable[[BaseException, Listener], None],
) -> None:
    """Call one listener, isolating its faults; an ``async def`` one runs as a task."""
    try:
        result = fn(*args)
    except Exception as exc:
        on_error(exc, fn)
        return
    if result is not None and inspect.isawaitable(result):
        follow_listener(result, fn, on_error)


def follow_listener(result: Any, fn: Listener, on_error: Callable[[BaseException, Listener], None]) -> None:
    """Run what an ``async def`` listener returned as a task of its own; its fault goes to ``on_error``."""
    task = asyncio.ensure_future(result)

    def done(task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            on_error(task.exception(), fn)  # type: ignore[arg-type]

    task.add_done_callback(done)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


# Keep listener tasks referenced until they finish (asyncio holds only weak references).
_tasks: set[asyncio.Future[Any]] = set()
