"""
nbws-codec-socketio: discovered through its entry point; round trips under hypothesis;
a real python-socketio server (rooms, acks, binary attachments, namespaces, ping/pong)
decoded both ways, with an event edited through an Intercept and re-encoded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import socketio
import tornado.httpserver
import tornado.netutil
import tornado.web
from hypothesis import given, settings
from hypothesis import strategies as st
from nbws_codec_socketio import SocketIO, _Packet, plugin

import nbws
from nbws.codecs import Decoded, session_for

SCALE = float(os.environ.get("NBWS_TEST_TIMEOUT_SCALE", "1"))
_ids = itertools.count(1)


def timeout(seconds: float = 5.0) -> float:
    return seconds * SCALE


async def until(predicate: Callable[[], object], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout(seconds)
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


def test_the_entry_point_offers_the_codec_in_a_fresh_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NBWS_DISABLE_PLUGIN_AUTOLOAD"}
    code = "import nbws.codecs as c; print(json.dumps([x.name for x in c.available()]))"
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, env=env, timeout=timeout(60)
    )
    names = json.loads(out.stdout)
    assert "socketio" in names and "jsonrpc" in names, out.stderr


def decode_all(frames: list[tuple[str | bytes, str]]) -> list[Decoded]:
    session = session_for(f"sio{next(_ids)}", codec=SocketIO())
    views = []
    for i, (data, direction) in enumerate(frames):
        view = session.decode(data, direction, float(i))
        assert view is not None
        views.append(view)
    return views


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=6),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(st.text(max_size=4).filter(lambda k: k != "_placeholder"), c, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=80, deadline=None)
@given(
    name=st.text(min_size=1, max_size=8),
    args=st.lists(JSON, max_size=3),
    namespace=st.sampled_from(["/", "/chat", "/a/b"]),
    ack=st.none() | st.integers(0, 10**6),
    blobs=st.lists(st.binary(max_size=8), max_size=3),
)
def test_event_round_trip_with_binary_attachments(
    name: str, args: list[Any], namespace: str, ack: int | None, blobs: list[bytes]
) -> None:
    payload = [*args, *blobs]
    # python-socketio's own packet class writes the frames (with non-ASCII kept as is, as Node's socket.io
    # writes it): the codec must read them and write them again exactly.
    packet = _Packet(socketio.packet.EVENT, data=[name, *payload], namespace=namespace, id=ack)
    encoded = packet.encode()
    frames = [encoded] if isinstance(encoded, str) else encoded
    wires = ["4" + frames[0], *frames[1:]]
    views = decode_all([(w, "receive") for w in wires])
    event = views[0]
    assert (event.kind, event.event, event.id, event.fields["namespace"]) == ("event", name, ack, namespace)
    assert event.payload == payload  # the attachments are back in place of their placeholders
    assert [v.kind for v in views[1:]] == ["attachment"] * len(blobs)
    assert [v.encode() for v in views] == wires
    again = decode_all([(v.encode(), "receive") for v in views])[0]
    assert again.same(event)


def test_malformed_frames_give_errors_not_exceptions() -> None:
    views = decode_all([("4x", "receive"), ("9", "receive"), (b"\x00", "receive"), ("42[1]", "send"), ("", "send")])
    assert all(v.kind == "invalid" and v.error for v in views), views


@pytest.fixture
async def sio_server() -> AsyncIterator[tuple[str, socketio.AsyncServer, list[Any]]]:
    """A python-socketio server on tornado, in this loop: rooms, acks, binary, a /chat namespace, fast pings."""
    sio = socketio.AsyncServer(async_mode="tornado", ping_interval=0.3, ping_timeout=5)
    orders: list[Any] = []

    @sio.event
    async def join(sid: str, room: str) -> None:
        await sio.enter_room(sid, room)
        await sio.emit("price", {"sym": "ACME", "price": 1.5}, room=room)
        await sio.emit("chart", {"name": "acme.png", "png": b"\x89PNG\x00\x01"}, room=room)

    @sio.event
    async def buy(sid: str, order: dict[str, Any]) -> dict[str, Any]:
        orders.append(order)
        return {"ok": True, "qty": order["qty"]}

    @sio.event
    async def upload(sid: str, data: dict[str, Any]) -> int:
        return len(data["bytes"])

    @sio.on("hello", namespace="/chat")
    async def hello(sid: str, text: str) -> str:
        return f"hello {text}"

    app = tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    yield f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", sio, orders
    server.stop()
    await server.close_all_connections()


@pytest.fixture
def codec_loaded() -> Any:
    """The plugin in the global registry, as its entry point puts it (unless autoloading is off, as in tests/)."""
    registered = None
    if plugin not in nbws.plugins:
        registered = nbws.plugins.register(plugin)
    yield
    if registered is not None:
        nbws.plugins.unregister(registered)


async def test_python_socketio_server_rooms_acks_binary_and_edits(
    sio_server: tuple[str, socketio.AsyncServer, list[Any]], tmp_path: Path, codec_loaded: None
) -> None:
    url, _sio, orders = sio_server
    ws = nbws.WebSocket(url)
    recorder = nbws.Recorder()
    intercept = nbws.Intercept(direction="send", match=lambda m: m.data.startswith('421["buy"'))
    for p in (nbws.codecs.Decoder(), recorder, intercept):
        ws.plugins.register(p)
    received: list[nbws.Message] = []

    def on_message(message: nbws.Message) -> None:
        received.append(message)
        if message.data == "2":  # Engine.IO: the server pings, the client answers
            ws.send("3")

    ws.on("message", on_message)

    def views(test: Callable[[Decoded], bool]) -> list[Decoded]:
        return [d for m in received if (d := m.decoded) is not None and test(d)]

    await ws.opened(timeout=timeout())
    await until(lambda: views(lambda d: d.kind == "open"))
    ws.send("40")
    ws.send("40/chat,")
    await until(lambda: len(views(lambda d: d.kind == "connect")) == 2)
    assert all(d.latency is not None for d in views(lambda d: d.kind == "connect"))

    ws.send('42["join","acme"]')
    await until(lambda: views(lambda d: d.event == "chart" and d.fields.get("complete")))
    assert views(lambda d: d.event == "price")[0].payload == [{"sym": "ACME", "price": 1.5}]
    chart = views(lambda d: d.event == "chart")[0]
    assert chart.payload == [{"name": "acme.png", "png": b"\x89PNG\x00\x01"}]  # the attachment is back in place

    ws.send('421["buy",{"sym":"ACME","qty":1}]')
    held = await intercept.next(timeout=timeout())
    view = held.message.decoded
    assert view is not None and view.event == "buy" and view.id == 1
    view.payload[0]["qty"] = 5
    held.edit(view)
    await until(lambda: views(lambda d: d.kind == "ack" and d.id == 1))
    ack = views(lambda d: d.kind == "ack" and d.id == 1)[0]
    assert orders == [{"sym": "ACME", "qty": 5}] and ack.payload == [{"ok": True, "qty": 5}]
    assert ack.latency is not None and ack.request is not None and ack.request.payload == [{"sym": "ACME", "qty": 5}]

    ws.send('451-2["upload",{"bytes":{"_placeholder":true,"num":0}}]')
    ws.send(b"\x00" * 10)
    ws.send('42/chat,3["hello","nbws"]')
    await until(
        lambda: views(lambda d: d.kind == "ack" and d.id in (2, 3)) and len(views(lambda d: d.kind == "ack")) == 3
    )
    assert views(lambda d: d.kind == "ack" and d.id == 2)[0].payload == [10]
    chat = views(lambda d: d.kind == "ack" and d.id == 3)[0]
    assert chat.payload == ["hello nbws"] and chat.fields["namespace"] == "/chat"

    await until(lambda: views(lambda d: d.kind == "ping"), seconds=5)
    ws.close()
    await ws.closed(timeout=timeout())
    frame = recorder.recording.to_dataframe()
    again = nbws.Recording.load(recorder.recording.to_har(tmp_path / "sio.har")).to_dataframe()
    messages = frame[frame["type"] == "message"]
    assert set(messages["protocol"]) == {"socketio"}
    assert list(messages["kind"]) == list(again[again["type"] == "message"]["kind"])
    assert {"open", "connect", "event", "ack", "attachment", "ping", "pong"} <= set(messages["kind"])
    pong_latency = messages[messages["kind"] == "pong"]["latency"]
    assert pong_latency.notna().all() and len(pong_latency) >= 1
