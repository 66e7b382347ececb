"""
Echo throughput and round-trip latency: nbws against raw websockets, in the same run.

Each stack runs its client and its server in this process, on one event loop,
as in a kernel, with its library's default settings (which are the same for
nbws and websockets: permessage-deflate, 1 MiB max_size, pings every 20 s):

- throughput: the client sends ``messages`` small text messages without
  waiting (pipelined); the server echoes each; timed until the last echo is in;
- latency: ``round_trips`` messages one at a time, each sent once the echo of
  the previous one is in; the median and 99th percentile round trip.

Each is measured in wall-clock time and in this process's CPU time (both ends
run here, so CPU time is the whole cost, and is what other processes on a busy
machine disturb least: compare ratios of CPU time when the machine is shared).

nbws runs with no plugin, then with three observing plugins registered
globally (so on both ends), then with only the example nbws-stats plugin (as
when it is installed: it autoloads). Raw websockets and nbws run at equal
settings twice: with permessage-deflate (both libraries' default) and with
compression off on both. A last table sends 64 KiB binary messages without
compression. For context: aiohttp (its client and server, at both
settings), websocket-client (threads, against a raw websockets server in
this process; it has no permessage-deflate) and Node's ws (client and server
in one Node process, no permessage-deflate: ws's server default). Stacks are
measured in turn, ``repeat`` times (interleaved trials), and the best of each
is kept.

A last table says where the time goes, compression off: websockets'
sans-I/O framing alone (no socket), then a bare ``asyncio.Protocol`` on
it with none of nbws's work (the floor of nbws's design), then that floor
with the three observers' calls, beside nbws and raw websockets.

nbws's rows come from :func:`nbws_rows`, which takes the ``engine`` to run
them on (None: nbws's default); another engine adds its rows by listing it
in :data:`ENGINES`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import websocket  # websocket-client
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

import nbws

from ._common import BENCH_JS, INTEROP, Result, Stopwatch, node_ws, print_table

PAYLOAD: str | bytes = "x" * 16
BIG = bytes(range(256)) * 256  # 64 KiB, binary
WARMUP = 500


class _Observer:
    """An observing plugin: it looks at every message and changes nothing."""

    def __init__(self) -> None:
        self.count = 0
        self.size = 0
        self.last = 0.0

    @nbws.hookimpl
    def nbws_message_sent(self, message: nbws.Message) -> None:
        self.count += 1

    @nbws.hookimpl
    def nbws_message_received(self, message: nbws.Message) -> None:
        self.size += len(message.data)
        self.last = message.time


def observers() -> list[object]:
    return [_Observer(), _Observer(), _Observer()]


def stats_plugin() -> list[object]:
    """The example nbws-stats plugin, as it runs when installed (it autoloads); none if it is not installed."""
    try:
        from nbws_stats import Stats
    except ImportError:
        return []
    return [Stats()]


# -- raw websockets ---------------------------------------------------------------


@dataclass
class Run:
    """One measurement of one stack."""

    rate: float  # messages per wall-clock second, pipelined
    cpu_per_message: float  # CPU seconds per echoed message, pipelined
    times: list[float]  # wall-clock round trips
    cpu_per_round_trip: float


async def _raw_echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def raw_pipelined(ws: ClientConnection, n: int, payload: str | bytes) -> Stopwatch:
    """Send ``n`` messages without waiting and receive their ``n`` echoes: the time it took (raw websockets)."""

    async def sender() -> None:
        for _ in range(n):
            await ws.send(payload)

    watch = Stopwatch()
    task = asyncio.create_task(sender())
    for _ in range(n):
        await ws.recv()
    await task
    return watch.stop()


async def raw_websockets(
    messages: int, round_trips: int, compression: str | None = "deflate", payload: str | bytes = PAYLOAD
) -> Run:
    async with serve(_raw_echo, "127.0.0.1", 0, compression=compression) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/", compression=compression) as ws:
            await raw_pipelined(ws, WARMUP, payload)
            flood = await raw_pipelined(ws, messages, payload)
        async with connect(f"ws://127.0.0.1:{port}/", compression=compression) as ws:

            async def round_trip() -> None:
                await ws.send(payload)
                await ws.recv()

            times, cpu = await _round_trips(round_trip, round_trips)
    return Run(messages / flood.wall, flood.cpu / messages, times, cpu)


async def _round_trips(round_trip: Callable[[], Awaitable[None]], count: int) -> tuple[list[float], float]:
    for _ in range(WARMUP):
        await round_trip()
    times = []
    total = Stopwatch()
    for _ in range(count):
        watch = Stopwatch()
        await round_trip()
        times.append(watch.stop().wall)
    return times, total.stop().cpu / count


# -- nbws ------------------------------------------------------------------------


async def nbws_stack(
    messages: int,
    round_trips: int,
    plugins: list[object],
    compression: str | None = "deflate",
    payload: str | bytes = PAYLOAD,
    engine: str | None = None,
) -> Run:
    names = [nbws.plugins.register(plugin) for plugin in plugins]
    options: dict[str, Any] = {"compression": compression, "max_size": 2**20}
    if engine is not None:
        options["engine"] = engine
    try:
        server = nbws.Server(**options)
        server.on("message", lambda conn, message: conn.send(message.data))
        await server.start()
        ws = nbws.WebSocket(server.url, **options)
        await ws.opened()
        arrived = 0
        target = 0
        done = asyncio.Event()

        window = None if len(payload) < 2**12 else 32
        progress = asyncio.Event()

        def on_message(message: nbws.Message) -> None:
            nonlocal arrived
            arrived += 1
            if window is not None:
                progress.set()
            if arrived == target:
                done.set()

        async def pipelined(n: int) -> Stopwatch:
            nonlocal arrived, target
            arrived, target = 0, n
            done.clear()
            watch = Stopwatch()
            for sent in range(n):
                if window is not None and sent - arrived >= window:
                    # Big messages: keep a window in flight (raw websockets' send() awaits the pipe instead).
                    progress.clear()
                    await progress.wait()
                ws.send(payload)
            await done.wait()
            return watch.stop()

        ws.onmessage = on_message
        await pipelined(WARMUP)
        flood = await pipelined(messages)
        ws.close()
        await ws.closed()
        # A fresh client for the round trips: the first one's recv() buffer is full of echoes.
        ws = nbws.WebSocket(server.url, **options)
        await ws.opened()

        async def round_trip() -> None:
            ws.send(payload)
            await ws.recv()

        times, cpu = await _round_trips(round_trip, round_trips)
        ws.close()
        await ws.closed()
        await server.stop()
    finally:
        for name in names:
            nbws.plugins.unregister(name)
    return Run(messages / flood.wall, flood.cpu / messages, times, cpu)


# -- the design's floor (context) --------------------------------------------------------


def _sans_io_pair() -> tuple[ClientProtocol, ServerProtocol]:
    """websockets' sans-I/O client and server, past the opening handshake, compression off."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"))
    server = ServerProtocol()
    client.send_request(client.connect())
    for chunk in client.data_to_send():
        server.receive_data(chunk)
    [request] = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    for chunk in server.data_to_send():
        client.receive_data(chunk)
    client.events_received()
    return client, server


def sans_io_framing(messages: int) -> float:
    """
    CPU seconds per echo spent in websockets' sans-I/O framing alone: no socket, no event loop.

    The client frames 64 messages, the server parses them and frames each
    back, the client parses the echoes: what framing costs nbws (and raw
    websockets) per echo, whatever else they do.
    """
    client, server = _sans_io_pair()
    payload = PAYLOAD.encode() if isinstance(PAYLOAD, str) else PAYLOAD
    watch = Stopwatch()
    for _ in range(messages // 64):
        for _ in range(64):
            client.send_text(payload)
        server.receive_data(b"".join(client.data_to_send()))
        for frame in server.events_received():
            assert isinstance(frame, Frame)
            server.send_text(frame.data)
        client.receive_data(b"".join(server.data_to_send()))
        client.events_received()
    return watch.stop().cpu / (messages // 64 * 64)


class _Bare(asyncio.Protocol):
    """The least an asyncio.Protocol on websockets' sans-I/O core does: parse, hand each text message on, write."""

    def __init__(self, proto: ClientProtocol | ServerProtocol, on_text: Callable[[_Bare, str], None]) -> None:
        self.proto = proto
        self.on_text = on_text
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        proto = self.proto
        proto.receive_data(data)
        for event in proto.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self.on_text(self, bytes(event.data).decode())
            elif isinstance(event, Request):
                assert isinstance(proto, ServerProtocol)
                proto.send_response(proto.accept(event))
                self.opened.set_result(None)
            else:
                self.opened.set_result(None)
        self.flush()

    def send(self, text: str) -> None:
        self.proto.send_text(text.encode())

    def flush(self) -> None:
        chunks = self.proto.data_to_send()
        if chunks and self.transport is not None:
            self.transport.write(b"".join(chunks))


async def sans_io_floor(messages: int, observers: int) -> float:
    """
    CPU seconds per echo of a bare asyncio.Protocol on websockets' sans-I/O core: the floor of nbws's design.

    Both ends in this process, compression off, the client's messages
    written in one go as nbws writes a turn's sends; with ``observers``
    plain method calls per message and direction (as the three plugins'
    hooks are), and none of nbws's work (no Message, no recv() buffer, no
    handlers, no counters, no close handling).
    """
    loop = asyncio.get_running_loop()
    watchers = [_Observer() for _ in range(observers)]
    sent_hooks = [w.nbws_message_sent for w in watchers]
    received_hooks = [w.nbws_message_received for w in watchers]
    arrived = 0
    target = 0
    done: asyncio.Future[None] = loop.create_future()

    class _Text:  # what the observers read: .data and .time
        __slots__ = ("data", "time")

        def __init__(self, data: str) -> None:
            self.data = data
            self.time = 0.0

    def on_server_text(end: _Bare, text: str) -> None:
        message = _Text(text)
        for hook in received_hooks:
            hook(message)  # type: ignore[arg-type]
        end.send(text)
        for hook in sent_hooks:
            hook(message)  # type: ignore[arg-type]

    def on_client_text(end: _Bare, text: str) -> None:
        nonlocal arrived
        message = _Text(text)
        for hook in received_hooks:
            hook(message)  # type: ignore[arg-type]
        arrived += 1
        if arrived == target:
            done.set_result(None)

    server = await loop.create_server(lambda: _Bare(ServerProtocol(), on_server_text), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"))
    transport, client = await loop.create_connection(lambda: _Bare(proto, on_client_text), "127.0.0.1", port)
    try:
        proto.send_request(proto.connect())
        client.flush()
        await client.opened
        text = PAYLOAD if isinstance(PAYLOAD, str) else PAYLOAD.decode()
        cpu = 0.0
        for n in (WARMUP, messages):
            arrived, target, done = 0, n, loop.create_future()
            watch = Stopwatch()
            for _ in range(n):
                client.send(text)
                message = _Text(text)
                for hook in sent_hooks:
                    hook(message)  # type: ignore[arg-type]
            client.flush()
            await done
            cpu = watch.stop().cpu / n
        return cpu
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


# -- aiohttp (context) ------------------------------------------------------------------


async def aiohttp_stack(messages: int, round_trips: int, compression: str | None = "deflate") -> Run:
    """aiohttp's own client and server, at the same settings as the others (deflate, or off on both)."""
    from aiohttp import ClientSession, WSMsgType, web

    deflate = compression is not None

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=deflate, max_msg_size=2**20)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/"
    assert isinstance(PAYLOAD, str)
    text = PAYLOAD
    try:
        async with (
            ClientSession() as session,
            session.ws_connect(url, compress=15 if deflate else 0, max_msg_size=2**20) as ws,
        ):

            async def pipelined(n: int) -> Stopwatch:
                async def sender() -> None:
                    for _ in range(n):
                        await ws.send_str(text)

                watch = Stopwatch()
                task = asyncio.create_task(sender())
                for _ in range(n):
                    await ws.receive()
                await task
                return watch.stop()

            await pipelined(WARMUP)
            flood = await pipelined(messages)

            async def round_trip() -> None:
                await ws.send_str(text)
                await ws.receive()

            times, cpu = await _round_trips(round_trip, round_trips)
    finally:
        await runner.cleanup()
    return Run(messages / flood.wall, flood.cpu / messages, times, cpu)


# -- websocket-client (context) -----------------------------------------------------


def _websocket_client_run(url: str, messages: int, round_trips: int) -> Run:
    ws = websocket.create_connection(url, enable_multithread=True)
    try:

        def pipelined(n: int) -> Stopwatch:
            def sender() -> None:
                for _ in range(n):
                    ws.send(PAYLOAD)

            watch = Stopwatch()
            thread = threading.Thread(target=sender)
            thread.start()
            for _ in range(n):
                ws.recv()
            thread.join()
            return watch.stop()

        pipelined(WARMUP)
        flood = pipelined(messages)
        for _ in range(WARMUP):
            ws.send(PAYLOAD)
            ws.recv()
        times = []
        total = Stopwatch()
        for _ in range(round_trips):
            watch = Stopwatch()
            ws.send(PAYLOAD)
            ws.recv()
            times.append(watch.stop().wall)
        cpu = total.stop().cpu / round_trips
    finally:
        ws.close()
    return Run(messages / flood.wall, flood.cpu / messages, times, cpu)


async def websocket_client(messages: int, round_trips: int) -> Run:
    # websocket-client has no permessage-deflate: its server runs without it.
    async with serve(_raw_echo, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        return await asyncio.to_thread(_websocket_client_run, f"ws://127.0.0.1:{port}/", messages, round_trips)


# -- Node's ws (context) ------------------------------------------------------------


async def node(messages: int, round_trips: int) -> dict[str, float] | None:
    path = node_ws()
    if path is None:
        return None
    run = await asyncio.to_thread(
        subprocess.run,
        [path, str(BENCH_JS / "echo_bench.js"), str(messages), str(round_trips), str(len(PAYLOAD))],
        capture_output=True,
        text=True,
        timeout=300,
        env={"NODE_PATH": str(INTEROP / "node_modules"), "PATH": ""},
        check=True,
    )
    result: dict[str, float] = json.loads(run.stdout)
    return result


# -- the benchmark ------------------------------------------------------------------


def _quantile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


ENGINES: tuple[str | None, ...] = (None,)
"""The engines nbws's rows are measured on (None: the default one)."""


def nbws_rows(messages: int, round_trips: int, engine: str | None = None) -> dict[str, Callable[[], Awaitable[Run]]]:
    """nbws's echo stacks on ``engine``: 0 and 3 observing plugins and nbws-stats, deflate on and off."""
    tag = "" if engine is None else f" [{engine}]"
    return {
        f"nbws{tag}": lambda: nbws_stack(messages, round_trips, [], engine=engine),
        f"nbws{tag} + 3 plugins": lambda: nbws_stack(messages, round_trips, observers(), engine=engine),
        f"nbws{tag} + nbws-stats": lambda: nbws_stack(messages, round_trips, stats_plugin(), engine=engine),
        f"nbws{tag}, no deflate": lambda: nbws_stack(messages, round_trips, [], None, engine=engine),
        f"nbws{tag} + 3 plugins, no deflate": lambda: nbws_stack(
            messages, round_trips, observers(), None, engine=engine
        ),
    }


FLOOR_ROWS = (
    "websockets sans-I/O framing alone",
    "bare asyncio.Protocol on it (the floor)",
    "the floor + 3 observer calls",
)
"""The design's floor (see :func:`sans_io_framing` and :func:`sans_io_floor`), printed beside nbws, compression off."""


async def run(messages: int = 20_000, round_trips: int = 2_000, repeat: int = 3) -> dict[str, list[Result]]:
    """Measure every stack ``repeat`` times, in turn; print and return the best figures."""
    stacks: dict[str, Callable[[], Awaitable[Run]]] = {
        "raw websockets": lambda: raw_websockets(messages, round_trips),
        "raw websockets, no deflate": lambda: raw_websockets(messages, round_trips, None),
    }
    for engine in ENGINES:
        stacks.update(nbws_rows(messages, round_trips, engine))
    stacks.update(
        {
            "aiohttp": lambda: aiohttp_stack(messages, round_trips),
            "aiohttp, no deflate": lambda: aiohttp_stack(messages, round_trips, None),
            "websocket-client, no deflate": lambda: websocket_client(messages, round_trips),
        }
    )
    big_messages, big_trips = max(200, messages // 20), max(50, round_trips // 10)
    big: dict[str, Callable[[], Awaitable[Run]]] = {
        "raw websockets": lambda: raw_websockets(big_messages, big_trips, None, BIG),
        "nbws": lambda: nbws_stack(big_messages, big_trips, [], None, BIG),
        "nbws + 3 plugins": lambda: nbws_stack(big_messages, big_trips, observers(), None, BIG),
    }
    runs: dict[str, list[Run]] = {name: [] for name in stacks}
    big_runs: dict[str, list[Run]] = {name: [] for name in big}
    floors: dict[str, list[float]] = {name: [] for name in FLOOR_ROWS}
    for _ in range(repeat):
        for name, measure in stacks.items():
            runs[name].append(await measure())
        for name, measure in big.items():
            big_runs[name].append(await measure())
        floors[FLOOR_ROWS[0]].append(sans_io_framing(messages))
        floors[FLOOR_ROWS[1]].append(await sans_io_floor(messages, 0))
        floors[FLOOR_ROWS[2]].append(await sans_io_floor(messages, 3))
    node_result = await node(messages, round_trips)

    def best(name: str, key: Callable[[Run], float], highest: bool, among: dict[str, list[Run]] = runs) -> float:
        values = [key(r) for r in among[name]]
        return max(values) if highest else min(values)

    rates = [Result(name, best(name, lambda r: r.rate, True), "msg/s") for name in stacks]
    cpu = [Result(name, best(name, lambda r: r.cpu_per_message * 1e6, False), "us CPU/msg", False) for name in stacks]
    latency = [
        Result(
            name,
            best(name, lambda r: statistics.median(r.times) * 1e6, False),
            "us median",
            False,
            {"p99": f"{best(name, lambda r: _quantile(r.times, 0.99) * 1e6, False):.0f}us"},
        )
        for name in stacks
    ]
    latency_cpu = [
        Result(name, best(name, lambda r: r.cpu_per_round_trip * 1e6, False), "us CPU/round trip", False)
        for name in stacks
    ]
    if node_result is not None:
        node_name = "node ws, no deflate"
        rates.append(Result(node_name, node_result["throughput"], "msg/s"))
        if "cpu_us" in node_result:
            cpu.append(Result(node_name, node_result["cpu_us"], "us CPU/msg", False))
        latency.append(
            Result(node_name, node_result["median_us"], "us median", False, {"p99": f"{node_result['p99_us']:.0f}us"})
        )
    nbws_names = [name for name in stacks if name.startswith("nbws")]
    subjects = tuple(name for name in nbws_names if "no deflate" not in name)
    off = tuple(name for name in nbws_names if "no deflate" in name)
    what = f"{messages:,} messages of {len(PAYLOAD)} bytes, pipelined, best of {repeat}"

    def tables(title: str, results: list[Result]) -> None:
        # Ratios at equal settings: deflate on both, then compression off on both.
        on = [r for r in results if "no deflate" not in r.stack]
        print_table(f"{title} (permessage-deflate on both)", on, "raw websockets", subjects)
        print_table(
            f"{title} (compression off on both)",
            [r for r in results if "no deflate" in r.stack],
            "raw websockets, no deflate",
            off,
        )

    tables(f"Echo throughput, wall clock: {what}", rates)
    tables(f"Echo throughput, CPU time: {what}", cpu)
    what = f"{round_trips:,} sequential echoes, best of {repeat}"
    tables(f"Round-trip latency, wall clock: {what}", latency)
    tables(f"Round-trip latency, CPU time: {what}", latency_cpu)
    what = f"{big_messages:,} binary messages of 64 KiB, pipelined, compression off, best of {repeat}"
    big_cpu = [
        Result(name, best(name, lambda r: r.cpu_per_message * 1e6, False, big_runs), "us CPU/msg", False)
        for name in big
    ]
    big_rates = [Result(name, best(name, lambda r: r.rate, True, big_runs), "msg/s") for name in big]
    print_table(f"64 KiB echo throughput, CPU time: {what}", big_cpu, "raw websockets", ("nbws", "nbws + 3 plugins"))
    print_table(
        f"64 KiB echo throughput, wall clock: {what}", big_rates, "raw websockets", ("nbws", "nbws + 3 plugins")
    )
    where = [Result(name, min(values) * 1e6, "us CPU/echo", False) for name, values in floors.items()]
    where += [r for r in cpu if r.stack in ("raw websockets, no deflate", *off)]
    print_table(
        f"Where the time goes, CPU time: {messages:,} messages of {len(PAYLOAD)} bytes, best of {repeat} "
        "(compression off; the floor rows are websockets' sans-I/O core with none of nbws's work)",
        where,
        "raw websockets, no deflate",
        (*FLOOR_ROWS, *off),
    )
    return {"throughput": rates, "throughput_cpu": cpu, "latency": latency, "latency_cpu": latency_cpu}
