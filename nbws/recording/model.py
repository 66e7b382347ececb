"""
The event model of a recording and its JSON encoding.

A :class:`RecordedEvent` is one open, message, close or error of a
connection; :meth:`RecordedEvent.to_json` and :meth:`RecordedEvent.from_json`
turn it into the JSON object of one line of a recording file and back,
checking every field (a wrong one is a :class:`nbws.RecordingError` that
names it). URLs and error texts are redacted with the policy of
:mod:`nbws.redact`, in memory as in files; payloads are kept as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Any, Literal

from .. import redact
from .._events import Direction, Message
from ..exceptions import RecordingError

__all__ = ["FORMAT", "FORMAT_VERSION", "EventType", "PathLike", "RecordedEvent", "RecordingWarning"]

FORMAT = "nbws-recording"
"""The ``format`` field of a recording's header line."""

FORMAT_VERSION = 1
"""The version of the JSON-lines format this nbws writes (and the highest it reads)."""

EventType = Literal["open", "message", "close", "error"]
"""The kind of a recorded event."""
PathLike = str | os.PathLike[str]
"""A file name: a ``str`` or a path object."""

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


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _json_error(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)
