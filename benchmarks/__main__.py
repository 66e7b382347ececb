"""
Run the benchmarks: ``python -m benchmarks`` (``make bench``), or some of them by name.

    python -m benchmarks                  # echo, broadcast, widgets, fake, relay, codecs, connect, compiled
    python -m benchmarks echo --repeat 5
    python -m benchmarks compiled --compiled DIR   # pure vs compiled nbws, with a build already made
    python -m benchmarks --quick          # smaller counts, for a smoke run

Each prints its figures and nbws's ratio to raw websockets (and, for context,
to websocket-client and Node's ws). They never fail on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from . import broadcast, codecs, compiled, connect, echo, fake, relay, widgets
from ._common import machine

BENCHMARKS = ("echo", "broadcast", "widgets", "fake", "relay", "codecs", "connect", "compiled")


async def main(names: list[str], repeat: int, quick: bool, compiled_dir: Path | None = None) -> None:
    print(f"# nbws benchmarks\n{machine()}")
    if "echo" in names:
        await echo.run(messages=2_000 if quick else 20_000, round_trips=200 if quick else 2_000, repeat=repeat)
    if "broadcast" in names:
        await broadcast.run(clients=100 if quick else 1_000, rounds=5 if quick else 20, repeat=repeat)
    if "widgets" in names:
        await widgets.run(seconds=1.0 if quick else 3.0)
    if "fake" in names:
        await fake.run(messages=1_000 if quick else 10_000, round_trips=100 if quick else 1_000, repeat=repeat)
    if "relay" in names:
        await relay.run(
            messages=2_000 if quick else 20_000,
            round_trips=200 if quick else 2_000,
            repeat=repeat,
            every_setting=not quick,
        )
    if "codecs" in names:
        await codecs.run(messages=1_000 if quick else 10_000, rounds=200 if quick else 2_000, repeat=repeat)
    if "connect" in names:
        await connect.run(connections=200 if quick else 1_000, repeat=repeat)
    if "compiled" in names:
        # Each measurement in a process of its own (blocking here is fine: nothing else runs meanwhile).
        compiled.run(
            messages=2_000 if quick else 20_000,
            round_trips=100 if quick else 500,
            repeat=repeat if quick else max(repeat, 5),
            compiled=compiled_dir,
        )


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"which to run: {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each stack; the best is kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run, not a measurement")
    parser.add_argument(
        "--compiled", type=Path, metavar="DIR", help="for 'compiled': a build made by scripts/build-compiled DIR"
    )
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}: choose from {', '.join(BENCHMARKS)}")
    # Plugins installed from plugins/ would slow nbws down unevenly: measure nbws itself.
    os.environ.setdefault("NBWS_DISABLE_PLUGIN_AUTOLOAD", "1")
    logging.getLogger("nbws").setLevel(logging.ERROR)
    asyncio.run(main(args.names or list(BENCHMARKS), args.repeat, args.quick, args.compiled))


if __name__ == "__main__":
    cli()
