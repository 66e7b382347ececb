"""The logger plugin reports every event to Python logging and, if asked, to a JSON-lines file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from _support import StartEchoServer, timeout, until

import nbws
from nbws import transforms


async def test_every_event_is_logged(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, start_echo_server: StartEchoServer
) -> None:
    caplog.set_level(logging.INFO, logger="nbws.events")
    log = nbws.Logger(path=tmp_path / "events.jsonl", preview=10)
    server = await start_echo_server(plugins=[log])
    ws = nbws.WebSocket(
        # The plugin registered last runs first: the drop sees "drop me" before any title-casing.
        server.url,
        plugins=[
            log,
            transforms.map_text(str.title, "send"),
            transforms.drop_if(lambda m: m.data == "drop me", "send"),
        ],
    )
    await ws.opened(timeout=timeout())
    ws.send("a long message that is cut")
    ws.send(b"\x00\x01")
    ws.send("drop me")
    await ws.recv(timeout=timeout())
    await ws.recv(timeout=timeout())
    ws.close(1000, "bye")
    await ws.closed(timeout=timeout())
    await server.stop()
    await until(lambda: any("stopped" in r.getMessage() for r in caplog.records))
    log.close()

    lines = [r.getMessage() for r in caplog.records if r.name == "nbws.events"]
    assert lines[0] == f"server listening on {server.url}"
    assert f"{ws.id} open {server.url}" in lines
    assert f"{ws.id} send text 26 B #1 (changed): 'A Long Mes'... (26 chars)" in lines
    assert f"{ws.id} send binary 2 B #2: b'\\x00\\x01'" in lines
    assert f"{ws.id} send text 7 B #3 (dropped): 'drop me'" in lines
    assert f"{ws.id} receive binary 2 B #2: b'\\x00\\x01'" in lines
    assert f"{ws.id} close 1000 'bye' (clean)" in lines
    assert any(line.startswith("s") and line.endswith("close 1000 'bye' (clean)") for line in lines)
    assert lines[-1].startswith("server on 127.0.0.1:") and lines[-1].endswith("stopped")
    record = next(r for r in caplog.records if getattr(r, "nbws_event", {}).get("event") == "message")
    assert record.nbws_event["connection"] == ws.id  # type: ignore[attr-defined]

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("message") == 9  # 3 + 2 sent, 2 + 2 received
    sent = [e for e in events if e["event"] == "message" and e["direction"] == "send" and e["connection"] == ws.id]
    assert [(e["size"], e["opcode"], e["dropped"], e["changed"]) for e in sent] == [
        (26, 1, False, True),
        (2, 2, False, False),
        (7, 1, True, False),
    ]
    assert {e["event"] for e in events} == {"listening", "open", "message", "close", "stopped"}


async def test_errors_and_reconnections_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="app")
    log = nbws.Logger(logging.DEBUG, logger=logging.getLogger("app"), messages=False)
    server = nbws.Server()
    await server.start()
    ws = nbws.WebSocket(server.url, plugins=[log], reconnect={"initial_delay": 0.01, "jitter": 0})
    await ws.opened(timeout=timeout())
    ws.send("not logged: messages=False")
    await server.stop()
    await until(lambda: any("error (connect)" in r.getMessage() for r in caplog.records))
    ws.close()
    await ws.closed(timeout=timeout())

    lines = [r.getMessage() for r in caplog.records if r.name == "app"]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "app")
    assert not any(" send " in line for line in lines)
    assert any(line == f"{ws.id} close 1001 '' (clean)" for line in lines)
    assert any(line.startswith(f"{ws.id} reconnecting: attempt 1 in 0.01 s") for line in lines)
    assert any(line.startswith(f"{ws.id} error (connect):") for line in lines)


async def test_quiet_when_the_level_is_off(caplog: pytest.LogCaptureFixture, server: nbws.Server) -> None:
    caplog.set_level(logging.WARNING, logger="nbws.events")
    ws = nbws.WebSocket(server.url, plugins=[nbws.Logger()])
    await ws.opened(timeout=timeout())
    ws.send("hello")
    await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())
    assert [r for r in caplog.records if r.name == "nbws.events"] == []


def test_preview() -> None:
    assert nbws.logger.preview("short") == "'short'"
    assert nbws.logger.preview("x" * 100, 5) == "'xxxxx'... (100 chars)"
    assert nbws.logger.preview(b"\x00" * 9, 2) == "b'\\x00\\x00'... (9 bytes)"
