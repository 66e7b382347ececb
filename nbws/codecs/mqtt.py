"""
MQTT 3.1.1 and 5.0 over WebSocket (subprotocol ``mqtt``): binary messages
carrying MQTT control packets.

The WebSocket framing and the MQTT packets are independent: one WebSocket
message may carry several packets, or part of one. The codec keeps the bytes
of an unfinished packet per direction, so a message that completes it decodes
to that packet, and a message with several decodes to one view with ``parts``.
The protocol level (4 for 3.1.1, 5 for 5.0) is learned from CONNECT; a
connection seen from its middle is read as 3.1.1 until a CONNECT says otherwise.

No maintained Python library exposes an MQTT packet parser on its own
(paho-mqtt's is inside its client; mqtt-codec stopped at 3.1.1 in 2019), so this
is a small parser of the OASIS specifications, checked against aedes's
mqtt-packet in the interop tests.
"""

from __future__ import annotations

import struct
from typing import Any

from ..exceptions import CodecError
from ._core import Codec, Decoded

__all__ = ["Mqtt"]

TYPES = {
    1: "CONNECT",
    2: "CONNACK",
    3: "PUBLISH",
    4: "PUBACK",
    5: "PUBREC",
    6: "PUBREL",
    7: "PUBCOMP",
    8: "SUBSCRIBE",
    9: "SUBACK",
    10: "UNSUBSCRIBE",
    11: "UNSUBACK",
    12: "PINGREQ",
    13: "PINGRESP",
    14: "DISCONNECT",
    15: "AUTH",
}
CODES = {name: code for code, name in TYPES.items()}
# Fixed-header flags the specification requires (PUBLISH's are its own: dup, qos, retain).
FLAGS = {"PUBREL": 2, "SUBSCRIBE": 2, "UNSUBSCRIBE": 2}

# MQTT 5 properties: identifier -> (name, type).
PROPERTIES: dict[int, tuple[str, str]] = {
    0x01: ("payload_format_indicator", "byte"),
    0x02: ("message_expiry_interval", "int4"),
    0x03: ("content_type", "string"),
    0x08: ("response_topic", "string"),
    0x09: ("correlation_data", "bin"),
    0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "int4"),
    0x12: ("assigned_client_identifier", "string"),
    0x13: ("server_keep_alive", "int2"),
    0x15: ("authentication_method", "string"),
    0x16: ("authentication_data", "bin"),
    0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "int4"),
    0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "string"),
    0x1C: ("server_reference", "string"),
    0x1F: ("reason_string", "string"),
    0x21: ("receive_maximum", "int2"),
    0x22: ("topic_alias_maximum", "int2"),
    0x23: ("topic_alias", "int2"),
    0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"),
    0x27: ("maximum_packet_size", "int4"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}
PROPERTY_IDS = {name: (ident, kind) for ident, (name, kind) in PROPERTIES.items()}
MAX_LENGTH = 268_435_455


class _State:
    __slots__ = ("buffer", "shared")

    def __init__(self, shared: dict[str, int]) -> None:
        self.buffer = b""
        self.shared = shared


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CodecError(f"packet ends early: {n} bytes wanted, {self.left()} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def int2(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def int4(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def varint(self) -> int:
        value, shift = 0, 0
        for _ in range(4):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise CodecError("variable byte integer longer than 4 bytes")

    def bin(self) -> bytes:
        return self.take(self.int2())

    def string(self) -> str:
        try:
            return self.bin().decode()
        except UnicodeDecodeError:
            raise CodecError("a string is not UTF-8") from None

    def pair(self) -> list[str]:
        return [self.string(), self.string()]

    def properties(self) -> list[list[Any]]:
        end = self.varint()
        end += self.pos
        if end > len(self.data):
            raise CodecError("properties run past the packet")
        found: list[list[Any]] = []
        while self.pos < end:
            ident = self.varint()
            if ident not in PROPERTIES:
                raise CodecError(f"unknown property 0x{ident:02x}")
            name, kind = PROPERTIES[ident]
            found.append([name, getattr(self, kind)()])
        if self.pos != end:
            raise CodecError("a property runs past the property length")
        return found


def _varint(value: int) -> bytes:
    if not 0 <= value <= MAX_LENGTH:
        raise CodecError(f"{value} does not fit in a variable byte integer")
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bin(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise CodecError("a string or binary field longer than 65,535 bytes")
    return struct.pack("!H", len(value)) + value


def _str(value: str) -> bytes:
    return _bin(value.encode())


def _properties(props: list[list[Any]] | None) -> bytes:
    out = bytearray()
    for name, value in props or []:
        if name not in PROPERTY_IDS:
            raise CodecError(f"unknown property {name!r}")
        ident, kind = PROPERTY_IDS[name]
        out += _varint(ident)
        if kind == "byte":
            out.append(value)
        elif kind == "int2":
            out += struct.pack("!H", value)
        elif kind == "int4":
            out += struct.pack("!I", value)
        elif kind == "varint":
            out += _varint(value)
        elif kind == "string":
            out += _str(value)
        elif kind == "bin":
            out += _bin(bytes(value))
        else:
            out += _str(value[0]) + _str(value[1])
    return _varint(len(out)) + bytes(out)


class Mqtt(Codec):
    """MQTT 3.1.1 and 5.0 control packets in binary WebSocket messages."""

    name = "mqtt"
    subprotocols = ("mqtt", "mqttv3.1")
    url_hints = ("mqtt",)
    priority = 3

    def sniff(self, data: str | bytes) -> bool:
        # CONNECT opens every MQTT connection: its protocol name gives it away.
        return isinstance(data, bytes) and len(data) >= 10 and data[0] == 0x10 and b"\x00\x04MQTT" in data[:12]

    def new_state(self) -> dict[str, Any]:
        shared = {"level": 4}
        return {"send": _State(shared), "receive": _State(shared)}

    def decode(self, data: str | bytes, state: Any, direction: str = "send") -> Decoded:
        if not isinstance(data, bytes):
            raise CodecError("MQTT packets travel in binary messages, this one is text")
        st: _State = state[direction] if state is not None else _State({"level": 4})
        prefix = len(st.buffer)
        buf = st.buffer + data
        packets: list[Decoded] = []
        pos = 0
        while pos < len(buf):
            end = _packet_end(buf, pos)
            if end is None:
                break
            try:
                packets.append(self._packet(buf[pos:end], st.shared))
            except CodecError:
                st.buffer = b""
                raise
            pos = end
        st.buffer = buf[pos:]
        if not packets:
            return Decoded(self.name, "partial", fields={"buffered": len(st.buffer), "data": data, "prefix": prefix})
        fields: dict[str, Any] = {}
        if prefix:
            fields["_prefix"] = prefix  # bytes of the first packet that came in earlier messages
        if st.buffer:
            fields["incomplete"] = len(st.buffer)
            fields["_tail"] = st.buffer
        if len(packets) == 1 and not prefix and not st.buffer:
            return packets[0]
        if len(packets) == 1:
            packets[0].fields.update(fields)
            return packets[0]
        return Decoded(self.name, "packets", parts=packets, fields=fields)

    def _packet(self, packet: bytes, shared: dict[str, int]) -> Decoded:
        first = packet[0]
        kind = TYPES.get(first >> 4)
        if kind is None:
            raise CodecError(f"reserved packet type {first >> 4}")
        flags = first & 0x0F
        r = _Reader(packet)
        r.byte()
        r.varint()
        body_start = r.pos
        v5 = shared["level"] == 5
        fields: dict[str, Any] = {}
        name = None
        msg_id: Any = None
        payload: Any = None
        role = None
        if kind != "PUBLISH" and flags != FLAGS.get(kind, 0):
            raise CodecError(f"{kind} with flags {flags:#x}, the specification requires {FLAGS.get(kind, 0):#x}")
        if kind == "CONNECT":
            proto = r.string()
            level = r.byte()
            if proto not in ("MQTT", "MQIsdp"):
                raise CodecError(f"unknown protocol name {proto!r}")
            shared["level"] = level
            v5 = level == 5
            cflags = r.byte()
            if cflags & 1:
                raise CodecError("CONNECT's reserved flag is set")
            fields.update(protocol_name=proto, level=level, clean_start=bool(cflags & 2), keep_alive=r.int2())
            if v5:
                fields["properties"] = r.properties()
            name = fields["client_id"] = r.string()
            if cflags & 4:
                will: dict[str, Any] = {"qos": (cflags >> 3) & 3, "retain": bool(cflags & 0x20)}
                if v5:
                    will["properties"] = r.properties()
                will["topic"] = r.string()
                will["payload"] = r.bin()
                fields["will"] = will
            if cflags & 0x80:
                fields["username"] = r.string()
            if cflags & 0x40:
                fields["password"] = r.bin()
            role, fields["_corr"] = "request", "connect"
        elif kind == "CONNACK":
            fields["session_present"] = bool(r.byte() & 1)
            fields["reason_code"] = r.byte()
            if v5 and r.left():
                fields["properties"] = r.properties()
            role, fields["_corr"] = "response", "connect"
        elif kind == "PUBLISH":
            qos = (flags >> 1) & 3
            if qos == 3:
                raise CodecError("PUBLISH with QoS 3")
            fields.update(dup=bool(flags & 8), qos=qos, retain=bool(flags & 1))
            name = r.string()
            if qos:
                msg_id = r.int2()
                role = "request"
            if v5:
                fields["properties"] = r.properties()
            raw = r.take(r.left())
            try:
                payload = raw.decode()
                fields["text"] = True
            except UnicodeDecodeError:
                payload = raw
        elif kind in ("PUBACK", "PUBREC", "PUBREL", "PUBCOMP"):
            msg_id = r.int2()
            if r.left():
                fields["reason_code"] = r.byte()
                if v5 and r.left():
                    fields["properties"] = r.properties()
            role = "response" if kind in ("PUBACK", "PUBREC", "PUBCOMP") else "request"
            if kind == "PUBREL" or kind == "PUBCOMP":
                fields["_scope"] = "rel"
        elif kind in ("SUBSCRIBE", "UNSUBSCRIBE"):
            msg_id = r.int2()
            if v5:
                fields["properties"] = r.properties()
            topics: list[Any] = []
            while r.left():
                topic = r.string()
                topics.append([topic, r.byte()] if kind == "SUBSCRIBE" else topic)
            if not topics:
                raise CodecError(f"{kind} without a topic")
            payload = topics
            name = topics[0][0] if kind == "SUBSCRIBE" else topics[0]
            role, fields["_scope"] = "request", "sub"
        elif kind in ("SUBACK", "UNSUBACK"):
            msg_id = r.int2()
            if v5:
                fields["properties"] = r.properties()
            payload = list(r.take(r.left()))
            role, fields["_scope"] = "response", "sub"
        elif kind in ("PINGREQ", "PINGRESP"):
            role = "request" if kind == "PINGREQ" else "response"
            fields["_corr"] = "ping"
        elif kind in ("DISCONNECT", "AUTH") and r.left():
            fields["reason_code"] = r.byte()
            if r.left():
                fields["properties"] = r.properties()
        if r.left():
            raise CodecError(f"{r.left()} bytes left over at the end of {kind}")
        if r.pos < body_start:  # pragma: no cover - the reader never moves back
            raise CodecError("bad packet")
        fields["level"] = fields.get("level", shared["level"]) if kind == "CONNECT" else shared["level"]
        return Decoded(self.name, kind, name=name, id=msg_id, payload=payload, fields=fields, role=role, codec=self)

    def encode(self, decoded: Decoded) -> bytes:
        if decoded.kind == "partial":
            return bytes(decoded.fields["data"])
        items = decoded.parts or [decoded]
        out = b"".join(self._encode_packet(item) for item in items)
        return out[int(decoded.fields.get("_prefix", 0)) :] + bytes(decoded.fields.get("_tail", b""))

    def _encode_packet(self, d: Decoded) -> bytes:
        kind = d.kind
        if kind not in CODES:
            raise CodecError(f"unknown MQTT packet type {kind!r}")
        f = d.fields
        v5 = f.get("level", 4) == 5
        flags = FLAGS.get(kind, 0)
        body = bytearray()
        if kind == "CONNECT":
            will = f.get("will")
            cflags = (
                (2 if f.get("clean_start") else 0) | (0x80 if "username" in f else 0) | (0x40 if "password" in f else 0)
            )
            if will:
                cflags |= 4 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
            body += _str(f.get("protocol_name", "MQTT")) + bytes([f.get("level", 4), cflags])
            body += struct.pack("!H", f.get("keep_alive", 0))
            if v5:
                body += _properties(f.get("properties"))
            body += _str(d.name if d.name is not None else f.get("client_id", ""))
            if will:
                if v5:
                    body += _properties(will.get("properties"))
                body += _str(will["topic"]) + _bin(bytes(will["payload"]))
            if "username" in f:
                body += _str(f["username"])
            if "password" in f:
                body += _bin(bytes(f["password"]))
        elif kind == "CONNACK":
            body += bytes([1 if f.get("session_present") else 0, f.get("reason_code", 0)])
            if v5 and "properties" in f:
                body += _properties(f["properties"])
        elif kind == "PUBLISH":
            qos = f.get("qos", 0)
            flags = (8 if f.get("dup") else 0) | (qos << 1) | (1 if f.get("retain") else 0)
            body += _str(d.name or "")
            if qos:
                body += struct.pack("!H", d.id)
            if v5:
                body += _properties(f.get("properties"))
            payload = d.payload if d.payload is not None else b""
            body += payload.encode() if isinstance(payload, str) else bytes(payload)
        elif kind in ("PUBACK", "PUBREC", "PUBREL", "PUBCOMP"):
            body += struct.pack("!H", d.id)
            if "reason_code" in f:
                body.append(f["reason_code"])
                if v5 and "properties" in f:
                    body += _properties(f["properties"])
        elif kind in ("SUBSCRIBE", "UNSUBSCRIBE"):
            body += struct.pack("!H", d.id)
            if v5:
                body += _properties(f.get("properties"))
            for item in d.payload or []:
                body += _str(item[0]) + bytes([item[1]]) if kind == "SUBSCRIBE" else _str(item)
        elif kind in ("SUBACK", "UNSUBACK"):
            body += struct.pack("!H", d.id)
            if v5:
                body += _properties(f.get("properties"))
            body += bytes(d.payload or [])
        elif kind in ("DISCONNECT", "AUTH") and "reason_code" in f:
            body.append(f["reason_code"])
            if "properties" in f:
                body += _properties(f["properties"])
        return bytes([(CODES[kind] << 4) | flags]) + _varint(len(body)) + bytes(body)


def _packet_end(buf: bytes, pos: int) -> int | None:
    """Where the packet starting at ``pos`` ends, or None if ``buf`` does not hold all of it yet."""
    length, shift, i = 0, 0, pos + 1
    while True:
        if i >= len(buf):
            return None
        b = buf[i]
        length |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            break
        shift += 7
        if shift > 21:
            raise CodecError("remaining length longer than 4 bytes")
    end = i + length
    return end if end <= len(buf) else None
