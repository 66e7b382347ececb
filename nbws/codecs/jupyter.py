"""
The Jupyter kernel messaging protocol over the Jupyter server's kernel
channels WebSocket (``/api/kernels/<id>/channels``).

Two framings exist:

* the legacy one (no subprotocol): a text message holds the whole message as
  JSON with a ``channel`` key; a message with binary buffers is a binary
  message of ``nbufs`` and big-endian 32-bit offsets, the JSON, then the buffers;
* ``v1.kernel.websocket.jupyter.org``: every message is binary: a
  little-endian 64-bit count of offsets, the offsets, the channel name, then
  the header, parent header, metadata and content as JSON, then the buffers
  (jupyter_server's ``serialize_msg_to_ws_v1``).

A request (``execute_request``...) and its reply share a ``msg_id``: the
reply's ``parent_header.msg_id``; IOPub messages carry the same parent id.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from ..exceptions import CodecError
from ._core import Codec, Decoded
from ._json import dumps, head

__all__ = ["JupyterKernel"]

V1 = "v1.kernel.websocket.jupyter.org"
_PARTS = ("header", "parent_header", "metadata", "content")


class JupyterKernel(Codec):
    """Jupyter kernel messages, JSON or the v1 binary framing."""

    name = "jupyter"
    subprotocols = (V1,)
    url_hints = ("/channels",)
    priority = 8

    def sniff(self, data: str | bytes) -> bool:
        if isinstance(data, str):
            text = head(data, 512)
            return text.startswith("{") and '"header"' in data[:2048] and '"msg_type"' in data[:2048]
        if len(data) < 8:
            return False
        count = int.from_bytes(data[:8], "little")
        if 6 <= count <= 64 and len(data) >= 8 * (count + 1):
            first = int.from_bytes(data[8:16], "little")
            return first == 8 * (count + 1)
        return False

    def decode(self, data: str | bytes, state: Any, direction: str = "send") -> Decoded:
        if isinstance(data, str):
            try:
                msg = json.loads(data)
            except ValueError as exc:
                raise CodecError(f"not JSON: {exc}") from None
            if not isinstance(msg, dict):
                raise CodecError("a kernel message is a JSON object")
            return self._view(msg, msg.get("channel"), [], "json")
        count = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
        if len(data) >= 16 and int.from_bytes(data[8:16], "little") == 8 * (count + 1):
            return self._v1(data, count)
        return self._legacy_binary(data)

    def _v1(self, data: bytes, count: int) -> Decoded:
        if count < 6 or len(data) < 8 * (count + 1):
            raise CodecError(f"v1 framing: {count} offsets do not fit in {len(data)} bytes")
        offsets = [int.from_bytes(data[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
        if offsets != sorted(offsets) or offsets[-1] != len(data):
            raise CodecError("v1 framing: offsets out of order, or not ending at the end of the message")
        try:
            channel = data[offsets[0] : offsets[1]].decode()
        except UnicodeDecodeError:
            raise CodecError("v1 framing: the channel name is not UTF-8") from None
        chunks = [data[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]
        try:
            msg = {part: json.loads(chunk) for part, chunk in zip(_PARTS, chunks[:4], strict=True)}
        except ValueError as exc:
            raise CodecError(f"v1 framing: a part is not JSON: {exc}") from None
        return self._view(msg, channel, chunks[4:], "v1")

    def _legacy_binary(self, data: bytes) -> Decoded:
        if len(data) < 8:
            raise CodecError("binary kernel message too short")
        nbufs = struct.unpack("!I", data[:4])[0]
        if not 1 <= nbufs <= 1024 or len(data) < 4 * (nbufs + 1):
            raise CodecError(f"binary kernel message: {nbufs} buffers do not fit in {len(data)} bytes")
        offsets = [*struct.unpack("!" + "I" * nbufs, data[4 : 4 * (nbufs + 1)]), len(data)]
        if offsets != sorted(offsets):
            raise CodecError("binary kernel message: offsets out of order")
        chunks = [data[offsets[i] : offsets[i + 1]] for i in range(nbufs)]
        try:
            msg = json.loads(chunks[0])
        except ValueError as exc:
            raise CodecError(f"binary kernel message: not JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise CodecError("a kernel message is a JSON object")
        return self._view(msg, msg.get("channel"), chunks[1:], "binary")

    def _view(self, msg: dict[str, Any], channel: Any, buffers: list[bytes], framing: str) -> Decoded:
        header = msg.get("header")
        if not isinstance(header, dict) or not isinstance(header.get("msg_type"), str):
            raise CodecError('a kernel message needs a "header" with a "msg_type"')
        parent = msg.get("parent_header") or {}
        msg_type = header["msg_type"]
        fields: dict[str, Any] = {
            "channel": channel,
            "framing": framing,
            "header": header,
            "parent_header": msg.get("parent_header", {}),
            "metadata": msg.get("metadata", {}),
            "buffers": buffers,
        }
        extra = {k: v for k, v in msg.items() if k not in ("channel", "buffers", *_PARTS)}
        if extra:
            fields["extra"] = extra
        role = None
        msg_id = parent.get("msg_id") if isinstance(parent, dict) else None
        final = True
        if msg_type.endswith("_request"):
            role, msg_id = "request", header.get("msg_id")
        elif msg_type.endswith("_reply"):
            role = "response"
        return Decoded(
            self.name,
            msg_type,
            name=msg_type,
            id=msg_id,
            payload=msg.get("content"),
            fields=fields,
            role=role,
            final=final,
        )

    def encode(self, decoded: Decoded) -> str | bytes:
        fields = decoded.fields
        header = dict(fields.get("header") or {})
        header["msg_type"] = decoded.name or decoded.kind
        parts = {
            "header": header,
            "parent_header": fields.get("parent_header", {}),
            "metadata": fields.get("metadata", {}),
            "content": decoded.payload,
        }
        framing = fields.get("framing", "json")
        buffers: list[bytes] = list(fields.get("buffers") or [])
        channel = fields.get("channel")
        if framing == "v1":
            chunks = [json.dumps(parts[name], ensure_ascii=False).encode() for name in _PARTS] + buffers
            name = (channel or "").encode()
            offsets = [8 * (1 + 1 + len(chunks) + 1)]
            offsets.append(offsets[-1] + len(name))
            for chunk in chunks:
                offsets.append(offsets[-1] + len(chunk))
            return b"".join(
                [len(offsets).to_bytes(8, "little"), *(o.to_bytes(8, "little") for o in offsets), name, *chunks]
            )
        msg: dict[str, Any] = dict(parts)
        if channel is not None:
            msg["channel"] = channel
        msg.update(fields.get("extra", {}))
        if framing == "binary":
            blobs = [dumps(msg).encode(), *buffers]
            offsets = [4 * (len(blobs) + 1)]
            for blob in blobs[:-1]:
                offsets.append(offsets[-1] + len(blob))
            return struct.pack("!" + "I" * (len(blobs) + 1), len(blobs), *offsets) + b"".join(blobs)
        if buffers:
            raise CodecError("a JSON kernel message cannot carry buffers: set fields['framing'] to 'binary' or 'v1'")
        return dumps(msg)
