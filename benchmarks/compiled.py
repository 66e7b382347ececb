"""
The compiled build against the pure one: the echo benchmark's stacks, each in a process of its own.

nbws can be built with its four hot modules (``_events``, ``_hooks``, ``_protocol``,
``_connection``) compiled by mypyc (README, "Compiled build"). This benchmark
builds that copy of this checkout with ``scripts/build-compiled`` (or takes one
already built, ``--compiled DIR``) and measures, compression off and with
permessage-deflate, raw websockets, nbws and nbws with the three observing
plugins of :mod:`benchmarks.echo`, pure and compiled: CPU time per echoed
16-byte message, pipelined, client and server in one process.

Each measurement runs in a new process (the compiled and the pure nbws cannot be
imported side by side), the stacks in turn and in a new order each round, so
that what the machine does meanwhile falls on all of them alike; the best of
the rounds is kept. Each process says which nbws it imported, and the run stops
if a "compiled" process found the pure one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ._common import ROOT, Result, print_table

STACKS = ("raw websockets", "nbws", "nbws + 3 plugins")
BUILDS = ("pure", "compiled")
SETTINGS = {"no deflate": None, "deflate": "deflate"}


def build(dest: Path) -> Path:
    """Build the compiled copy of this checkout into ``dest`` with ``scripts/build-compiled``."""
    script = ROOT / "scripts" / "build-compiled"
    print(f"building the compiled nbws ({script.relative_to(ROOT)} {dest}) ...", flush=True)
    done = subprocess.run([sys.executable, str(script), str(dest)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildFailed(done.stderr.strip() or done.stdout.strip())
    return dest


class BuildFailed(Exception):
    """scripts/build-compiled could not build the compiled copy (no C compiler or Python headers, say)."""


def _measure(stack: str, compression: str | None, messages: int, round_trips: int) -> dict[str, object]:
    """In the child: one run of one stack; what it measured, and which nbws it ran."""
    import statistics

    import nbws

    from . import echo

    if stack == "raw websockets":
        run = asyncio.run(echo.raw_websockets(messages, round_trips, compression))
    else:
        plugins = echo.observers() if stack.endswith("plugins") else []
        run = asyncio.run(echo.nbws_stack(messages, round_trips, plugins, compression))
    return {
        "cpu_per_message": run.cpu_per_message,
        "rate": run.rate,
        "median_round_trip": statistics.median(run.times),
        "compiled": nbws.COMPILED,
        "nbws": nbws.__file__,
    }


def _child(
    stack: str, build_name: str, compression: str | None, messages: int, round_trips: int, compiled: Path, cwd: Path
) -> dict[str, object]:
    """Run one measurement in a new process, with the pure or the compiled nbws first on its path."""
    path = [str(compiled)] if build_name == "compiled" else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*path, str(ROOT)]), NBWS_DISABLE_PLUGIN_AUTOLOAD="1")
    args = [sys.executable, "-m", "benchmarks.compiled", "--child", stack, "--messages", str(messages)]
    args += ["--round-trips", str(round_trips), "--compression", compression or "none"]
    # In an empty folder: `python -m` puts the working directory first on the path, before PYTHONPATH.
    out = subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    if stack != "raw websockets" and result["compiled"] != (build_name == "compiled"):
        raise SystemExit(
            f"the {build_name} run of {stack!r} imported {result['nbws']} (compiled: {result['compiled']})"
        )
    return result


def run(messages: int = 20_000, round_trips: int = 500, repeat: int = 5, compiled: Path | None = None) -> None:
    """Measure every stack, pure and compiled, ``repeat`` rounds in turn; print the best of each."""
    with tempfile.TemporaryDirectory(prefix="nbws-compiled-") as scratch:
        empty = Path(scratch) / "cwd"
        empty.mkdir()
        try:
            where = compiled if compiled is not None else build(Path(scratch) / "nbws-compiled")
        except BuildFailed as error:
            print(f"\n## Pure and compiled nbws: not measured, the compiled build failed:\n{error}")
            return
        names = [
            (f"{stack}{'' if stack.startswith('raw') else f' [{b}]'}", stack, b, setting)
            for setting in SETTINGS
            for stack in STACKS
            for b in (BUILDS if not stack.startswith("raw") else BUILDS[:1])
        ]
        runs: dict[tuple[str, str], list[dict[str, object]]] = {(n, s): [] for n, _, _, s in names}
        for round_number in range(repeat):
            order = names if round_number % 2 == 0 else names[::-1]
            for name, stack, b, setting in order:
                measured = _child(stack, b, SETTINGS[setting], messages, round_trips, where, empty)
                runs[name, setting].append(measured)
            print(f"round {round_number + 1} of {repeat} done", flush=True)

    def best(key: str, name: str, setting: str, highest: bool = False) -> float:
        values = [float(r[key]) for r in runs[name, setting]]  # type: ignore[arg-type]
        return max(values) if highest else min(values)

    what = f"{messages:,} messages of 16 bytes, pipelined, each run in a new process, best of {repeat}"
    subjects = tuple(dict.fromkeys(n for n, stack, _, _ in names if not stack.startswith("raw")))
    for setting in SETTINGS:
        cpu = [
            Result(n, best("cpu_per_message", n, setting) * 1e6, "us CPU/msg", False)
            for n, *_, s in names
            if s == setting
        ]
        rates = [Result(n, best("rate", n, setting, True), "msg/s") for n, *_, s in names if s == setting]
        latency = [
            Result(n, best("median_round_trip", n, setting) * 1e6, "us median", False)
            for n, *_, s in names
            if s == setting
        ]
        print_table(
            f"Echo throughput, CPU time, pure and compiled nbws ({setting}): {what}", cpu, "raw websockets", subjects
        )
        by_name = {r.stack: r.value for r in cpu}
        for stack in STACKS[1:]:
            pure, built = by_name[f"{stack} [pure]"], by_name[f"{stack} [compiled]"]
            print(f"  -> {stack}: compiled {pure / built:.2f}x pure ({pure - built:.1f} us less CPU per echo)")
        print_table(f"Echo throughput, wall clock ({setting}): {what}", rates, "raw websockets", subjects)
        print_table(
            f"Round-trip latency, wall clock ({setting}): {round_trips:,} sequential echoes, best of {repeat}",
            latency,
            "raw websockets",
            subjects,
        )


def child() -> None:
    """One measurement, in a process :func:`_child` started (``python -m benchmarks compiled`` runs :func:`run`)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compiled")
    parser.add_argument("--child", choices=STACKS, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--round-trips", type=int, required=True)
    parser.add_argument("--compression", required=True)
    args = parser.parse_args()
    logging.getLogger("nbws").setLevel(logging.ERROR)
    compression = None if args.compression == "none" else args.compression
    print(json.dumps(_measure(args.child, compression, args.messages, args.round_trips)))


if __name__ == "__main__":
    child()
