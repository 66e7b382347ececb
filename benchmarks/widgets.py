"""
The widget message log under a flood: what it costs the kernel and what it sends to the page.

An echo server and a client in this process exchange messages as fast as they
can for a few seconds, first with no log, then with a :class:`nbws.MessageLog`
attached to both (every message is a row, twice: sent and received). Measured:

- echoes per second with and without the log (the log's cost);
- widget updates sent to the front end per second: every state message a
  widget would send through its comm in a kernel (counted at
  ``ipywidgets.Widget._send``), which the log batches on a timer;
- kernel memory: Python memory still allocated after the flood (tracemalloc)
  and the process's resident set growth, which the log's ``max_rows`` bounds.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import psutil
from ipywidgets import Widget

import nbws

from ._common import Result, Stopwatch, print_table

BURST = 500


class _UpdateCounter:
    """Counts the state messages widgets send to the front end."""

    def __init__(self) -> None:
        self.count = 0
        self._original = Widget._send

    def __enter__(self) -> _UpdateCounter:
        original = self._original

        def send(widget: Widget, msg: dict[str, Any], buffers: Any = None) -> Any:
            if msg.get("method") == "update":
                self.count += 1
            return original(widget, msg, buffers)

        Widget._send = send
        return self

    def __exit__(self, *exc_info: object) -> None:
        Widget._send = self._original


async def flood(seconds: float, log: nbws.MessageLog | None) -> tuple[float, int]:
    """Echo bursts of messages for ``seconds``; return the messages per second and how many."""
    server = nbws.Server()
    server.on("message", lambda conn, message: conn.send(message.data))
    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened()
    if log is not None:
        log.attach(server)
        log.attach(ws)
    arrived = 0
    done = asyncio.Event()
    target = 0

    def on_message(message: nbws.Message) -> None:
        nonlocal arrived
        arrived += 1
        if arrived >= target:
            done.set()

    ws.onmessage = on_message
    watch = Stopwatch()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    sent = 0
    while loop.time() < deadline:
        target = sent + BURST
        done.clear()
        for i in range(BURST):
            ws.send(f"message {sent + i} " + "x" * 40)
        sent += BURST
        await done.wait()
    watch.stop()
    if log is not None:
        log.detach(server)
        log.detach(ws)
    ws.close()
    await ws.closed()
    await server.stop()
    return sent / watch.wall, sent


async def run(seconds: float = 3.0) -> dict[str, Any]:
    process = psutil.Process()
    bare_rate, _ = await flood(seconds, None)

    gc.collect()
    rss_before = process.memory_info().rss
    tracemalloc.start()
    log = nbws.MessageLog()
    with _UpdateCounter() as updates:
        watch = Stopwatch()
        rate, sent = await flood(seconds, log)
        log.flush()
        watch.stop()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rss_growth = process.memory_info().rss - rss_before
    # tracemalloc slows allocation down: measure the logged rate again without it.
    log2 = nbws.MessageLog()
    rate, _ = await flood(seconds, log2)
    log2.close()

    rows, seen = len(log.rows), log.seen
    log.close()
    results = [Result("nbws, no log", bare_rate, "msg/s"), Result("nbws + MessageLog", rate, "msg/s")]
    print_table(
        f"Widget log under a flood: {seconds:g} s of echoed bursts of {BURST} ({sent:,} echoes, {seen:,} rows logged)",
        results,
        "nbws, no log",
        ("nbws + MessageLog",),
    )
    print(f"  front-end updates: {updates.count:,} in {watch.wall:.1f} s = {updates.count / watch.wall:.1f} per second")
    print(f"  renders of the rows: {log.renders:,}; rows held after the flood: {rows:,} (max_rows {log.max_rows:,})")
    print(
        f"  kernel memory: {held / 2**20:.1f} MiB allocated by the flood still held; RSS +{rss_growth / 2**20:.1f} MiB"
    )
    return {
        "rates": results,
        "updates_per_second": updates.count / watch.wall,
        "held_bytes": held,
        "rss_growth": rss_growth,
    }
