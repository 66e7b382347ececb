"""
GraphQL over WebSocket, in its two protocols:

* ``graphql-transport-ws`` (the graphql-ws library, the current standard):
  ``connection_init``/``connection_ack``, ``ping``/``pong``, ``subscribe`` with
  an ``id``, then ``next`` (any number), ``error`` or ``complete`` with that id.
* ``graphql-ws``, the legacy subscriptions-transport-ws (Apollo):
  ``connection_init``/``connection_ack``/``ka``, ``start`` with an ``id``, then
  ``data``, ``error`` or ``complete``; ``stop`` ends a subscription.

Both send one JSON object per text message. The subprotocol tells them
apart; without it, the message types do (``subscribe``/``next`` against
``start``/``data``/``ka``).
"""

from __future__ import annotations

from typing import Any

from ..exceptions import CodecError
from ._core import Codec, Decoded
from ._json import dumps, head, loads_object, ordered

__all__ = ["GraphQLTransportWS", "SubscriptionsTransportWS"]


class _GraphQL(Codec):
    types: frozenset[str] = frozenset()
    own: frozenset[str] = frozenset()  # types only this protocol has
    requests: frozenset[str] = frozenset()
    responses: dict[str, bool] = {}  # type -> final

    def sniff(self, data: str | bytes) -> bool:
        text = head(data, 256)
        if not text.startswith("{") or '"type"' not in text:
            return False
        # Both start with connection_init: the subprotocol puts the right one first; without it the
        # current protocol is assumed until a type only the legacy one has shows up.
        return '"connection_init"' in text or any(f'"{t}"' in text for t in self.own)

    def decode(self, data: str | bytes, state: Any, direction: str = "send") -> Decoded:
        if not isinstance(data, str):
            raise CodecError(f"{self.name} messages are text, this one is binary")
        obj = loads_object(data, self.name)
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise CodecError('a message needs a "type" string')
        if kind not in self.types:
            raise CodecError(f"unknown message type {kind!r} for {self.name}")
        fields = {k: v for k, v in obj.items() if k not in ("type", "id", "payload")}
        fields["_keys"] = list(obj)
        if "payload" not in obj:
            fields["no_payload"] = True
        payload = obj.get("payload")
        name = None
        if kind in self.requests and isinstance(payload, dict):
            name = payload.get("operationName") or _operation(payload.get("query"))
        msg_id = obj.get("id")
        role = None
        final = True
        if kind in ("connection_init", "ping") and msg_id is None:
            msg_id, role = None, None
        if kind in self.requests:
            role = "request"
        elif kind in self.responses:
            role = "response"
            final = self.responses[kind]
        decoded = Decoded(self.name, kind, name=name, id=msg_id, payload=payload, fields=fields, role=role, final=final)
        if kind == "connection_init":
            decoded.role, decoded.fields["_corr"] = "request", "connection"
        elif kind == "connection_ack":
            decoded.role, decoded.fields["_corr"] = "response", "connection"
        return decoded

    def encode(self, decoded: Decoded) -> str:
        if decoded.kind not in self.types:
            raise CodecError(f"unknown message type {decoded.kind!r} for {self.name}")
        obj: dict[str, Any] = {"type": decoded.kind}
        if decoded.id is not None:
            obj["id"] = decoded.id
        if not (decoded.payload is None and decoded.fields.get("no_payload")):
            obj["payload"] = decoded.payload
        obj.update({k: v for k, v in decoded.fields.items() if k not in ("no_payload",) and not k.startswith("_")})
        return dumps(ordered(obj, decoded.fields.get("_keys")))


def _operation(query: Any) -> str | None:
    """The operation's first field or name: ``subscription OnPrice { price }`` gives ``OnPrice``."""
    if not isinstance(query, str):
        return None
    words = query.replace("{", " { ").replace("(", " ( ").split()
    if words and words[0] in ("query", "mutation", "subscription"):
        return words[1] if len(words) > 1 and words[1] not in ("{", "(") else _first_field(words)
    return _first_field(words)


def _first_field(words: list[str]) -> str | None:
    if "{" in words:
        i = words.index("{")
        if i + 1 < len(words) and words[i + 1] not in ("{", "}", "("):
            return words[i + 1]
    return None


class GraphQLTransportWS(_GraphQL):
    """``graphql-transport-ws``: the protocol of the graphql-ws library."""

    name = "graphql-transport-ws"
    subprotocols = ("graphql-transport-ws",)
    url_hints = ("graphql",)
    priority = 5
    types = frozenset({"connection_init", "connection_ack", "ping", "pong", "subscribe", "next", "error", "complete"})
    own = frozenset({"subscribe", "next", "pong"})
    requests = frozenset({"subscribe"})
    responses = {"next": False, "error": True, "complete": True}


class SubscriptionsTransportWS(_GraphQL):
    """``graphql-ws``: the legacy subscriptions-transport-ws protocol (Apollo)."""

    name = "subscriptions-transport-ws"
    subprotocols = ("graphql-ws",)
    url_hints = ("graphql",)
    priority = 4
    types = frozenset(
        {
            "connection_init",
            "connection_ack",
            "connection_error",
            "connection_terminate",
            "ka",
            "start",
            "data",
            "error",
            "complete",
            "stop",
        }
    )
    own = frozenset({"start", "data", "ka", "stop", "connection_terminate", "connection_error"})
    requests = frozenset({"start"})
    responses = {"data": False, "error": True, "complete": True}
