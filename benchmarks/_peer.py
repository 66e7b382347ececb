"""
A benchmark peer in a process of its own: the client or the echo server at the far end of a relay.

    python -m benchmarks._peer client URL --messages N --round-trips N [--size 16] [--compression deflate|none]
    python -m benchmarks._peer echo [--compression deflate|none]

Both use raw websockets (asyncio), so they cost the same whatever stands
between them; the client runs the loops of the echo benchmark's raw
websockets stack (:func:`benchmarks.echo.raw_pipelined`, ``_round_trips``). The process that starts them steers and times them through
stdin and stdout, one JSON object a line:

- ``client`` connects, warms up (pipelined messages), prints
  ``{"event": "ready"}``, then for each line it reads runs one phase and
  prints its figures: first the flood (``messages`` pipelined, timed until
  the last echo is back: ``{"rate": msg/s, "cpu": s/msg}``), then the round
  trips (``{"median": s, "p99": s}``); then it closes and exits. Between
  "go" and the answer, the steering process measures its own CPU time.
- ``echo`` prints ``{"event": "listening", "port": N}`` and echoes every
  message until its stdin closes (the stand-in upstream when Node's ``ws`` is
  not installed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve


def _say(event: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def client(url: str, messages: int, round_trips: int, size: int, compression: str | None) -> None:
    # The loops of the echo benchmark's raw websockets stack; imported here, in the client's process only.
    from .echo import WARMUP, _round_trips, raw_pipelined

    payload = "x" * size
    async with connect(url, compression=compression, max_size=2**20) as ws:

        async def round_trip() -> None:
            await ws.send(payload)
            await ws.recv()

        await raw_pipelined(ws, WARMUP, payload)
        _say({"event": "ready"})

        await _line()
        flood = await raw_pipelined(ws, messages, payload)
        _say({"rate": messages / flood.wall, "cpu": flood.cpu / messages})

        await _line()
        times, _ = await _round_trips(round_trip, round_trips)  # after WARMUP round trips of its own
        times.sort()
        _say({"median": times[len(times) // 2], "p99": times[min(len(times) - 1, int(0.99 * len(times)))]})


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def echo(compression: str | None) -> None:
    async with serve(_echo, "127.0.0.1", 0, compression=compression, max_size=2**20) as server:
        _say({"event": "listening", "port": server.sockets[0].getsockname()[1]})
        await _line()  # until stdin closes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("client", "echo"))
    parser.add_argument("url", nargs="?")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--round-trips", type=int, default=2_000)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate")
    args = parser.parse_args()
    compression = None if args.compression == "none" else "deflate"
    if args.role == "client":
        if not args.url:
            parser.error("client needs a URL")
        asyncio.run(client(args.url, args.messages, args.round_trips, args.size, compression))
    else:
        asyncio.run(echo(compression))


if __name__ == "__main__":
    main()
