"""
The codec plugin API and everywhere a decoded message shows: recognition, the
nbws_codecs hook, laziness, the MessageLog's protocol column and filters,
transforms.map_decoded, Intercept edits, and the DataFrame's decoded columns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from _support import timeout, until

import nbws
from nbws import Message, transforms
from nbws.codecs import Codec, CodecError, Decoded, available, parse_query, session_for


def rpc(method: str, params: Any, id: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": id}, separators=(",", ":"))


@pytest.fixture
async def rpc_server() -> Any:
    """A JSON-RPC server written with nbws: answers "sum" with the sum, anything else with an error."""
    server = nbws.Server()

    @server.on("message")
    def answer(conn: nbws.Connection, message: nbws.Message) -> None:
        try:
            request = json.loads(message.data)
        except ValueError:
            conn.send('{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}')
            return
        if request.get("method") == "sum":
            conn.send(json.dumps({"jsonrpc": "2.0", "result": sum(request["params"]), "id": request["id"]}))
        else:
            conn.send(json.dumps({"jsonrpc": "2.0", "error": {"code": -32601, "message": "no"}, "id": request["id"]}))

    await server.start()
    yield server
    await server.stop()


# -- recognition ---------------------------------------------------------------------------------


def test_a_label_alone_never_picks_a_codec() -> None:
    # The subprotocol says graphql-ws, but the data is JSON-RPC: the data decides.
    session = session_for("label1", subprotocol="graphql-transport-ws")
    view = session.decode(rpc("a", [], 1), "send", 0.0)
    assert view is not None and view.protocol == "jsonrpc"
    # Plain text that no codec recognises stays undecoded.
    assert session_for("label2", subprotocol="mqtt").decode("hello", "send", 0.0) is None


def test_the_subprotocol_orders_the_candidates() -> None:
    init = '{"type":"connection_init"}'
    legacy = session_for("legacy1", subprotocol="graphql-ws").decode(init, "send", 0.0)
    current = session_for("current1", subprotocol="graphql-transport-ws").decode(init, "send", 0.0)
    assert legacy is not None and legacy.protocol == "subscriptions-transport-ws"
    assert current is not None and current.protocol == "graphql-transport-ws"


def test_the_data_corrects_a_first_guess() -> None:
    # No subprotocol (a HAR file keeps none): connection_init fits both GraphQL protocols, the current
    # one is assumed; the legacy protocol's keep-alive then shows which it was.
    session = session_for("guess1")
    first = session.decode('{"type":"connection_init"}', "send", 0.0)
    keep_alive = session.decode('{"type":"ka"}', "receive", 0.1)
    start = session.decode('{"id":"1","type":"start","payload":{"query":"{ a }"}}', "send", 0.2)
    assert first is not None and first.protocol == "graphql-transport-ws"
    assert keep_alive is not None and (keep_alive.protocol, keep_alive.error) == ("subscriptions-transport-ws", None)
    assert start is not None and start.protocol == "subscriptions-transport-ws" and start.kind == "start"
    # Garbage changes nothing: no codec decodes it.
    assert session.decode("{oops", "send", 0.3).protocol == "subscriptions-transport-ws"  # type: ignore[union-attr]


class Upper(Codec):
    """A codec of our own: messages that start with 'UP ' carry an upper-cased word."""

    name = "upper"

    def sniff(self, data: str | bytes) -> bool:
        return isinstance(data, str) and data.startswith("UP ")

    def decode(self, data: str | bytes, state: Any, direction: str = "send") -> Decoded:
        assert isinstance(data, str)
        if not data[3:].isupper():
            raise CodecError("not upper case")
        return Decoded(self.name, "word", name=data[3:].lower(), payload=data[3:])

    def encode(self, decoded: Decoded) -> str:
        return f"UP {decoded.payload}"


class UpperPlugin:
    @nbws.hookimpl
    def nbws_codecs(self) -> list[Codec]:
        return [Upper()]


class Broken:
    @nbws.hookimpl
    def nbws_codecs(self) -> list[Codec]:
        raise RuntimeError("no codecs today")


def test_plugins_add_codecs_through_the_hook_and_a_faulty_one_is_isolated() -> None:
    nbws.plugins.register(Broken())
    name = nbws.plugins.register(UpperPlugin())
    assert next(c.name for c in available()) == "upper"
    assert "jsonrpc" in [c.name for c in available()]
    assert nbws.plugins.info("Broken").errors >= 1
    view = Message("UP HELLO", "receive", connection="up1").decoded
    assert view is not None and (view.protocol, view.name) == ("upper", "hello")
    bad = Message("UP hello", "receive", connection="up1").decoded
    assert bad is not None and bad.kind == "invalid" and bad.error == "not upper case"
    nbws.plugins.unregister(name)
    assert "upper" not in [c.name for c in available()]


def test_a_codec_that_raises_anywhere_never_reaches_the_caller() -> None:
    class Exploding(Upper):
        name = "exploding"

        def sniff(self, data: str | bytes) -> bool:
            raise ZeroDivisionError

    class Plugin:
        @nbws.hookimpl
        def nbws_codecs(self) -> list[Codec]:
            return [Exploding()]

    nbws.plugins.register(Plugin())
    view = Message(rpc("a", [], 1), "send", connection="explode1").decoded
    assert view is not None and view.protocol == "jsonrpc"


def test_decoded_view_reads_like_the_protocol() -> None:
    view = Message(rpc("eth_subscribe", ["newHeads"], 7), "send", connection="view1").decoded
    assert view is not None
    assert (view.method, view.event, view.topic) == ("eth_subscribe",) * 3
    assert view.get("payload.0") == "newHeads" and view.get("method") == "eth_subscribe"
    assert view.summary() == "jsonrpc request eth_subscribe #7"
    assert view.to_dict() == {
        "protocol": "jsonrpc",
        "kind": "request",
        "name": "eth_subscribe",
        "id": 7,
        "role": "request",
        "payload": ["newHeads"],
    }


def test_credentials_are_masked_in_the_displayed_view() -> None:
    body = b"\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02id\x00\x01u\x00\x06s3cr3t"
    connect = bytes([0x10, len(body)]) + body
    view = Message(connect, "send", connection="mask1").decoded
    assert view is not None and view.error is None and view.fields["password"] == b"s3cr3t"
    assert "s3cr3t" not in json.dumps(view.to_dict()) and view.to_dict()["fields"]["password"] == "…"


# -- queries -------------------------------------------------------------------------------------


def test_queries_on_decoded_fields() -> None:
    views = {
        "price": Decoded("socketio", "event", name="price", payload=[{"sym": "ACME", "qty": 12}]),
        "sub": Decoded("jsonrpc", "request", name="eth_subscribe", id=3, role="request"),
        "slow": Decoded("jsonrpc", "response", id=3),
    }
    views["slow"].latency = 0.25
    match = {text: sorted(k for k, v in views.items() if parse_query(text)(v)) for text in (  # type: ignore[misc]
        'event == "price"', "method:eth_subscribe", "method:eth_*", "latency > 0.1", "payload.0.qty >= 10",
        "protocol == jsonrpc and kind != response", "id == 3",
    )}  # fmt: skip
    assert match == {
        'event == "price"': ["price"],
        "method:eth_subscribe": ["sub"],
        "method:eth_*": ["sub"],
        "latency > 0.1": ["slow"],
        "payload.0.qty >= 10": ["price"],
        "protocol == jsonrpc and kind != response": ["sub"],
        "id == 3": ["slow", "sub"],
    }
    for text in ("hello", "http://x", "ws:8080", "a == b c"):
        assert parse_query(text) is None  # plain text: searched as text
    with pytest.raises(ValueError, match="latency > needs a number"):
        parse_query("latency > fast")


# -- on live connections ---------------------------------------------------------------------------


async def test_message_log_shows_protocol_and_filters_on_decoded_fields(rpc_server: nbws.Server) -> None:
    log = nbws.MessageLog(interval=0.05)
    ws = nbws.WebSocket(rpc_server.url)
    log.attach(ws)
    await ws.opened(timeout=timeout())
    ws.send(rpc("sum", [1, 2], 1))
    ws.send(rpc("nope", [], 2))
    ws.send('{"jsonrpc":"2.0", broken')
    await until(lambda: sum(r.direction == "receive" for r in log.rows) == 3)

    def summaries(direction: str) -> list[str]:
        return [r.decoded.summary().split(" (")[0] for r in log.rows if r.decoded and r.direction == direction]

    assert summaries("send") == [
        "jsonrpc request sum #1",
        "jsonrpc request nope #2",
        "jsonrpc invalid: not JSON: Expecting property name enclosed in double quotes: line 1 column 19",
    ]
    assert summaries("receive") == ["jsonrpc response #1", "jsonrpc error #2", "jsonrpc error"]
    answers = [r.decoded for r in log.rows if r.decoded and r.direction == "receive"]
    assert [a.latency is not None for a in answers] == [True, True, False]  # the log decodes in order: paired
    log.set_filter(text="method:sum")
    assert [r.decoded.id for r in log.filtered() if r.decoded] == [1]
    log.set_filter(text="kind == error")
    assert len(log.filtered()) == 2
    log.set_filter(text="sum")  # plain text still searches the text
    assert len(log.filtered()) == 1
    log.flush()
    assert "jsonrpc request sum #1" in log.body.value and "nbws-decoded" in log.body.value
    exported = log.records()
    assert exported[1]["decoded"]["kind"] == "request"
    json.dumps(exported)
    ws.close()
    await ws.closed(timeout=timeout())
    log.close()


async def test_map_decoded_edits_and_re_encodes(rpc_server: nbws.Server) -> None:
    ws = nbws.WebSocket(rpc_server.url)

    def double(view: Decoded) -> None:
        if view.method == "sum":
            view.payload = [x * 2 for x in view.payload]

    ws.plugins.register(transforms.map_decoded(double, "send", protocol="jsonrpc"))
    await ws.opened(timeout=timeout())
    ws.send(rpc("sum", [1, 2], 1))
    ws.send("not a protocol message")  # passes untouched
    reply = await ws.recv(timeout=timeout())
    assert json.loads(reply.data)["result"] == 6
    assert json.loads((await ws.recv(timeout=timeout())).data)["error"]["code"] == -32700
    ws.close()
    await ws.closed(timeout=timeout())


async def test_intercept_edits_the_decoded_view(rpc_server: nbws.Server) -> None:
    ws = nbws.WebSocket(rpc_server.url)
    intercept = nbws.Intercept(direction="send")
    ws.plugins.register(intercept)
    await ws.opened(timeout=timeout())
    ws.send(rpc("sum", [1, 2], 1))
    held = await intercept.next(timeout=timeout())
    view = held.message.decoded
    assert view is not None
    view.payload = [40, 2]
    intercept.edit(view)
    assert json.loads((await ws.recv(timeout=timeout())).data)["result"] == 42
    ws.send(rpc("sum", [1], 2))
    held = await intercept.next(timeout=timeout())
    broken = Decoded("jsonrpc", "invalid", error="bad", codec=view.codec)
    with pytest.raises(CodecError, match="failed to decode: bad"):
        held.edit(broken)
    assert not held.decided  # nothing was lost: it can still go on
    held.forward()
    assert json.loads((await ws.recv(timeout=timeout())).data)["result"] == 1
    ws.close()
    await ws.closed(timeout=timeout())


def test_an_undecoded_connection_costs_nothing() -> None:
    # In a fresh process: messages flow, nobody asks, and no codec is ever loaded or run.
    script = textwrap.dedent(
        """
        import asyncio, sys, nbws

        async def main():
            server = nbws.Server()
            server.on("message", lambda conn, m: conn.send(m.data))
            await server.start()
            ws = nbws.WebSocket(server.url)
            await ws.opened()
            ws.send('{"jsonrpc":"2.0","method":"a","id":1}')
            message = await ws.recv()
            ws.close()
            await ws.closed()
            await server.stop()
            print(message._decoded is None, "nbws.codecs.builtin" in sys.modules, "nbws.codecs.jsonrpc" in sys.modules)

        asyncio.run(main())
        """
    )
    env = {"NBWS_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:  # the compiled build's run (tests/system/test_compiled_build.py)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout(60))
    assert out.stdout.split() == ["True", "False", "False"], out.stderr


def test_recording_dataframe_has_decoded_columns() -> None:
    recording = nbws.Recording(
        [
            nbws.RecordedEvent("open", 1.0, "c1", "client", url="ws://h/rpc"),
            nbws.RecordedEvent("message", 1.5, "c1", "client", "send", 1, rpc("sum", [1], 9)),
            nbws.RecordedEvent("message", 1.75, "c1", "client", "receive", 1, '{"jsonrpc":"2.0","result":1,"id":9}'),
            nbws.RecordedEvent("message", 2.0, "c1", "client", "receive", 2, "plain text"),
        ]
    )
    frame = recording.to_dataframe()
    assert list(frame["protocol"].fillna("-")) == ["-", "jsonrpc", "jsonrpc", "jsonrpc"]
    assert frame["decode_error"].iloc[3].startswith("not JSON")  # a JSON-RPC connection does not speak plain text
    assert list(frame["msg_id"].fillna("-")) == ["-", "9", "9", "-"]
    assert frame["latency"].iloc[2] == 0.25
    assert "protocol" not in recording.to_dataframe(decode=False)


async def test_replay_re_encodes_an_edited_decoded_view(rpc_server: nbws.Server) -> None:
    recorder = nbws.Recorder()
    ws = nbws.WebSocket(rpc_server.url, plugins=[recorder])
    await ws.opened(timeout=timeout())
    ws.send(rpc("sum", [1, 2], 1))
    ws.send(rpc("sum", [3, 4], 2))
    for _ in range(2):
        await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())

    target = nbws.WebSocket(rpc_server.url)
    await target.opened(timeout=timeout())
    replayer = nbws.Replayer(recorder.recording, target, speed=float("inf"))
    view = replayer.decoded(1)
    assert view is not None and (view.method, view.id, view.payload) == ("sum", 2, [3, 4])
    view.payload = [30, 40]
    replayer.edit(1, view)
    replayer.play()
    await replayer.done(timeout=timeout())
    answers = [json.loads((await target.recv(timeout=timeout())).data)["result"] for _ in range(2)]
    assert answers == [3, 70]
    target.close()
    await target.closed(timeout=timeout())
