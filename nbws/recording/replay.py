"""
Re-send recorded messages to a live connection: :func:`replay` and :class:`Replayer`.

The messages of one direction of one recorded connection are sent, in order,
through ``target.send``'s own pipeline: the target's transforms apply to them,
and each is marked ``message.replayed = True`` (recorders write
``"replayed": true``). Two modes:

* ``"timed"``: with the recorded gaps between messages, divided by ``speed``
  (2.0 plays twice as fast; ``math.inf`` as fast as possible).
* ``"reactive"``: send one, wait for the replies the recording shows after it
  (at least one when the recording has no replies to count), then the next.

A :class:`Replayer` plays in the background and can be paused, resumed,
stepped one message at a time, stopped, and have a message edited before it
is sent; ``await nbws.replay(...)`` plays one to the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .. import views
from .._connection import CLOSED, CLOSING, BaseConnection
from .._events import CloseEvent, Direction, Message, Watchers
from .._loop import Pending, running_loop
from ..exceptions import ConnectionClosed, InvalidStateError, TimeoutError
from .model import PathLike, RecordedEvent
from .query import Recording

if TYPE_CHECKING:
    from ..codecs import Decoded

__all__ = ["Mode", "ReplayState", "Replayer", "replay"]

logger = logging.getLogger("nbws")

Mode = Literal["timed", "reactive"]
"""How a replay paces the messages: at their recorded times, or each in answer to the peer's."""
ReplayState = Literal["ready", "playing", "paused", "done", "stopped", "failed"]
"""Where a replay stands."""
T = TypeVar("T")


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def select_messages(
    recording: Recording,
    direction: Direction,
    connection: str | BaseConnection | None = None,
    *,
    original: bool = False,
) -> list[RecordedEvent]:
    """
    The messages a replay of ``direction`` sends, from one recorded connection.

    Messages a transform dropped are left out (they never went over the
    wire), unless ``original`` asks for what the application sent.

    Raises:
        ValueError: if the recording has messages of that direction on
            several connections and ``connection`` does not say which.
    """
    if direction not in ("send", "receive"):
        raise ValueError(f"direction must be 'send' or 'receive', not {direction!r}")
    chosen = recording.messages(direction, connection)
    connections = chosen.connections
    if connection is None and len(connections) > 1:
        raise ValueError(
            f"the recording has {direction!r} messages on {len(connections)} connections "
            f"({', '.join(connections)}): pass connection=... to choose one"
        )
    return [event for event in chosen if original or not event.dropped]


class Replayer:
    """
    Re-send recorded messages to ``target``, with controls for interactive use.

    ``play()`` starts in the background; ``pause()``, ``resume()``,
    ``step()`` (send the next message now), ``stop()`` and ``edit()`` steer
    it; ``await replayer.done()`` waits for the end. Call them from the
    thread of the target's loop (a notebook cell, a widget callback); from
    another thread they are handed to that loop.

    Args:
        recording: A :class:`Recording`, or the path of a file to load.
        target: The :class:`nbws.WebSocket` or server :class:`nbws.Connection`
            to send through; it must be open when messages are sent.
        direction: Which recorded messages to send: ``"send"`` (what the
            recorded endpoint sent) or ``"receive"`` (what it received, to
            play the other side's part).
        connection: The recorded connection whose messages to send; needed
            when the recording has messages of ``direction`` on several.
        speed: Divides the recorded gaps in ``"timed"`` mode; ``math.inf``
            sends without waiting.
        mode: ``"timed"`` or ``"reactive"``.
        original: Send the data as the application gave it, before the
            recorded transforms changed it (dropped messages included);
            by default the data as it went over the wire.
        replies: In ``"reactive"`` mode, wait for this many replies after each
            message; None counts them in the recording (1 if it has no replies).
        reply_timeout: Seconds to wait for replies before failing with
            :class:`nbws.TimeoutError`.

    Attributes:
        messages: The recorded messages to send, in order, edits included (see :meth:`edit`).
        connection: The id of the recorded connection whose messages it sends
            (None for a recording without messages of ``direction``).
        sent: The :class:`nbws.Message` objects sent so far, ``replayed=True``.
        replies: The messages ``target`` received since the replayer was made.
        error: What made it fail, or None.
    """

    def __init__(
        self,
        recording: Recording | PathLike,
        target: BaseConnection,
        *,
        direction: Direction = "send",
        connection: str | BaseConnection | None = None,
        speed: float = 1.0,
        mode: Mode = "timed",
        original: bool = False,
        replies: int | None = None,
        reply_timeout: float = 10.0,
    ) -> None:
        if not isinstance(recording, Recording):
            recording = Recording.load(Path(recording))
        if not isinstance(target, BaseConnection):
            raise TypeError(f"target must be an nbws.WebSocket or nbws.Connection, not {type(target).__name__}")
        if mode not in ("timed", "reactive"):
            raise ValueError(f"mode must be 'timed' or 'reactive', not {mode!r}")
        if replies is not None and (not isinstance(replies, int) or replies < 0):
            raise ValueError(f"replies must be a non-negative int or None, not {replies!r}")
        if not reply_timeout > 0:
            raise ValueError(f"reply_timeout must be a positive number of seconds, not {reply_timeout!r}")
        self.recording = recording
        self.target = target
        self.direction: Direction = direction
        self.mode: Mode = mode
        self.original = original
        self.reply_timeout = reply_timeout
        self.messages: list[RecordedEvent] = select_messages(recording, direction, connection, original=original)
        self.connection: str | None = self.messages[0].connection if self.messages else None
        self._edits: dict[int, str | bytes] = {}
        self._expected = [replies] * len(self.messages) if replies is not None else self._count_replies()
        self._speed = 1.0
        self.speed = speed
        self.sent: list[Message] = []
        self.replies: list[Message] = []
        self.error: BaseException | None = None
        self._state: ReplayState = "ready"
        self._position = 0
        self._loop = target.loop
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._finished: asyncio.Future[None] | None = None
        self._clock: float | None = None  # loop time the last message was (due to be) sent
        self._anchor = 0.0  # recorded time of that message
        self._paused_at: float | None = None
        self._watchers = Watchers("replayer")
        self._watcher: asyncio.Task[None] | None = None
        target.on("message", self._on_reply)

    def __repr__(self) -> str:
        return f"<Replayer {self.direction} to {self.target.id} {self._state} {self._position}/{len(self.messages)}>"

    # -- state ----------------------------------------------------------------------

    @property
    def state(self) -> ReplayState:
        """``"ready"``, ``"playing"``, ``"paused"``, ``"done"``, ``"stopped"`` or ``"failed"``."""
        return self._state

    @property
    def position(self) -> int:
        """The index in :attr:`messages` of the next message to send."""
        return self._position

    @property
    def total(self) -> int:
        """How many messages the replay sends in all."""
        return len(self.messages)

    @property
    def progress(self) -> float:
        """The fraction of the messages sent, from 0.0 to 1.0."""
        return self._position / len(self.messages) if self.messages else 1.0

    @property
    def finished(self) -> bool:
        """True once it is done, stopped or failed."""
        return self._state in ("done", "stopped", "failed")

    @property
    def speed(self) -> float:
        """The speed factor of ``"timed"`` mode; may be changed while playing."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"speed must be a positive number (math.inf: no waiting), not {value!r}")
        self._speed = float(value)
        if hasattr(self, "_changed"):
            self._loop.call_soon_threadsafe(self._changed.set)
            self._notify()

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each message sent and each change of state."""
        self._watchers.add(callback)

    def unwatch(self, callback: Callable[[], None]) -> None:
        """Stop calling a callback given to :meth:`watch`."""
        self._watchers.remove(callback)

    def _notify(self) -> None:
        self._watchers.notify()

    def _set_state(self, state: ReplayState) -> None:
        self._state = state
        self._changed.set()
        if state in ("done", "stopped", "failed"):
            self.target.off("message", self._on_reply)
            watcher = self._watcher
            if watcher is not None and not watcher.done() and watcher is not _current_task():
                watcher.cancel()
            if self._finished is not None and not self._finished.done():
                self._finished.set_result(None)
        self._notify()

    # -- controls -------------------------------------------------------------------

    def play(self) -> None:
        """Start playing in the background, or resume after :meth:`pause`."""
        self._in_loop(self._play)

    def resume(self) -> None:
        """Go on playing after :meth:`pause` (the same as :meth:`play`)."""
        self.play()

    def _play(self) -> None:
        if self.finished:
            raise InvalidStateError(f"this replay is {self._state}: make a new Replayer to play again")
        if self._state == "playing":
            return
        now = self._loop.time()
        if self._paused_at is not None and self._clock is not None:
            self._clock += now - self._paused_at
        self._paused_at = None
        self._set_state("playing")
        self._watch_target()
        if self._task is None:
            self._task = self._loop.create_task(self._run())

    def pause(self) -> None:
        """Pause before the next message; :meth:`resume` goes on with the same gaps."""
        self._in_loop(self._pause)

    def _pause(self) -> None:
        if self._state in ("ready", "playing"):
            self._paused_at = self._loop.time()
            self._set_state("paused")

    def step(self) -> Message | None:
        """
        Send the next message now and return it (None when none is left); pauses a playing replay.

        Raises:
            nbws.InvalidStateError: if the target is not open, or the replay
                was stopped or failed.
        """
        return self._in_loop(self._step)

    def _step(self) -> Message | None:
        if self._state in ("stopped", "failed"):
            raise InvalidStateError(f"this replay is {self._state}")
        if self._position >= len(self.messages):
            return None
        self._pause()
        self._watch_target()
        message = self._send_next()
        self._paused_at = self._clock
        if self._position >= len(self.messages):
            self._set_state("done")
        return message

    def stop(self) -> None:
        """Stop for good: no more messages are sent; :meth:`done` returns."""
        self._in_loop(self._stop)

    def _stop(self) -> None:
        if not self.finished:
            self._set_state("stopped")

    def decoded(self, index: int) -> Decoded | None:
        """
        The decoded view (:mod:`nbws.codecs`) of message ``index``, or None if no
        codec knows it: edit it and give it to :meth:`edit`, which re-encodes it.

        The messages before it are decoded too, in order, for protocols with state.
        """
        from ..codecs import decode_events

        return decode_events(self.messages[: index % len(self.messages) + 1])[-1]

    def edit(self, index: int, data: str | bytes | Decoded) -> None:
        """
        Change the data of message ``index`` before it is sent (``str`` text, ``bytes`` binary,
        or an edited decoded view from :meth:`decoded`, re-encoded to its protocol's wire format).

        Raises:
            nbws.InvalidStateError: if that message was already sent.
            IndexError: if there is no such message.
            nbws.CodecError: if a decoded view cannot be encoded.
        """
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            from ..codecs import Decoded

            if isinstance(data, Decoded):
                data = data.encode()
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"message data must be str or bytes, not {type(data).__name__}")
        event = self.messages[index]
        index = index % len(self.messages)
        if index < self._position:
            raise InvalidStateError(f"message {index} was already sent")
        self.messages[index] = dataclasses.replace(event, data=data, original=None)
        self._edits[index] = data
        self._notify()

    @property
    def edits(self) -> dict[int, str | bytes]:
        """The messages changed by :meth:`edit`: index in :attr:`messages` -> the data sent instead (a copy)."""
        return dict(self._edits)

    def done(self, timeout: float | None = None) -> Pending[Replayer]:
        """
        Wait until the replay is done or stopped; return this replayer.

        Raises:
            nbws.ConnectionClosed: if the target closed before the end.
            nbws.InvalidStateError: if the target could not send.
            nbws.TimeoutError: for replies that did not come in ``"reactive"``
                mode, or after ``timeout`` seconds.
        """
        return Pending(self._loop, self._wait_done(timeout), "replay")

    async def _wait_done(self, timeout: float | None) -> Replayer:
        if not self.finished:
            if self._finished is None:
                self._finished = self._loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._finished), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"replay to {self.target.id}: not finished after {timeout:g} seconds "
                    f"({self._position}/{len(self.messages)} sent)"
                ) from None
        if self.error is not None:
            raise self.error
        return self

    def panel(self) -> Any:
        """A :class:`nbws.widgets.ReplayPanel` (an ipywidgets panel) for this replayer: the messages, play/pause/step/stop, speed, edit, progress."""
        panel = views.view(self)
        return panel

    def _in_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the target's loop: now if this thread runs it, else there, waiting for it."""
        if running_loop() is self._loop or not self._loop.is_running():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(call)
        return future.result()

    # -- playing --------------------------------------------------------------------

    def _count_replies(self) -> list[int]:
        """For each message, the replies the recording shows before the next one."""
        other: Direction = "receive" if self.direction == "send" else "send"
        counts = []
        for i, event in enumerate(self.messages):
            replies = self.recording.filter(connection=event.connection, direction=other)
            if not replies:
                counts.append(1)
                continue
            until = self.messages[i + 1].time if i + 1 < len(self.messages) else math.inf
            counts.append(sum(1 for reply in replies if event.time <= reply.time < until))
        return counts

    def _send_next(self) -> Message:
        event = self.messages[self._position]
        data = event.original if self.original and event.original is not None else event.data
        assert data is not None
        message = Message(data, "send", replayed=True)
        message.meta["recorded"] = event
        target = self.target
        try:
            target.send_message(message)
        except Exception as exc:
            if not (isinstance(exc, InvalidStateError) and target.ready_state in (CLOSING, CLOSED)):
                self.error = exc
                self._set_state("failed")
                raise
            close = target.close_event
            self.error = ConnectionClosed(close.code if close else 1006, close.reason if close else "")
            self._set_state("failed")
            raise self.error from exc
        self._position += 1
        self.sent.append(message)
        self._clock = self._loop.time()
        self._anchor = event.time
        self._notify()
        return message

    async def _run(self) -> None:
        loop = self._loop
        changed = self._changed
        try:
            while not self.finished:
                if self._position >= len(self.messages):
                    self._set_state("done")
                    break
                if self._state != "playing":
                    changed.clear()
                    await changed.wait()
                    continue
                if self.mode == "timed":
                    event = self.messages[self._position]
                    due = loop.time()
                    if self._clock is not None:
                        due = self._clock + max(0.0, event.time - self._anchor) / self._speed
                    delay = due - loop.time()
                    if delay > 0:
                        changed.clear()
                        try:
                            await asyncio.wait_for(changed.wait(), delay)
                        except asyncio.TimeoutError:
                            pass
                        continue
                    self._send_next()
                    self._clock = due  # keep to the schedule: a late send does not shift the rest
                else:
                    index = self._position
                    wanted = len(self.replies) + self._expected[index]
                    self._send_next()
                    await self._wait_replies(wanted, index)
        except Exception as exc:
            if not self.finished:
                self.error = exc
                self._set_state("failed")
        finally:
            if not self.finished:
                self._set_state("stopped")

    async def _wait_replies(self, wanted: int, index: int) -> None:
        deadline = self._loop.time() + self.reply_timeout
        while len(self.replies) < wanted and not self.finished:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"replay to {self.target.id}: no reply to message {index} within {self.reply_timeout:g} seconds "
                    f"(waiting for {wanted - len(self.replies)} more)"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def _on_reply(self, message: Message) -> None:
        self.replies.append(message)
        self._changed.set()

    def _watch_target(self) -> None:
        """Fail at once when the target closes for good (a reconnecting client is not closed for good)."""
        if self._watcher is None:
            # The wait runs to the target's end by itself: cancelling this replayer's watcher only stops
            # listening to it (cancelling a wait that has not started yet would leave its coroutine unawaited).
            closed = asyncio.ensure_future(self.target.closed())
            self._watcher = self._loop.create_task(self._target_closed(closed))

    async def _target_closed(self, closed: asyncio.Future[CloseEvent]) -> None:
        event = await asyncio.shield(closed)
        if not self.finished and self._position < len(self.messages):
            self.error = ConnectionClosed(event.code, event.reason)
            self._set_state("failed")


async def replay(
    recording: Recording | PathLike,
    target: BaseConnection,
    *,
    direction: Direction = "send",
    speed: float = 1.0,
    mode: Mode = "timed",
    connection: str | BaseConnection | None = None,
    original: bool = False,
    replies: int | None = None,
    reply_timeout: float = 10.0,
) -> Replayer:
    """
    Re-send the recorded messages of one direction to ``target`` and return when all are sent.

    ``mode="timed"`` keeps the recorded gaps, divided by ``speed``;
    ``mode="reactive"`` sends one message, waits for the replies that
    followed it in the recording, then sends the next. The target's
    transforms apply, and each message sent is marked ``replayed``. See
    :class:`Replayer` for the arguments and for pausing, stepping and editing.

    Returns:
        The finished :class:`Replayer`: ``.sent`` holds the messages sent,
        ``.replies`` what the target received meanwhile.

    Raises:
        nbws.ConnectionClosed: if the target closed before the end.
        nbws.TimeoutError: if replies did not come in ``"reactive"`` mode.
        ValueError: if the recording has messages of that direction on
            several connections and ``connection`` does not say which.
    """
    replayer = Replayer(
        recording,
        target,
        direction=direction,
        connection=connection,
        speed=speed,
        mode=mode,
        original=original,
        replies=replies,
        reply_timeout=reply_timeout,
    )
    replayer.play()
    try:
        return await replayer.done()
    except asyncio.CancelledError:
        replayer.stop()
        raise
