"""JSON helpers shared by the JSON-based codecs: one compact encoding, and cheap sniffing."""

from __future__ import annotations

import json
from typing import Any

from ..exceptions import CodecError


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is: what JavaScript's ``JSON.stringify`` writes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def loads_object(data: str | bytes, protocol: str) -> dict[str, Any]:
    """Parse a JSON object, or raise :class:`CodecError` naming the protocol."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CodecError(f"a {protocol} message is a JSON object, not {type(value).__name__}")
    return value


def head(data: str | bytes, size: int = 64) -> str:
    """The start of a text message with its leading whitespace removed ('' for binary data)."""
    if not isinstance(data, str):
        return ""
    return data[:size].lstrip()


def ordered(obj: dict[str, Any], keys: Any) -> dict[str, Any]:
    """``obj`` with the keys in ``keys`` first, in that order: re-encoding keeps the sender's key order."""
    if not isinstance(keys, list):
        return obj
    out = {k: obj[k] for k in keys if k in obj}
    out.update({k: v for k, v in obj.items() if k not in out})
    return out
