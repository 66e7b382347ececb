"""
Filters on decoded fields, as typed in the MessageLog's filter box:

* ``event == "price"``, ``kind != ping``: equal or not (quotes optional);
* ``method:eth_subscribe``, ``topic:sensors/*``: equal, with ``*`` and ``?`` wildcards;
* ``latency > 0.1``, ``payload.qty >= 10``: compare numbers;
* several terms joined by ``and``.

A field is a common one (``protocol``, ``kind``, ``name``, ``id``, ``role``,
``latency``, ``error``), an alias of the name (``event``, ``method``,
``topic``, ``destination``, ``type``, ``msg_type``, ``operation``),
``payload.<key>...``, or ``fields.<name>`` for a protocol's own field.
Text that is not such a query is not one: the log searches it as text.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from ._core import NAME_ALIASES, Decoded

__all__ = ["Query", "parse_query"]

_FIELDS = NAME_ALIASES | {"protocol", "kind", "id", "role", "latency", "error"}
_TERM = re.compile(
    r"""^\s*(?P<field>[A-Za-z_][\w.\-]*)\s*(?P<op>==|!=|>=|<=|>|<|:)\s*(?P<value>"[^"]*"|'[^']*'|\S+)\s*$"""
)

Query = Callable[[Decoded | None], bool]


def _known(field: str) -> bool:
    return field in _FIELDS or (field.startswith(("payload.", "fields.")) and len(field) > 8)


def _lookup(decoded: Decoded, field: str) -> Any:
    if field.startswith("fields."):
        return decoded.fields.get(field[len("fields.") :])
    return decoded.get(field)


def _term(field: str, op: str, raw: str) -> Callable[[Decoded], bool]:
    value = raw[1:-1] if raw[:1] in "\"'" and raw[-1:] == raw[:1] and len(raw) >= 2 else raw
    if op in (">", "<", ">=", "<="):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{field} {op} needs a number, not {raw!r}") from None
        compare = {">": float.__gt__, "<": float.__lt__, ">=": float.__ge__, "<=": float.__le__}[op]

        def numeric(decoded: Decoded) -> bool:
            found = _lookup(decoded, field)
            return isinstance(found, (int, float)) and not isinstance(found, bool) and compare(float(found), number)

        return numeric
    wild = op == ":" and any(ch in value for ch in "*?[")

    def equal(decoded: Decoded) -> bool:
        found = _lookup(decoded, field)
        if found is None:
            return op == "!=" and value not in ("", "None", "null")
        text = found if isinstance(found, str) else str(found).lower() if isinstance(found, bool) else str(found)
        same = fnmatch.fnmatchcase(text, value) if wild else text == value
        return not same if op == "!=" else same

    return equal


def parse_query(text: str) -> Query | None:
    """
    Return a predicate on decoded views for a filter such as ``event == "price"``,
    or None if ``text`` is not a query on decoded fields (search it as text then).

    Raises:
        ValueError: for a query on a known field that cannot work (``latency > fast``).
    """
    terms = re.split(r"\s+and\s+", text.strip())
    parsed = []
    for term in terms:
        match = _TERM.match(term)
        if match is None or not _known(match["field"]):
            return None
        parsed.append(_term(match["field"], match["op"], match["value"]))

    def query(decoded: Decoded | None) -> bool:
        if decoded is None:
            return False
        # A frame carrying several messages (a batch, merged packets) matches if one of them does.
        candidates = [decoded, *decoded.parts]
        return any(all(test(item) for test in parsed) for item in candidates)

    return query
