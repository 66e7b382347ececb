"""
HAR files: read the WebSocket messages browser developer tools export, and write them.

Chrome (and other browsers) export a page's WebSocket traffic in HAR 1.2
entries with ``_resourceType: "websocket"`` and the frames in
``_webSocketMessages``. nbws writes the same, so a browser opens its
recordings, and keeps what HAR cannot say (connection ids, roles, relay legs
and pairs, close events, original data of changed messages, replayed and
injected flags) in fields starting with ``_``, which browsers ignore and
:func:`events_from_har` reads back.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from .. import redact
from ..exceptions import RecordingError
from .model import (
    _CONTROL_OPCODES,
    _MAX_TIME,
    PathLike,
    RecordedEvent,
    _decode,
    _encode,
    _json_type,
    _relay_fields,
    _time_value,
)

__all__ = ["events_from_har", "to_har_dict", "write_har"]


def events_from_har(document: object, source: str = "HAR") -> list[RecordedEvent]:
    """
    The events of the WebSocket entries of a HAR document (already parsed from JSON).

    Each entry with ``_webSocketMessages`` becomes one connection; entries
    without are skipped. See :meth:`nbws.Recording.from_har`.

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
    return list(heapq.merge(*per_entry, key=lambda event: event.time))


def to_har_dict(events: Sequence[RecordedEvent], connections: Sequence[str]) -> dict[str, Any]:
    """``events`` as a HAR 1.2 document (a dict ready for ``json.dump``), one entry per connection."""
    from .. import __version__

    entries = []
    for connection in connections:
        entries.append(_har_entry(connection, [event for event in events if event.connection == connection]))
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "nbws", "version": __version__},
            "pages": [],
            "entries": entries,
        }
    }


def write_har(path: PathLike, document: dict[str, Any]) -> Path:
    """Write a HAR document to ``path``; return the path."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        json.dump(document, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return path


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
    try:
        # A relay's leg and pair: every event of the entry (one leg of one pair) has them.
        relay = _relay_fields({key: extra[key] for key in ("leg", "pair") if key in extra})
    except RecordingError as exc:
        raise RecordingError(f"{where}._nbws: {exc}") from None
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
            events.append(RecordedEvent("error", when, connection, role, phase="receive", error=data, **relay))
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
                injected=frame.get("_injected") is True,
                **relay,
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
    events.insert(0, RecordedEvent("open", opened, connection, role, url=redact.url(url), **relay))
    close = extra.get("close")
    if close is not None:
        if not isinstance(close, dict):
            raise RecordingError(f"{where}._nbws.close must be an object, not {_json_type(close)}")
        try:
            fields = {**close, "type": "close", "connection": connection, "role": role}
            if "leg" in relay:
                fields.update(leg=relay["leg"], pair=relay["pair"])
            events.append(RecordedEvent.from_json(fields))
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
