"""
:class:`Recorder`: the plugin that records every event of the connections it sees.

Register it globally (``nbws.plugins.register(rec)``) or on one endpoint
(``ws.plugins.register(rec)``, ``server.plugins.register(rec)``) and it
captures each open, message (both ways, as sent or delivered, with the
original data when a transform changed it), close and error. With a ``path``
it appends each event to that file as one JSON line through the shared
:class:`~nbws.recording.jsonl.JsonLinesWriter`, flushed at once, so a kernel
that crashes loses nothing already recorded.
"""

from __future__ import annotations

import time as _time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import redact, views
from .._connection import OPEN
from .._events import Message, Watchers, describe
from .._plugins import hookimpl
from ..builtins._common import plugin_name, url_of
from ..relay import leg_of
from . import jsonl
from .model import PathLike, RecordedEvent, RecordingWarning
from .query import Recording

if TYPE_CHECKING:
    from .._connection import BaseConnection

__all__ = ["Recorder"]


def _relay_of(conn: BaseConnection | None) -> dict[str, Any]:
    """The relay fields of a connection's events: its leg and pair, if it is a relay's leg."""
    found = leg_of(conn) if conn is not None else None
    return {"leg": found[1], "pair": found[0].id} if found is not None else {}


def _limit(name: str, value: float | None, default: int) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
        raise ValueError(f"{name} must be a positive number (math.inf for no limit), not {value!r}")
    return value


def _payload(event: RecordedEvent) -> int:
    """Roughly what an event holds in memory beyond itself: its payload's length."""
    size = len(event.data) if event.data is not None else 0
    return size + len(event.original) if event.original is not None else size


class Recorder:
    """
    A plugin that records every event of the connections it sees.

    Register it globally to record every endpoint, or on one endpoint::

        rec = nbws.Recorder("session.jsonl")
        nbws.plugins.register(rec)
        ...
        rec.recording.messages("send")

    It captures opens (with the URL), messages both ways as they were sent
    or delivered (with the original data when a transform changed it, and
    those a transform dropped), closes with code and reason, and errors.
    With ``path`` each event is also appended to that JSON-lines file and
    flushed at once (and, with ``fsync=True``, forced to disk), so a crash of
    the kernel loses nothing already recorded. An existing recording file is
    appended to.

    Args:
        path: The JSON-lines file to append to, or None to record in memory only.
        fsync: Also ``os.fsync`` after each event: survives a power cut, at
            a cost of about a millisecond per event.
        active: Start recording at once (else call :meth:`start`).
        keep: How many of the latest events :attr:`recording` holds in memory
            (``math.inf``: all). By default 10,000 with a ``path`` (the file
            has every event) and 100,000 without one.
        keep_bytes: How many payload bytes (characters for text) those events
            may hold (``math.inf``: no limit). By default 16 MiB with a
            ``path`` and 128 MiB without one.

    Memory stays bounded: once :attr:`recording` holds more than ``keep``
    events or ``keep_bytes`` of payload, its oldest quarter is discarded
    from memory (:attr:`discarded` counts them). With a ``path`` the file
    still has every event (``nbws.Recording.load(rec.path)`` reads them all
    back); without one they are lost, and the first discard says so with a
    :class:`RecordingWarning`: give a ``path`` to record long sessions.

    Attributes:
        recording: The :class:`Recording` of the latest events recorded,
            growing as events come (see ``keep``).
        path: The file, or None.
        counts: Events recorded by kind: ``open``, ``send``, ``receive``,
            ``close``, ``error`` (discarded ones included).
        discarded: How many events were discarded from :attr:`recording`.
    """

    def __init__(
        self,
        path: PathLike | None = None,
        *,
        fsync: bool = False,
        active: bool = True,
        keep: float | None = None,
        keep_bytes: float | None = None,
    ) -> None:
        self.__name__ = plugin_name("recorder")
        self.path: Path | None = Path(path) if path is not None else None
        self.fsync = fsync
        on_disk = self.path is not None
        self.keep = _limit("keep", keep, 10_000 if on_disk else 100_000)
        self.keep_bytes = _limit("keep_bytes", keep_bytes, (16 if on_disk else 128) * 2**20)
        self.discarded = 0
        self._kept_bytes = 0
        self.recording = Recording()
        self.counts: dict[str, int] = {"open": 0, "send": 0, "receive": 0, "close": 0, "error": 0}
        self._active = active
        self._writer: jsonl.JsonLinesWriter | None = None
        self._live: dict[str, BaseConnection] = {}
        self._watchers = Watchers("recorder")
        if self.path is not None:
            jsonl.check_appendable(self.path)
            self._writer = jsonl.JsonLinesWriter(self.path, header=jsonl.new_header, fsync=fsync)

    def __repr__(self) -> str:
        state = "recording" if self._active else "stopped"
        where = f" to {self.path}" if self.path else ""
        return f"<Recorder {self.__name__} {state}{where}: {len(self.recording)} events>"

    # -- control ----------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while it records (see :meth:`start` and :meth:`stop`)."""
        return self._active

    def start(self) -> None:
        """Start (or resume) recording."""
        self._active = True
        self._notify(None)

    def stop(self) -> None:
        """Stop recording; events until :meth:`start` are not recorded. The file stays open."""
        self._active = False
        self._notify(None)

    def close(self) -> None:
        """Stop recording and close the file (a later :meth:`start` appends to it again)."""
        self._active = False
        if self._writer is not None:
            self._writer.close()
        self._notify(None)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def connections(self) -> list[BaseConnection]:
        """The open connections it has seen open, oldest first (targets for a replay)."""
        return [conn for conn in self._live.values() if conn.ready_state is OPEN]

    def save_har(self, path: PathLike) -> Path:
        """
        Write what was recorded as a HAR file (see :meth:`Recording.to_har`).

        Once events were discarded from memory (see ``keep``), a recorder with
        a ``path`` writes everything its file holds instead.
        """
        if self.discarded and self._writer is not None:
            self._writer.flush()
            return Recording.load(self._writer.path).to_har(path)
        return self.recording.to_har(path)

    def watch(self, callback: Callable[[RecordedEvent | None], None]) -> None:
        """Call ``callback(event)`` after each event recorded, and ``callback(None)`` when it starts or stops."""
        self._watchers.add(callback)

    def unwatch(self, callback: Callable[[RecordedEvent | None], None]) -> None:
        """Stop calling a callback given to :meth:`watch`."""
        self._watchers.remove(callback)

    def panel(self) -> Any:
        """A :class:`nbws.widgets.RecorderPanel` (an ipywidgets panel): start/stop, file name, counts, save as HAR, and replay."""
        panel = views.view(self)
        return panel

    # -- recording ---------------------------------------------------------------

    def record(self, event: RecordedEvent) -> None:
        """Record one event: add it to :attr:`recording` and append it to the file."""
        self.recording.append(event)
        self._kept_bytes += _payload(event)
        if len(self.recording) > self.keep or self._kept_bytes > self.keep_bytes:
            self._discard()
        key = event.direction if event.type == "message" else event.type
        assert key is not None
        self.counts[key] += 1
        if self._writer is not None:
            self._writer.fsync = self.fsync
            self._writer.write(event.to_json())
        self._notify(event)

    def _discard(self) -> None:
        """Discard the oldest events from memory, down to three quarters of the limits (one cheap cut)."""
        events = self.recording
        count = len(events) - int(self.keep * 3 / 4) if len(events) > self.keep else 0
        freed = sum(_payload(events[i]) for i in range(count))
        target = self.keep_bytes * 3 / 4
        while self._kept_bytes - freed > target and count < len(events):
            freed += _payload(events[count])
            count += 1
        events.discard_oldest(count)
        self._kept_bytes -= freed
        if not self.discarded and self.path is None:
            warnings.warn(
                f"{self.__name__} records in memory only and holds at most {self.keep:g} events and "
                f"{self.keep_bytes:g} payload bytes: the oldest are discarded from now on. Give it a path= "
                f"to keep every event in a file, or raise keep= / keep_bytes=",
                RecordingWarning,
                stacklevel=2,
            )
        self.discarded += count

    def _notify(self, event: RecordedEvent | None) -> None:
        self._watchers.notify(event)

    # -- hooks --------------------------------------------------------------------

    @hookimpl
    def nbws_open(self, conn: BaseConnection) -> None:
        """Record the opening of ``conn`` (hook)."""
        self._live[conn.id] = conn
        if self._active:
            self.record(
                RecordedEvent("open", _time.time(), conn.id, conn.role, url=redact.url(url_of(conn)), **_relay_of(conn))
            )

    @hookimpl
    def nbws_message_sent(self, conn: BaseConnection, message: Message) -> None:
        """Record a message as sent, or as dropped (hook)."""
        if self._active:
            self.record(RecordedEvent.from_message(message, conn.role, _relay_of(conn).get("pair", "")))

    @hookimpl
    def nbws_message_received(self, conn: BaseConnection, message: Message) -> None:
        """Record a message as delivered, or as dropped (hook)."""
        if self._active:
            self.record(RecordedEvent.from_message(message, conn.role, _relay_of(conn).get("pair", "")))

    @hookimpl
    def nbws_close(self, conn: BaseConnection, code: int, reason: str, was_clean: bool) -> None:
        """Record the close of ``conn`` with its code and reason (hook)."""
        self._live.pop(conn.id, None)
        if self._active:
            self.record(
                RecordedEvent(
                    "close",
                    _time.time(),
                    conn.id,
                    conn.role,
                    code=code,
                    reason=reason,
                    was_clean=was_clean,
                    **_relay_of(conn),
                )
            )

    @hookimpl
    def nbws_error(self, conn: BaseConnection | None, error: BaseException, phase: str, plugin: str | None) -> None:
        """Record an error (hook)."""
        if self._active:
            self.record(
                RecordedEvent(
                    "error",
                    _time.time(),
                    conn.id if conn is not None else "",
                    conn.role if conn is not None else "server",
                    phase=phase,
                    error=redact.text(describe(error)),
                    plugin=plugin,
                    **_relay_of(conn),  # on a relay's leg, as its other events (and as HAR reloads it)
                )
            )

    @hookimpl
    def nbws_panel(self, dashboard: Any) -> tuple[str, Any]:
        """Contribute the recorder's panel to a dashboard (hook)."""
        return ("Recorder", self.panel())
