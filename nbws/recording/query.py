"""
:class:`Recording`: the events of one or more connections, in order, to query, filter and save.

It reads and writes the formats of :mod:`nbws.recording.jsonl` and
:mod:`nbws.recording.har`, and becomes a DataFrame through
:mod:`nbws.recording.dataframe`; this module only holds the events and answers questions about them.
"""

from __future__ import annotations

import codecs
import json
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from .. import views
from .._events import Direction
from ..exceptions import RecordingError
from . import har, jsonl
from .model import _EVENT_TYPES, EventType, PathLike, RecordedEvent, RecordingWarning, _json_error

if TYPE_CHECKING:
    from .._connection import BaseConnection

__all__ = ["Recording"]


class Recording(Sequence[RecordedEvent]):
    """
    The events of one or more connections, in the order they happened.

    A :class:`Recorder` fills one as events come (``rec.recording``);
    :meth:`load` reads one from a file. Index it, iterate it, or narrow it
    with :meth:`filter`; :meth:`messages` gives its messages alone.

    Args:
        events: The events, oldest first.
    """

    def __init__(self, events: Iterable[RecordedEvent] = ()) -> None:
        self._events: list[RecordedEvent] = list(events)

    # -- sequence -------------------------------------------------------------

    @overload
    def __getitem__(self, index: int) -> RecordedEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Recording: ...

    def __getitem__(self, index: int | slice) -> RecordedEvent | Recording:
        if isinstance(index, slice):
            return Recording(self._events[index])
        return self._events[index]

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[RecordedEvent]:
        return iter(self._events)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recording):
            return NotImplemented
        return self._events == other._events

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kinds = {kind: 0 for kind in _EVENT_TYPES}
        for event in self._events:
            kinds[event.type] += 1
        counts = " ".join(f"{kind}={n}" for kind, n in kinds.items() if n)
        return f"<Recording {len(self._events)} events on {len(self.connections)} connection(s){' ' if counts else ''}{counts}>"

    def append(self, event: RecordedEvent) -> None:
        """Add an event at the end."""
        if not isinstance(event, RecordedEvent):
            raise TypeError(f"a recording holds RecordedEvent objects, not {type(event).__name__}")
        self._events.append(event)

    def discard_oldest(self, count: int) -> None:
        """Forget the first ``count`` events (what a :class:`~nbws.Recorder` bounded by ``keep`` does)."""
        del self._events[: max(0, count)]

    @property
    def events(self) -> list[RecordedEvent]:
        """A copy of the events as a list."""
        return list(self._events)

    @property
    def connections(self) -> list[str]:
        """The connection ids in the order they first appear."""
        return list(dict.fromkeys(event.connection for event in self._events if event.connection))

    @property
    def start(self) -> float | None:
        """The time of the first event (seconds since the epoch), or None if empty."""
        return self._events[0].time if self._events else None

    @property
    def end(self) -> float | None:
        """The time of the last event, or None if empty."""
        return self._events[-1].time if self._events else None

    @property
    def duration(self) -> float:
        """Seconds from the first event to the last."""
        return (self._events[-1].time - self._events[0].time) if self._events else 0.0

    # -- narrowing ------------------------------------------------------------

    def filter(
        self,
        *,
        connection: str | BaseConnection | Iterable[str | BaseConnection] | None = None,
        direction: Direction | None = None,
        type: EventType | Iterable[EventType] | None = None,
        start: float | None = None,
        end: float | None = None,
        where: Callable[[RecordedEvent], bool] | None = None,
    ) -> Recording:
        """
        Return a new recording with the events that match every condition given.

        Args:
            connection: A connection id (or connection), or several.
            direction: ``"send"`` or ``"receive"``: only messages of that direction.
            type: An event type or several (``"message"``, ``"open"``, ...).
            start: Only events at or after this time (seconds since the epoch;
                use ``recording.start + offset`` for an offset).
            end: Only events before this time.
            where: A predicate on each event.
        """
        if direction not in (None, "send", "receive"):
            raise ValueError(f"direction must be 'send' or 'receive', not {direction!r}")
        connections = _connection_ids(connection) if connection is not None else None
        types: set[str] | None = None
        if type is not None:
            types = {type} if isinstance(type, str) else set(type)
            unknown = types - set(_EVENT_TYPES)
            if unknown:
                raise ValueError(f"unknown event type {sorted(unknown)[0]!r}: use one of {', '.join(_EVENT_TYPES)}")
        result = []
        for event in self._events:
            if connections is not None and event.connection not in connections:
                continue
            if direction is not None and event.direction != direction:
                continue
            if types is not None and event.type not in types:
                continue
            if start is not None and event.time < start:
                continue
            if end is not None and event.time >= end:
                continue
            if where is not None and not where(event):
                continue
            result.append(event)
        return Recording(result)

    def messages(
        self,
        direction: Direction | None = None,
        connection: str | BaseConnection | Iterable[str | BaseConnection] | None = None,
    ) -> Recording:
        """The message events alone, optionally of one direction or connection."""
        return self.filter(type="message", direction=direction, connection=connection)

    # -- files ----------------------------------------------------------------

    @classmethod
    def load(cls, path: PathLike) -> Recording:
        """
        Read a recording: an nbws JSON-lines file or a HAR file (format detected).

        A HAR file contributes its WebSocket entries (those with
        ``_webSocketMessages``, as Chrome exports them); other entries are
        skipped. A JSON-lines file is decoded line by line: one whose last
        line was cut short (a crash while writing, even inside a UTF-8
        character) loads every complete event before it, with a
        :class:`RecordingWarning`; a complete last line that only lacks its
        newline is loaded. Times must be seconds since the epoch, from 0 to
        the year 9999 (no NaN or infinity).

        Raises:
            nbws.RecordingError: (a ValueError) naming the file and the line,
                or the HAR entry and field, that is wrong.
            FileNotFoundError: if there is no such file.
        """
        path = Path(path)
        raw = path.read_bytes()
        if raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        stripped = raw.lstrip()
        if not stripped:
            raise RecordingError(f"{path}: the file is empty: it is neither an nbws recording nor a HAR file")
        first_line, newline, _ = stripped.partition(b"\n")
        try:
            first = json.loads(first_line)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            first = None
        if isinstance(first, dict) and "format" in first:
            return cls(jsonl.read_lines(raw, path))
        if first is None and not newline and jsonl.is_cut_header(first_line):
            warnings.warn(
                f"{path}, line 1: the file ends inside its header line (the recording process stopped "
                f"while writing it); it holds no events",
                RecordingWarning,
                stacklevel=2,
            )
            return cls()
        if isinstance(first, dict) and "log" not in first:
            jsonl.check_header(first, f"{path}, line 1")  # JSON lines without a header: say so
        if stripped[:1] != b"{":
            raise RecordingError(f"{path}, line 1: neither an nbws recording (JSON lines) nor a HAR file (JSON)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise RecordingError(f"{path}, line {line}: not valid UTF-8") from None
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RecordingError(f"{path}: not valid JSON for a HAR file: {_json_error(exc)}") from None
        return cls.from_har(document, source=str(path))

    def save(self, path: PathLike) -> Path:
        """Write the recording as an nbws JSON-lines file (replacing the file); return its path."""
        return jsonl.write(path, self._events)

    # -- HAR ------------------------------------------------------------------

    @classmethod
    def from_har(cls, document: object, *, source: str = "HAR") -> Recording:
        """
        Read the WebSocket messages of a HAR document (already parsed from JSON).

        Each entry with ``_webSocketMessages`` becomes one connection, with an
        open event at its ``startedDateTime``; its messages (``type`` send or
        receive, ``time`` in seconds since the epoch, ``opcode`` 1 for text or
        2 for binary with base64 ``data``) become message events, and its
        ``type: "error"`` frames error events. Control frames (opcodes 0, 8, 9,
        10) are skipped. Fields nbws adds (``_nbws``, ``_original``...)
        restore what HAR cannot say.

        Raises:
            nbws.RecordingError: naming the entry and field that is wrong.
        """
        return cls(har.events_from_har(document, source))

    def to_har_dict(self) -> dict[str, Any]:
        """The recording as a HAR 1.2 document (a dict ready for ``json.dump``); see :meth:`to_har`."""
        return har.to_har_dict(self._events, self.connections)

    def to_har(self, path: PathLike) -> Path:
        """
        Write the recording as a HAR file that a browser's developer tools open; return its path.

        Each connection becomes an entry with ``_resourceType: "websocket"``
        and its messages in ``_webSocketMessages``, as Chrome exports them.
        HAR only has messages that went over the wire: messages a transform
        dropped are left out. nbws keeps the rest (connection ids, close
        events, original data of changed messages, replayed flags) in fields
        starting with ``_``, which browsers ignore and :meth:`load` reads.
        """
        return har.write_har(path, self.to_har_dict())

    def panel(self, targets: Sequence[BaseConnection] | Callable[[], Iterable[BaseConnection]] = ()) -> Any:
        """A :class:`nbws.widgets.ReplayPanel` (an ipywidgets panel) to replay this recording to one of ``targets`` (a list, or a function returning one)."""
        return views.view(self, targets)

    # -- analysis -------------------------------------------------------------

    def to_dataframe(self, *, decode: bool = True) -> Any:
        """
        Return the events as a pandas DataFrame, one row per event.

        Columns: ``time`` (a UTC timestamp), ``offset`` (seconds since the
        first event), ``type``, ``connection``, ``role``, ``direction``,
        ``seq``, ``opcode``, ``size``, ``data``, ``original``, ``dropped``,
        ``replayed``, ``url``, ``code``, ``reason``, ``phase``, ``error``;
        with ``decode`` (the default), the protocol inside each message
        (:mod:`nbws.codecs`): ``protocol``, ``kind``, ``name`` (event, method,
        topic...), ``msg_id`` (the correlation id), ``latency`` (of a
        response, in seconds) and ``decode_error``.

        Raises:
            ImportError: if pandas is not installed (``pip install pandas``).
        """
        from .dataframe import to_dataframe

        return to_dataframe(self._events, decode=decode)


def _connection_ids(connection: str | BaseConnection | Iterable[str | BaseConnection]) -> set[str]:
    if isinstance(connection, str):
        return {connection}
    if not isinstance(connection, Iterable):
        return {connection.id}
    return {item if isinstance(item, str) else item.id for item in connection}
