"""
The relay's overhead: a client talking to an echo server through an nbws Relay, against talking to it directly.

Everything runs in this process on one event loop: the client (an
``nbws.WebSocket``), the relay when there is one, and the upstream echo server
(raw websockets, so the upstream costs little and the same in both runs).
Same settings on every leg (permessage-deflate, as the defaults).

- throughput: ``messages`` small messages pipelined, timed until the last
  echo is back; wall clock and this process's CPU time per message (the whole
  cost, since every end runs here);
- round trip: ``round_trips`` sequential echoes, the median. "One nbws hop"
  is the round trip of an nbws client to an nbws echo server in the same run:
  the relay adds a hop in each direction, so the aim is an added round trip
  of at most two hops.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection, serve

import nbws

from ._common import Result, Stopwatch, print_table
from .echo import PAYLOAD, WARMUP, _round_trips


@dataclass
class Run:
    rate: float
    cpu_per_message: float
    round_trip: float


async def _raw_echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _measure(url: str, messages: int, round_trips: int) -> Run:
    ws = nbws.WebSocket(url)
    await ws.opened()
    arrived = target = 0
    done = asyncio.Event()

    def on_message(message: nbws.Message) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == target:
            done.set()

    async def pipelined(n: int) -> Stopwatch:
        nonlocal arrived, target
        arrived, target = 0, n
        done.clear()
        watch = Stopwatch()
        for _ in range(n):
            ws.send(PAYLOAD)
        await done.wait()
        return watch.stop()

    ws.onmessage = on_message
    await pipelined(WARMUP)
    flood = await pipelined(messages)
    ws.close()
    await ws.closed()
    ws = nbws.WebSocket(url)
    await ws.opened()

    async def round_trip() -> None:
        ws.send(PAYLOAD)
        await ws.recv()

    times, _ = await _round_trips(round_trip, round_trips)
    ws.close()
    await ws.closed()
    return Run(messages / flood.wall, flood.cpu / messages, statistics.median(times))


async def direct(messages: int, round_trips: int) -> Run:
    async with serve(_raw_echo, "127.0.0.1", 0) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        return await _measure(f"ws://127.0.0.1:{port}/", messages, round_trips)


async def relayed(messages: int, round_trips: int) -> Run:
    async with serve(_raw_echo, "127.0.0.1", 0) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        relay = nbws.Relay(f"ws://127.0.0.1:{port}")
        await relay.start()
        try:
            return await _measure(relay.url, messages, round_trips)
        finally:
            await relay.stop()


async def nbws_hop(round_trips: int) -> float:
    """The median round trip of an nbws client to an nbws echo server: one hop each way."""
    server = nbws.Server()
    server.on("message", lambda conn, message: conn.send(message.data))
    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened()

    async def round_trip() -> None:
        ws.send(PAYLOAD)
        await ws.recv()

    times, _ = await _round_trips(round_trip, round_trips)
    ws.close()
    await ws.closed()
    await server.stop()
    return statistics.median(times)


async def run(messages: int = 20_000, round_trips: int = 2_000, repeat: int = 3) -> dict[str, list[Result]]:
    """Measure direct and relayed ``repeat`` times, in turn; print the best figures and the ratios."""
    stacks: dict[str, Callable[[], Awaitable[Run]]] = {
        "direct": lambda: direct(messages, round_trips),
        "through the relay": lambda: relayed(messages, round_trips),
    }
    runs: dict[str, list[Run]] = {name: [] for name in stacks}
    hops: list[float] = []
    for _ in range(repeat):
        for name, measure in stacks.items():
            runs[name].append(await measure())
        hops.append(await nbws_hop(round_trips))
    rates = [Result(name, max(r.rate for r in runs[name]), "msg/s") for name in stacks]
    cpu = [Result(name, min(r.cpu_per_message for r in runs[name]) * 1e6, "us CPU/msg", False) for name in stacks]
    latency = [Result(name, min(r.round_trip for r in runs[name]) * 1e6, "us median", False) for name in stacks]
    subjects = ("through the relay",)
    what = f"{messages:,} messages of {len(PAYLOAD)} bytes, pipelined, best of {repeat}"
    print_table(f"Relay throughput, wall clock: {what}", rates, "direct", subjects)
    print_table(f"Relay throughput, CPU time: {what}", cpu, "direct", subjects)
    print_table(
        f"Relay round trip, wall clock: {round_trips:,} sequential echoes, best of {repeat}",
        latency,
        "direct",
        subjects,
    )
    hop = min(hops) * 1e6
    added = latency[1].value - latency[0].value
    print(f"  one nbws hop (nbws client to nbws echo server): {hop:,.1f} us median")
    print(f"  -> added by the relay: {added:,.1f} us = {added / hop:.2f} nbws hops (aim: at most 2)")
    print(f"  -> relay throughput: {rates[1].value / rates[0].value:.2f}x direct (aim: at least 0.5)")
    return {"throughput": rates, "throughput_cpu": cpu, "latency": latency}
