"""
The cost of accepting a connection: an nbws Server against a raw websockets server.

Everything runs in this process on one event loop. The same client (raw
websockets, no compression so the handshake costs the same on both sides)
opens a connection, waits for the server's first message (so the server has
gone from handshake to its open handler and a first write), and closes it,
``connections`` times in a row. Figures: this process's CPU time and the wall
time per connection; nbws's extra CPU per connection over raw websockets is
what the server side adds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

import nbws

from ._common import Result, Stopwatch, print_table

WARMUP = 50


async def _cycle(url: str, connections: int) -> Stopwatch:
    watch = Stopwatch()
    for _ in range(connections):
        async with connect(url, compression=None) as ws:
            await ws.recv()
    return watch.stop()


async def _raw_hello(ws: ServerConnection) -> None:
    await ws.send("hi")
    await ws.wait_closed()


async def raw_stack(connections: int) -> Stopwatch:
    async with serve(_raw_hello, "127.0.0.1", 0, compression=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        await _cycle(url, WARMUP)
        return await _cycle(url, connections)


async def nbws_stack(connections: int) -> Stopwatch:
    server = nbws.Server(compression=None)
    server.on("connection", lambda conn: conn.send("hi"))
    await server.start()
    try:
        await _cycle(server.url, WARMUP)
        return await _cycle(server.url, connections)
    finally:
        await server.stop()


async def _best(measure: Callable[[int], Awaitable[Stopwatch]], connections: int, repeat: int) -> tuple[float, float]:
    """The least CPU and the least wall time per connection over ``repeat`` runs."""
    watches = [await measure(connections) for _ in range(repeat)]
    return min(w.cpu for w in watches) / connections, min(w.wall for w in watches) / connections


async def run(connections: int = 1_000, repeat: int = 3) -> None:
    results: list[Result] = []
    cpu: dict[str, float] = {}
    for stack, measure in (("raw websockets", raw_stack), ("nbws", nbws_stack)):
        cpu[stack], wall = await _best(measure, connections, repeat)
        results.append(Result(stack, cpu[stack] * 1e6, "µs CPU/connection", False, {"wall_us": f"{wall * 1e6:,.0f}"}))
    title = f"Accepting a connection ({connections:,} in a row, best of {repeat})"
    print_table(title, results, "raw websockets", ("nbws",))
    print(f"  -> nbws server adds {(cpu['nbws'] - cpu['raw websockets']) * 1e6:,.0f} µs CPU per connection")
