"""
The Autobahn WebSocket test suite: nbws must end every case as raw websockets does in the same run.

wstest (``.venv-autobahn``, installed by ``scripts/autobahn-deps``) runs the
``make test`` selection (:data:`harness.QUICK`, README "Conformance" says why)
as the client of an nbws echo server with an observer, an identity transform and
a Recorder, and as the server of an nbws echo client with the same plugins; raw
websockets echo peers run the same cases right after, in the same wstest process.
The summary table is printed and written to ``test-artifacts/conformance-test/``;
``make conformance`` runs every case.

Whether an echo goes out before the next, invalid, frame arrives depends on
timing (cases 3.2-3.4, 4.x.3-4.x.5, 5.15, 6.4.x), so a case nbws ends worse is run
again, with raw websockets beside it, up to :data:`RECHECKS` times: it fails the
test only if nbws ends it worse every time. A gap that is always there still fails.

The first tests check the harness itself on made-up reports, in milliseconds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _support import timeout
from conformance import harness
from conformance.harness import NBWS, RAW, Result

ARTIFACTS = harness.ROOT / "test-artifacts" / "conformance-test"
RECHECKS = 4

# Cases the current engine ends worse than raw websockets, reported in the output when they
# happen; any other worse case fails. Empty since the sans-I/O engine and the lazy per-connection
# registry (README, "Conformance", point 3): 3.4, 4.1.5 and 4.2.5 now end OK as for raw websockets,
# but for the rare run where wstest's bytes pile up into one read (then neither stack can echo
# before failing the connection), which the rechecks absorb.
KNOWN_GAPS: dict[str, set[str]] = {"server": set(), "client": set()}

# Cases whose valid message and invalid frame wstest sends a byte at a time: whether the echo
# leaves before the invalid frame's first bytes are read is a race for any stack (raw websockets
# ends 4.2.4 NON-STRICT in most runs). NON-STRICT there (Autobahn's "acceptable") is reported,
# not failed, when it stays after the rechecks; FAILED or a worse closing handshake still fails.
TIMING_DEPENDENT = ("3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.1.5", "4.2.3", "4.2.4", "4.2.5", "5.15", "6.4.")


def timing_only(got: Result, ref: Result | None) -> bool:
    """Whether nbws ended a timing-dependent case NON-STRICT only, with the same closing handshake as raw websockets."""
    return (
        ref is not None
        and got.case.startswith(TIMING_DEPENDENT)
        and got.behavior == "NON-STRICT"
        and harness.rank(got.behavior_close) >= harness.rank(ref.behavior_close)
    )


# -- the harness on made-up reports ----------------------------------------------------


def _write_index(tmp_path: Path, index: dict[str, dict[str, dict[str, object]]]) -> Path:
    (tmp_path / "index.json").write_text(json.dumps(index))
    return tmp_path


def _row(behavior: str, close: str = "OK", duration: int = 5, code: int | None = 1000) -> dict[str, object]:
    return {"behavior": behavior, "behaviorClose": close, "duration": duration, "remoteCloseCode": code}


def test_report_is_read_in_case_order(tmp_path: Path) -> None:
    index = {NBWS: {"1.1.10": _row("OK"), "1.1.2": _row("NON-STRICT"), "12.1.1": _row("OK"), "9.1.1": _row("FAILED")}}
    report = harness.load_report(_write_index(tmp_path, index))
    assert list(report[NBWS]) == ["1.1.2", "1.1.10", "9.1.1", "12.1.1"]
    assert report[NBWS]["1.1.2"] == Result("1.1.2", "NON-STRICT", "OK", 5, 1000)
    assert report[NBWS]["9.1.1"].group == "9"


def test_summary_counts_each_verdict_per_group_and_agent(tmp_path: Path) -> None:
    index = {
        NBWS: {"3.1": _row("OK"), "3.4": _row("NON-STRICT"), "7.1.5": _row("FAILED", "WRONG CODE", 1500)},
        RAW: {"3.1": _row("OK"), "3.4": _row("OK"), "7.1.5": _row("FAILED", "WRONG CODE", 500)},
    }
    table = harness.summary_table(harness.load_report(_write_index(tmp_path, index)), [NBWS, RAW])
    lines = table.splitlines()
    assert lines[0] == "| group | agent | cases | OK | NON-STRICT | FAILED | INFORMATIONAL | UNIMPLEMENTED | time (s) |"
    assert "| 3 Reserved bits | nbws | 2 | 1 | 1 | 0 | 0 | 0 | 0.0 |" in lines
    assert "| 3 Reserved bits | websockets | 2 | 2 | 0 | 0 | 0 | 0 | 0.0 |" in lines
    assert "| 7 Close handling | nbws | 1 | 0 | 0 | 1 | 0 | 0 | 1.5 |" in lines
    assert "| all | nbws | 3 | 1 | 1 | 1 | 0 | 0 | 1.5 |" in lines


def test_only_a_timing_dependent_non_strict_is_let_through() -> None:
    ok = Result("4.2.5", "OK", "OK", 4, 1002)
    assert timing_only(Result("4.2.5", "NON-STRICT", "OK", 6, 1002), ok)
    assert not timing_only(Result("4.2.5", "FAILED", "OK", 6, 1002), ok)
    assert not timing_only(Result("4.2.5", "NON-STRICT", "FAILED", 6, 1002), ok)
    assert not timing_only(Result("5.1", "NON-STRICT", "OK", 6, 1002), Result("5.1", "OK", "OK", 4, 1002))
    assert timing_only(Result("6.4.3", "NON-STRICT", "OK", 6, 1007), Result("6.4.3", "OK", "OK", 4, 1007))


def test_worse_cases_compare_verdicts_and_closing_handshakes(tmp_path: Path) -> None:
    index = {
        NBWS: {
            "1.1.1": _row("OK"),
            "3.4": _row("NON-STRICT"),  # worse verdict
            "5.1": _row("OK", "UNCLEAN"),  # worse closing handshake
            "6.4.1": _row("OK"),  # better than raw websockets: fine
            "7.1.5": _row("FAILED", "WRONG CODE"),  # as bad as raw websockets: fine
            "7.1.6": _row("INFORMATIONAL", "INFORMATIONAL"),  # no verdict either way
        },
        RAW: {
            "1.1.1": _row("OK"),
            "3.4": _row("OK"),
            "5.1": _row("OK"),
            "6.4.1": _row("NON-STRICT"),
            "7.1.5": _row("FAILED", "WRONG CODE"),
            "7.1.6": _row("OK"),
            "9.1.1": _row("OK"),  # nbws never ran it
        },
    }
    worse = harness.worse_cases(harness.load_report(_write_index(tmp_path, index)))
    assert [got.case for got, _ in worse] == ["3.4", "5.1", "9.1.1"]
    assert worse[2][0].behavior == "MISSING"
    text = harness.describe_worse(worse)
    assert "3.4: nbws NON-STRICT/OK" in text and "websockets OK/OK" in text


def test_the_make_test_selection_leaves_out_only_slow_cases() -> None:
    spec = harness.QUICK.spec()
    assert spec["exclude-cases"] == []
    for group in ("1", "2", "3", "4", "5", "6", "7", "10"):
        assert f"{group}.*" in spec["cases"]
    assert "9.1.3" in spec["cases"] and "9.1.4" not in spec["cases"]
    assert {"12.1.1", "12.2.1", "13.5.1", "13.7.1"} <= set(spec["cases"])
    assert not any(case.startswith(("9.3", "9.4", "9.5", "9.6", "9.7", "9.8")) for case in spec["cases"])


# -- the suite itself ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wstest() -> None:
    """wstest installed (scripts/autobahn-deps returns at once when it is)."""
    harness.install()


@pytest.mark.conformance
def test_autobahn_deps_installs_the_pinned_suite_once(wstest: None) -> None:
    stamp = harness.AUTOBAHN_VENV / ".installed"
    before = stamp.stat().st_mtime_ns
    again = subprocess.run([str(harness.INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert stamp.stat().st_mtime_ns == before, "a second scripts/autobahn-deps reinstalled the suite"
    assert "AutobahnTestSuite 25.10.1" in harness.versions() and "Autobahn 0.10.9" in harness.versions()


async def _side(side: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_side = harness.run_server_side if side == "server" else harness.run_client_side
    outdir = harness.clean(ARTIFACTS / side)
    run = await run_side(harness.QUICK, outdir)
    assert set(run.report) == {NBWS, RAW}, f"wstest reported {sorted(run.report)}; see {outdir / 'wstest.log'}"
    assert len(run.report[NBWS]) == len(run.report[RAW]) > 250
    assert run.peers.echoed > 0 and run.peers.observed > 0, "the nbws peers echoed nothing or the observer saw nothing"

    worse = {got.case: (got, ref) for got, ref in run.worse()}
    attempts = [run.report]
    for attempt in range(RECHECKS):
        unknown = sorted(set(worse) - KNOWN_GAPS[side], key=harness.case_key)
        if not unknown:
            break
        again = await run_side(harness.Selection(unknown), harness.clean(ARTIFACTS / f"{side}-recheck-{attempt + 1}"))
        attempts.append(again.report)
        still = {got.case for got, _ in again.worse()}
        worse = {case: pair for case, pair in worse.items() if case in still or case in KNOWN_GAPS[side]}

    summary = [
        f"## Autobahn, {side} side: {harness.versions()}",
        run.table(),
        f"wall time {run.seconds:.0f} s; nbws peers echoed {run.peers.echoed} messages; "
        f"error events {dict(run.peers.errors) or 'none'}; close events {dict(run.peers.closes)}",
    ]
    known = sorted(set(worse) & KNOWN_GAPS[side], key=harness.case_key)
    if known:
        summary.append("known gaps (KNOWN_GAPS, issue 10):\n" + harness.describe_worse(worse[c] for c in known))
    fixed = sorted(KNOWN_GAPS[side] - set(worse), key=harness.case_key)
    if fixed:
        summary.append(f"known gaps that ended as for raw websockets this time: {', '.join(fixed)}")
    text = "\n\n".join(summary)
    (ARTIFACTS / f"{side}-summary.md").write_text(text + "\n", encoding="utf-8")
    with capsys.disabled():
        print("\n" + text)

    failures = [worse[case] for case in sorted(set(worse) - KNOWN_GAPS[side], key=harness.case_key)]
    raced = [pair for pair in failures if timing_only(*pair)]
    if raced:
        with capsys.disabled():
            print("timing-dependent NON-STRICT in every run (reported, not failed):\n" + harness.describe_worse(raced))
    failures = [pair for pair in failures if not timing_only(*pair)]
    assert not failures, (
        f"nbws ended {len(failures)} case(s) worse than raw websockets in each of {len(attempts)} runs "
        f"(reports in {ARTIFACTS}):\n" + harness.describe_worse(failures)
    )


@pytest.mark.conformance
@pytest.mark.timeout(timeout(600))
async def test_nbws_server_ends_every_case_as_raw_websockets(wstest: None, capsys: pytest.CaptureFixture[str]) -> None:
    """fuzzingclient: wstest connects to an nbws echo server with three plugins, then to a raw websockets one."""
    await _side("server", capsys)


@pytest.mark.conformance
@pytest.mark.timeout(timeout(600))
async def test_nbws_client_ends_every_case_as_raw_websockets(wstest: None, capsys: pytest.CaptureFixture[str]) -> None:
    """fuzzingserver: an nbws echo client with three plugins goes through every case, then a raw websockets one."""
    await _side("client", capsys)
