"""The benchmarks keep running: a quick smoke run prints every section and its ratios (no number is judged)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _support import TIMEOUT_SCALE, timeout
from _support.compiled import Build

ROOT = Path(__file__).resolve().parents[2]


# The session's compiled build may be made for this test (about a minute), then the quick run.
@pytest.mark.timeout(900 * TIMEOUT_SCALE)
def test_quick_benchmark_run_prints_every_ratio(compiled: Build) -> None:
    result = subprocess.run(
        # The session's compiled build, for "compiled" (which would build its own otherwise).
        [sys.executable, "-m", "benchmarks", "--quick", "--repeat", "1", "--compiled", str(compiled.site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout(180),
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for section in (
        "## Echo throughput",
        "## Round-trip latency",
        "## Broadcast to 100 clients",
        "## Widget log",
        "## Codecs on a JSON-RPC exchange",
        "## Decoding, CPU per message",
        "## Accepting a connection",
        "## Where the time goes",
    ):
        assert section in out, f"{section!r} missing from:\n{out}"
    for section in ("## FakeServer replay throughput", "## FakeServer reply latency"):
        assert section in out, f"{section!r} missing from:\n{out}"
    assert out.count("-> nbws: ") >= 5
    assert "x raw websockets" in out
    assert "-> the floor + 3 observer calls: " in out and "-> websockets sans-I/O framing alone: " in out
    assert "-> FakeServer replay: " in out and "x nbws echo server" in out
    assert "front-end updates:" in out
    assert "## Relay throughput" in out and "nbws hops (aim: at most 2)" in out
    assert "x json.loads of the same size" in out and "idle codecs vs nbws without them" in out
    for setting in ("no deflate", "deflate"):
        assert f"## Echo throughput, CPU time, pure and compiled nbws ({setting})" in out
    assert out.count("-> nbws + 3 plugins [compiled]: ") >= 2 and "-> nbws + 3 plugins: compiled " in out
