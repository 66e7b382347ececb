"""
Record every event of a session to a JSON-lines file, and read recordings back.

A :class:`Recorder` is an ordinary plugin: register it globally
(``nbws.plugins.register(rec)``) or on one endpoint (``ws.plugins.register(rec)``,
``server.plugins.register(rec)``) and it captures each open, message (both
ways, as sent or delivered, with the original data when a transform changed
it), close and error. With a ``path`` it appends each event to that file as
one JSON line, flushed at once, so a kernel that crashes loses nothing
already recorded.

A :class:`Recording` is the list of those events in memory. It loads our
JSON-lines files and the HAR files browser developer tools export (Chrome's
``_webSocketMessages``), saves either format, filters, and becomes a pandas
DataFrame.

The JSON-lines format, version 1::

    {"format": "nbws-recording", "version": 1, "created": 1700000000.0, "nbws": "0.1.0"}
    {"type": "open", "time": 1700000000.1, "connection": "c1", "role": "client", "url": "ws://127.0.0.1:8765/"}
    {"type": "message", "time": ..., "connection": "c1", "role": "client", "direction": "send", "seq": 1, "opcode": 1, "data": "hello"}
    {"type": "message", ..., "opcode": 2, "data": "AAEC"}           (binary: base64)
    {"type": "message", ..., "original": "hi", "original_opcode": 1}   (a transform changed it)
    {"type": "message", ..., "dropped": true}                          (a transform dropped it)
    {"type": "message", ..., "leg": "upstream", "pair": "p1", "injected": true}   (on a relay; optional)
    {"type": "close", "time": ..., "connection": "c1", "role": "client", "code": 1000, "reason": "", "was_clean": true}
    {"type": "error", "time": ..., "connection": "c1", "role": "client", "phase": "receive", "error": "...", "plugin": null}

The first line is a header naming the format and its version. Loading never
executes anything: it only parses JSON. URLs and error texts are written
redacted with the policy of :mod:`nbws.redact` (``?token=REDACTED``), in
memory as in files; message payloads are recorded as they are.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime as _dt
import heapq
import importlib
import json
import logging
import os
import threading
import time as _time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import parse_qsl

from . import redact
from ._builtins import plugin_name, url_of
from ._connection import OPEN
from ._events import Direction, Message, Watchers, describe
from ._plugins import hookimpl
from .exceptions import RecordingError
from .relay import leg_of

if TYPE_CHECKING:
    from ._connection import BaseConnection
    from .recording_panels import RecorderPanel, ReplayPanel

__all__ = ["FORMAT", "FORMAT_VERSION", "RecordedEvent", "Recorder", "Recording", "RecordingWarning"]

logger = logging.getLogger("nbws")

FORMAT = "nbws-recording"
"""The ``format`` field of a recording's header line."""

FORMAT_VERSION = 1
"""The version of the JSON-lines format this nbws writes (and the highest it reads)."""

EventType = Literal["open", "message", "close", "error"]
PathLike = str | os.PathLike[str]

_EVENT_TYPES = ("open", "message", "close", "error")
_CONTROL_OPCODES = (0, 8, 9, 10)  # continuation, close, ping, pong: not messages


class RecordingWarning(UserWarning):
    """
    Not everything was kept: a recording loaded without its last line, which
    a crash cut short, or a :class:`Recorder` without a file started
    discarding its oldest events from memory.
    """


@dataclass(frozen=True)
class RecordedEvent:
    """
    One event of a recording.

    Attributes:
        type: ``"open"``, ``"message"``, ``"close"`` or ``"error"``.
        time: When it happened, in seconds since the epoch.
        connection: The id of its connection (``conn.id``; ``"har1"``... for
            a HAR file), or ``""`` for an error of a server itself.
        role: ``"client"`` or ``"server"``: which side recorded it (``""`` if unknown).
        direction: For a message, ``"send"`` or ``"receive"``, seen from the
            recording side; None for other events.
        seq: For a message, its number among its connection's messages of
            that direction, from 1.
        data: For a message, the data as sent or delivered: ``str`` for text,
            ``bytes`` for binary.
        original: For a message a transform changed, the data before the change.
        dropped: True for a message a transform dropped (never sent or delivered).
        replayed: True for a message re-sent by :func:`nbws.replay`.
        url: For an open event, the URL of the connection, redacted (see
            :mod:`nbws.redact`): recorded, loaded and written that way.
        code, reason, was_clean: For a close event.
        phase, error, plugin: For an error event: where it happened, what
            went wrong, and the plugin at fault (for phase ``"plugin"``).
        leg, pair: On a :class:`nbws.Relay`, the leg (``"client"`` or
            ``"upstream"``) and the pair id of the connection; None and ``""``
            elsewhere (and in files written before relays existed).
        injected: True for a message a relay injected.
    """

    type: EventType
    time: float
    connection: str = ""
    role: str = ""
    direction: Direction | None = None
    seq: int = 0
    data: str | bytes | None = None
    original: str | bytes | None = None
    dropped: bool = False
    replayed: bool = False
    url: str = ""
    code: int | None = None
    reason: str = ""
    was_clean: bool | None = None
    phase: str = ""
    error: str = ""
    plugin: str | None = None
    leg: str | None = None
    pair: str = ""
    injected: bool = False

    @property
    def flow(self) -> str | None:
        """On a relay, ``"client->upstream"`` or ``"upstream->client"`` for a message; else None."""
        if self.leg is None or self.direction is None:
            return None
        return "client->upstream" if (self.leg == "client") == (self.direction == "receive") else "upstream->client"

    @property
    def opcode(self) -> int | None:
        """For a message, the WebSocket opcode: 1 for text, 2 for binary; None otherwise."""
        if self.data is None:
            return None
        return 2 if isinstance(self.data, bytes) else 1

    @property
    def is_binary(self) -> bool:
        """True for a binary message."""
        return isinstance(self.data, bytes)

    @property
    def size(self) -> int:
        """For a message, the payload's size in bytes (UTF-8 for text); 0 otherwise."""
        data = self.data
        if data is None:
            return 0
        return len(data) if isinstance(data, bytes) else len(data.encode())

    @property
    def changed(self) -> bool:
        """True for a message a transform changed (``original`` holds the data before)."""
        return self.original is not None

    @classmethod
    def from_message(cls, message: Message, role: str = "", pair: str = "") -> RecordedEvent:
        """Record a :class:`nbws.Message` as it is now (after the transforms that ran); ``pair`` is its relay pair's id."""
        return cls(
            "message",
            message.time,
            message.connection,
            role,
            message.direction,
            message.seq,
            message.data,
            message.original if message.changed else None,
            message.dropped,
            message.replayed,
            leg=message.leg,
            pair=pair,
            injected=message.injected,
        )

    def to_json(self) -> dict[str, Any]:
        """The event as the JSON object of one line of a recording file."""
        obj: dict[str, Any] = {"type": self.type, "time": self.time, "connection": self.connection, "role": self.role}
        kind = self.type
        if kind == "message":
            assert self.data is not None
            obj["direction"] = self.direction
            obj["seq"] = self.seq
            obj["opcode"], obj["data"] = _encode(self.data)
            if self.original is not None:
                obj["original_opcode"], obj["original"] = _encode(self.original)
            if self.dropped:
                obj["dropped"] = True
            if self.replayed:
                obj["replayed"] = True
        elif kind == "open":
            obj["url"] = redact.url(self.url)
        elif kind == "close":
            obj["code"] = self.code
            obj["reason"] = self.reason
            obj["was_clean"] = self.was_clean
        else:
            obj["phase"] = self.phase
            obj["error"] = redact.text(self.error)
            obj["plugin"] = self.plugin
        if self.leg is not None:
            obj["leg"] = self.leg
            obj["pair"] = self.pair
        if self.injected:
            obj["injected"] = True
        return obj

    @classmethod
    def from_json(cls, obj: object) -> RecordedEvent:
        """
        Read an event from the JSON object of one line.

        Raises:
            nbws.RecordingError: saying which field is wrong (the caller adds where).
        """
        if not isinstance(obj, dict):
            raise RecordingError(f"expected a JSON object, found {_json_type(obj)}")
        kind = obj.get("type")
        if kind not in _EVENT_TYPES:
            raise RecordingError(f"'type' must be one of {', '.join(_EVENT_TYPES)}, not {kind!r}")
        when = _number(obj, "time")
        connection = _string(obj, "connection", "")
        role = _string(obj, "role", "")
        relay = _relay_fields(obj)
        if kind == "message":
            direction = obj.get("direction")
            if direction not in ("send", "receive"):
                raise RecordingError(f"'direction' must be 'send' or 'receive', not {direction!r}")
            seq = obj.get("seq", 0)
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise RecordingError(f"'seq' must be a non-negative integer, not {seq!r}")
            data = _decode(obj, "opcode", "data")
            original = _decode(obj, "original_opcode", "original") if "original" in obj else None
            return cls(
                "message",
                when,
                connection,
                role,
                direction,
                seq,
                data,
                original,
                _bool(obj, "dropped"),
                _bool(obj, "replayed"),
                **relay,
            )
        if kind == "open":
            return cls("open", when, connection, role, url=redact.url(_string(obj, "url", "")), **relay)
        if kind == "close":
            code = obj.get("code")
            if not isinstance(code, int) or isinstance(code, bool):
                raise RecordingError(f"'code' must be an integer close code, not {code!r}")
            was_clean = obj.get("was_clean")
            if was_clean is not None and not isinstance(was_clean, bool):
                raise RecordingError(f"'was_clean' must be true, false or null, not {was_clean!r}")
            return cls(
                "close",
                when,
                connection,
                role,
                code=code,
                reason=_string(obj, "reason", ""),
                was_clean=was_clean,
                **relay,
            )
        plugin = obj.get("plugin")
        if plugin is not None and not isinstance(plugin, str):
            raise RecordingError(f"'plugin' must be a string or null, not {plugin!r}")
        return cls(
            "error",
            when,
            connection,
            role,
            phase=_string(obj, "phase", ""),
            error=_string(obj, "error", ""),
            plugin=plugin,
            **relay,
        )

    def __repr__(self) -> str:
        where = f"{self.connection} " if self.connection else ""
        if self.type == "message":
            data = self.data
            assert data is not None
            preview = repr(data if len(data) <= 40 else data[:37]) + ("..." if len(data) > 40 else "")
            flags = " dropped" if self.dropped else ""
            flags += " replayed" if self.replayed else ""
            flags += " injected" if self.injected else ""
            flags += " changed" if self.changed else ""
            return f"<RecordedEvent {where}{self.direction} #{self.seq}{flags}: {preview}>"
        if self.type == "close":
            return f"<RecordedEvent {where}close {self.code} {self.reason!r}>"
        if self.type == "error":
            return f"<RecordedEvent {where}error {self.phase}: {self.error}>"
        return f"<RecordedEvent {where}open {redact.url(self.url)}>"


def _relay_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The optional relay fields of a line (``leg``, ``pair``, ``injected``), checked."""
    fields: dict[str, Any] = {}
    if "leg" in obj:
        leg = obj["leg"]
        if leg not in ("client", "upstream"):
            raise RecordingError(f"'leg' must be 'client' or 'upstream', not {leg!r}")
        fields["leg"] = leg
        fields["pair"] = _string(obj, "pair", "")
    if "injected" in obj:
        fields["injected"] = _bool(obj, "injected")
    return fields


def _relay_of(conn: BaseConnection | None) -> dict[str, Any]:
    """The relay fields of a connection's events: its leg and pair, if it is a relay's leg."""
    found = leg_of(conn) if conn is not None else None
    return {"leg": found[1], "pair": found[0].id} if found is not None else {}


def _encode(data: str | bytes) -> tuple[int, str]:
    if isinstance(data, bytes):
        return 2, base64.b64encode(data).decode("ascii")
    return 1, data


def _decode(obj: dict[str, Any], opcode_key: str, data_key: str) -> str | bytes:
    opcode = obj.get(opcode_key)
    data = obj.get(data_key)
    if opcode not in (1, 2) or isinstance(opcode, bool):
        raise RecordingError(f"{opcode_key!r} must be 1 (text) or 2 (binary), not {opcode!r}")
    if not isinstance(data, str):
        raise RecordingError(f"{data_key!r} must be a string, not {_json_type(data)}")
    if opcode == 1:
        return data
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RecordingError(f"{data_key!r} of a binary message (opcode 2) is not valid base64") from None


# The times a recording may hold: from the epoch to the last second datetime can show (year 9999).
# NaN, infinities and absurd values would make to_har(), to_dataframe() and timed replays fail or wait forever.
_MAX_TIME = 253402300799.0


def _time_value(value: object) -> float | None:
    """``value`` as a time in seconds since the epoch, or None if it is not a plausible one."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        when = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return when if 0.0 <= when <= _MAX_TIME else None  # False for NaN too


def _number(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    when = _time_value(value)
    if when is None:
        raise RecordingError(
            f"{key!r} must be a number of seconds since the epoch, from 0 to {_MAX_TIME:.0f} (year 9999), not {value!r}"
        )
    return when


def _string(obj: dict[str, Any], key: str, default: str) -> str:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RecordingError(f"{key!r} must be a string, not {_json_type(value)}")
    return value


def _bool(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise RecordingError(f"{key!r} must be true or false, not {value!r}")
    return value


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, (int, float)) else type(value).__name__


_HEADER_START = b'{"format":"' + FORMAT.encode() + b'"'


def _is_cut_header(line: bytes) -> bool:
    """Whether ``line`` is the start of a header line as a :class:`Recorder` writes it, cut short."""
    line = line.rstrip(b"\r")
    return bool(line) and (_HEADER_START.startswith(line) or line.startswith(_HEADER_START))


def _header() -> dict[str, Any]:
    from . import __version__

    return {"format": FORMAT, "version": FORMAT_VERSION, "created": _time.time(), "nbws": __version__}


def _check_header(obj: object, where: str) -> None:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise RecordingError(
            f"{where}: not an nbws recording: the first line must be its header {{'format': {FORMAT!r}, ...}}"
        )
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordingError(f"{where}: the header's 'version' must be a positive integer, not {version!r}")
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{where}: recording format version {version} is newer than this nbws reads ({FORMAT_VERSION}): upgrade nbws"
        )


# -------------------------------------------------------------------------
# Recording
# -------------------------------------------------------------------------


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
            return cls._from_lines(raw, path)
        if first is None and not newline and _is_cut_header(first_line):
            warnings.warn(
                f"{path}, line 1: the file ends inside its header line (the recording process stopped "
                f"while writing it); it holds no events",
                RecordingWarning,
                stacklevel=2,
            )
            return cls()
        if isinstance(first, dict) and "log" not in first:
            _check_header(first, f"{path}, line 1")  # JSON lines without a header: say so
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

    @classmethod
    def _from_lines(cls, raw: bytes, path: Path) -> Recording:
        # Each line is decoded by itself: a character cut in two by a crash spoils only its own line.
        lines = raw.split(b"\n")
        complete = raw.endswith(b"\n")
        events: list[RecordedEvent] = []
        header_seen = False
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            last = number == len(lines)
            try:
                obj = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError) as exc:
                if last and not complete:
                    warnings.warn(
                        f"{path}, line {number}: the last line is cut short (the recording process stopped "
                        f"while writing it); loaded the {len(events)} events before it",
                        RecordingWarning,
                        stacklevel=3,
                    )
                    break
                if isinstance(exc, UnicodeDecodeError):
                    raise RecordingError(f"{path}, line {number}: not valid UTF-8") from None
                raise RecordingError(f"{path}, line {number}: invalid JSON: {_json_error(exc)}") from None
            if not header_seen:
                _check_header(obj, f"{path}, line {number}")
                header_seen = True
                continue
            if isinstance(obj, dict) and obj.get("format") == FORMAT:
                continue  # the header of a later session appended to the same file
            try:
                events.append(RecordedEvent.from_json(obj))
            except RecordingError as exc:
                raise RecordingError(f"{path}, line {number}: {exc}") from None
        return cls(events)

    def save(self, path: PathLike) -> Path:
        """Write the recording as an nbws JSON-lines file (replacing the file); return its path."""
        path = Path(path)
        with path.open("w", encoding="utf-8", newline="\n") as f:
            f.write(_dumps(_header()))
            for event in self._events:
                f.write(_dumps(event.to_json()))
        return path

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
        if not isinstance(document, dict) or not isinstance(document.get("log"), dict):
            raise RecordingError(f"{source}: not a HAR file: there is no 'log' object")
        entries = document["log"].get("entries")
        if not isinstance(entries, list):
            raise RecordingError(f"{source}: log.entries must be an array, not {_json_type(entries)}")
        per_entry: list[list[RecordedEvent]] = []
        for index, entry in enumerate(entries):
            where = f"{source}: log.entries[{index}]"
            if not isinstance(entry, dict):
                raise RecordingError(f"{where}: expected an object, found {_json_type(entry)}")
            frames = entry.get("_webSocketMessages")
            if frames is None:
                continue
            if not isinstance(frames, list):
                raise RecordingError(f"{where}._webSocketMessages must be an array, not {_json_type(frames)}")
            per_entry.append(_har_entry_events(entry, frames, index, where))
        # Each connection keeps its own order; connections interleave by time.
        return cls(heapq.merge(*per_entry, key=lambda event: event.time))

    def to_har_dict(self) -> dict[str, Any]:
        """The recording as a HAR 1.2 document (a dict ready for ``json.dump``); see :meth:`to_har`."""
        from . import __version__

        entries = []
        for connection in self.connections:
            events = [event for event in self._events if event.connection == connection]
            entries.append(_har_entry(connection, events))
        return {
            "log": {
                "version": "1.2",
                "creator": {"name": "nbws", "version": __version__},
                "pages": [],
                "entries": entries,
            }
        }

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
        path = Path(path)
        with path.open("w", encoding="utf-8", newline="\n") as f:
            json.dump(self.to_har_dict(), f, ensure_ascii=False, indent=1)
            f.write("\n")
        return path

    def panel(self, targets: Sequence[BaseConnection] | Callable[[], Iterable[BaseConnection]] = ()) -> ReplayPanel:
        """An ipywidgets panel to replay this recording to one of ``targets`` (a list, or a function returning one)."""
        from .recording_panels import ReplayPanel

        return ReplayPanel(self, targets)

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
        try:
            pd = importlib.import_module("pandas")
        except ImportError:
            raise ImportError(
                "Recording.to_dataframe() needs pandas, which is not installed: pip install pandas"
            ) from None
        start = self.start or 0.0
        rows = [
            {
                "time": event.time,
                "offset": event.time - start,
                "type": event.type,
                "connection": event.connection,
                "role": event.role,
                "direction": event.direction,
                "seq": event.seq if event.type == "message" else None,
                "opcode": event.opcode,
                "size": event.size if event.type == "message" else None,
                "data": event.data,
                "original": event.original,
                "dropped": event.dropped,
                "replayed": event.replayed,
                "url": event.url or None,
                "code": event.code,
                "reason": event.reason or None,
                "phase": event.phase or None,
                "error": event.error or None,
            }
            for event in self._events
        ]
        if decode:
            from .codecs._tables import decode_events, decoded_columns

            for row, view in zip(rows, decode_events(self._events), strict=True):
                row.update(decoded_columns(view))
        columns = list(rows[0]) if rows else ["time", "offset", "type", "connection", "direction", "data"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
        for column in ("seq", "opcode", "size", "code"):
            if column in frame:
                frame[column] = frame[column].astype("Int64")
        return frame


def _connection_ids(connection: str | BaseConnection | Iterable[str | BaseConnection]) -> set[str]:
    if isinstance(connection, str):
        return {connection}
    if not isinstance(connection, Iterable):
        return {connection.id}
    return {item if isinstance(item, str) else item.id for item in connection}


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _json_error(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


# -- HAR reading -------------------------------------------------------------------


def _parse_datetime(value: object, where: str) -> float:
    if not isinstance(value, str):
        raise RecordingError(f"{where}.startedDateTime must be an ISO 8601 date string, not {_json_type(value)}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise RecordingError(f"{where}.startedDateTime is not an ISO 8601 date: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    when = _time_value(moment.timestamp())
    if when is None:
        raise RecordingError(f"{where}.startedDateTime is before 1970: {value!r}")
    return when


def _har_entry_events(entry: dict[str, Any], frames: list[Any], index: int, where: str) -> list[RecordedEvent]:
    extra = entry.get("_nbws")
    if extra is not None and not isinstance(extra, dict):
        raise RecordingError(f"{where}._nbws must be an object, not {_json_type(extra)}")
    extra = extra or {}
    connection = extra.get("connection") or f"har{index + 1}"
    role = extra.get("role") or "client"
    if not isinstance(connection, str) or not isinstance(role, str):
        raise RecordingError(f"{where}._nbws: 'connection' and 'role' must be strings")
    request = entry.get("request")
    url = request.get("url", "") if isinstance(request, dict) else ""
    if not isinstance(url, str):
        raise RecordingError(f"{where}.request.url must be a string, not {_json_type(url)}")
    events = []
    seqs = {"send": 0, "receive": 0}
    for number, frame in enumerate(frames):
        here = f"{where}._webSocketMessages[{number}]"
        if not isinstance(frame, dict):
            raise RecordingError(f"{here}: expected an object, found {_json_type(frame)}")
        kind = frame.get("type")
        if kind not in ("send", "receive", "error"):
            raise RecordingError(f"{here}.type must be 'send', 'receive' or 'error', not {kind!r}")
        when = _time_value(frame.get("time"))
        if when is None:
            raise RecordingError(
                f"{here}.time must be a number of seconds since the epoch, from 0 to {_MAX_TIME:.0f} "
                f"(year 9999), not {frame.get('time')!r}"
            )
        data = frame.get("data", "")
        if not isinstance(data, str):
            raise RecordingError(f"{here}.data must be a string, not {_json_type(data)}")
        opcode = frame.get("opcode")
        if kind == "error":
            events.append(RecordedEvent("error", when, connection, role, phase="receive", error=data))
            continue
        if not isinstance(opcode, int) or isinstance(opcode, bool):
            raise RecordingError(f"{here}.opcode must be an integer (1 text, 2 binary), not {opcode!r}")
        if opcode in _CONTROL_OPCODES:
            continue
        try:
            payload = _decode({"opcode": opcode, "data": data}, "opcode", "data")
            original = _decode(frame, "_originalOpcode", "_original") if "_original" in frame else None
        except RecordingError as exc:
            raise RecordingError(f"{here}: {exc}") from None
        seqs[kind] += 1
        events.append(
            RecordedEvent(
                "message",
                when,
                connection,
                role,
                kind,
                seqs[kind],
                payload,
                original,
                replayed=frame.get("_replayed") is True,
            )
        )
    if "startedDateTime" in entry or not events:
        opened = _parse_datetime(entry.get("startedDateTime"), where)
    else:
        opened = events[0].time
    if extra.get("openTime") is not None:
        open_time = _time_value(extra["openTime"])
        if open_time is None:
            raise RecordingError(
                f"{where}._nbws.openTime must be a number of seconds since the epoch, from 0 to {_MAX_TIME:.0f} "
                f"(year 9999), not {extra['openTime']!r}"
            )
        opened = open_time
    events.insert(0, RecordedEvent("open", opened, connection, role, url=redact.url(url)))
    close = extra.get("close")
    if close is not None:
        try:
            events.append(RecordedEvent.from_json({**close, "type": "close", "connection": connection, "role": role}))
        except RecordingError as exc:
            raise RecordingError(f"{where}._nbws.close: {exc}") from None
    return events


# -- HAR writing -------------------------------------------------------------------


def _iso(when: float) -> str:
    moment = _dt.datetime.fromtimestamp(when, _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _har_entry(connection: str, events: list[RecordedEvent]) -> dict[str, Any]:
    opened = next((event for event in events if event.type == "open"), None)
    closed = next((event for event in reversed(events) if event.type == "close"), None)
    role = events[0].role
    url = redact.url(opened.url) if opened else ""
    frames: list[dict[str, Any]] = []
    for event in events:
        if event.type == "message" and not event.dropped:
            assert event.data is not None
            opcode, data = _encode(event.data)
            frame: dict[str, Any] = {"type": event.direction, "time": event.time, "opcode": opcode, "data": data}
            if event.original is not None:
                frame["_originalOpcode"], frame["_original"] = _encode(event.original)
            if event.replayed:
                frame["_replayed"] = True
            if event.injected:
                frame["_injected"] = True
            frames.append(frame)
        elif event.type == "error":
            frames.append({"type": "error", "time": event.time, "opcode": -1, "data": redact.text(event.error)})
    start = opened.time if opened else events[0].time
    end = closed.time if closed else events[-1].time
    query = []
    if "?" in url:
        pairs = redact.query(parse_qsl(url.split("?", 1)[1], keep_blank_values=True))
        query = [{"name": k, "value": v} for k, v in pairs]
    extra: dict[str, Any] = {"connection": connection, "role": role, "openTime": start}
    if events[0].leg is not None:
        extra["leg"], extra["pair"] = events[0].leg, events[0].pair
    if closed is not None:
        extra["close"] = {
            "time": closed.time,
            "code": closed.code,
            "reason": closed.reason,
            "was_clean": closed.was_clean,
        }
    return {
        "startedDateTime": _iso(start),
        "time": max(0.0, (end - start) * 1000),
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [],
            "queryString": query,
            "cookies": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": 101,
            "statusText": "Switching Protocols",
            "httpVersion": "HTTP/1.1",
            "headers": [],
            "cookies": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "_transferSize": 0,
            "_error": None,
        },
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "ssl": -1, "connect": -1, "send": 0, "wait": 0, "receive": 0},
        "_resourceType": "websocket",
        "_webSocketMessages": frames,
        "_nbws": extra,
    }


# -------------------------------------------------------------------------
# Recorder
# -------------------------------------------------------------------------


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


def _complete_line(line: bytes) -> bool:
    """Whether ``line`` (without its newline) is a whole JSON object, as each line of a recording is."""
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except (ValueError, RecursionError):
        return False


def _drop_cut_line(path: Path) -> None:
    """Before appending to a recording, remove a last line a crash cut short (it would end up in the middle)."""
    with path.open("rb+") as f:
        end = f.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - 65536)
            f.seek(start)
            chunk = f.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline != -1:
                position = start + newline + 1
                break
            position = start
        if position == end:
            return
        f.seek(position)
        if _complete_line(f.read(end - position)):
            # Only its newline is missing: keep the event, end its line.
            f.seek(end)
            f.write(b"\n")
            return
        f.truncate(position)
    warnings.warn(
        f"{path}: its last line was cut short (the process that recorded it stopped while writing); "
        f"removed that line ({end - position} bytes) before appending",
        RecordingWarning,
        stacklevel=4,
    )


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
        self._file: Any = None
        self._lock = threading.Lock()
        self._live: dict[str, BaseConnection] = {}
        self._watchers = Watchers("recorder")
        if self.path is not None:
            self._check_existing(self.path)

    def __repr__(self) -> str:
        state = "recording" if self._active else "stopped"
        where = f" to {self.path}" if self.path else ""
        return f"<Recorder {self.__name__} {state}{where}: {len(self.recording)} events>"

    @staticmethod
    def _check_existing(path: Path) -> None:
        try:
            with path.open("rb") as f:
                first = f.readline()
        except FileNotFoundError:
            return
        if not first.strip():
            return
        try:
            obj = json.loads(first)
        except (ValueError, RecursionError):
            obj = None
        if obj is None and not first.endswith(b"\n") and _is_cut_header(first):
            _drop_cut_line(path)  # a crash while writing the header: start the file again
            return
        _check_header(obj, f"{path}, line 1")
        _drop_cut_line(path)

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
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
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
        if self.discarded and self.path is not None:
            with self._lock:
                if self._file is not None:
                    self._file.flush()
            return Recording.load(self.path).to_har(path)
        return self.recording.to_har(path)

    def watch(self, callback: Callable[[RecordedEvent | None], None]) -> None:
        """Call ``callback(event)`` after each event recorded, and ``callback(None)`` when it starts or stops."""
        self._watchers.add(callback)

    def unwatch(self, callback: Callable[[RecordedEvent | None], None]) -> None:
        """Stop calling a callback given to :meth:`watch`."""
        self._watchers.remove(callback)

    def panel(self) -> RecorderPanel:
        """An ipywidgets panel: start/stop, file name, counts, save as HAR, and replay."""
        from .recording_panels import RecorderPanel

        return RecorderPanel(self)

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
        if self.path is not None:
            line = _dumps(event.to_json())
            with self._lock:
                f = self._file
                if f is None:
                    f = self._file = self._open()
                    # Closed at exit or when the recorder is collected, without a ResourceWarning.
                    weakref.finalize(self, f.close)
                f.write(line)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
        self._notify(event)

    def _discard(self) -> None:
        """Discard the oldest events from memory, down to three quarters of the limits (one cheap cut)."""
        events = self.recording._events
        count = len(events) - int(self.keep * 3 / 4) if len(events) > self.keep else 0
        freed = sum(_payload(event) for event in events[:count])
        target = self.keep_bytes * 3 / 4
        while self._kept_bytes - freed > target and count < len(events):
            freed += _payload(events[count])
            count += 1
        del events[:count]
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

    def _open(self) -> Any:
        assert self.path is not None
        f = self.path.open("a", encoding="utf-8", newline="\n")
        if f.tell() == 0:
            f.write(_dumps(_header()))
        return f

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
                )
            )

    @hookimpl
    def nbws_panel(self, dashboard: Any) -> tuple[str, Any]:
        """Contribute the recorder's panel to a dashboard (hook)."""
        return ("Recorder", self.panel())
