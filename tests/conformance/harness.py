"""
The Autobahn WebSocket test suite run against nbws and, in the same run, against raw websockets.

Autobahn's ``wstest`` (Python 2.7, installed into ``.venv-autobahn`` by
``scripts/autobahn-deps``) plays both parts of the protocol:

- ``fuzzingclient``: it connects to echo servers and runs each case against
  them; here an nbws :class:`~nbws.Server` with plugins active and a raw
  ``websockets`` server, one after the other, in one wstest process.
- ``fuzzingserver``: echo clients connect to it once per case; here an nbws
  :class:`~nbws.WebSocket` with the same plugins and a raw ``websockets``
  client, one after the other, against one wstest process.

Both nbws peers use only nbws's public API, so the harness runs against
whichever engine is underneath. The raw peers are those of websockets' own
compliance directory (``compliance/asyncio``). Every peer accepts messages up
to :data:`MAX_SIZE`, above the suite's largest (16 MiB), so no case fails
because of a size limit of the echo peer.

The JSON report (``index.json``) is read into :class:`Result` rows, summed per
case group (:func:`summary_table`) and compared case by case with raw
websockets (:func:`worse_cases`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import WebSocketException

import nbws

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AUTOBAHN_VENV = Path(os.environ.get("AUTOBAHN_VENV", ROOT / ".venv-autobahn"))
PYTHON2 = AUTOBAHN_VENV / "bin" / "python"
WSTEST = AUTOBAHN_VENV / "bin" / "wstest"
INSTALL_SCRIPT = ROOT / "scripts" / "autobahn-deps"

# As websockets' own compliance peers: above the suite's largest message (16 MiB in 9.1.6 and 9.2.6).
MAX_SIZE = 2**25
NBWS, RAW = "nbws", "websockets"

# The suite's top-level groups (Autobahn's own titles, shortened).
GROUPS = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "7": "Close handling",
    "9": "Limits/performance",
    "10": "Miscellaneous",
    "12": "Compression, payloads",
    "13": "Compression, parameters",
}
# Autobahn's verdicts on a case.
BEHAVIORS = ("OK", "NON-STRICT", "FAILED", "INFORMATIONAL", "UNIMPLEMENTED")
# How good a verdict is, to say whether nbws ended a case worse than raw websockets. INFORMATIONAL
# cases have no verdict (the suite only shows what happened), so they rank as OK. The closing
# handshake has verdicts of its own (OK, NON-STRICT, INFORMATIONAL, or a failure: WRONG CODE,
# UNCLEAN, FAILED BY CLIENT, ...): anything not listed here ranks as a failure.
RANK = {"OK": 3, "INFORMATIONAL": 3, "NON-STRICT": 2, "UNIMPLEMENTED": 1}


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which cases to run, in wstest's spec syntax (``"*"``, ``"9.*"``, ``"12.1.1"``)."""

    cases: Sequence[str] = ("*",)
    exclude: Sequence[str] = ()

    def spec(self) -> dict[str, Any]:
        return {"cases": list(self.cases), "exclude-cases": list(self.exclude), "exclude-agent-cases": {}}


# Every case.
FULL = Selection()
# What `make test` runs, about a twentieth of the full run's time (README, "Conformance", says why):
# every case of groups 1 to 7 and 10 (framing, pings, reserved bits, opcodes, fragmentation,
# UTF-8, closing); of 9 (limits and performance) the messages up to 1 MiB, text and binary;
# of 12 and 13 (permessage-deflate, 1,000 round trips per case) the smallest payload with the
# default parameters, text and binary, with no context takeover and a 9-bit window, and with a
# list of offers to choose from.
QUICK = Selection(
    cases=[
        *(f"{group}.*" for group in ("1", "2", "3", "4", "5", "6", "7", "10")),
        *(f"9.{sub}.{n}" for sub in (1, 2) for n in (1, 2, 3)),
        "12.1.1",
        "12.2.1",
        "13.5.1",
        "13.7.1",
    ]
)


@dataclasses.dataclass(frozen=True)
class Result:
    """How one case ended for one agent, as Autobahn's ``index.json`` says."""

    case: str
    behavior: str
    behavior_close: str
    duration_ms: int
    remote_close_code: int | None

    @property
    def group(self) -> str:
        return self.case.split(".", 1)[0]

    def worse_than(self, other: Result) -> bool:
        """Whether this case ended worse than ``other``: in its verdict or in its closing handshake's."""
        return rank(self.behavior) < rank(other.behavior) or rank(self.behavior_close) < rank(other.behavior_close)


def rank(behavior: str) -> int:
    return RANK.get(behavior, 0)


def case_key(case: str) -> tuple[int, ...]:
    """Sort case ids as numbers: 1.1.2 before 1.1.10."""
    return tuple(int(part) for part in case.split("."))


def load_report(outdir: Path) -> dict[str, dict[str, Result]]:
    """Read ``outdir/index.json``: for each agent, each case's :class:`Result`."""
    with (outdir / "index.json").open(encoding="utf-8") as f:
        index = json.load(f)
    report: dict[str, dict[str, Result]] = {}
    for agent, cases in index.items():
        report[agent] = {
            case: Result(
                case,
                row["behavior"],
                row.get("behaviorClose", row["behavior"]),
                int(row.get("duration") or 0),
                row.get("remoteCloseCode"),
            )
            for case, row in sorted(cases.items(), key=lambda item: case_key(item[0]))
        }
    return report


def summary_table(report: Mapping[str, Mapping[str, Result]], agents: Sequence[str] | None = None) -> str:
    """A Markdown table: per case group and agent, how many cases ended OK, NON-STRICT, and so on."""
    agents = list(agents or report)
    groups = sorted({r.group for a in agents for r in report.get(a, {}).values()}, key=int)
    lines = [
        "| group | agent | cases | " + " | ".join(BEHAVIORS) + " | time (s) |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in BEHAVIORS) + " | ---: |",
    ]
    for group in [*groups, "all"]:
        for agent in agents:
            rows = [r for r in report.get(agent, {}).values() if group in ("all", r.group)]
            counts = Counter(r.behavior for r in rows)
            title = "all" if group == "all" else f"{group} {GROUPS.get(group, '')}".strip()
            seconds = sum(r.duration_ms for r in rows) / 1000
            cells = " | ".join(str(counts.get(b, 0)) for b in BEHAVIORS)
            lines.append(f"| {title} | {agent} | {len(rows)} | {cells} | {seconds:,.1f} |")
    return "\n".join(lines)


def worse_cases(
    report: Mapping[str, Mapping[str, Result]], agent: str = NBWS, reference: str = RAW
) -> list[tuple[Result, Result | None]]:
    """The cases ``agent`` ended worse than ``reference`` (or that ``reference`` ran and ``agent`` did not)."""
    mine, theirs = report.get(agent, {}), report.get(reference, {})
    worse: list[tuple[Result, Result | None]] = []
    for case, ref in theirs.items():
        got = mine.get(case)
        if got is None:
            worse.append((Result(case, "MISSING", "MISSING", 0, None), ref))
        elif got.worse_than(ref):
            worse.append((got, ref))
    return sorted(worse, key=lambda pair: case_key(pair[0].case))


def describe_worse(worse: Iterable[tuple[Result, Result | None]], agent: str = NBWS, reference: str = RAW) -> str:
    lines = []
    for got, ref in worse:
        theirs = f"{ref.behavior}/{ref.behavior_close} in {ref.duration_ms} ms" if ref else "not run"
        lines.append(
            f"  {got.case}: {agent} {got.behavior}/{got.behavior_close} in {got.duration_ms} ms "
            f"(close code {got.remote_close_code}), {reference} {theirs}"
        )
    return "\n".join(lines)


# -- installing and running wstest -------------------------------------------------


def install() -> None:
    """Install wstest into ``.venv-autobahn`` unless it is there (``scripts/autobahn-deps``; a no-op when done)."""
    result = subprocess.run([str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not WSTEST.exists():
        raise RuntimeError(f"scripts/autobahn-deps failed (exit {result.returncode}):\n{result.stderr[-3000:]}")


class Peers:
    """What the nbws peers saw: error events by phase, messages echoed, plugin hook calls."""

    def __init__(self) -> None:
        self.errors: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.samples: list[str] = []
        self.echoed = 0
        self.observed = 0

    def error(self, event: nbws.ErrorEvent) -> None:
        self.errors[event.phase] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{event.phase}: {event.message}")

    def close(self, event: nbws.CloseEvent) -> None:
        self.closes[f"{event.code}{'' if event.was_clean else ' unclean'}"] += 1


class Observer:
    """An observing plugin: counts what it sees, as a logger or a stats panel would."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers

    @nbws.hookimpl
    def nbws_message_received(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.peers.observed += 1

    @nbws.hookimpl
    def nbws_message_sent(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.peers.observed += 1


class Identity:
    """A transform that hands every message on unchanged, both ways: the transform path without a change."""

    @nbws.hookimpl
    def nbws_message_receive(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        message.data = message.data

    @nbws.hookimpl
    def nbws_message_send(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        message.data = message.data


class Recorders:
    """
    The Recorder of an nbws echo peer, replaced by a fresh one after every case.

    A Recorder keeps what it records, and a full run echoes several GiB: each case
    gets a new Recorder (and file), and the last case's file is deleted once that
    case has ended, between cases, so no case pays for it.
    """

    def __init__(self, record_dir: Path) -> None:
        self.dir = record_dir
        self.cases = 0
        self.current = self._new()

    def _new(self) -> nbws.Recorder:
        self.cases += 1
        return nbws.Recorder(self.dir / f"case-{self.cases}.jsonl")

    def rotate(self) -> nbws.Recorder:
        """Start a new Recorder; close the current one, delete its file and return it."""
        old, self.current = self.current, self._new()
        self._discard(old)
        return old

    def close(self) -> None:
        self._discard(self.current)

    @staticmethod
    def _discard(recorder: nbws.Recorder) -> None:
        recorder.close()
        if recorder.path is not None:
            recorder.path.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def nbws_echo_server(peers: Peers, record_dir: Path) -> AsyncIterator[str]:
    """An nbws echo server with an observer, an identity transform and a Recorder; yields its URL."""
    recorders = Recorders(record_dir)
    server = nbws.Server(
        port=0,
        max_size=MAX_SIZE,
        # An echo server must be able to queue what it accepts: the default 4 MiB would refuse
        # to echo the 8 and 16 MiB messages of 9.1.5-9.2.6 with BufferFullError.
        max_buffered=MAX_SIZE,
        plugins=[Observer(peers), Identity(), recorders.current],
    )

    @server.on("message")
    def echo(conn: nbws.Connection, message: nbws.Message) -> None:
        conn.send(message.data)
        peers.echoed += 1

    @server.on("close")
    def close(conn: nbws.Connection, event: nbws.CloseEvent) -> None:
        peers.close(event)
        # The case is over (its close was recorded): the next case records afresh.
        server.plugins.unregister(recorders.rotate())
        server.plugins.register(recorders.current)

    server.on("error", lambda conn, event: peers.error(event))
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()
        recorders.close()


async def _raw_echo(ws: Any) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except WebSocketException:
        pass


@contextlib.asynccontextmanager
async def raw_echo_server() -> AsyncIterator[str]:
    """A raw websockets echo server (websockets' compliance/asyncio/server.py); yields its URL."""
    async with serve(_raw_echo, "127.0.0.1", 0, max_size=MAX_SIZE) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def nbws_echo_client(url: str, peers: Peers, recorders: Recorders, timeout: float) -> None:
    """One case in fuzzingserver mode: an nbws client with the same plugins echoes until the suite closes."""
    ws = nbws.WebSocket(
        url, max_size=MAX_SIZE, max_buffered=MAX_SIZE, plugins=[Observer(peers), Identity(), recorders.current]
    )

    def echo(message: nbws.Message) -> None:
        ws.send(message.data)
        peers.echoed += 1

    ws.onmessage = echo
    ws.onerror = peers.error
    ws.onclose = peers.close
    try:
        await ws.closed(timeout=timeout)
    except nbws.TimeoutError:
        peers.errors["harness: case did not end"] += 1
        ws.close()
        await ws.closed(timeout=timeout)
    recorders.rotate()


async def raw_echo_client(url: str, peers: Peers, recorders: Recorders, timeout: float) -> None:
    """One case in fuzzingserver mode: websockets' compliance/asyncio/client.py."""

    async def run() -> None:
        async with connect(url, max_size=MAX_SIZE) as ws:
            await _raw_echo(ws)

    try:
        await asyncio.wait_for(run(), timeout)
    except WebSocketException:
        pass
    except asyncio.TimeoutError:
        peers.errors["harness: case did not end"] += 1


EchoClient = Callable[[str, Peers, Recorders, float], Awaitable[None]]


def _spec_file(outdir: Path, name: str, spec: Mapping[str, Any]) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / name
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return path


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def fuzzingclient(servers: Mapping[str, str], selection: Selection, outdir: Path, timeout: float) -> None:
    """Run ``wstest -m fuzzingclient`` against ``servers`` ({agent: url}), one after the other."""
    outdir = outdir.resolve()
    spec = {"outdir": str(outdir), "servers": [{"agent": a, "url": u} for a, u in servers.items()], **selection.spec()}
    spec_path = _spec_file(outdir, "fuzzingclient.json", spec)
    with (outdir / "wstest.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(WSTEST), "-m", "fuzzingclient", "-s", str(spec_path), stdout=log, stderr=subprocess.STDOUT, cwd=outdir
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        finally:
            await _stop(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"wstest fuzzingclient exited with {proc.returncode}; see {outdir / 'wstest.log'}")


async def fuzzingserver(
    clients: Mapping[str, EchoClient],
    selection: Selection,
    outdir: Path,
    peers: Peers,
    recorders: Recorders,
    case_timeout: float,
) -> None:
    """Run ``wstest -m fuzzingserver`` and each echo client ({agent: client}) through every case."""
    outdir = outdir.resolve()
    spec = {"url": "ws://127.0.0.1", "outdir": str(outdir), **selection.spec()}
    spec_path = _spec_file(outdir, "fuzzingserver.json", spec)
    log = (outdir / "wstest.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        str(PYTHON2),
        str(HERE / "fuzzingserver.py"),
        str(spec_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=outdir,
    )
    assert proc.stdout is not None
    stdout = proc.stdout

    async def drain() -> None:
        while line := await stdout.readline():
            log.write(line)

    try:

        async def listening() -> int:
            while line := await stdout.readline():
                log.write(line)
                if line.startswith(b"LISTENING "):
                    return int(line.split()[1])
            raise RuntimeError(f"the fuzzing server ended before listening; see {outdir / 'wstest.log'}")

        port = await asyncio.wait_for(listening(), 60)
        drainer = asyncio.create_task(drain())
        url = f"ws://127.0.0.1:{port}"
        async with connect(f"{url}/getCaseCount") as ws:
            count = json.loads(await ws.recv())
        for agent, client in clients.items():
            for case in range(1, count + 1):
                await client(f"{url}/runCase?case={case}&agent={agent}", peers, recorders, case_timeout)
        async with connect(f"{url}/updateReports?agent={next(iter(clients))}", open_timeout=120) as ws:
            with contextlib.suppress(WebSocketException):
                await ws.recv()
    finally:
        await _stop(proc)
        if "drainer" in locals():
            await drainer
        log.close()


# -- a whole run -------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """One side of a run: its report, what the nbws peers saw, and how long each agent took."""

    side: str
    report: dict[str, dict[str, Result]]
    peers: Peers
    outdir: Path
    seconds: float

    def table(self) -> str:
        return summary_table(self.report, [a for a in (NBWS, RAW) if a in self.report])

    def worse(self) -> list[tuple[Result, Result | None]]:
        return worse_cases(self.report)


async def run_server_side(selection: Selection, outdir: Path, agents: Sequence[str] = (NBWS, RAW)) -> Run:
    """wstest as the client (fuzzingclient) against the nbws and raw websockets echo servers."""
    peers = Peers()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nbws-autobahn-") as record_dir:
        async with nbws_echo_server(peers, Path(record_dir)) as nbws_url, raw_echo_server() as raw_url:
            servers = {NBWS: nbws_url, RAW: raw_url}
            await fuzzingclient({a: servers[a] for a in agents}, selection, outdir, timeout=24 * 3600)
    return Run("server", load_report(outdir), peers, outdir, time.monotonic() - start)


async def run_client_side(selection: Selection, outdir: Path, agents: Sequence[str] = (NBWS, RAW)) -> Run:
    """wstest as the server (fuzzingserver) against the nbws and raw websockets echo clients."""
    peers = Peers()
    start = time.monotonic()
    clients: dict[str, EchoClient] = {NBWS: nbws_echo_client, RAW: raw_echo_client}
    with tempfile.TemporaryDirectory(prefix="nbws-autobahn-") as record_dir:
        recorders = Recorders(Path(record_dir))
        try:
            await fuzzingserver({a: clients[a] for a in agents}, selection, outdir, peers, recorders, 300)
        finally:
            recorders.close()
    return Run("client", load_report(outdir), peers, outdir, time.monotonic() - start)


@functools.cache
def versions() -> str:
    """The versions that matter for a conformance table."""
    try:
        out = subprocess.run([str(WSTEST), "--autobahnversion"], capture_output=True, text=True, check=False).stdout
        autobahn = ", ".join(line.strip() for line in out.splitlines() if line.strip())
    except OSError:
        autobahn = "wstest not installed"
    python = ".".join(map(str, sys.version_info[:3]))
    return f"Python {python}, websockets {websockets.version.version}, nbws {nbws.__version__}, {autobahn}"


def clean(outdir: Path) -> Path:
    """Make ``outdir`` an empty folder; return its absolute path (wstest runs in it)."""
    outdir = outdir.resolve()
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    return outdir
