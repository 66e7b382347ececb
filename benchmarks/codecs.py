"""
Protocol codecs: what an idle codec registry costs, and what decoding costs, per protocol.

- idle: a pipelined JSON-RPC exchange (client and server in this process, the
  server answering each request with its response, made beforehand), CPU per
  request answered, for raw websockets, nbws, and nbws with every codec
  loaded (the registry built, the Socket.IO codec's plugin registered) and
  nobody decoding; then nbws with :class:`nbws.codecs.Decoder` on both ends,
  decoding every JSON-RPC message as it passes;
- decode: for each protocol, a typical exchange decoded in order on one
  session (correlation included), CPU per message, as a ratio to ``json.loads``
  of a message of the same size and to one raw websockets echo of this run.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

import nbws
from nbws import codecs
from nbws.codecs import Decoded

from ._common import Result, Stopwatch, print_table

RPC = '{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x407d73d8a49eeb85d32cf465507dd71d507100c1","latest"],"id":1}'


def _rpc(i: int) -> str:
    return RPC.replace('"id":1', f'"id":{i}')


def _exchange(n: int) -> tuple[list[str], list[str]]:
    """n requests and their responses, made beforehand: the peers only send them, in every stack alike."""
    return [_rpc(i) for i in range(n)], [
        f'{{"jsonrpc":"2.0","result":"0x0234c8a3397aab58","id":{i}}}' for i in range(n)
    ]


async def _raw(messages: int) -> float:
    requests, responses = _exchange(messages)

    async def echo(ws: ServerConnection) -> None:
        i = 0
        async for _ in ws:
            await ws.send(responses[i])
            i += 1

    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/") as ws:

            async def sender() -> None:
                for request in requests:
                    await ws.send(request)

            watch = Stopwatch()
            task = asyncio.create_task(sender())
            for _ in range(messages):
                await ws.recv()
            await task
            return watch.stop().cpu / messages


async def _nbws(messages: int, endpoint_plugins: list[Any]) -> float:
    requests, responses = _exchange(messages)
    server = nbws.Server()
    answered = 0

    def answer(conn: nbws.Connection, message: nbws.Message) -> None:
        nonlocal answered
        conn.send(responses[answered])
        answered += 1

    server.on("message", answer)
    for plugin in endpoint_plugins:
        server.plugins.register(plugin)
    await server.start()
    ws = nbws.WebSocket(server.url)
    for plugin in endpoint_plugins:
        ws.plugins.register(type(plugin)())
    await ws.opened()
    arrived = 0
    done = asyncio.Event()

    def on_message(message: nbws.Message) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == messages:
            done.set()

    ws.onmessage = on_message
    watch = Stopwatch()
    for request in requests:
        ws.send(request)
    await done.wait()
    cpu = watch.stop().cpu / messages
    ws.close()
    await ws.closed()
    await server.stop()
    return cpu


def _sample_exchanges() -> dict[str, list[tuple[str | bytes, str]]]:
    """A typical exchange per protocol: (data, direction), requests and their answers."""
    mqtt = codecs.get("mqtt")

    def packet(kind: str, **kw: Any) -> bytes:
        data = mqtt.encode(Decoded("mqtt", kind, **kw))
        assert isinstance(data, bytes)
        return data

    header = {
        "msg_id": "m1",
        "msg_type": "execute_request",
        "session": "s",
        "username": "",
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    }
    jupyter = codecs.get("jupyter")

    def kernel(msg_type: str, framing: str, parent: dict[str, Any], content: dict[str, Any]) -> str | bytes:
        fields = {
            "channel": "shell",
            "framing": framing,
            "header": {**header, "msg_type": msg_type},
            "parent_header": parent,
            "metadata": {},
            "buffers": [],
        }
        return jupyter.encode(Decoded("jupyter", msg_type, name=msg_type, payload=content, fields=fields))

    exchanges: dict[str, list[tuple[str | bytes, str]]] = {
        "jsonrpc": [(_rpc(1), "send"), ('{"jsonrpc":"2.0","result":"0x0234c8a3397aab58","id":1}', "receive")],
        "graphql-transport-ws": [
            (
                '{"id":"1","type":"subscribe","payload":{"query":"subscription { price(sym: \\"ACME\\") { value at } }"}}',
                "send",
            ),
            ('{"id":"1","type":"next","payload":{"data":{"price":{"value":101.5,"at":"12:00:00"}}}}', "receive"),
        ],
        "stomp": [
            (
                'SEND\ndestination:/queue/prices\ncontent-type:application/json\nreceipt:r1\n\n{"sym":"ACME","price":101.5}\x00',
                "send",
            ),
            ("RECEIPT\nreceipt-id:r1\n\n\x00", "receive"),
        ],
        "mqtt": [
            (
                packet(
                    "PUBLISH", name="sensors/room1/temp", id=7, payload=b'{"c":21.5}', fields={"qos": 1, "level": 4}
                ),
                "send",
            ),
            (packet("PUBACK", id=7, fields={"level": 4}), "receive"),
        ],
        "jupyter (v1)": [
            (kernel("execute_request", "v1", {}, {"code": "6 * 7", "silent": False}), "send"),
            (kernel("execute_reply", "v1", {"msg_id": "m1"}, {"status": "ok", "execution_count": 1}), "receive"),
        ],
    }
    try:
        from nbws_codec_socketio import SocketIO

        nbws.plugins.register(_SocketIOPlugin(SocketIO()), "bench-socketio")
        exchanges["socketio"] = [('421["buy",{"sym":"ACME","qty":1}]', "send"), ('431[{"ok":true,"qty":1}]', "receive")]
    except ImportError:  # the example codec is a separate distribution
        pass
    return exchanges


class _SocketIOPlugin:
    def __init__(self, codec: Any) -> None:
        self.codec = codec

    @nbws.hookimpl
    def nbws_codecs(self) -> list[Any]:
        return [self.codec]


def _decode_cost(codec: str, exchange: list[tuple[str | bytes, str]], rounds: int) -> tuple[float, float]:
    """CPU per decoded message, and per json.loads of a text of the same size (the baseline)."""
    # The codec is set, as if recognised earlier on the connection (MQTT is recognised by its CONNECT).
    session = codecs.session_for("bench-session", codec=codec)
    messages = [
        nbws.Message(data, direction, connection="bench-session")  # type: ignore[arg-type]
        for _ in range(rounds)
        for data, direction in exchange
    ]
    start = time.process_time()
    for message in messages:
        decoded = codecs.decode(message)
        assert decoded is not None and decoded.error is None, decoded
    cost = (time.process_time() - start) / len(messages)
    texts = [json.dumps({"x": "y" * max(1, len(data) - 10)}) for data, _ in exchange] * rounds
    start = time.process_time()
    for text in texts:
        json.loads(text)
    baseline = (time.process_time() - start) / len(texts)
    codecs.forget(session.connection)
    return cost, baseline


async def run(messages: int, rounds: int, repeat: int) -> None:
    async def best(fn: Any) -> float:
        return min([await fn() for _ in range(repeat)])

    raw = await best(lambda: _raw(messages))
    plain = await best(lambda: _nbws(messages, []))
    exchanges = _sample_exchanges()  # loads every codec, registers the Socket.IO one
    codecs.available()
    idle = await best(lambda: _nbws(messages, []))
    decoding = await best(lambda: _nbws(messages, [codecs.Decoder()]))
    print_table(
        f"Codecs on a JSON-RPC exchange, CPU per request answered ({messages:,} pipelined)",
        [
            Result("raw websockets", raw * 1e6, "µs", higher_is_better=False),
            Result("nbws", plain * 1e6, "µs", higher_is_better=False),
            Result("nbws, codecs loaded, idle", idle * 1e6, "µs", higher_is_better=False),
            Result("nbws, Decoder on both ends", decoding * 1e6, "µs", higher_is_better=False),
        ],
        "raw websockets",
        ("nbws, codecs loaded, idle", "nbws, Decoder on both ends"),
    )
    print(f"  -> idle codecs vs nbws without them: {plain / idle:.2f}x")
    print(f"\n## Decoding, CPU per message, in order with correlation ({rounds:,} exchanges each)")
    for name, exchange in exchanges.items():
        costs = [_decode_cost(name.split()[0], exchange, rounds) for _ in range(repeat)]
        cost, baseline = min(costs)
        print(
            f"  {name:<22} {cost * 1e6:>7.2f} µs  = {cost / baseline:5.1f}x json.loads of the same size, "
            f"{cost / raw:4.2f}x one raw websockets echo"
        )
    if "bench-socketio" in nbws.plugins:
        nbws.plugins.unregister("bench-socketio")
