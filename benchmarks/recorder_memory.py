"""
How much memory and time a Recorder costs over a long session: ``python -m benchmarks.recorder_memory``.

One nbws client sends ``--messages`` small text messages (1,000,000 by default)
to a raw websockets sink over 127.0.0.1, with a Recorder on the client: once
writing a file (``Recorder(path)``) and once in memory only (``Recorder()``).
It prints the growth of the process's resident memory from just after the
connection opened to the end, the wall time, and the CPU time per message.
Run each case in a fresh process (``--only file``, ``--only memory``) for
the cleanest memory figures, and as a script with
``PYTHONPATH=/path/to/another/checkout`` to compare releases.
It never fails on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import warnings
from pathlib import Path

import psutil
from websockets.asyncio.server import ServerConnection, serve

import nbws

BATCH = 5_000


async def _sink(ws: ServerConnection) -> None:
    async for _ in ws:
        pass


async def measure(messages: int, path: Path | None) -> dict[str, float]:
    """Send ``messages`` messages through a recorded client; return RSS growth (MiB), seconds and µs CPU per message."""
    process = psutil.Process()
    async with serve(_sink, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        rec = nbws.Recorder(path) if path is not None else nbws.Recorder()
        ws = nbws.WebSocket(f"ws://127.0.0.1:{port}/", plugins=[rec], compression=None)
        await ws.opened(timeout=30)
        gc.collect()
        rss_before = process.memory_info().rss
        cpu_before = time.process_time()
        start = time.perf_counter()
        sent = 0
        while sent < messages:
            for _ in range(min(BATCH, messages - sent)):
                sent += 1
                ws.send(f"message number {sent:>9}")
            while rec.counts["send"] < sent - BATCH // 2:  # let the writer drain: send() is bounded
                await asyncio.sleep(0.001)
        while rec.counts["send"] < messages:
            await asyncio.sleep(0.001)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_before
        gc.collect()
        rss_after = process.memory_info().rss
        kept = len(rec.recording)
        ws.close()
        await ws.closed(timeout=30)
        rec.close()
    return {
        "mib": (rss_after - rss_before) / 2**20,
        "seconds": seconds,
        "cpu_us": cpu / messages * 1e6,
        "kept": kept,
    }


async def main(messages: int, only: str | None) -> None:
    print(f"## Recorder memory over {messages:,} messages (nbws {nbws.__version__} from {Path(nbws.__file__).parent})")
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in (("with a file", Path(tmp) / "r.jsonl"), ("in memory", None)):
            if only is not None and (only == "file") != (path is not None):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the in-memory cap warns once, as it should
                result = await measure(messages, path)
            print(
                f"{label:>12}: +{result['mib']:.0f} MiB RSS, {result['kept']:,.0f} events kept in memory, "
                f"{result['seconds']:.1f} s, {result['cpu_us']:.1f} µs CPU per message"
            )


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recorder_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages to send (default 1,000,000)")
    parser.add_argument(
        "--only", choices=("file", "memory"), help="one case (a fresh process per case measures memory best)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.only))


if __name__ == "__main__":
    cli()
