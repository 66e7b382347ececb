"""The README's first command works: `make lab` serves the tutorials in JupyterLab and opens the first one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _support import timeout

ROOT = Path(__file__).resolve().parents[2]


def get_json(url: str, deadline: float) -> Any:
    """GET ``url`` as JSON, retrying while the server does not accept connections yet."""
    while True:
        try:
            with urllib.request.urlopen(url) as reply:
                return json.load(reply)
        except urllib.error.URLError as exc:
            # jupyter_server prints its URL a moment before it accepts connections on it.
            if not isinstance(exc.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.notebook
def test_make_lab_serves_the_tutorials_and_opens_the_first(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    tutorials = sorted((ROOT / "notebooks").glob("*.ipynb"))
    before = {path: path.stat().st_mtime_ns for path in tutorials}
    lab = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "lab",
            "LAB_ARGS=--ServerApp.port=0 --ServerApp.open_browser=False",
            f"SCRATCH={scratch}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path)},
    )
    try:
        assert lab.stdout is not None
        deadline = time.monotonic() + timeout(60)
        seen: list[str] = []
        found = None
        while found is None and time.monotonic() < deadline:
            line = lab.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+/)lab\?token=(\w+)", line)
        assert found is not None, "".join(seen)
        base, token = found.groups()
        tutorial = get_json(f"{base}api/contents/01-client-events.ipynb?content=0&token={token}", deadline)
        assert tutorial["type"] == "notebook"
        # The page JupyterLab would open in a browser points at the first tutorial.
        [open_file] = tmp_path.glob("jpserver-file-to-run-*-open.html")
        assert "/lab/tree/01-client-events.ipynb" in open_file.read_text()
        # JupyterLab serves copies in the scratch folder: what it saves, exports and records stays there.
        assert sorted(p.name for p in scratch.glob("*.ipynb")) == [p.name for p in tutorials]
        server = get_json(f"{base}api/status?token={token}", deadline)
        assert server["started"]
        assert {path: path.stat().st_mtime_ns for path in tutorials} == before
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout(30))
        if lab.stdout is not None:
            lab.stdout.close()


def test_make_lab_installs_the_lab_and_the_example_plugins_not_the_test_tool_chain(tmp_path: Path) -> None:
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "lab", f"VENV={tmp_path / 'venv'}", f"SCRATCH={tmp_path / 's'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    install = next(line for line in dry.splitlines() if "pip install -q -e" in line)
    assert "'.[lab]'" in install and "plugins/nbws-stats" in install and "plugins/nbws-faults" in install
    assert "[test]" not in dry


def test_the_scratch_folder_is_git_ignored() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "scratch/nbws-log-20260101-000000.jsonl"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0
