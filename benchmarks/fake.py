"""
FakeServer replay against a live nbws echo server, in the same run.

The client is raw ``websockets`` in this process (so both stacks pay for the
same client); the servers run on the same loop:

- live: an ``nbws.Server`` whose message handler echoes each message;
- fake: an ``nbws.FakeServer`` playing a recording of that same session
  (each client message followed by its echo), ``speed=math.inf`` so that no
  recorded delay is waited for; every client message is matched against the
  recording (JSON-aware equality) before its reply is sent.

Throughput: ``messages`` distinct small text messages sent without waiting,
timed until the last reply is in. Latency: ``round_trips`` messages one at a
time. Both in wall-clock and this process's CPU time (the fairer figure on a
shared machine). The ratio says what replaying costs over a live echo.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.asyncio.client import connect

import nbws
from nbws.recording import RecordedEvent, Recording

from ._common import Result, Stopwatch, print_table

WARMUP = 200


def payload(i: int) -> str:
    return f'{{"op":"quote","seq":{i}}}'


def session(count: int) -> Recording:
    """A recorded session: ``count`` client messages, each answered by its echo."""
    t = 1_700_000_000.0
    events = [RecordedEvent("open", t, "c1", "client", url="ws://127.0.0.1/")]
    for i in range(count):
        events.append(RecordedEvent("message", t + i * 1e-3, "c1", "client", "send", i + 1, payload(i)))
        events.append(RecordedEvent("message", t + i * 1e-3 + 1e-4, "c1", "client", "receive", i + 1, payload(i)))
    return Recording(events)


@dataclass
class Run:
    rate: float
    cpu_per_message: float
    times: list[float]
    cpu_per_round_trip: float


async def _measure(url_for: Callable[[int], Awaitable[str]], messages: int, round_trips: int) -> Run:
    url = await url_for(WARMUP + messages)
    async with connect(url) as ws:
        for i in range(WARMUP):
            await ws.send(payload(i))
            await ws.recv()

        async def sender() -> None:
            for i in range(WARMUP, WARMUP + messages):
                await ws.send(payload(i))

        flood = Stopwatch()
        task = asyncio.create_task(sender())
        for _ in range(messages):
            await ws.recv()
        await task
        flood.stop()
    url = await url_for(round_trips)
    async with connect(url) as ws:
        times = []
        total = Stopwatch()
        for i in range(round_trips):
            one = Stopwatch()
            await ws.send(payload(i))
            await ws.recv()
            times.append(one.stop().wall)
        total.stop()
    return Run(messages / flood.wall, flood.cpu / messages, times, total.cpu / round_trips)


async def live(messages: int, round_trips: int) -> Run:
    server = nbws.Server()
    server.on("message", lambda conn, message: conn.send(message.data))
    await server.start()
    try:

        async def url_for(count: int) -> str:
            return server.url

        return await _measure(url_for, messages, round_trips)
    finally:
        await server.stop()


async def fake(messages: int, round_trips: int) -> Run:
    fakes: list[nbws.FakeServer] = []

    async def url_for(count: int) -> str:
        server = nbws.FakeServer(session(count), speed=math.inf)
        await server.start()
        fakes.append(server)
        return server.url

    try:
        run = await _measure(url_for, messages, round_trips)
    finally:
        for server in fakes:
            await server.stop()
    for server in fakes:
        server.check(all_played=False)  # a benchmark that mismatched would measure the wrong thing
    return run


async def run(messages: int = 10_000, round_trips: int = 1_000, repeat: int = 3) -> dict[str, list[Result]]:
    """Measure both servers ``repeat`` times, in turn; print and return the best figures."""
    stacks: dict[str, Callable[[], Awaitable[Run]]] = {
        "nbws echo server": lambda: live(messages, round_trips),
        "FakeServer replay": lambda: fake(messages, round_trips),
    }
    runs: dict[str, list[Run]] = {name: [] for name in stacks}
    for _ in range(repeat):
        for name, measure in stacks.items():
            runs[name].append(await measure())

    def best(name: str, key: Callable[[Run], float], highest: bool) -> float:
        values = [key(r) for r in runs[name]]
        return max(values) if highest else min(values)

    rates = [Result(name, best(name, lambda r: r.rate, True), "msg/s") for name in stacks]
    cpu = [Result(name, best(name, lambda r: r.cpu_per_message * 1e6, False), "us CPU/msg", False) for name in stacks]
    latency = [
        Result(name, best(name, lambda r: statistics.median(r.times) * 1e6, False), "us median", False)
        for name in stacks
    ]
    latency_cpu = [
        Result(name, best(name, lambda r: r.cpu_per_round_trip * 1e6, False), "us CPU/round trip", False)
        for name in stacks
    ]
    subjects = ("FakeServer replay",)
    what = f"{messages:,} messages, pipelined, websockets client, best of {repeat}"
    print_table(f"FakeServer replay throughput, wall clock: {what}", rates, "nbws echo server", subjects)
    print_table(f"FakeServer replay throughput, CPU time: {what}", cpu, "nbws echo server", subjects)
    what = f"{round_trips:,} sequential messages, best of {repeat}"
    print_table(f"FakeServer reply latency, wall clock: {what}", latency, "nbws echo server", subjects)
    print_table(f"FakeServer reply latency, CPU time: {what}", latency_cpu, "nbws echo server", subjects)
    return {"throughput": rates, "throughput_cpu": cpu, "latency": latency, "latency_cpu": latency_cpu}
