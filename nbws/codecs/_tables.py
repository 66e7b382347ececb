"""Decoded views of a recording's messages, for ``Recording.to_dataframe()`` and exports."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._events import Message
from ._core import Decoded, forget, session_for

if TYPE_CHECKING:
    from ..recording import RecordedEvent

__all__ = ["DECODED_COLUMNS", "decode_events", "decoded_columns"]

DECODED_COLUMNS = ("protocol", "kind", "name", "msg_id", "latency", "decode_error")
_runs = itertools.count(1)


def decode_events(events: Iterable[RecordedEvent]) -> list[Decoded | None]:
    """
    Decode a recording's events in order, one view (or None) per event.

    Each connection of the recording gets a session of its own, labelled by
    the URL of its open event, apart from live connections with the same id.
    """
    run = next(_runs)
    urls: dict[str, str] = {}
    keys: set[str] = set()
    found: list[Decoded | None] = []
    try:
        for event in events:
            if event.type == "open" and event.url:
                urls[event.connection] = event.url
            if event.type != "message" or event.data is None or event.direction is None:
                found.append(None)
                continue
            key = f"recording{run}:{event.connection}"
            if key not in keys:
                keys.add(key)
                session_for(key, url=urls.get(event.connection, ""), subprotocol="")
            message = Message(event.data, event.direction, seq=event.seq, connection=key, time=event.time)
            found.append(message.decoded)
    finally:
        for key in keys:
            forget(key)
    return found


def decoded_columns(decoded: Decoded | None) -> dict[str, Any]:
    """The DataFrame columns of one view (all None for an event no codec decoded)."""
    if decoded is None:
        return dict.fromkeys(DECODED_COLUMNS)
    return {
        "protocol": decoded.protocol,
        "kind": decoded.kind,
        "name": decoded.name,
        "msg_id": None if decoded.id is None else str(decoded.id),
        "latency": decoded.latency,
        "decode_error": decoded.error,
    }
