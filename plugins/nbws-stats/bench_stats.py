"""
What nbws-stats costs per message, through nbws's real hook runner.

A real client and server connection over nbws's in-memory transport
(``nbws.testing``), each observer plugin registered on the client; then the
client's own ``nbws_message_received`` call list (the generated runner the
message path calls for every delivered message) is timed on one real
delivered message, in CPU time (``time.process_time``), best of ``--repeat``:

- "empty runner": a plugin whose hook does nothing (the runner's own cost);
- "trivial observer": ``self.count += 1``;
- "nbws-stats": the plugin as installed (``nbws_stats.Stats``);
- and, with ``--old DIR``, another copy of ``nbws_stats`` found in ``DIR``
  (the version to compare against, e.g. an older checkout's plugin folder).

It also times a whole echo through the same in-memory pair (the plugin on
both ends), with no plugin, the trivial observer (on both hooks) and
nbws-stats: CPU per echoed message. Any observer of sent messages makes nbws
build a ``Message`` per message it sends, which it skips with none, so the
trivial observer is the floor for an observing plugin. Run::

    python plugins/nbws-stats/bench_stats.py [--repeat 5] [--old /tmp/old-nbws-stats]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import time
import timeit
from typing import Any

os.environ.setdefault("NBWS_DISABLE_PLUGIN_AUTOLOAD", "1")  # measure only the plugins named here

import nbws
from nbws.testing import connect


class Empty:
    """An observer that does nothing."""

    @nbws.hookimpl
    def nbws_message_received(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        pass


class Trivial:
    """An observer that bumps one counter per message, each way."""

    def __init__(self) -> None:
        self.count = 0

    @nbws.hookimpl
    def nbws_message_received(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.count += 1

    @nbws.hookimpl
    def nbws_message_sent(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.count += 1


def load_old(folder: str) -> Any:
    """The ``nbws_stats`` module found in ``folder`` (a plugin folder), loaded under another name."""
    spec = importlib.util.spec_from_file_location("nbws_stats_old", os.path.join(folder, "nbws_stats", "__init__.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nbws_stats_old"] = module
    spec.loader.exec_module(module)
    return module


async def per_call(plugin: object, number: int, repeat: int) -> float:
    """CPU seconds per call of the client's nbws_message_received runner with ``plugin`` registered."""
    server = nbws.Server()
    server.on("message", lambda conn, message: conn.send(message.data))
    ws = connect(server, plugins=[plugin])
    await ws.opened(timeout=10)
    ws.send("hello, sixteen b")
    message = await ws.recv(timeout=10)
    observe = ws._calls["nbws_message_received"].observe
    assert observe is not None

    def fail(hook: str, name: str, error: BaseException) -> None:
        raise error

    timer = timeit.Timer(lambda: observe(fail, ws, message), timer=time.process_time)
    best = min(timer.repeat(repeat=repeat, number=number)) / number
    empty = min(timeit.Timer(lambda: None, timer=time.process_time).repeat(repeat=repeat, number=number)) / number
    ws.close()
    await ws.closed(timeout=10)
    await server.stop()
    return best - empty  # without the lambda that calls it


async def per_echo(plugins: list[object], messages: int, repeat: int) -> float:
    """CPU seconds per echoed 16-byte message, pipelined, through the in-memory pair."""
    best = float("inf")
    for _ in range(repeat):
        server = nbws.Server(plugins=plugins)
        server.on("message", lambda conn, message: conn.send(message.data))
        ws = connect(server, plugins=plugins, recv_buffer=messages)
        await ws.opened(timeout=10)
        start = time.process_time()
        for _ in range(messages):
            ws.send("hello, sixteen b")
        for _ in range(messages):
            await ws.recv(timeout=10)
        best = min(best, (time.process_time() - start) / messages)
        ws.close()
        await ws.closed(timeout=10)
        await server.stop()
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--old", help="a folder holding another nbws_stats package to compare")
    args = parser.parse_args()
    from nbws_stats import Stats

    stacks: dict[str, Any] = {"empty runner": Empty, "trivial observer": Trivial, "nbws-stats": Stats}
    if args.old:
        stacks["nbws-stats (--old)"] = load_old(args.old).Stats
    print(f"per call of nbws_message_received through the hook runner (CPU, best of {args.repeat}):")
    for name, factory in stacks.items():
        cost = await per_call(factory(), args.number, args.repeat)
        print(f"  {name:<22} {cost * 1e9:7.0f} ns")
    print(f"CPU per echoed 16-byte message, {args.messages} pipelined, in memory (best of {args.repeat}):")
    base = await per_echo([], args.messages, args.repeat)
    print(f"  {'nbws':<28} {base * 1e6:7.2f} µs")
    for name, factory in stacks.items():
        if name != "empty runner":
            cost = await per_echo([factory()], args.messages, args.repeat)
            print(f"  {'nbws + ' + name:<28} {cost * 1e6:7.2f} µs  ({cost / base:.2f}x nbws alone)")


if __name__ == "__main__":
    asyncio.run(main())
