"""
Broadcast to many clients: ``nbws.Server.broadcast`` against ``websockets.broadcast``.

The clients are Node ws connections in another process (so that the server's
own work is what this process measures). Each round broadcasts one short text
message; the round ends when every client has it. The figures are the median
time from the broadcast call to the last client's receipt, and the server
process's CPU time per round; both servers run with their default settings,
which are the same (permessage-deflate: each client's copy is compressed).
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve

import nbws

from ._common import BENCH_JS, INTEROP, Result, Stopwatch, node_ws, print_table


class Clients:
    """The Node process holding the clients."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, node: str, url: str, count: int) -> Clients:
        process = await asyncio.create_subprocess_exec(
            node,
            str(BENCH_JS / "broadcast_clients.js"),
            url,
            str(count),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={"NODE_PATH": str(INTEROP / "node_modules"), "PATH": ""},
            limit=2**20,
        )
        clients = cls(process)
        ready = await clients.line(60)
        assert ready == {"ready": count}, ready
        return clients

    async def line(self, seconds: float = 30) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), seconds)
        if not raw:
            raise RuntimeError("the Node clients exited")
        result: dict[str, Any] = json.loads(raw)
        return result

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await self.process.wait()


async def rounds_of(broadcast: Callable[[str], Any], clients: Clients, rounds: int) -> tuple[list[float], float]:
    """Broadcast ``rounds`` times; return each round's wall time and this process's CPU time per round."""
    times = []
    cpu = 0.0
    for k in range(rounds):
        watch = Stopwatch()
        broadcast(str(k))
        assert await clients.line() == {"round": k}
        watch.stop()
        times.append(watch.wall)
        cpu += watch.cpu
    return times, cpu / rounds


async def raw_websockets(node: str, count: int, rounds: int) -> tuple[list[float], float]:
    connections: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        clients = await Clients.start(node, f"ws://127.0.0.1:{port}/", count)
        try:
            return await rounds_of(lambda data: websockets.broadcast(connections, data), clients, rounds)
        finally:
            await clients.stop()


async def nbws_server(node: str, count: int, rounds: int, plugins: list[object]) -> tuple[list[float], float]:
    server = nbws.Server(plugins=plugins)
    await server.start()
    clients = await Clients.start(node, server.url, count)
    try:
        assert len(server.clients) == count
        return await rounds_of(server.broadcast, clients, rounds)
    finally:
        await clients.stop()
        await server.stop()


async def run(clients: int = 1_000, rounds: int = 20, repeat: int = 3) -> dict[str, Any]:
    node = node_ws()
    if node is None:
        print("\n## Broadcast: skipped (needs Node and tests/interop/node_modules/ws: run scripts/system-deps)")
        return {}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * clients + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * clients + 256), hard))
    from .echo import observers

    stacks: dict[str, Callable[[], Awaitable[tuple[list[float], float]]]] = {
        "raw websockets": lambda: raw_websockets(node, clients, rounds),
        "nbws": lambda: nbws_server(node, clients, rounds, []),
        "nbws + 3 plugins": lambda: nbws_server(node, clients, rounds, observers()),
    }
    walls: dict[str, list[float]] = {name: [] for name in stacks}
    cpus: dict[str, list[float]] = {name: [] for name in stacks}
    for _ in range(repeat):
        for name, measure in stacks.items():
            times, cpu = await measure()
            walls[name].append(statistics.median(times) * 1e3)
            cpus[name].append(cpu * 1e3)
    wall = [Result(name, min(values), "ms per broadcast", False) for name, values in walls.items()]
    cpu = [Result(name, min(values), "ms CPU per broadcast", False) for name, values in cpus.items()]
    what = f"{clients:,} clients (Node ws in another process), {rounds} rounds, best of {repeat}"
    subjects = ("nbws", "nbws + 3 plugins")
    print_table(f"Broadcast to {what}: median time until every client has it", wall, "raw websockets", subjects)
    print_table(f"Broadcast to {what}: server CPU time", cpu, "raw websockets", subjects)
    return {"broadcast": wall, "broadcast_cpu": cpu}
