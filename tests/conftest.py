"""Shared fixtures: real servers on 127.0.0.1 port 0, and a timeout scale for slow machines."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import comm
import pytest

# Plugins installed from plugins/ must not slip into every test: the tests that
# check entry-point discovery load them on purpose.
os.environ.setdefault("NBWS_DISABLE_PLUGIN_AUTOLOAD", "1")

import nbws

# Every wait in the tests is a multiple of this, so a slow machine can stretch them all at once.
TIMEOUT_SCALE = float(os.environ.get("NBWS_TEST_TIMEOUT_SCALE", "1"))


def timeout(seconds: float = 5.0) -> float:
    """A timeout for one wait in a test, scaled by NBWS_TEST_TIMEOUT_SCALE."""
    return seconds * TIMEOUT_SCALE


@pytest.fixture(autouse=True)
def _no_global_plugins() -> Iterator[None]:
    """Each test starts and ends with the global plugins it found (none of a test's leak out)."""
    before = {info.name for info in nbws.plugins}
    yield
    for info in list(nbws.plugins):
        if info.name not in before:
            nbws.plugins.unregister(info.name)


@pytest.fixture
async def server() -> AsyncIterator[nbws.Server]:
    """An echo server on a free loopback port: text comes back prefixed with 'echo: '."""
    srv = nbws.Server()

    @srv.on("message")
    def echo(conn: nbws.Connection, message: nbws.Message) -> None:
        data = message.data
        conn.send("echo: " + data if isinstance(data, str) else data)

    await srv.start()
    yield srv
    await srv.stop()


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the widgets the tests made while ipywidgets can still do it (not in __del__ at exit)."""
    import sys

    if "ipywidgets" in sys.modules:
        sys.modules["ipywidgets"].Widget.close_all()
