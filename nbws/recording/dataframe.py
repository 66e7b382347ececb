"""A recording as a pandas DataFrame, one row per event, with the protocol decoded inside each message."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from .model import RecordedEvent

__all__ = ["to_dataframe"]


def to_dataframe(events: Sequence[RecordedEvent], *, decode: bool = True) -> Any:
    """
    ``events`` as a pandas DataFrame: see :meth:`nbws.Recording.to_dataframe`.

    Raises:
        ImportError: if pandas is not installed (``pip install pandas``).
    """
    try:
        pd = importlib.import_module("pandas")
    except ImportError:
        raise ImportError("Recording.to_dataframe() needs pandas, which is not installed: pip install pandas") from None
    start = events[0].time if events else 0.0
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
        for event in events
    ]
    if decode:
        from ..codecs._tables import decode_events, decoded_columns

        for row, view in zip(rows, decode_events(events), strict=True):
            row.update(decoded_columns(view))
    columns = list(rows[0]) if rows else ["time", "offset", "type", "connection", "direction", "data"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    for column in ("seq", "opcode", "size", "code"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame
