"""Shared fixtures: real servers on 127.0.0.1 port 0, a dummy comm for widgets; helpers are in _support."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import comm
import pytest
from playwright.async_api import Page

# Plugins installed from plugins/ must not slip into every test: the tests that
# check entry-point discovery load them on purpose.
os.environ.setdefault("NBWS_DISABLE_PLUGIN_AUTOLOAD", "1")

import _support.browser
import _support.node
import _support.raw
import _support.waits

# timeout: `from conftest import timeout` is the old spelling of `from _support import timeout`,
# kept for test files written before tests/_support existed.
from _support import ROOT, StartEchoServer, echo_server, timeout  # noqa: F401
from _support.compiled import compiled_modules

import nbws

# The helpers' names before tests/_support (`from _waits import until`, `from _node import NodePeer`...),
# for test files written on other branches: the same modules under their old names, no copies. The files
# were moved with git mv, so edits made to them elsewhere follow them into _support on a merge.
for _old, _module in {
    "_waits": _support.waits,
    "_raw": _support.raw,
    "_node": _support.node,
    "_browser": _support.browser,
}.items():
    sys.modules.setdefault(_old, _module)


def pytest_configure(config: pytest.Config) -> None:
    """
    ``NBWS_EXPECT_COMPILED=1`` (tests/system/test_compiled_build.py's child run): refuse to run pure code.

    Without it, refuse compiled modules inside the checkout: left there by a compiled ``pip install``
    of it (git ignores them), they would run instead of the sources being edited and tested.
    """
    found = compiled_modules()
    if os.environ.get("NBWS_EXPECT_COMPILED") == "1":
        if not (nbws.COMPILED and all(found.values())):
            pure = [name for name, compiled in found.items() if not compiled]
            raise pytest.UsageError(
                f"NBWS_EXPECT_COMPILED=1 but nbws from {nbws.__file__} runs pure Python ({', '.join(pure)}): "
                "put the compiled build first on sys.path (PYTHONPATH=DEST, scripts/build-compiled)"
            )
    elif any(found.values()) and Path(str(nbws.__file__)).resolve().parent == ROOT / "nbws":
        stale = [name for name, compiled in found.items() if compiled]
        raise pytest.UsageError(
            f"compiled modules in the checkout's nbws/ ({', '.join(stale)}) would be tested instead of their "
            "sources: remove them (make clean, or rm nbws/*.so) or set NBWS_EXPECT_COMPILED=1 to test them"
        )


def pytest_report_header(config: pytest.Config) -> str:
    """Say which build of nbws the tests run."""
    build = "compiled by mypyc" if nbws.COMPILED else "pure Python"
    return f"nbws: {build}, from {os.path.dirname(str(nbws.__file__))}"


@pytest.fixture(autouse=True)
def _no_global_plugins() -> Iterator[None]:
    """Each test starts and ends with the global plugins it found (none of a test's leak out)."""
    before = {info.name for info in nbws.plugins}
    yield
    for info in list(nbws.plugins):
        if info.name not in before:
            nbws.plugins.unregister(info.name)


@pytest.fixture
def defaults() -> Iterator[nbws.PluginRegistry]:
    """``nbws.default_plugins``, put back as it was after the test."""
    registry = nbws.default_plugins
    before = [(info.name, info.plugin, info.enabled) for info in registry]
    yield registry
    for info in list(registry):
        registry.unregister(info.name)
    for name, plugin, enabled in before:
        registry.register(plugin, name, enabled=enabled)


@pytest.fixture
async def sink() -> AsyncIterator[tuple[nbws.Server, list[str | bytes]]]:
    """A fresh server that keeps what it receives and answers "ok"."""
    got: list[str | bytes] = []
    srv = nbws.Server()
    srv.on("message", lambda conn, message: (got.append(message.data), conn.send("ok")))
    await srv.start()
    yield srv, got
    await srv.stop()


@pytest.fixture
async def start_echo_server() -> AsyncIterator[StartEchoServer]:
    """Start echo servers on free loopback ports: ``await start_echo_server(prefix="", **options)``.

    Each echoes every message to its sender (text with ``prefix`` in front, binary as it came);
    ``options`` go to ``nbws.Server``. Every server started is stopped after the test, pass or fail.
    """
    started: list[nbws.Server] = []

    async def start(prefix: str = "", **options: Any) -> nbws.Server:
        srv = echo_server(prefix, **options)
        started.append(srv)
        await srv.start()
        return srv

    yield start
    for srv in reversed(started):
        await srv.stop()


@pytest.fixture
async def server(start_echo_server: StartEchoServer) -> nbws.Server:
    """An echo server on a free loopback port: text comes back prefixed with 'echo: '."""
    return await start_echo_server("echo: ")


class RecordingComm:
    """A comm that keeps what a widget would send to the front end, as ipywidgets' own tests do."""

    kernel = "a kernel"  # ipywidgets sends only if the comm has a kernel

    def __init__(self, sent: list[tuple[str, dict[str, Any]]], **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self._sent = sent

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def send(self, data: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._sent.append((self.comm_id, data or {}))

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def front_end(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every message widgets send to the front end, as (model id, message), in order."""
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(sent, **kwargs))
    return sent


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A page in a fresh headless Chromium (Debian's, see _support.browser), closed after the test."""
    async with _support.browser.chromium() as browser:
        yield await browser.new_page()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the widgets the tests made while ipywidgets can still do it (not in __del__ at exit)."""
    import sys

    if "ipywidgets" in sys.modules:
        sys.modules["ipywidgets"].Widget.close_all()
