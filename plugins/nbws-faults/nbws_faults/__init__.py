"""
nbws-faults: inject faults into nbws connections to see how a client or a server copes.

An nbws plugin, published under the ``nbws`` entry-point group, so that
installing the package is enough for ``nbws.plugins`` to load it. It loads
**inert and switched off**: every rate is 0 and none of its hooks runs until
you configure it, which switches it on::

    import nbws
    faults = nbws.plugins.get("faults")          # the instance loaded from the entry point
    faults.configure(drop=0.1, delay=0.2, delay_time=(0.05, 0.5), seed=1)
    ...
    faults.reset()                                # inert again

or make one for a single endpoint::

    from nbws_faults import FaultInjector
    ws = nbws.WebSocket(url, plugins=[FaultInjector(duplicate=0.5)])

Faults, each at its own rate (a probability per message):

* ``drop``: the message is dropped (``message.drop()``), never sent or delivered.
* ``delay``: the message waits ``delay_time`` seconds (a number, or a
  ``(low, high)`` range drawn uniformly). Like TCP, it holds up the messages
  behind it on the same connection and direction, and nothing else.
* ``duplicate``: the message is sent a second time, right after it was written.
* ``reorder``: the message is held back and sent after the next one written
  on its connection (or after ``reorder_window`` seconds if none comes).

Drop and delay apply in the directions chosen; duplicate and reorder apply
to sent messages (a peer sees them; to show a client duplicates from its
server, register the injector on the server).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any

import nbws
from nbws.typing import Which

__all__ = ["FaultInjector", "faults"]

__version__ = "0.1.0"

Direction = Which
"""An older name of :data:`nbws.typing.Which` here (``nbws.typing.Direction`` is ``"send"`` or ``"receive"``)."""
_RATES = ("drop", "delay", "duplicate", "reorder")


class FaultInjector:
    """
    An nbws plugin that drops, delays, duplicates or reorders messages at random.

    Args:
        drop, delay, duplicate, reorder: The probability of each fault per
            message, from 0.0 (never, the default) to 1.0 (always).
        delay_time: Seconds a delayed message waits: a number or a
            ``(low, high)`` range.
        reorder_window: Seconds a held-back message waits for a next one
            before it is sent anyway.
        direction: ``"send"`` (the default), ``"receive"`` or ``"both"``.
        match: Only messages for which ``match(message)`` is true get faults.
        seed: Seed the random choices, to repeat a run exactly.

    Attributes:
        counts: How many messages got each fault.
    """

    nbws_autoload_enabled = False
    """Loaded from the entry point, it starts switched off; :meth:`configure` switches it on."""

    def __init__(
        self,
        *,
        drop: float = 0.0,
        delay: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        delay_time: float | tuple[float, float] = (0.05, 0.2),
        reorder_window: float = 0.5,
        direction: Which = "send",
        match: Callable[[nbws.Message], bool] | None = None,
        seed: int | None = None,
    ) -> None:
        self.__name__ = "faults"
        self.drop = self.delay = self.duplicate = self.reorder = 0.0
        self.delay_time: tuple[float, float] = (0.05, 0.2)
        self.reorder_window = 0.5
        self.direction: Which = "send"
        self.match: Callable[[nbws.Message], bool] | None = None
        self.counts: dict[str, int] = dict.fromkeys(_RATES, 0)
        self._random = random.Random(seed)
        # Our marks on messages: several injectors (the one loaded from the entry point, and one
        # of your own) must each act on their own decisions only.
        self._mark = f"nbws_faults:{id(self)}"
        self._active = False
        self._injected: dict[str, list[str | bytes]] = {}
        self._held: dict[str, list[str | bytes]] = {}
        self._flush_handles: dict[str, asyncio.TimerHandle] = {}
        self.configure(
            drop=drop,
            delay=delay,
            duplicate=duplicate,
            reorder=reorder,
            delay_time=delay_time,
            reorder_window=reorder_window,
            direction=direction,
            match=match,
        )

    def __repr__(self) -> str:
        rates = ", ".join(f"{name}={getattr(self, name):g}" for name in _RATES if getattr(self, name))
        return f"<FaultInjector {self.direction} {rates or 'inert'}>"

    @property
    def active(self) -> bool:
        """True when some rate is above 0."""
        return self._active

    def configure(
        self,
        *,
        drop: float | None = None,
        delay: float | None = None,
        duplicate: float | None = None,
        reorder: float | None = None,
        delay_time: float | tuple[float, float] | None = None,
        reorder_window: float | None = None,
        direction: Which | None = None,
        match: Callable[[nbws.Message], bool] | None = None,
        seed: int | None = None,
    ) -> FaultInjector:
        """Change some settings (those not given stay as they are); return the injector."""
        rates = {"drop": drop, "delay": delay, "duplicate": duplicate, "reorder": reorder}
        for name, value in rates.items():
            if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a probability from 0.0 to 1.0, not {value!r}")
        if direction is not None and direction not in ("send", "receive", "both"):
            raise ValueError(f"direction must be 'send', 'receive' or 'both', not {direction!r}")
        if delay_time is not None:
            low, high = (delay_time, delay_time) if isinstance(delay_time, (int, float)) else delay_time
            if not 0 <= low <= high:
                raise ValueError(f"delay_time must be seconds >= 0 or a (low, high) range, not {delay_time!r}")
            self.delay_time = (float(low), float(high))
        if reorder_window is not None:
            if not reorder_window > 0:
                raise ValueError(f"reorder_window must be a positive number of seconds, not {reorder_window!r}")
            self.reorder_window = float(reorder_window)
        new_direction = direction or self.direction
        new_dup = self.duplicate if duplicate is None else duplicate
        new_reorder = self.reorder if reorder is None else reorder
        if new_direction == "receive" and (new_dup or new_reorder):
            raise ValueError("duplicate and reorder apply to sent messages: use direction 'send' or 'both'")
        for name, value in rates.items():
            if value is not None:
                setattr(self, name, float(value))
        self.direction = new_direction
        if match is not None:
            self.match = match
        if seed is not None:
            self._random.seed(seed)
        self._active = any(getattr(self, name) > 0 for name in _RATES)
        if self._active:
            # Loaded from the entry point it starts switched off (it costs its hook calls even
            # inert): configuring it is the user's word to switch it on.
            name = nbws.plugins.name_of(self)
            if name is not None and not nbws.plugins.info(name).enabled:
                nbws.plugins.enable(name)
        return self

    def reset(self) -> None:
        """Make it inert again: every rate 0, no filter, counts cleared."""
        self.drop = self.delay = self.duplicate = self.reorder = 0.0
        self.match = None
        self._active = False
        self.counts = dict.fromkeys(_RATES, 0)

    # -- the faults ---------------------------------------------------------------

    def _applies(self, message: nbws.Message) -> bool:
        return self.direction in ("both", message.direction) and (self.match is None or self.match(message))

    def _is_injected(self, conn: nbws.BaseConnection, message: nbws.Message) -> bool:
        """Our own re-sends (duplicates, reordered messages) pass untouched once."""
        pending = self._injected.get(conn.id)
        if pending:
            for index, data in enumerate(pending):
                if data is message.data:
                    del pending[index]
                    message.meta[self._mark] = message.meta["fault"] = "injected"
                    return True
        return False

    def _inject(self, conn: nbws.BaseConnection, data: str | bytes) -> None:
        if conn.ready_state is not nbws.OPEN:
            return
        self._injected.setdefault(conn.id, []).append(data)
        try:
            conn.send(data)
        except nbws.NbwsError:
            self._injected[conn.id].remove(data)

    def _maybe_delay(self, message: nbws.Message) -> Coroutine[Any, Any, None] | None:
        if self.drop and self._random.random() < self.drop:
            self.counts["drop"] += 1
            message.drop()
            return None
        if self.delay and self._random.random() < self.delay:
            self.counts["delay"] += 1
            low, high = self.delay_time
            return asyncio.sleep(self._random.uniform(low, high))
        return None

    @nbws.hookimpl
    def nbws_message_send(self, conn: nbws.BaseConnection, message: nbws.Message) -> Any:
        """Drop, hold back, mark for duplication or delay an outgoing message (hook)."""
        if not self._active or self._is_injected(conn, message) or not self._applies(message):
            return None
        if self.reorder and self._random.random() < self.reorder:
            self.counts["reorder"] += 1
            message.drop()
            message.meta[self._mark] = message.meta["fault"] = "reorder"
            self._held.setdefault(conn.id, []).append(message.data)
            self._schedule_flush(conn)
            return None
        if self.duplicate and self._random.random() < self.duplicate:
            self.counts["duplicate"] += 1
            message.meta[self._mark] = message.meta["fault"] = "duplicate"
        return self._maybe_delay(message)

    @nbws.hookimpl
    def nbws_message_receive(self, conn: nbws.BaseConnection, message: nbws.Message) -> Any:
        """Drop or delay an incoming message (hook)."""
        if not self._active or not self._applies(message):
            return None
        return self._maybe_delay(message)

    @nbws.hookimpl
    def nbws_message_sent(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        """Send the duplicate of a message just written, and what was held back before it (hook)."""
        if message.dropped or not (self._active or self._held):
            return
        mark = message.meta.get(self._mark)
        if mark == "duplicate":
            self._inject(conn, message.data)
        if self._held.get(conn.id) and mark != "injected":
            self._flush(conn)

    @nbws.hookimpl
    def nbws_close(self, conn: nbws.BaseConnection) -> None:
        """Forget a closed connection's state (hook)."""
        self._injected.pop(conn.id, None)
        self._held.pop(conn.id, None)
        handle = self._flush_handles.pop(conn.id, None)
        if handle is not None:
            handle.cancel()

    def _schedule_flush(self, conn: nbws.BaseConnection) -> None:
        if conn.id not in self._flush_handles:
            loop = asyncio.get_running_loop()
            self._flush_handles[conn.id] = loop.call_later(self.reorder_window, self._flush, conn)

    def _flush(self, conn: nbws.BaseConnection) -> None:
        handle = self._flush_handles.pop(conn.id, None)
        if handle is not None:
            handle.cancel()
        for data in self._held.pop(conn.id, []):
            self._inject(conn, data)


faults = FaultInjector()
"""The inert instance the ``faults`` entry point loads into ``nbws.plugins``."""
