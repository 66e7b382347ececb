"""
Codec fuzzing with hypothesis: for every codec, decode(encode(x)) == x, an edit
survives the round trip, and any data at all decodes to a view (an error view
for garbage), never to an exception.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

from nbws import Message
from nbws.codecs import Decoded, available, session_for
from nbws.codecs.mqtt import PROPERTIES
from nbws.codecs.stomp import COMMANDS

SETTINGS = settings(max_examples=80, deadline=None)
_conns = itertools.count(1)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
IDS = st.integers(0, 2**31) | st.text(min_size=1, max_size=8)


def session(codec: str) -> Any:
    return session_for(f"prop{next(_conns)}", codec=codec)


def decode(codec: str, data: str | bytes, direction: str = "send", sess: Any = None) -> Decoded:
    found = (sess or session(codec)).decode(data, direction, 0.0)
    assert found is not None
    return found


def round_trip(codec: str, wire: str | bytes) -> Decoded:
    """Decode ``wire``; it must decode cleanly, encode back to itself, and decode again to the same view."""
    view = decode(codec, wire)
    assert view.error is None, (wire, view.error)
    again = view.encode()
    assert again == wire
    assert decode(codec, again).same(view)
    return view


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# -- JSON-RPC 2.0 -------------------------------------------------------------------------------


def rpc_item() -> st.SearchStrategy[dict[str, Any]]:
    params = st.lists(JSON, max_size=3) | st.dictionaries(st.text(max_size=5), JSON, max_size=3)
    request = st.builds(
        lambda m, p, i: {"jsonrpc": "2.0", "method": m, "params": p, "id": i}, st.text(max_size=10), params, IDS
    )
    bare = st.builds(lambda m, i: {"jsonrpc": "2.0", "method": m, "id": i}, st.text(max_size=10), IDS)
    note = st.builds(lambda m, p: {"jsonrpc": "2.0", "method": m, "params": p}, st.text(max_size=10), params)
    result = st.builds(lambda r, i: {"jsonrpc": "2.0", "result": r, "id": i}, JSON, IDS)
    error = st.builds(
        lambda c, m, i: {"jsonrpc": "2.0", "error": {"code": c, "message": m}, "id": i},
        st.integers(-32768, 32000),
        st.text(max_size=10),
        IDS | st.none(),
    )
    return request | bare | note | result | error


@SETTINGS
@given(item=rpc_item(), new=JSON)
def test_jsonrpc_round_trip_and_edit(item: dict[str, Any], new: Any) -> None:
    view = round_trip("jsonrpc", dumps(item))
    assert view.kind == (
        "request"
        if "id" in item and "method" in item
        else "notification"
        if "method" in item
        else "error"
        if "error" in item
        else "response"
    )
    if view.kind in ("request", "response"):
        view.payload = new
        assert decode("jsonrpc", view.encode()).payload == new


@SETTINGS
@given(items=st.lists(rpc_item(), min_size=1, max_size=4))
def test_jsonrpc_batch_round_trip(items: list[dict[str, Any]]) -> None:
    view = round_trip("jsonrpc", dumps(items))
    assert view.kind.startswith("batch") and len(view.parts) == len(items)


# -- GraphQL over WebSocket ------------------------------------------------------------------------


@SETTINGS
@given(
    codec=st.sampled_from(["graphql-transport-ws", "subscriptions-transport-ws"]),
    data=st.data(),
)
def test_graphql_round_trip_and_edit(codec: str, data: st.DataObject) -> None:
    types = sorted(next(c for c in available() if c.name == codec).types)  # type: ignore[attr-defined]
    message: dict[str, Any] = {"type": data.draw(st.sampled_from(types))}
    if data.draw(st.booleans()):
        message["id"] = data.draw(st.text(min_size=1, max_size=6))
    if data.draw(st.booleans()):
        message["payload"] = data.draw(JSON)
    view = round_trip(codec, dumps(message))
    assert view.kind == message["type"]
    new = data.draw(JSON)
    view.payload = new
    assert decode(codec, view.encode()).payload == new


# -- STOMP 1.2 ----------------------------------------------------------------------------------

HEADER_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=8)
PLAIN_TEXT = st.text(st.characters(exclude_characters="\x00\r\n:", exclude_categories=("Cs",)), max_size=8)


@SETTINGS
@given(data=st.data())
def test_stomp_round_trip_and_edit(data: st.DataObject) -> None:
    command = data.draw(st.sampled_from(sorted(COMMANDS)))
    text = PLAIN_TEXT if command in ("CONNECT", "CONNECTED") else HEADER_TEXT
    keys = text.filter(lambda k: k not in ("destination", "content-length"))
    headers = data.draw(st.lists(st.tuples(keys, text), max_size=4))
    body = data.draw(st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=30))
    view = Decoded("stomp", command, payload=body, fields={"headers": [list(h) for h in headers]})
    view.codec = next(c for c in available() if c.name == "stomp")
    wire = view.encode()
    decoded = round_trip("stomp", wire)
    assert (decoded.kind, decoded.payload) == (command, body)
    assert [tuple(h) for h in decoded.fields["headers"]] == headers
    decoded.payload = body + "!"
    assert decode("stomp", decoded.encode()).payload == body + "!"


def test_stomp_heartbeat_and_binary_body() -> None:
    assert round_trip("stomp", "\n").kind == "heartbeat"
    wire = b"MESSAGE\ndestination:/q\ncontent-length:3\n\n\x00\x01\x02\x00"
    view = round_trip("stomp", wire)
    assert view.payload == b"\x00\x01\x02" and view.name == "/q"


# -- MQTT 3.1.1 and 5 ----------------------------------------------------------------------------

U16 = st.integers(1, 0xFFFF)
TOPIC = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10)


def mqtt_properties() -> st.SearchStrategy[list[list[Any]]]:
    values = {
        "byte": st.integers(0, 1),
        "int2": U16,
        "int4": st.integers(0, 2**32 - 1),
        "varint": st.integers(1, 268_435_455),
        "string": st.text(max_size=6),
        "bin": st.binary(max_size=6),
        "pair": st.lists(st.text(max_size=4), min_size=2, max_size=2),
    }
    one = st.sampled_from(sorted(PROPERTIES.values())).flatmap(lambda nk: values[nk[1]].map(lambda v: [nk[0], v]))
    return st.lists(one, max_size=3)


def mqtt_packet(level: int) -> st.SearchStrategy[Decoded]:
    v5 = level == 5

    def props(fields: dict[str, Any], draw: Any) -> None:
        if v5:
            fields["properties"] = draw(mqtt_properties())

    @st.composite
    def packet(draw: Any) -> Decoded:
        kind = draw(
            st.sampled_from(
                [
                    "PUBLISH",
                    "PUBACK",
                    "PUBREC",
                    "PUBREL",
                    "PUBCOMP",
                    "SUBSCRIBE",
                    "SUBACK",
                    "UNSUBSCRIBE",
                    "UNSUBACK",
                    "PINGREQ",
                    "PINGRESP",
                    "DISCONNECT",
                    "CONNACK",
                ]
            )
        )
        fields: dict[str, Any] = {"level": level}
        name, pid, payload = None, None, None
        if kind == "PUBLISH":
            qos = draw(st.integers(0, 2))
            fields.update(qos=qos, dup=draw(st.booleans()), retain=draw(st.booleans()))
            name = draw(TOPIC)
            pid = draw(U16) if qos else None
            props(fields, draw)
            payload = draw(st.binary(max_size=20))
        elif kind in ("PUBACK", "PUBREC", "PUBREL", "PUBCOMP"):
            pid = draw(U16)
            if v5 and draw(st.booleans()):
                fields["reason_code"] = draw(st.integers(0, 255))
                if draw(st.booleans()):
                    props(fields, draw)
        elif kind in ("SUBSCRIBE", "UNSUBSCRIBE"):
            pid = draw(U16)
            props(fields, draw)
            topics = draw(st.lists(TOPIC, min_size=1, max_size=3))
            payload = [[t, draw(st.integers(0, 2))] for t in topics] if kind == "SUBSCRIBE" else topics
        elif kind in ("SUBACK", "UNSUBACK"):
            pid = draw(U16)
            props(fields, draw)
            payload = draw(st.lists(st.integers(0, 255), min_size=kind == "SUBACK", max_size=3))
        elif kind == "CONNACK":
            fields.update(session_present=draw(st.booleans()), reason_code=draw(st.integers(0, 255)))
            props(fields, draw)
        elif kind == "DISCONNECT" and v5 and draw(st.booleans()):
            fields["reason_code"] = draw(st.integers(0, 255))
            props(fields, draw)
        return Decoded("mqtt", kind, name=name, id=pid, payload=payload, fields=fields)

    return packet()


@SETTINGS
@given(data=st.data())
def test_mqtt_stream_split_and_merged_across_messages(data: st.DataObject) -> None:
    codec = next(c for c in available() if c.name == "mqtt")
    level = data.draw(st.sampled_from([4, 5]))
    connect = Decoded(
        "mqtt",
        "CONNECT",
        name=data.draw(st.text(max_size=8)),
        fields={
            "protocol_name": "MQTT",
            "level": level,
            "clean_start": data.draw(st.booleans()),
            "keep_alive": data.draw(st.integers(0, 0xFFFF)),
            **({"properties": data.draw(mqtt_properties())} if level == 5 else {}),
            **({"username": "u", "password": b"p"} if data.draw(st.booleans()) else {}),
        },
    )
    packets = [connect, *data.draw(st.lists(mqtt_packet(level), max_size=6))]
    wires = [codec.encode(p) for p in packets]
    stream = b"".join(wires)
    # Cut the stream into WebSocket messages anywhere: packets split across messages and merged in one.
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True) if a < b]
    sess = session("mqtt")
    seen: list[Decoded] = []
    for chunk in chunks:
        view = decode("mqtt", chunk, sess=sess)
        assert view.error is None, view.error
        assert view.encode() == chunk  # each message re-encodes to its own bytes
        if view.kind != "partial":
            seen += view.parts or [view]
    assert [p.kind for p in seen] == [p.kind for p in packets]
    for packet in seen:  # a packet completed by a later message: its view re-encodes only that message's part
        for key in ("_prefix", "_tail", "incomplete"):
            packet.fields.pop(key, None)
    assert [codec.encode(p) for p in seen] == wires


def test_mqtt_correlates_subscribe_with_suback() -> None:
    sess = session("mqtt")
    decode("mqtt", bytes.fromhex("101000044d5154540402003c0004636c6964"), "send", sess)
    connack = sess.decode(bytes([0x20, 2, 0, 0]), "receive", 0.5)
    assert connack.kind == "CONNACK" and connack.latency == 0.5
    sess.decode(bytes([0x82, 8, 0, 9, 0, 3]) + b"a/b" + b"\x01", "send", 1.0)
    suback = sess.decode(bytes([0x90, 3, 0, 9, 1]), "receive", 1.25)
    assert (suback.kind, suback.id, suback.payload, suback.latency) == ("SUBACK", 9, [1], 0.25)
    assert suback.request is not None and suback.request.name == "a/b"


# -- Jupyter kernel protocol -------------------------------------------------------------------------

JSON_OBJECT = st.dictionaries(st.text(max_size=5), JSON, max_size=3)


@SETTINGS
@given(
    msg_type=st.sampled_from(["execute_request", "execute_reply", "stream", "kernel_info_request", "comm_msg"]),
    content=JSON_OBJECT,
    metadata=JSON_OBJECT,
    channel=st.sampled_from(["shell", "iopub", "control", "stdin"]),
    buffers=st.lists(st.binary(max_size=10), max_size=2),
    framing=st.sampled_from(["v1", "json", "binary"]),
)
def test_jupyter_round_trip(
    msg_type: str, content: dict[str, Any], metadata: dict[str, Any], channel: str, buffers: list[bytes], framing: str
) -> None:
    header = {
        "msg_id": "a1",
        "msg_type": msg_type,
        "session": "s",
        "username": "",
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    }
    message = {"header": header, "parent_header": {"msg_id": "p0"}, "metadata": metadata, "content": content}
    if framing == "v1":
        # jupyter_server's own serializer writes the frame: the codec must read and rewrite it exactly.
        pack = lambda obj: json.dumps(obj, ensure_ascii=False).encode()  # noqa: E731
        wire: str | bytes = serialize_msg_to_ws_v1([*(pack(message[k]) for k in message), *buffers], channel)
    else:
        view = Decoded(
            "jupyter",
            msg_type,
            name=msg_type,
            payload=content,
            fields={
                "channel": channel,
                "framing": framing,
                "header": header,
                "parent_header": message["parent_header"],
                "metadata": metadata,
                "buffers": buffers if framing == "binary" else [],
            },
        )
        view.codec = next(c for c in available() if c.name == "jupyter")
        wire = view.encode()
    view = round_trip("jupyter", wire)
    assert (view.kind, view.payload, view.fields["channel"]) == (msg_type, content, channel)
    assert view.id == ("a1" if msg_type.endswith("_request") else "p0")


# -- garbage ------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    codec=st.sampled_from(
        ["jsonrpc", "graphql-transport-ws", "subscriptions-transport-ws", "stomp", "mqtt", "jupyter"]
    ),
    data=st.text(max_size=60) | st.binary(max_size=60),
    direction=st.sampled_from(["send", "receive"]),
)
def test_any_data_decodes_to_a_view_never_an_exception(codec: str, data: str | bytes, direction: str) -> None:
    view = decode(codec, data, direction)
    assert view.protocol == codec
    assert (view.error is None) != (view.kind == "invalid")
    if view.error is None:
        view.encode()  # whatever decoded can be encoded again


def test_a_malformed_message_says_why() -> None:
    cases = {
        "jsonrpc": ('{"jsonrpc":"2.0","method":', "not JSON"),
        "graphql-transport-ws": ('{"type":"start"}', "unknown message type 'start'"),
        "stomp": ("SEND\ndestination:/q\n\nno end", "does not end with a NUL"),
        "mqtt": (bytes([0x10, 2, 0, 4]), "packet ends early"),
        "jupyter": ('{"header":{}}', "msg_type"),
    }
    for codec, (data, words) in cases.items():
        view = decode(codec, data)
        assert view.kind == "invalid" and words in (view.error or ""), (codec, view.error)


def test_message_decoded_is_lazy_and_follows_edits() -> None:
    message = Message('{"jsonrpc":"2.0","method":"a","id":1}', "send", connection=f"lazy{next(_conns)}")
    assert message._decoded is None  # nothing decoded until asked
    first = message.decoded
    assert first is not None and first.name == "a" and message.decoded is first
    message.data = '{"jsonrpc":"2.0","method":"b","id":1}'
    assert message.decoded is not None and message.decoded.name == "b"
