"""
The example project examples/price-feed, run by pytest in a subprocess with nbws's pytest plugin.

First run: its cassettes are missing, so they are recorded from a live nbws
server started here (which checks the key). Second run: the server is gone,
``--nbws-record-mode=none``, and the tests pass on the cassettes alone. Third
run: a changed client fails with the expected and received messages side by
side. The key never reaches the cassettes. The cassettes shipped with the
example replay too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from _support import timeout

import nbws

pytestmark = pytest.mark.interop

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "price-feed"
KEY = "live-key-5f1e2d3c"
PRICES = {"BTC-USD": 43210.5, "ETH-USD": 2345.25, "SOL-USD": 101.75}


def price_server() -> nbws.Server:
    """A live feed in this process (nbws's background loop): auth, subscribe, then one tick per symbol."""
    server = nbws.Server(token=KEY)

    @server.on("message")
    def answer(conn: nbws.Connection, message: nbws.Message) -> None:
        request = json.loads(message.data)
        if request["op"] == "auth":
            ok = request.get("api_key") == KEY
            conn.send(json.dumps({"type": "authed" if ok else "denied"}))
        elif request["op"] == "subscribe":
            conn.send(json.dumps({"type": "subscribed", "symbols": request["symbols"]}))
            for symbol in request["symbols"]:
                conn.send(json.dumps({"type": "tick", "symbol": symbol, "price": PRICES[symbol]}))

    return server


def run_pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """
    Run pytest in ``project`` with nbws's plugin loaded by its entry-point name (``-p nbws``).

    The other plugins installed here (nbval, playwright, hypothesis...) would
    cost seconds of start-up per run, so autoloading is off.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PRICE_FEED_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "nbws", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout(120),
        env={**clean, "NBWS_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})},
    )


def test_the_plugin_is_registered_for_pytest_and_loaded_in_this_run(request: pytest.FixtureRequest) -> None:
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "nbws"]
    assert [ep.value for ep in found] == ["nbws.pytest_plugin"]
    assert request.config.pluginmanager.has_plugin("nbws")
    assert request.config.getoption("--nbws-record-mode") is None


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A copy of the example without its cassettes."""
    copy = tmp_path / "price-feed"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("cassettes", "__pycache__", "*.egg-info"))
    yield copy


def test_record_then_replay_offline_then_a_changed_client_fails_with_a_diff(project: Path) -> None:
    server = price_server()
    server.start().wait(timeout())
    try:
        recorded = run_pytest(
            project, "--nbws-record-mode=once", env={"PRICE_FEED_URL": server.url + "v1/stream", "PRICE_FEED_KEY": KEY}
        )
    finally:
        server.stop().wait(timeout())
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "2 passed" in recorded.stdout
    cassettes = project / "tests" / "cassettes" / "test_pricefeed"
    written = sorted(path.name for path in cassettes.iterdir())
    assert written == ["btc_and_eth.jsonl", "test_the_default_url_is_routed_to_the_cassette.jsonl"]
    for path in cassettes.iterdir():
        text = path.read_text()
        assert KEY not in text, f"the key reached {path}"
        assert '"api_key\\": \\"REDACTED\\"' in text and "token=REDACTED" in text

    replayed = run_pytest(project, "--nbws-record-mode=none")  # the server is gone, and no key is given
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "2 passed" in replayed.stdout

    client = project / "pricefeed.py"
    client.write_text(
        client.read_text().replace('{"op": "subscribe", "symbols": symbols}', '{"op": "sub", "symbols": symbols}')
    )
    changed = run_pytest(project, "--nbws-record-mode=none")
    assert changed.returncode == 1
    out = changed.stdout
    assert "2 failed" in out
    assert "MismatchError" in out
    assert 'expected: \'{"op": "subscribe", "symbols": ["BTC-USD", "ETH-USD"]}\'' in out
    assert 'received: \'{"op": "sub", "symbols": ["BTC-USD", "ETH-USD"]}\'' in out
    assert 'differs at op: recorded "subscribe", received "sub"' in out


def test_the_cassettes_shipped_with_the_example_replay(tmp_path: Path) -> None:
    copy = tmp_path / "shipped"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    result = run_pytest(copy, "--nbws-record-mode=none")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_missing_cassette_in_mode_none_says_how_to_record(project: Path) -> None:
    result = run_pytest(project, "--nbws-record-mode=none", "-k", "latest_prices")
    assert result.returncode == 1
    assert "does not exist and the record mode is 'none'" in result.stdout
    assert "1 error" in result.stdout


def test_all_played_fails_a_test_that_left_a_recorded_message_out_unless_turned_off(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "cassettes" / "test_two").mkdir(parents=True)
    events = [
        nbws.RecordedEvent("open", 1.0, "c1", "client", url="ws://feed/"),
        nbws.RecordedEvent("message", 1.1, "c1", "client", "send", 1, "one"),
        nbws.RecordedEvent("message", 1.2, "c1", "client", "receive", 1, "ONE"),
        nbws.RecordedEvent("message", 1.3, "c1", "client", "send", 2, "two"),
        nbws.RecordedEvent("message", 1.4, "c1", "client", "receive", 2, "TWO"),
    ]
    nbws.Recording(events).to_har(project / "cassettes" / "test_two" / "two.har")
    (project / "test_two.py").write_text(
        textwrap.dedent(
            """
            import pytest
            import websocket

            def send_one(url):
                ws = websocket.create_connection(url)
                ws.send("one")
                assert ws.recv() == "ONE"
                ws.close()

            @pytest.mark.nbws_cassette("two.har", speed=float("inf"))
            def test_strict(nbws_cassette):
                send_one(nbws_cassette.url)

            @pytest.mark.nbws_cassette("two.har", speed=float("inf"), all_played=False)
            def test_lenient(nbws_cassette):
                send_one(nbws_cassette.url)
            """
        )
    )
    result = run_pytest(project, "--nbws-record-mode=none")
    assert result.returncode == 1
    assert "1 failed, 1 passed" in result.stdout
    assert "FAILED test_two.py::test_strict - nbws.exceptions.MismatchError" in result.stdout
    assert "the client never sent recorded message #2: 'two'" in result.stdout
