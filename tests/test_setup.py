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
from conftest import timeout

ROOT = Path(__file__).resolve().parent.parent


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
    lab = subprocess.Popen(
        ["make", "--no-print-directory", "lab", "LAB_ARGS=--ServerApp.port=0 --ServerApp.open_browser=False"],
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
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout(30))
        if lab.stdout is not None:
            lab.stdout.close()
