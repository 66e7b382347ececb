"""Fixtures of the system tests: the compiled build, made once per session for every test that needs it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from _support import ROOT, TIMEOUT_SCALE
from _support.compiled import Build


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """The compiled wheel of this checkout, built once per session, unpacked into a temporary folder."""
    base = tmp_path_factory.mktemp("compiled")
    site, wheels = base / "site", base / "wheel"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build-compiled"), str(site), "--wheel-dir", str(wheels)],
        capture_output=True,
        text=True,
        timeout=600 * TIMEOUT_SCALE,
    )
    assert done.returncode == 0, f"scripts/build-compiled failed:\n{done.stdout}{done.stderr}"
    (wheel,) = wheels.glob("nbws-*.whl")
    yield Build(site, wheel)
