"""
The relay's overhead, as a user meets it: the relay in this process (the kernel) between two other processes.

A client process (raw websockets, :mod:`benchmarks._peer`) talks to an echo
server in a third process (raw websockets too), first directly, then through a relay in this process: an ``nbws.Relay``, and,
as the floor a relay built on the same library could reach, a minimal relay on
raw websockets (two connections, one forwarding task each way). This process
does nothing else, as a kernel would; the three processes share the machine's
cores as they would on a laptop.

- throughput: the client sends ``messages`` small text messages pipelined and
  times them until the last echo is back (end to end, wall clock); this
  process measures its own CPU time over the same span, so the relay's cost
  per echoed message (two relayed messages, one each way) is exact whatever
  the client and the upstream cost;
- round trip: ``round_trips`` sequential echoes, the median. "One nbws hop"
  is the round trip of the same client to an nbws echo server in this
  process: the relay adds a hop each way, so the aim is an added round trip
  of at most two hops.

Three settings: permessage-deflate (the client offers it, the upstream
accepts it, so both legs of the relay negotiate it); compression off
everywhere; and, when Node's ``ws`` is installed (``scripts/system-deps``),
``tests/interop/echo_server.js --plain --quiet`` as the upstream, a backend
we did not write: the client offers permessage-deflate, as browsers do, and
ws declines it, as it does by default (so the relay compresses on neither leg).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

import nbws

from ._common import INTEROP, ROOT, Result, Stopwatch, node_ws, print_table

SIZE = 16


@dataclass
class Run:
    rate: float  # echoes per second, end to end, as the client saw them
    client_cpu: float  # the client process's CPU seconds per echo
    relay_cpu: float  # this process's CPU seconds per echo (0 when nothing runs here)
    round_trip: float  # the median round trip, seconds
    p99: float


class _Process:
    """A peer process speaking JSON lines on stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *argv: str, env: dict[str, str] | None = None) -> _Process:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 300)
        if not line:
            assert self.process.stderr is not None
            error = (await self.process.stderr.read()).decode()
            raise RuntimeError(f"benchmark peer {self.process.pid} exited: {error}")
        event: dict[str, Any] = json.loads(line)
        return event

    async def write(self, line: str = "go") -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()


async def upstream(compression: str | None, node: str | None) -> tuple[_Process, str]:
    """The echo server in a process of its own: raw websockets, or Node's ws (which declines compression)."""
    if node is not None:
        argv = [node, str(INTEROP / "echo_server.js"), "--plain", "--quiet"]
        peer = await _Process.start(*argv, env={"NODE_PATH": str(INTEROP / "node_modules"), "PATH": ""})
    else:
        peer = await _Process.start(
            sys.executable, "-m", "benchmarks._peer", "echo", "--compression", _flag(compression)
        )
    listening = await peer.read()
    return peer, f"ws://127.0.0.1:{listening['port']}"


def _flag(compression: str | None) -> str:
    return compression or "none"


async def client_run(url: str, messages: int, round_trips: int, compression: str | None) -> Run:
    """Run the client process against ``url``; time its flood and its round trips, and this process's CPU meanwhile."""
    client = await _Process.start(
        sys.executable,
        "-m",
        "benchmarks._peer",
        "client",
        url,
        "--messages",
        str(messages),
        "--round-trips",
        str(round_trips),
        "--size",
        str(SIZE),
        "--compression",
        _flag(compression),
    )
    try:
        await client.read()  # ready: connected and warmed up
        watch = Stopwatch()
        await client.write()
        flood = await client.read()
        relay_cpu = watch.stop().cpu / messages
        await client.write()
        trips = await client.read()
    finally:
        await client.stop()
    return Run(flood["rate"], flood["cpu"], relay_cpu, trips["median"], trips["p99"])


# -- the relays -----------------------------------------------------------------------


async def nbws_relayed(upstream_url: str, messages: int, round_trips: int, compression: str | None) -> Run:
    relay = nbws.Relay(upstream_url, compression=compression)
    await relay.start()
    try:
        return await client_run(relay.url, messages, round_trips, compression)
    finally:
        await relay.stop()


async def _pump(source: ServerConnection | ClientConnection, target: ServerConnection | ClientConnection) -> None:
    try:
        async for message in source:
            await target.send(message)
    except ConnectionClosed:
        pass
    finally:
        await target.close()


async def raw_relayed(upstream_url: str, messages: int, round_trips: int, compression: str | None) -> Run:
    """A minimal relay on raw websockets: no hooks, no marks, no counts; what any relay must at least do."""

    async def relay(client: ServerConnection) -> None:
        async with connect(upstream_url, compression=compression, max_size=2**20) as up:
            await asyncio.gather(_pump(client, up), _pump(up, client))

    async with serve(relay, "127.0.0.1", 0, compression=compression, max_size=2**20) as server:
        port = server.sockets[0].getsockname()[1]
        return await client_run(f"ws://127.0.0.1:{port}/", messages, round_trips, compression)


async def nbws_hop(messages: int, round_trips: int, compression: str | None) -> Run:
    """The same client to an nbws echo server in this process: one nbws hop each way."""
    server = nbws.Server(compression=compression)
    server.on("message", lambda conn, message: conn.send(message.data))
    await server.start()
    try:
        return await client_run(server.url, messages, round_trips, compression)
    finally:
        await server.stop()


# -- the benchmark ----------------------------------------------------------------------


async def _measure(
    compression: str | None, node: str | None, messages: int, round_trips: int, repeat: int
) -> dict[str, list[Run]]:
    peer, url = await upstream(compression, node)
    try:
        stacks: dict[str, Callable[[], Awaitable[Run]]] = {
            "direct": lambda: client_run(url, messages, round_trips, compression),
            "nbws.Relay": lambda: nbws_relayed(url, messages, round_trips, compression),
            "raw websockets relay": lambda: raw_relayed(url, messages, round_trips, compression),
            "nbws echo server": lambda: nbws_hop(messages, round_trips, compression),
        }
        runs: dict[str, list[Run]] = {name: [] for name in stacks}
        for _ in range(repeat):
            for name, measure in stacks.items():
                runs[name].append(await measure())
    finally:
        await peer.stop()
    return runs


async def run(
    messages: int = 20_000, round_trips: int = 2_000, repeat: int = 3, every_setting: bool = True
) -> dict[str, list[Result]]:
    """
    Measure every stack ``repeat`` times, in turn, in each setting; print the best figures and ratios.

    With ``every_setting=False`` (a smoke run), only compression off with a raw websockets upstream.
    """
    results: dict[str, list[Result]] = {}
    node = node_ws()
    settings: list[tuple[str | None, str | None]] = [(None, None)]
    if every_setting:
        settings.insert(0, ("deflate", None))
        if node is not None:
            settings.append(("deflate", node))
    for compression, upstream_node in settings:
        setting = "permessage-deflate" if compression else "no compression"
        if compression and upstream_node:
            setting = "the client offers permessage-deflate, Node ws declines it"
        where = "Node ws" if upstream_node else "raw websockets"
        runs = await _measure(compression, upstream_node, messages, round_trips, repeat)
        relays = ("nbws.Relay", "raw websockets relay")
        rates = [Result(name, max(r.rate for r in runs[name]), "echo/s") for name in ("direct", *relays)]
        cpu = [
            Result(name, min(r.relay_cpu for r in runs[name]) * 1e6, "us CPU/echo in the relay process", False)
            for name in relays
        ]
        latency = [
            Result(
                name,
                min(r.round_trip for r in runs[name]) * 1e6,
                "us median",
                False,
                {"p99": f"{min(r.p99 for r in runs[name]) * 1e6:.0f}us"},
            )
            for name in ("direct", *relays)
        ]
        what = f"{messages:,} messages of {SIZE} bytes pipelined, {setting}, upstream {where}, best of {repeat}"
        print_table(f"Relay throughput, end to end: {what}", rates, "direct", relays)
        print_table(
            f"Relay CPU, in the relay's process, per echo (= 2 relayed messages): {what}",
            cpu,
            "raw websockets relay",
            ("nbws.Relay",),
        )
        print_table(
            f"Relay round trip: {round_trips:,} sequential echoes, {setting}, upstream {where}, best of {repeat}",
            latency,
            "direct",
            relays,
        )
        hop = min(r.round_trip for r in runs["nbws echo server"]) * 1e6
        direct, relayed = latency[0].value, latency[1].value
        added = relayed - direct
        client_cpu = min(r.client_cpu for r in runs["direct"]) * 1e6
        print(f"  one nbws hop (the client to an nbws echo server in this process): {hop:,.1f} us median")
        print(f"  -> added by nbws.Relay: {added:,.1f} us = {added / hop:.2f} nbws hops (aim: at most 2)")
        print(f"  -> nbws.Relay throughput: {rates[1].value / rates[0].value:.2f}x direct (aim: at least 0.5)")
        server_cpu = min(r.relay_cpu for r in runs["nbws echo server"]) * 1e6
        print(
            f"  (for scale, per echo: the client process {client_cpu:.1f} us CPU; an nbws echo server, one leg, {server_cpu:.1f} us)"
        )
        key = ("deflate" if compression else "off") + ("_node" if upstream_node else "")
        results[f"throughput_{key}"] = rates
        results[f"cpu_{key}"] = cpu
        results[f"latency_{key}"] = latency
        results[f"hop_{key}"] = [Result("nbws echo server", hop, "us median", False)]
    return results
