"""
JSON-RPC 2.0 (https://www.jsonrpc.org/specification): requests, notifications,
results, errors and batches, one JSON text per WebSocket message.

A request and its response share an ``id``; a notification has none and gets
no response. A batch is a JSON array of these; its parts are decoded and
correlated one by one.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import CodecError
from ._core import Codec, Decoded
from ._json import dumps, head, loads_object, ordered

__all__ = ["JsonRpc"]

_MISSING = object()


class JsonRpc(Codec):
    """JSON-RPC 2.0 over WebSocket text messages."""

    name = "jsonrpc"
    subprotocols = ("jsonrpc", "jsonrpc-2.0", "json-rpc")
    url_hints = ("rpc",)
    priority = 10

    def sniff(self, data: str | bytes) -> bool:
        text = head(data, 4096)
        return text[:1] in ("{", "[") and '"jsonrpc"' in text

    def decode(self, data: str | bytes, state: Any, direction: str = "send") -> Decoded:
        if not isinstance(data, str):
            raise CodecError("JSON-RPC messages are text, this one is binary")
        text = data.lstrip()
        if text.startswith("["):
            import json

            try:
                items = json.loads(text)
            except ValueError as exc:
                raise CodecError(f"not JSON: {exc}") from None
            if not items:
                raise CodecError("an empty batch is not a valid JSON-RPC message")
            parts = [self._one(item) for item in items]
            kinds = {part.kind for part in parts}
            kind = "batch request" if kinds <= {"request", "notification"} else "batch response"
            return Decoded(self.name, kind, parts=parts, payload=None, codec=self)
        return self._one(loads_object(text, "JSON-RPC"))

    def _one(self, obj: Any) -> Decoded:
        if not isinstance(obj, dict):
            return Decoded(self.name, "invalid", error=f"a batch item must be an object, not {obj!r}", codec=self)
        if obj.get("jsonrpc") != "2.0":
            return Decoded(self.name, "invalid", error='"jsonrpc" must be "2.0"', codec=self)
        extra = {k: v for k, v in obj.items() if k not in ("jsonrpc", "method", "params", "id", "result", "error")}
        fields: dict[str, Any] = {"extra": extra} if extra else {}
        fields["_keys"] = list(obj)
        if "method" in obj:
            method = obj["method"]
            if not isinstance(method, str):
                return Decoded(self.name, "invalid", error='"method" must be a string', codec=self)
            params = obj.get("params", _MISSING)
            if params is _MISSING:
                fields["no_params"] = True
                params = None
            if "id" not in obj:
                return Decoded(self.name, "notification", name=method, payload=params, fields=fields, codec=self)
            return Decoded(
                self.name,
                "request",
                name=method,
                id=obj["id"],
                payload=params,
                fields=fields,
                role="request",
                codec=self,
            )
        if "result" in obj or "error" in obj:
            if "result" in obj and "error" in obj:
                return Decoded(self.name, "invalid", error='a response has "result" or "error", not both', codec=self)
            if "error" in obj:
                error = obj["error"]
                if not isinstance(error, dict) or not isinstance(error.get("code"), int):
                    return Decoded(
                        self.name, "invalid", error='"error" must be an object with an integer "code"', codec=self
                    )
                fields["code"] = error["code"]
                fields["message"] = error.get("message")
                return Decoded(
                    self.name, "error", id=obj.get("id"), payload=error, fields=fields, role="response", codec=self
                )
            return Decoded(
                self.name,
                "response",
                id=obj.get("id"),
                payload=obj["result"],
                fields=fields,
                role="response",
                codec=self,
            )
        return Decoded(self.name, "invalid", error='neither "method" nor "result"/"error"', codec=self)

    def encode(self, decoded: Decoded) -> str:
        if decoded.kind.startswith("batch"):
            return "[" + ",".join(dumps(self._obj(part)) for part in decoded.parts) + "]"
        return dumps(self._obj(decoded))

    def _obj(self, decoded: Decoded) -> dict[str, Any]:
        obj: dict[str, Any] = {"jsonrpc": "2.0"}
        kind = decoded.kind
        if kind in ("request", "notification"):
            if not isinstance(decoded.name, str):
                raise CodecError("a JSON-RPC request needs a method name")
            obj["method"] = decoded.name
            if not (decoded.payload is None and decoded.fields.get("no_params")):
                obj["params"] = decoded.payload
            if kind == "request":
                obj["id"] = decoded.id
        elif kind == "response":
            obj["result"] = decoded.payload
            obj["id"] = decoded.id
        elif kind == "error":
            obj["error"] = decoded.payload
            obj["id"] = decoded.id
        else:
            raise CodecError(f"cannot encode a JSON-RPC {kind}")
        obj.update(decoded.fields.get("extra", {}))
        return ordered(obj, decoded.fields.get("_keys"))
