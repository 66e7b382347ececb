"""
The compiled build (mypyc, README "Compiled build") is built and tested as users get it.

One build per session with ``scripts/build-compiled`` (the release wheel with the switch on, from
the venv's tools, no network), unpacked into a temporary folder; then the suites that run the four
compiled modules run again in a child pytest with that folder first on ``sys.path`` and
``NBWS_EXPECT_COMPILED=1`` (tests/conftest.py stops the child if nbws there is not compiled).
Nothing is deselected or skipped: every test collected must pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from _support import ROOT, TIMEOUT_SCALE
from _support.compiled import COMPILED_MODULES, Build

import nbws

# The session's build (about a minute on 2 busy cores) and the child run (about as long) outlast
# pytest-timeout's 120 s default.
pytestmark = [pytest.mark.compiled, pytest.mark.interop, pytest.mark.timeout(900 * TIMEOUT_SCALE)]

# The suites that exercise the compiled modules: the core, what records and replays, the relay, the
# codecs, the interop tests with peers we did not write (Node's ws, websocket-client, the protocol
# servers of tests/peers), the load test, the panels (in-process, on the core's API) and the command line (its subprocesses import the compiled
# nbws too: the child runs in an empty folder, so `python -m nbws` finds it first on PYTHONPATH).
CHILD_SUITES = (
    "tests/core",
    "tests/recording",
    "tests/relay",
    "tests/codecs",
    "tests/widgets",
    "tests/cli",
    "tests/system/test_interop.py",
    "tests/system/test_interop_codec_servers.py",
    "tests/system/test_load.py",
)
BIN = Path(sys.executable).parent


def child_env(build: Build, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(build.site), os.environ.get("PYTHONPATH")])))
    env.update(extra)
    return env


def test_the_compiled_wheel_is_the_pure_wheel_plus_the_four_extension_modules(compiled: Build, tmp_path: Path) -> None:
    # The pure wheel of the same checkout, by the same backend, with the switch off.
    env = {k: v for k, v in os.environ.items() if k != "HATCH_BUILD_HOOKS_ENABLE"}
    command = [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-index", "--no-deps", "-q"]
    subprocess.run(
        [*command, "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        env=env,
        capture_output=True,
        timeout=300 * TIMEOUT_SCALE,
    )
    (pure,) = tmp_path.glob("nbws-*-py3-none-any.whl")

    def files(wheel: Path) -> set[str]:
        with zipfile.ZipFile(wheel) as archive:
            return {name for name in archive.namelist() if ".dist-info/" not in name}

    added = files(compiled.wheel) - files(pure)
    assert files(pure) <= files(compiled.wheel)
    in_package = sorted(name.split(".")[0] for name in added if name.startswith("nbws/"))
    assert in_package == sorted(f"nbws/{module}" for module in COMPILED_MODULES)
    assert all(name.endswith((".so", ".pyd")) for name in added)
    # mypyc's runtime shared by the four modules: one top-level extension module, nothing else.
    assert len([name for name in added if "/" not in name and "__mypyc" in name]) == 1
    assert len(added) == len(COMPILED_MODULES) + 1
    assert "-py3-none-any" not in compiled.wheel.name


def test_nbws_version_says_compiled_yes_on_the_compiled_build(compiled: Build, tmp_path: Path) -> None:
    # The console script of the venv, run outside the checkout: the compiled nbws is the first on sys.path.
    done = subprocess.run(
        [str(BIN / "nbws"), "--version"],
        env=child_env(compiled),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT_SCALE,
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"nbws {nbws.__version__} (compiled: yes)")


def test_the_suites_pass_on_the_compiled_build(compiled: Build, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    # In an empty folder, with this checkout's configuration: `python -m` (the CLI tests' subprocesses)
    # puts the working directory first on sys.path, where the checkout's own nbws/ would win over PYTHONPATH.
    empty = tmp_path / "cwd"
    empty.mkdir()
    command = [str(BIN / "pytest"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")]
    command += [str(ROOT / suite) for suite in CHILD_SUITES]
    command += ["-p", "no:cacheprovider", "-o", "console_output_style=classic", "-rfEs", f"--junitxml={report}"]
    done = subprocess.run(
        command,
        env=child_env(compiled, NBWS_EXPECT_COMPILED="1"),
        cwd=empty,
        capture_output=True,
        text=True,
        timeout=900 * TIMEOUT_SCALE,
    )
    output = done.stdout + done.stderr
    tail = "\n".join(output.strip().splitlines()[-40:])
    assert report.exists(), f"the child pytest wrote no report (exit {done.returncode}):\n{tail}"
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    assert failed == [], f"failing on the compiled build: {failed}\n{tail}"
    assert counts["skipped"] == 0, f"skipped on the compiled build (a skip is no pass):\n{tail}"
    assert counts["failures"] == counts["errors"] == 0, tail
    # Every test collected ran and passed: pytest's count of collected, of passed and the report's agree.
    collected = re.search(r"^collected (\d+) items?$", output, re.M)
    passed = re.search(r"^=+ (\d+) passed in ", output, re.M)
    assert collected and passed, tail
    assert int(collected.group(1)) == int(passed.group(1)) == counts["tests"], tail
    # Each suite took part (none collected nothing).
    modules = {case.get("classname", "") + "." for case in suite.iter("testcase")}
    for path in CHILD_SUITES:
        prefix = path.removesuffix(".py").replace("/", ".") + "."
        assert any(module.startswith(prefix) for module in modules), f"nothing of {path} ran"
    assert done.returncode == 0, tail


def test_without_a_c_compiler_the_build_says_so_and_builds_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build-compiled"), str(tmp_path / "site")],
        env=dict(os.environ, CC="no-such-compiler-cc"),
        capture_output=True,
        text=True,
        timeout=60 * TIMEOUT_SCALE,
    )
    assert done.returncode == 1
    assert "no C compiler: 'no-such-compiler-cc' (from CC) is not on PATH" in done.stderr
    assert "pip install ." in done.stderr  # the way out: the pure build
    assert not (tmp_path / "site").exists()
