"""
What every benchmark shares: the machine it ran on, timing, and the ratio lines it prints.

Benchmarks are not tests: they measure and print, and never fail on a number.
Results on a shared 2-core machine are noisy; each figure is the best of
``repeat`` runs, which is the least disturbed one.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "tests" / "interop"
BENCH_JS = Path(__file__).resolve().parent / "js"


def machine() -> str:
    """One line saying what ran the benchmarks."""
    import websockets

    import nbws

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    node = node_version()
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; nbws {nbws.__version__}, websockets {websockets.__version__}"
        + (f", Node {node}" if node else "")
    )


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def node_ws() -> str | None:
    """Node's path if Node and its ws package (tests/interop, installed by scripts/system-deps) are there."""
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "ws").is_dir():
        return None
    return node


@dataclass
class Result:
    """One measured figure of one stack."""

    stack: str
    value: float
    unit: str
    higher_is_better: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def ratio(result: Result, baseline: Result) -> float:
    """How nbws compares: above 1 is better than the baseline, whatever the unit."""
    if result.higher_is_better:
        return result.value / baseline.value
    return baseline.value / result.value


def print_table(title: str, results: list[Result], baseline: str, subjects: tuple[str, ...]) -> None:
    """Print the results, then each subject's ratio to the baseline and to every other stack."""
    print(f"\n## {title}")
    width = max(len(r.stack) for r in results)
    for r in results:
        extra = "".join(f"  {k}={v}" for k, v in r.extra.items())
        print(f"  {r.stack:<{width}}  {r.value:>12,.1f} {r.unit}{extra}")
    by_name = {r.stack: r for r in results}
    base = by_name.get(baseline)
    for name in subjects:
        subject = by_name.get(name)
        if subject is None:
            continue
        parts = []
        if base is not None:
            parts.append(f"{ratio(subject, base):.2f}x {baseline}")
        for other in results:
            if other.stack not in subjects and other.stack != baseline:
                parts.append(f"{ratio(subject, other):.2f}x {other.stack}")
        print(f"  -> {name}: " + ", ".join(parts))


async def best_of(repeat: int, run: Callable[[], Awaitable[float]], higher_is_better: bool = True) -> float:
    """Run ``run`` ``repeat`` times; return the best figure."""
    values = [await run() for _ in range(repeat)]
    return max(values) if higher_is_better else min(values)


def now() -> float:
    return time.perf_counter()


class Stopwatch:
    """Wall-clock and process CPU time since it was made; ``stop()`` freezes both."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self.wall = 0.0
        self.cpu = 0.0

    def stop(self) -> Stopwatch:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        return self


def python() -> str:
    return sys.executable
