"""
The Socket.IO codec. Parsing is done by python-socketio's and python-engineio's
own packet classes (``socketio.packet.Packet``, ``engineio.packet.Packet``),
the code the reference Python server runs, so the codec reads exactly what
that server reads; only the per-connection state (binary attachments that
follow their packet, ping/pong and ack correlation) is the codec's.

On the wire (``ws://host/socket.io/?EIO=4&transport=websocket``):

* Engine.IO: ``0{"sid":...}`` open, ``2``/``3`` ping/pong (the server pings),
  ``4...`` message, ``1`` close; a binary WebSocket message is binary data.
* Socket.IO inside an Engine.IO message: ``0`` connect, ``1`` disconnect,
  ``2`` event, ``3`` ack, ``4`` connect error, ``5``/``6`` binary event/ack,
  then ``<n>-`` attachments, ``/namespace,``, the ack id, and JSON:
  ``42/chat,7["price",{"sym":"ACME"}]``. A binary event's attachments follow
  as binary messages; the event's view gets its bytes back in place of the
  ``{"_placeholder":true,"num":i}`` markers once the last one is decoded.
"""

from __future__ import annotations

import json
from typing import Any

from engineio import packet as eio
from socketio import packet as sio

from nbws.codecs import Codec, CodecError, Decoded

__all__ = ["SocketIO"]

EIO_KINDS = {
    eio.OPEN: "open",
    eio.CLOSE: "close",
    eio.PING: "ping",
    eio.PONG: "pong",
    eio.UPGRADE: "upgrade",
    eio.NOOP: "noop",
}
SIO_KINDS = {
    sio.CONNECT: "connect",
    sio.DISCONNECT: "disconnect",
    sio.EVENT: "event",
    sio.ACK: "ack",
    sio.CONNECT_ERROR: "connect_error",
    sio.BINARY_EVENT: "event",
    sio.BINARY_ACK: "ack",
}


class _JSJson:
    """JSON as JavaScript's ``JSON.stringify`` writes it (non-ASCII kept), for exact re-encoding."""

    @staticmethod
    def dumps(value: Any, **kwargs: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    loads = staticmethod(json.loads)


class _Packet(sio.Packet):  # type: ignore[misc]
    json = _JSJson


class _Waiting:
    """A binary event or ack whose attachments are still to come on this direction."""

    __slots__ = ("decoded", "packet")

    def __init__(self, packet: Any, decoded: Decoded) -> None:
        self.packet = packet
        self.decoded = decoded


class SocketIO(Codec):
    """Socket.IO v5 over Engine.IO v4, WebSocket transport."""

    name = "socketio"
    url_hints = ("/socket.io/", "EIO=4")
    priority = 9

    def sniff(self, data: str | bytes) -> bool:
        if not isinstance(data, str) or len(data) < 2:
            return False
        # The Engine.IO handshake, or a Socket.IO packet inside an Engine.IO message.
        return (data.startswith('0{"sid":') and '"pingInterval"' in data) or (data[0] == "4" and data[1] in "0123456")

    def new_state(self) -> dict[str, _Waiting | None]:
        return {"send": None, "receive": None}

    def decode(self, data: str | bytes, state: Any, direction: str = "send") -> Decoded:
        state = state if state is not None else self.new_state()
        if isinstance(data, bytes):
            return self._attachment(data, state, direction)
        try:
            packet = eio.Packet(encoded_packet=data)
        except (ValueError, IndexError) as exc:
            raise CodecError(f"not an Engine.IO packet: {exc or 'empty'}") from None
        if packet.packet_type != eio.MESSAGE:
            kind = EIO_KINDS.get(packet.packet_type)
            if kind is None:
                raise CodecError(f"unknown Engine.IO packet type {data[:1]!r}")
            fields: dict[str, Any] = {"engineio": kind}
            d = Decoded(self.name, kind, payload=packet.data if packet.data != "" else None, fields=fields)
            if kind in ("ping", "pong"):
                fields["_corr"] = "ping"
                d.role = "request" if kind == "ping" else "response"
            return d
        return self._socketio(data[1:], state, direction)

    def _socketio(self, text: str, state: Any, direction: str) -> Decoded:
        if not text:
            raise CodecError("an Engine.IO message without a Socket.IO packet")
        try:
            packet = _Packet(encoded_packet=text)
        except (ValueError, TypeError) as exc:
            raise CodecError(f"not a Socket.IO packet: {exc}") from None
        kind = SIO_KINDS.get(packet.packet_type)
        if kind is None:
            raise CodecError(f"unknown Socket.IO packet type {text[:1]!r}")
        namespace = packet.namespace or "/"
        fields: dict[str, Any] = {"namespace": namespace, "_scope": namespace}
        if packet.attachment_count:
            fields["attachments"] = packet.attachment_count
        name = None
        payload = packet.data
        role = None
        msg_id: Any = packet.id
        if kind == "event":
            if not isinstance(payload, list) or not payload or not isinstance(payload[0], str):
                raise CodecError("an event's data must be a list starting with the event name")
            name, payload = payload[0], payload[1:]
            role = "request" if msg_id is not None else None
        elif kind == "ack":
            if msg_id is None:
                raise CodecError("an ack without an id")
            role = "response"
        elif kind in ("connect", "connect_error"):
            fields["_corr"] = "connect"
            fields["_scope"] = f"{namespace} connect"
            role = "request" if kind == "connect" and direction == "send" else "response"
        decoded = Decoded(self.name, kind, name=name, id=msg_id, payload=payload, fields=fields, role=role)
        if packet.attachment_count:
            state[direction] = _Waiting(packet, decoded)
        return decoded

    def _attachment(self, data: bytes, state: Any, direction: str) -> Decoded:
        waiting: _Waiting | None = state.get(direction)
        if waiting is None:
            raise CodecError("a binary message with no Socket.IO packet waiting for attachments")
        header = waiting.decoded
        index = len(waiting.packet.attachments)
        complete = waiting.packet.add_attachment(data)
        fields = {"index": index, "of": waiting.packet.attachment_count, "namespace": header.fields["namespace"]}
        if complete:
            state[direction] = None
            rebuilt = waiting.packet.data
            header.payload = rebuilt[1:] if header.kind == "event" else rebuilt
            header.fields["complete"] = True
        d = Decoded(self.name, "attachment", name=header.name, id=header.id, payload=data, fields=fields)
        d.request = header  # the packet it belongs to (not a correlation: no latency)
        return d

    def encode(self, decoded: Decoded) -> str | bytes:
        kind = decoded.kind
        if kind == "attachment":
            return bytes(decoded.payload)
        if kind in EIO_KINDS.values():
            code = next(k for k, v in EIO_KINDS.items() if v == kind)
            payload = decoded.payload
            return str(eio.Packet(code, data=payload if payload is not None else None).encode())
        types = {
            "connect": sio.CONNECT,
            "disconnect": sio.DISCONNECT,
            "event": sio.EVENT,
            "ack": sio.ACK,
            "connect_error": sio.CONNECT_ERROR,
        }
        if kind not in types:
            raise CodecError(f"cannot encode a Socket.IO {kind}")
        data = decoded.payload
        if kind == "event":
            if not isinstance(decoded.name, str):
                raise CodecError("an event needs a name")
            data = [decoded.name, *(data or [])]
        namespace = decoded.fields.get("namespace", "/")
        msg_id = decoded.id if kind in ("event", "ack") else None
        count = int(decoded.fields.get("attachments", 0))
        packet = _Packet(types[kind], data=data, namespace=namespace, id=msg_id, binary=False)
        if count or _Packet.data_is_binary(data):
            # A binary event or ack: the header keeps (or gets) placeholders, the attachments are
            # the binary messages that follow it, which are encoded on their own.
            placeholders, attachments = _Packet.deconstruct_binary(data)
            n = len(attachments) or count
            packet.packet_type = sio.BINARY_EVENT if kind == "event" else sio.BINARY_ACK
            head = str(packet.packet_type) + f"{n}-"
            if namespace != "/":
                head += namespace + ","
            if msg_id is not None:
                head += str(msg_id)
            if placeholders is not None:
                head += _JSJson.dumps(placeholders)
            return "4" + head
        return "4" + str(packet.encode())
