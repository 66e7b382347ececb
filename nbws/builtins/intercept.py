"""
Hold messages until you forward, edit or drop each one: the breakpoint of web-debugging proxies.

An :class:`Intercept` is a plugin. While it is active, each message of the
chosen direction (that ``match`` accepts) waits in :attr:`Intercept.held`
until you decide::

    icpt = nbws.Intercept("receive")
    ws.plugins.register(icpt)
    held = await icpt.next()        # the oldest message waiting
    held.edit('{"price": 0}')       # or held.forward(), held.drop()

A held message stops only its own connection, in its own direction (the
hooks of one connection run in its own tasks): other connections, and the
other direction of the same one, go on.

Nothing waits forever behind a held message. When its connection starts
closing (``close()``, the panel's Disconnect button, ``server.stop()``) or
the peer closes it, the message is released at once: forwarded, with
``reason`` ``"closing"`` or ``"closed"``. A message sent before ``close()``
is thus written before the close frame, as the browser writes every message
sent before ``close()``; call :meth:`Intercept.drop_all` first to close
without sending what is held. All held messages are forwarded too when the
intercept is stopped, and ``timeout`` forwards each one after that many seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time as _time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal

from .. import views
from ..events import Message, Observers
from ..exceptions import InvalidStateError, TimeoutError
from ..hookspecs import hookimpl
from ..loop import Pending, get_loop
from ..typing import Direction
from ._common import plugin_name

if TYPE_CHECKING:
    from .. import BaseConnection
    from ..codecs import Decoded

__all__ = ["Decision", "Held", "Intercept"]

logger = logging.getLogger("nbws")

Decision = Literal["forward", "edit", "drop"]
"""What becomes of a held message: forwarded as it was, forwarded edited, or dropped."""
_ids = itertools.count(1)


class Held:
    """
    One message an :class:`Intercept` holds, waiting for a decision.

    Attributes:
        id: A number unique among held messages.
        message: The :class:`nbws.Message`, as the transforms before the
            intercept left it.
        conn: Its connection.
        since: When it was held (seconds since the epoch).
        decision: ``"forward"``, ``"edit"`` or ``"drop"`` once decided, else None.
        reason: Why it was released without a decision of yours: its
            connection started closing (``"closing"``) or was closed by the
            peer (``"closed"``), ``"timeout"``, or the intercept was
            ``"stopped"``; else None.
    """

    __slots__ = ("_future", "_intercept", "conn", "decision", "id", "message", "reason", "since")

    def __init__(self, intercept: Intercept, conn: BaseConnection, message: Message) -> None:
        self.id = next(_ids)
        self._intercept = intercept
        self.conn = conn
        self.message = message
        self.since = _time.time()
        self.decision: Decision | None = None
        self.reason: str | None = None
        self._future: asyncio.Future[None] = conn.loop.create_future()

    @property
    def direction(self) -> Direction:
        """``"send"`` or ``"receive"``."""
        return self.message.direction

    @property
    def decided(self) -> bool:
        """True once it was forwarded, edited or dropped."""
        return self.decision is not None

    def forward(self) -> None:
        """Let the message go on unchanged."""
        self._decide("forward")

    def edit(self, data: str | bytes | Decoded) -> None:
        """
        Replace the message's data (``str`` text, ``bytes`` binary) and let it go on.

        Given a decoded view (``held.message.decoded``, edited), it is
        re-encoded to the protocol's wire format first.
        """
        if self.decided:
            raise InvalidStateError(f"held message {self.id} was already {self.decision}ed")
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            from ..codecs import Decoded

            if isinstance(data, Decoded):
                data = data.encode()
        self.message.data = data
        self._decide("edit")

    def drop(self) -> None:
        """Stop the message: it is not sent (or not delivered)."""
        if not self.decided:
            self.message.drop()
        self._decide("drop")

    def _decide(self, decision: Decision, reason: str | None = None) -> None:
        if self.decided:
            raise InvalidStateError(f"held message {self.id} was already {self.decision}ed")
        self.decision = decision
        self.reason = reason
        loop = self.conn.loop
        if _running_loop() is loop:
            if not self._future.done():
                self._future.set_result(None)
        else:
            loop.call_soon_threadsafe(_resolve, self._future)

    def __repr__(self) -> str:
        state = self.decision or "held"
        return f"<Held {self.id} {state} {self.message!r}>"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Intercept:
    """
    A plugin that holds the messages of one direction until each is forwarded, edited or dropped.

    It runs after the other transforms (``trylast``), so you see and edit
    a message as it would go over the wire (``"send"``) or reach the
    handlers (``"receive"``).

    Args:
        direction: ``"receive"``, ``"send"`` or ``"both"``.
        match: Hold only the messages for which ``match(message)`` is true;
            the others pass.
        active: Hold messages from the start (else call :meth:`start`).
        timeout: Forward a held message by itself after this many seconds
            (None: hold until you decide).
    """

    def __init__(
        self,
        direction: Direction | Literal["both"] = "receive",
        *,
        match: Callable[[Message], bool] | None = None,
        active: bool = True,
        timeout: float | None = None,
    ) -> None:
        if direction not in ("send", "receive", "both"):
            raise ValueError(f"direction must be 'send', 'receive' or 'both', not {direction!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, not {timeout!r}")
        self.__name__ = plugin_name("intercept")
        self.direction = direction
        self.match = match
        self.timeout = timeout
        self._active = active
        self._held: list[Held] = []
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._watchers = Observers("intercept watcher")
        self.counts: dict[str, int] = {"held": 0, "forward": 0, "edit": 0, "drop": 0}
        """How many messages were held, and how each was decided."""

    def __repr__(self) -> str:
        state = "active" if self._active else "stopped"
        return f"<Intercept {self.__name__} {self.direction} {state}: {len(self._held)} held>"

    # -- control ------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while it holds messages."""
        return self._active

    def start(self) -> None:
        """Hold messages from now on."""
        self._active = True
        self._notify()

    def stop(self) -> None:
        """Stop holding: forward every message held now, and let the next ones pass."""
        self._active = False
        for held in list(self._held):
            if not held.decided:
                held._decide("forward", "stopped")
        self._notify()

    @property
    def held(self) -> list[Held]:
        """The messages waiting for a decision, oldest first."""
        return [held for held in self._held if not held.decided]

    def _pick(self, item: Held | int | None) -> Held:
        waiting = self.held
        if item is None:
            if not waiting:
                raise InvalidStateError("no message is held")
            return waiting[0]
        if isinstance(item, Held):
            return item
        for held in waiting:
            if held.id == item:
                return held
        raise InvalidStateError(f"no held message with id {item}")

    def forward(self, item: Held | int | None = None) -> Held:
        """Forward a held message (the oldest by default; or a :class:`Held` or its id); return it."""
        held = self._pick(item)
        held.forward()
        return held

    def edit(self, data: str | bytes | Decoded, item: Held | int | None = None) -> Held:
        """Replace the data of a held message (the oldest by default; a decoded view is re-encoded) and forward it; return it."""
        held = self._pick(item)
        held.edit(data)
        return held

    def drop(self, item: Held | int | None = None) -> Held:
        """Drop a held message (the oldest by default); return it."""
        held = self._pick(item)
        held.drop()
        return held

    def forward_all(self) -> int:
        """Forward every held message; return how many."""
        waiting = self.held
        for held in waiting:
            held.forward()
        return len(waiting)

    def drop_all(self) -> int:
        """Drop every held message; return how many."""
        waiting = self.held
        for held in waiting:
            held.drop()
        return len(waiting)

    def next(self, timeout: float | None = None) -> Pending[Held]:
        """
        Wait until a message is held and return the oldest one waiting.

        Raises:
            nbws.TimeoutError: if none is held within ``timeout`` seconds.
        """
        loop = get_loop()
        return Pending(loop, self._next(loop, timeout), "intercept next")

    async def _next(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> Held:
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            waiting = self.held
            if waiting:
                return waiting[0]
            waiter = loop.create_future()
            self._waiters.append((loop, waiter))
            try:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no message was held within {timeout:g} seconds") from None
            finally:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever a message is held or released, or the intercept starts or stops."""
        self._watchers.add(callback)

    def unwatch(self, callback: Callable[[], None]) -> None:
        """Stop calling a callback given to :meth:`watch`."""
        self._watchers.remove(callback)

    def _notify(self) -> None:
        for loop, waiter in list(self._waiters):
            loop.call_soon_threadsafe(_resolve, waiter)
        self._watchers.notify()

    def panel(self) -> Any:
        """A :class:`nbws.widgets.InterceptPanel` (an ipywidgets panel): the held queue with forward, edit and drop."""
        panel = views.view(self)
        return panel

    # -- hooks ----------------------------------------------------------------------

    def _catch(self, conn: BaseConnection, message: Message) -> Coroutine[Any, Any, None] | None:
        if not self._active or (self.direction != "both" and message.direction != self.direction):
            return None
        if self.match is not None and not self.match(message):
            return None
        return self._hold(conn, message)

    async def _hold(self, conn: BaseConnection, message: Message) -> None:
        held = Held(self, conn, message)
        self._held.append(held)
        self.counts["held"] += 1
        self._notify()
        # A connection that closes, or starts closing, while its message is held must still finish closing:
        # close() queues its close frame behind the held message, and the peer's close waits for delivery.
        ending = conn.ending()
        try:
            waiting: set[asyncio.Future[Any]] = {held._future, ending}
            await asyncio.wait(waiting, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
            if not held.decided:
                held._decide("forward", ending.result() if ending.done() else "timeout")
        finally:
            if not ending.done():
                ending.cancel()
            if not held.decided:
                # Cancelled: the connection's task ended under it. The message goes on as it is
                # (a reconnecting client still sends it); it must not stay undecided.
                held._decide("forward", "closed")
            if held in self._held:
                self._held.remove(held)
            if held.decision is not None:
                self.counts[held.decision] += 1
            self._notify()

    @hookimpl(trylast=True)
    def nbws_message_send(self, conn: BaseConnection, message: Message) -> Coroutine[Any, Any, None] | None:
        """Hold an outgoing message if it is one to intercept (hook)."""
        return self._catch(conn, message)

    @hookimpl(trylast=True)
    def nbws_message_receive(self, conn: BaseConnection, message: Message) -> Coroutine[Any, Any, None] | None:
        """Hold an incoming message if it is one to intercept (hook)."""
        return self._catch(conn, message)

    @hookimpl
    def nbws_panel(self, dashboard: Any) -> tuple[str, Any]:
        """Contribute the intercept's panel to a dashboard (hook)."""
        return ("Intercept", self.panel())
