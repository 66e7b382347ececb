"""
The widgets, driven as a user would but without a browser: buttons are clicked
with ``.click()``, fields filled, and every assertion is about real traffic on
real sockets, the rows the log holds, or the state updates sent to the front end.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest
from _support import echo_server, free_port, timeout

import nbws
from nbws.widgets import LogRow, parse_payload

# -- helpers -------------------------------------------------------------------------


def updates(sent: list[tuple[str, dict[str, Any]]], since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [(model, msg) for model, msg in sent[since:] if msg.get("method") == "update"]


@pytest.fixture(autouse=True)
async def no_errors_in_the_loop() -> AsyncIterator[list[dict[str, Any]]]:
    """Nothing a widget does may raise into the event loop: fail the test if something did."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)
    assert not errors, errors


@pytest.fixture
async def cleanup() -> AsyncIterator[list[Any]]:
    """Panels, clients and servers to close at the end of the test, whatever happened."""
    items: list[Any] = []
    yield items
    for item in reversed(items):
        if isinstance(item, widgets.Widget):
            ws = getattr(item, "ws", None)
            if isinstance(ws, nbws.WebSocket) and ws.ready_state is not nbws.CLOSED:
                ws.close()
                await ws.closed(timeout=timeout())
            item.close()
        elif isinstance(item, nbws.WebSocket):
            item.close()
            await item.closed(timeout=timeout())
        elif isinstance(item, nbws.Server):
            await item.stop()


async def changed(widget: widgets.Widget, predicate: Callable[[Any], bool], seconds: float = 5.0) -> Any:
    """Wait until a widget's ``value`` satisfies ``predicate`` (checked now and at each change); return it."""
    if predicate(widget.value):
        return widget.value
    done = asyncio.get_running_loop().create_future()

    def observer(change: dict[str, Any]) -> None:
        if not done.done() and predicate(change["new"]):
            done.set_result(change["new"])

    widget.observe(observer, "value")
    try:
        return await asyncio.wait_for(done, timeout(seconds))
    finally:
        widget.unobserve(observer, "value")


def received(needle: str) -> Callable[[LogRow], bool]:
    return lambda row: row.direction == "receive" and needle in row.preview


# -- the package ---------------------------------------------------------------------------


def test_widget_names_are_exported_and_import_nbws_stays_light() -> None:
    for name in ("ClientPanel", "ServerPanel", "MessageLog", "PluginPanel", "Dashboard"):
        assert name in nbws.__all__
        assert getattr(nbws, name) is getattr(nbws.widgets, name)
    code = "import sys, nbws; assert 'ipywidgets' not in sys.modules, 'import nbws loaded ipywidgets'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=timeout(60))


# -- the client panel --------------------------------------------------------------------------


async def test_client_panel_connects_sends_and_logs_the_echo(server: nbws.Server, cleanup: list[Any]) -> None:
    panel = nbws.ClientPanel(server.url)
    cleanup.append(panel)
    assert panel.state == "idle" and panel.ws is None
    panel.connect_button.click()
    ws = panel.ws
    assert ws is not None and ws.url == server.url
    await ws.opened(timeout=timeout())
    panel.composer.text.value = "hello"
    panel.send_button.click()
    row = await panel.message_log.wait_for(received("echo: hello"), timeout(5))
    assert (row.connection, row.kind, row.size) == (ws.id, "text", len("echo: hello"))
    # The timer renders the rows and the state without anyone asking.
    await changed(panel.message_log.body, lambda html: "echo: hello" in html)
    await changed(panel.badge, lambda html: ">open<" in html)
    assert panel.connect_button.disabled and not panel.disconnect_button.disabled
    assert (panel.status.kind, panel.status.text) == ("info", "sent text 5 B")
    kinds = [(r.direction, r.kind) for r in panel.message_log.rows]
    assert kinds == [("event", "open"), ("send", "text"), ("receive", "text")]
    assert "↑" in panel.message_log.body.value and "↓" in panel.message_log.body.value
    await changed(panel.stats, lambda html: "↑ 1 msgs" in html and "↓ 1 msgs" in html)


async def composing(server: nbws.Server, cleanup: list[Any]) -> tuple[list[str | bytes], nbws.ClientPanel]:
    """What ``server`` receives, and a client panel connected to it (closed after the test)."""
    got: list[str | bytes] = []
    server.on("message", lambda conn, message: got.append(message.data))
    panel = nbws.ClientPanel(server.url, connect=True)
    cleanup.append(panel)
    assert panel.ws is not None
    await panel.ws.opened(timeout=timeout())
    return got, panel


async def test_composer_sends_json_hex_and_base64(server: nbws.Server, cleanup: list[Any]) -> None:
    got, panel = await composing(server, cleanup)
    composer = panel.composer
    composer.mode.value = "json"
    composer.text.value = '{"op": "sub", "ids": [1, 2]}'
    assert "valid JSON" in composer.hint.value
    panel.send_button.click()
    composer.mode.value = "hex"
    composer.text.value = "de ad be ef"
    assert "4 B binary" in composer.hint.value
    panel.send_button.click()
    composer.mode.value = "base64"
    composer.text.value = "AAEC/w=="
    panel.send_button.click()
    await panel.message_log.wait_for(lambda row: row.direction == "receive" and row.data == b"\x00\x01\x02\xff")
    assert got == ['{"op": "sub", "ids": [1, 2]}', b"\xde\xad\xbe\xef", b"\x00\x01\x02\xff"]
    rows = [row for row in panel.message_log.rows if row.direction == "send"]
    assert rows[0].preview == '{"op": "sub", "ids": [1, 2]}'
    assert rows[1].preview == "de ad be ef" and rows[1].label == "binary 4 B"


async def test_invalid_composer_input_is_shown_in_words_and_nothing_is_sent(
    server: nbws.Server, cleanup: list[Any]
) -> None:
    got, panel = await composing(server, cleanup)
    panel.composer.mode.value = "json"
    panel.composer.text.value = '{"op": '
    assert "invalid JSON" in panel.composer.hint.value
    panel.send_button.click()
    assert panel.status.kind == "error"
    assert panel.status.text == "invalid JSON: Expecting value at line 1, column 8"
    panel.composer.mode.value = "hex"
    panel.composer.text.value = "4g"
    panel.send_button.click()
    assert panel.status.text.startswith("invalid hex: 'g' is not a hex digit")
    panel.composer.text.value = "abc"
    panel.send_button.click()
    assert "odd number" in panel.status.text
    panel.composer.mode.value = "base64"
    panel.composer.text.value = "!!"
    panel.send_button.click()
    assert panel.status.text.startswith("invalid base64")
    # The twin raises what the button shows.
    with pytest.raises(ValueError, match="invalid base64"):
        panel.send()
    # Only what follows gets through.
    panel.send("fine")
    await panel.message_log.wait_for(received("echo: fine"), timeout(5))
    assert got == ["fine"]
    assert panel.status.kind == "info" and panel.status.text == "sent text 4 B"


def test_parse_payload_modes() -> None:
    assert parse_payload("héllo", "text") == "héllo"
    assert parse_payload(" [1, 2] ", "json") == " [1, 2] "
    assert parse_payload("0x48 0x69", "hex") == b"Hi"
    assert parse_payload("48:69", "hex") == b"Hi"
    assert parse_payload("SGk=", "base64") == b"Hi"
    assert parse_payload("_-8=", "base64") == b"\xff\xef"
    with pytest.raises(ValueError, match="the message is empty"):
        parse_payload("  ", "json")
    with pytest.raises(ValueError, match="unknown composer mode"):
        parse_payload("x", "yaml")


async def test_bad_url_is_shown_and_nothing_connects(cleanup: list[Any]) -> None:
    panel = nbws.ClientPanel()
    cleanup.append(panel)
    panel.connect_button.click()
    assert panel.status.text == "enter a ws:// or wss:// URL to connect to"
    panel.url.value = "ftp://127.0.0.1:1/"
    panel.connect_button.click()
    assert panel.status.kind == "error" and "is not a valid WebSocket URL" in panel.status.text
    assert panel.ws is None and panel.state == "idle"
    with pytest.raises(nbws.InvalidURLError):
        panel.connect()


async def test_refused_connection_is_shown_in_the_panel(cleanup: list[Any]) -> None:
    url = f"ws://127.0.0.1:{free_port()}/"
    panel = nbws.ClientPanel(url, connect=True)
    cleanup.append(panel)
    assert panel.ws is not None
    row = await panel.message_log.wait_for(lambda row: row.kind == "error", timeout(5))
    assert "connection refused" in row.preview
    await panel.message_log.wait_for(lambda row: row.kind == "close", timeout(5))
    text = await changed(panel.status, lambda html: "could not connect" in html)
    assert f"could not connect to {url}: connection refused" in text
    assert panel.status.kind == "error"
    await changed(panel.badge, lambda html: ">closed<" in html)
    assert not panel.connect_button.disabled


async def test_send_while_closed_is_an_error_in_words(server: nbws.Server, cleanup: list[Any]) -> None:
    panel = nbws.ClientPanel(server.url)
    cleanup.append(panel)
    panel.composer.text.value = "too early"
    panel.send_button.click()
    assert panel.status.text == "not connected: click Connect first"
    ws = panel.connect()
    await ws.opened(timeout=timeout())
    panel.disconnect_button.click()
    await ws.closed(timeout=timeout())
    panel.send_button.click()
    assert panel.status.kind == "error"
    assert panel.status.text == f"{ws.id} is closed: messages can only be sent on an open connection"
    panel.disconnect_button.click()
    assert panel.status.text == f"{ws.id} is closed already"


async def test_disconnect_sends_the_close_code_and_reason(server: nbws.Server, cleanup: list[Any]) -> None:
    server_closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    server.on("close", lambda conn, event: server_closed.set_result((event.code, event.reason)))
    panel = nbws.ClientPanel(server.url, connect=True)
    cleanup.append(panel)
    assert panel.ws is not None
    await panel.ws.opened(timeout=timeout())
    panel.code.value = 1001  # only servers may say "going away"
    panel.disconnect_button.click()
    assert panel.status.text == "close code 1001 is not allowed: use 1000 or a code from 3000 to 4999"
    assert panel.ws.ready_state is nbws.OPEN
    panel.code.value = 4000
    panel.reason.value = "done for today"
    panel.disconnect_button.click()
    event = await panel.ws.closed(timeout=timeout())
    assert (event.code, event.reason) == (4000, "done for today")
    row = await panel.message_log.wait_for(lambda row: row.kind == "close", timeout(5))
    assert row.label == "close 4000" and "done for today" in row.preview
    await changed(panel.status, lambda html: "closed: 4000 application code, reason &#x27;done for today&#x27;" in html)
    assert await asyncio.wait_for(server_closed, timeout()) == (4000, "done for today")


async def test_connect_again_makes_a_new_client_with_the_same_handlers(server: nbws.Server, cleanup: list[Any]) -> None:
    first = nbws.WebSocket(server.url)
    seen: list[str] = []
    first.on("message", lambda message: seen.append(message.data))
    panel = nbws.ClientPanel(first)
    cleanup.append(panel)
    await first.opened(timeout=timeout())
    panel.connect_button.click()
    assert "already connected" in panel.status.text
    panel.disconnect()
    await first.closed(timeout=timeout())
    second = panel.connect()
    assert second is not first and panel.ws is second
    await second.opened(timeout=timeout())
    panel.send("again")
    await panel.message_log.wait_for(received("echo: again"), timeout(5))
    assert seen == ["echo: again"]
    # The log kept the first client's history.
    assert {row.connection for row in panel.message_log.rows} == {first.id, second.id}


async def test_reconnect_toggle_takes_effect_on_the_live_client(cleanup: list[Any]) -> None:
    server = echo_server("echo: ")
    await server.start()
    cleanup.append(server)
    panel = nbws.ClientPanel(server.url, connect=True)
    cleanup.append(panel)
    ws = panel.ws
    assert ws is not None and ws.reconnect is None
    await ws.opened(timeout=timeout())
    panel.reconnect_toggle.value = True
    assert ws.reconnect is not None
    opened = asyncio.Event()
    server.on("connection", lambda conn: opened.set())
    server.clients[0].close(1012, "restarting")
    await asyncio.wait_for(opened.wait(), timeout(10))
    await ws.opened(timeout=timeout())
    assert any(row.kind == "reconnect" for row in panel.message_log.rows)
    opens = [row for row in panel.message_log.rows if row.kind == "open"]
    assert len(opens) == 2 and ws is panel.ws
    panel.reconnect_toggle.value = False
    assert ws.reconnect is None
    server.clients[0].close(1012, "restarting again")
    event = await ws.closed(timeout=timeout())
    assert event.code == 1012
    await changed(panel.badge, lambda html: ">closed<" in html)


async def test_panel_of_an_existing_client_shows_its_state(server: nbws.Server, cleanup: list[Any]) -> None:
    ws = nbws.WebSocket(server.url, reconnect=True)
    cleanup.append(ws)
    await ws.opened(timeout=timeout())
    panel = ws.panel()
    cleanup.append(panel)
    assert ws.panel() is panel and panel.ws is ws
    assert panel.reconnect_toggle.value is True
    assert panel.url.value == server.url
    assert ">open<" in panel.badge.value
    assert panel.message_log.rows[0].kind == "note" and "(open)" in panel.message_log.rows[0].preview


# -- showing a client or a server as a cell's value ----------------------------------------------


async def test_websocket_and_server_display_as_their_panel(server: nbws.Server, cleanup: list[Any]) -> None:
    ws = nbws.WebSocket(server.url)
    cleanup.append(ws)
    bundle = ws._repr_mimebundle_()
    panel = ws.panel()
    cleanup.append(panel)
    assert isinstance(panel, nbws.ClientPanel)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    assert bundle["text/plain"] == repr(ws)
    bundle = server._repr_mimebundle_()
    server_panel = server.panel()
    cleanup.append(server_panel)
    assert isinstance(server_panel, nbws.ServerPanel) and server_panel.server is server
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == server_panel.model_id
    assert bundle["text/plain"] == repr(server)


# -- the server panel ------------------------------------------------------------------------------


async def test_server_panel_starts_serves_and_stops(cleanup: list[Any]) -> None:
    panel = nbws.ServerPanel()
    cleanup.append(panel)
    server = panel.server
    cleanup.append(server)
    assert panel.state == "stopped" and panel.stop_button.disabled
    panel.start_button.click()
    assert server.port is not None
    await panel.message_log.wait_for(lambda row: row.kind == "listening", timeout(5))
    await changed(panel.badge, lambda html: ">listening<" in html)
    assert server.url in panel.url.value
    assert panel.start_button.disabled and panel.host.disabled and panel.port.disabled
    assert panel.port.value == server.port != 0  # the port it picked, not the 0 asked for
    ws = nbws.WebSocket(server.url)
    cleanup.append(ws)
    await ws.opened(timeout=timeout())
    await changed(panel.clients_table, lambda html: ">s" in html and "127.0.0.1:" in html)
    port = server.port
    panel.stop_button.click()
    await ws.closed(timeout=timeout())
    await panel.message_log.wait_for(lambda row: row.kind == "stopped", timeout(5))
    await changed(panel.badge, lambda html: ">stopped<" in html)
    assert "No client connected" in panel.clients_table.value
    # The port is free again, and the field still holds it: Start binds that very port.
    assert panel.port.value == port
    panel.start_button.click()
    assert server.port == port
    await panel.message_log.wait_for(lambda row: row.kind == "listening" and str(port) in row.preview, timeout(5))
    panel.stop()
    await server.stop()


async def test_port_in_use_is_shown_and_another_port_works(cleanup: list[Any]) -> None:
    other = nbws.Server()
    await other.start()
    cleanup.append(other)
    panel = nbws.ServerPanel()
    cleanup.append(panel)
    cleanup.append(panel.server)
    panel.port.value = other.port
    panel.start_button.click()
    assert panel.status.kind == "error"
    assert panel.status.text.startswith(f"port {other.port} on 127.0.0.1 is already in use")
    assert panel.state == "stopped" and not panel.start_button.disabled
    panel.port.value = 70000
    panel.start_button.click()
    assert panel.status.text == "port must be from 0 to 65535 (0 picks a free one), not 70000"
    panel.port.value = 0
    panel.start_button.click()
    await panel.message_log.wait_for(lambda row: row.kind == "listening", timeout(5))
    assert panel.server.listening and panel.server.port != other.port


async def test_server_panel_sends_to_one_client_broadcasts_and_closes_one(cleanup: list[Any]) -> None:
    panel = nbws.ServerPanel()
    cleanup.append(panel)
    cleanup.append(panel.server)
    panel.start()
    alice, bob = nbws.WebSocket(panel.server.url), nbws.WebSocket(panel.server.url)
    cleanup.extend([alice, bob])
    await alice.opened(timeout=timeout())
    await bob.opened(timeout=timeout())
    ids = [conn.id for conn in panel.server.clients]
    table = await changed(panel.clients_table, lambda html: all(f">{i}<" in html for i in ids))
    assert table.count("<tr>") == 3  # a header and two clients
    assert [value for _, value in panel.target.options] == ids
    panel.target.value = ids[0]
    panel.composer.text.value = "just for you"
    panel.send_button.click()
    assert (await alice.recv(timeout=timeout())).data == "just for you"
    panel.composer.mode.value = "json"
    panel.composer.text.value = '{"to": "all"}'
    panel.broadcast_button.click()
    assert panel.status.text == "broadcast text 13 B to 2 clients"
    assert (await alice.recv(timeout=timeout())).data == '{"to": "all"}'
    assert (await bob.recv(timeout=timeout())).data == '{"to": "all"}', "bob got only the broadcast"
    assert bob.messages_received == 1
    panel.target.value = ids[1]
    panel.code.value = 4001
    panel.reason.value = "bye bob"
    panel.close_client_button.click()
    event = await bob.closed(timeout=timeout())
    assert (event.code, event.reason) == (4001, "bye bob")
    assert alice.ready_state is nbws.OPEN
    await changed(panel.clients_table, lambda html: f">{ids[1]}<" not in html)
    # Alice's row: nothing in, two out.
    await changed(panel.clients_table, lambda html: '<td class="nbws-num">0</td><td class="nbws-num">2</td>' in html)
    with pytest.raises(nbws.InvalidStateError, match="client 'nobody' is not connected"):
        panel.send("nobody", "x")
    assert panel.status.text == "client 'nobody' is not connected"


async def test_server_panel_errors_without_clients(cleanup: list[Any]) -> None:
    panel = nbws.ServerPanel()
    cleanup.append(panel)
    panel.send_button.click()
    assert panel.status.text == "no client is connected"
    panel.broadcast_button.click()
    assert panel.status.text == "the server is not running: click Start first"
    panel.stop_button.click()
    assert panel.status.text == "the server is not running"


# -- the message log ---------------------------------------------------------------------------------


async def test_log_filters_by_direction_text_and_regex(server: nbws.Server, cleanup: list[Any]) -> None:
    panel = nbws.ClientPanel(server.url, connect=True)
    cleanup.append(panel)
    assert panel.ws is not None
    await panel.ws.opened(timeout=timeout())
    for text in ("apple", "banana", '{"fruit": "cherry"}'):
        panel.send(text)
    panel.send(b"\x01\x02")
    log = panel.message_log
    await log.wait_for(lambda row: row.direction == "receive" and row.kind == "binary", timeout(5))
    log.direction.value = "receive"
    assert [row.preview for row in log.filtered()] == [
        "echo: apple",
        "echo: banana",
        'echo: {"fruit": "cherry"}',
        "01 02",
    ]
    log.direction.value = "send"
    log.search.value = "AN"
    assert [row.preview for row in log.filtered()] == ["banana"]
    log.set_filter(direction="all", text=r"^echo: (apple|banana)$", regex=True)
    assert [row.preview for row in log.filtered()] == ["echo: apple", "echo: banana"]
    log.flush()
    assert log.body.value.count('class="nbws-row') == 2
    log.regex.value = True
    log.search.value = "(unclosed"
    log.flush()
    assert "invalid regular expression" in log.info.value
    assert len(log.filtered()) == len(log.rows), "an invalid regex filters nothing"
    with pytest.raises(ValueError, match="invalid regular expression"):
        log.set_filter(text="[")
    log.set_filter(direction="event", text="", regex=False)
    assert [row.kind for row in log.filtered()] == ["open"]
    log.set_filter(text="no such thing")
    log.flush()
    assert "No row matches the filter" in log.body.value


async def test_log_pause_clear_and_export(server: nbws.Server, cleanup: list[Any], tmp_path: Path) -> None:
    panel = nbws.ClientPanel(server.url, connect=True)
    cleanup.append(panel)
    assert panel.ws is not None
    await panel.ws.opened(timeout=timeout())
    log = panel.message_log
    log.pause_button.value = True  # what a click does in the page
    assert log.paused and log.pause_button.description == "Resume"
    renders = log.renders
    panel.send("while paused")
    panel.send(b"\xff\x00")
    await log.wait_for(lambda row: row.kind == "binary" and row.direction == "receive", timeout(5))
    log.flush()
    assert log.renders == renders and "while paused" not in log.body.value
    assert "paused</b>, 4 new" in log.info.value
    log.resume()
    assert not log.pause_button.value
    log.flush()
    assert "while paused" in log.body.value
    path = log.export(tmp_path / "log.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0]["kind"] == "open"
    by_way = {(r["direction"], r["kind"]): r for r in records[1:]}
    assert sorted(by_way) == [("receive", "binary"), ("receive", "text"), ("send", "binary"), ("send", "text")]
    assert by_way["send", "text"] == {**by_way["send", "text"], "text": "while paused", "size": 12}
    assert by_way["receive", "binary"]["base64"] == "/wA=" and records[1]["connection"] == panel.ws.id
    assert "exported 5 rows" in log.info.value
    log.clear_button.click()
    log.flush()
    assert log.rows == [] and "No events yet" in log.body.value


async def test_log_keeps_the_start_of_large_messages(server: nbws.Server, cleanup: list[Any]) -> None:
    log = nbws.MessageLog(keep_bytes=100)
    cleanup.append(log)
    ws = nbws.WebSocket(server.url)
    cleanup.append(ws)
    log.attach(ws)
    await ws.opened(timeout=timeout())
    ws.send("x" * 10_000)
    row = await log.wait_for(lambda row: row.direction == "receive", timeout(5))
    assert row.size == 10_006 and row.data is not None and len(row.data) == 100 and row.truncated
    assert len(row.preview) <= 401 and row.preview.endswith("…")
    assert log.records([row])[0]["truncated"] is True


async def test_log_wait_for_times_out() -> None:
    log = nbws.MessageLog()
    try:
        with pytest.raises(nbws.TimeoutError):
            await log.wait_for("never", timeout=0.05)
    finally:
        log.close()


def test_log_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="max_rows must be a positive int"):
        nbws.MessageLog(max_rows=0)
    with pytest.raises(ValueError, match="interval must be a positive number"):
        nbws.MessageLog(interval=0)


async def test_flood_is_rendered_in_batches_with_bounded_rows(
    front_end: list[tuple[str, dict[str, Any]]], cleanup: list[Any]
) -> None:
    count = 10_000
    server = nbws.Server()

    @server.on("message")
    def flood(conn: nbws.Connection, message: nbws.Message) -> None:
        for i in range(count):
            conn.send(f"m{i}")

    await server.start()
    cleanup.append(server)
    panel = nbws.ClientPanel(server.url, max_rows=500, max_visible=100)
    cleanup.append(panel)
    log = panel.message_log
    ws = panel.connect()
    await ws.opened(timeout=timeout())
    before = len(front_end)
    started = time.monotonic()
    panel.send("go")
    await log.wait_for(lambda row: row.preview == f"m{count - 1}", timeout(60))
    elapsed = time.monotonic() - started
    # The last batch reaches the front end through the timer alone.
    await changed(log.body, lambda html: f"m{count - 1}<" in html)
    sent = updates(front_end, before)
    per_second = len(sent) / max(elapsed, 1.0)
    print(
        f"\n{count} messages in {elapsed:.2f} s: {len(sent)} widget updates ({per_second:.1f}/s), {log.renders} renders"
    )
    assert ws.messages_received == count
    assert log.seen == count + 2  # open, the "go" sent, and the flood
    assert len(log.rows) == 500 and log.rows[-1].preview == f"m{count - 1}"
    assert log.body.value.count('class="nbws-row') == 100
    # One rendering per interval (0.2 s) at most, plus the first and the last.
    assert log.renders <= elapsed / 0.2 + 3
    assert len(sent) <= 30 * max(elapsed, 1.0), f"{len(sent)} updates in {elapsed:.2f} s"
    body = [msg for model, msg in sent if model == log.body.model_id]
    assert f"m{count - 1}<" in body[-1]["state"]["value"], "the page got the last batch"


async def test_server_panel_flood_is_rendered_in_batches(
    front_end: list[tuple[str, dict[str, Any]]], cleanup: list[Any]
) -> None:
    count = 10_000
    panel = nbws.ServerPanel(max_rows=300, max_visible=50)
    cleanup.append(panel)
    cleanup.append(panel.server)
    panel.start()
    ws = nbws.WebSocket(panel.server.url)
    cleanup.append(ws)
    await ws.opened(timeout=timeout())
    log = panel.message_log
    await log.wait_for(lambda row: row.kind == "open", timeout(5))
    before = len(front_end)
    started = time.monotonic()
    for i in range(count):
        ws.send(b"%d" % i)
    last = str(count - 1).encode()
    await log.wait_for(lambda row: row.data == last, timeout(60))
    elapsed = time.monotonic() - started
    await changed(panel.clients_table, lambda html: f">{count:,}<" in html)
    sent = updates(front_end, before)
    print(f"\nserver panel: {count} messages in {elapsed:.2f} s, {len(sent)} widget updates, {log.renders} renders")
    assert len(log.rows) == 300 and log.rows[-1].data == last
    assert len(sent) <= 30 * max(elapsed, 1.0), f"{len(sent)} updates in {elapsed:.2f} s"
    tables = [msg for model, msg in sent if model == panel.clients_table.model_id]
    assert f">{count:,}<" in tables[-1]["state"]["value"], "the page got the final count"


# -- the plugin panel -----------------------------------------------------------------------------------


class Counter:
    """Counts the messages it sees received, and can be waited on."""

    def __init__(self) -> None:
        self.seen: list[str | bytes] = []
        self.event = asyncio.Event()

    @nbws.hookimpl
    def nbws_message_received(self, message: nbws.Message) -> None:
        self.seen.append(message.data)
        self.event.set()


class Faulty:
    @nbws.hookimpl
    def nbws_message_received(self, message: nbws.Message) -> None:
        raise RuntimeError(f"cannot handle {message.data!r}")


async def test_plugin_switch_takes_effect_at_once(server: nbws.Server, cleanup: list[Any]) -> None:
    counter = Counter()
    ws = nbws.WebSocket(server.url)
    cleanup.append(ws)
    await ws.opened(timeout=timeout())
    ws.plugins.register(counter, "counter")
    panel = nbws.PluginPanel({"global": nbws.plugins, "client": ws.plugins})
    cleanup.append(panel)
    row = panel.rows[("client", "counter")]
    assert "counter" in row.details.value and "nbws_message_received" in row.details.value
    assert row.switch.value is True and row.switch.description == "on"
    row.switch.value = False  # the click in the page
    assert not ws.plugins.info("counter").enabled
    assert panel.status.text == "counter switched off"
    ws.send("unseen")
    assert (await ws.recv(timeout=timeout())).data == "echo: unseen"
    panel.set_enabled("counter", True)
    assert row.switch.value is True and row.switch.description == "on"
    ws.send("seen")
    await asyncio.wait_for(counter.event.wait(), timeout())
    assert counter.seen == ["echo: seen"]


async def test_plugin_errors_are_counted_with_the_last_traceback(server: nbws.Server, cleanup: list[Any]) -> None:
    panel = nbws.PluginPanel()
    cleanup.append(panel)
    assert "No plugin registered" in panel._empty.value
    nbws.plugins.register(Faulty(), "faulty")
    await changed(panel._empty, lambda html: html == "")
    row = panel.rows[("global", "faulty")]
    assert "no errors" in row.details.value
    ws = nbws.WebSocket(server.url)
    cleanup.append(ws)
    await ws.opened(timeout=timeout())
    ws.send("one")
    assert (await ws.recv(timeout=timeout())).data == "echo: one", "the connection carries on"
    # The server side and the client side each raised once.
    await changed(row.details, lambda html: "2 errors" in html)
    traceback = panel.traceback("faulty")
    assert traceback is not None and "RuntimeError: cannot handle 'echo: one'" in traceback
    assert "<details><summary>last traceback</summary>" in row.details.value
    assert "cannot handle" in row.details.value
    nbws.plugins.disable("faulty")  # from code: the switch follows
    await changed(row.switch, lambda value: value is False)
    nbws.plugins.unregister("faulty")
    await changed(panel._empty, lambda html: "No plugin registered" in html)
    assert all(row.builtin for row in panel.rows.values()), "only nbws's built-in plugins are left"
    with pytest.raises(nbws.PluginError, match="no plugin named 'faulty'"):
        panel.set_enabled("faulty", True)
    assert panel.status.kind == "error"


# -- the dashboard ---------------------------------------------------------------------------------------


class StatsPanel:
    @nbws.hookimpl
    def nbws_panel(self, dashboard: nbws.Dashboard) -> tuple[str, widgets.Widget]:
        return ("Stats", widgets.HTML(f"stats for {dashboard.server!r}"))


class NoPanel:
    @nbws.hookimpl
    def nbws_panel(self) -> None:
        return None


class BrokenPanel:
    @nbws.hookimpl
    def nbws_panel(self) -> object:
        raise RuntimeError("no panel today")


async def test_dashboard_drives_server_and_client_end_to_end(cleanup: list[Any]) -> None:
    server = echo_server("echo: ")
    dashboard = nbws.Dashboard(server=server)
    cleanup.append(dashboard)
    cleanup.append(server)
    assert list(dashboard.tabs.titles) == ["Server", "Client", "Plugins"]
    dashboard.server_panel.start_button.click()
    client = dashboard.select("Client")
    assert client is dashboard.client_panel and dashboard.tabs.selected_index == 1
    assert dashboard.client_panel.url.value == server.url, "the client URL follows the server's"
    dashboard.client_panel.connect_button.click()
    ws = dashboard.client_panel.ws
    assert ws is not None
    await ws.opened(timeout=timeout())
    dashboard.client_panel.composer.text.value = "round trip"
    dashboard.client_panel.send_button.click()
    await dashboard.client_panel.message_log.wait_for(received("echo: round trip"), timeout(5))
    await dashboard.server_panel.message_log.wait_for(lambda row: row.preview == "echo: round trip", timeout(5))
    header = await changed(dashboard.header, lambda html: "1 client" in html and ">open<" in html)
    assert ">listening<" in header and server.url in header
    assert dashboard.plugin_panel.registries["client"] is ws.plugins


async def test_dashboard_shows_plugin_panels_and_survives_broken_ones(cleanup: list[Any]) -> None:
    nbws.plugins.register(StatsPanel(), "stats")
    nbws.plugins.register(NoPanel(), "nopanel")
    nbws.plugins.register(BrokenPanel(), "broken")
    dashboard = nbws.Dashboard()
    cleanup.append(dashboard)
    assert list(dashboard.tabs.titles) == ["Server", "Client", "Plugins", "Stats"]
    assert "stats for <Server 127.0.0.1 stopped" in dashboard.panels["Stats"].value
    assert dashboard.status.text == "plugin 'broken' failed in nbws_panel: RuntimeError: no panel today"
    info = nbws.plugins.info("broken")
    assert info.errors == 1 and info.last_error is not None and "no panel today" in info.last_error
    with pytest.raises(ValueError, match="no tab named 'Nope'"):
        dashboard.select("Nope")


async def test_the_loop_guard_sees_errors_raised_into_the_loop(no_errors_in_the_loop: list[dict[str, Any]]) -> None:
    """The guard above can fail: an error raised in a loop callback reaches it."""

    def boom() -> None:
        raise RuntimeError("raised into the loop")

    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_soon(boom)
    loop.call_soon(done.set)
    await done.wait()
    assert [str(context["exception"]) for context in no_errors_in_the_loop] == ["raised into the loop"]
    no_errors_in_the_loop.clear()


def test_log_rows_read_well() -> None:
    short = LogRow("receive", "c1", "text", size=11, data='{"a":[1,2]}')
    assert short.preview == '{"a": [1, 2]}', "short JSON on one line"
    long_json = json.dumps({"items": [{"id": i, "name": f"item {i}"} for i in range(3)]})
    lines = LogRow("receive", "c1", "text", size=len(long_json), data=long_json).preview.splitlines()
    assert lines[:3] == ["{", '  "items": [', "    {"] and lines[-1] == "… 8 more lines"
    binary = LogRow("send", "c1", "binary", size=100, data=bytes(range(100)))
    assert binary.preview.startswith("00 01 02 03") and binary.preview.endswith("2f … (100 bytes)")
    assert binary.label == "binary 100 B"
    close = LogRow("event", "c1", "close", detail="1000 normal closure", code=1000)
    assert (close.label, close.preview) == ("close 1000", "1000 normal closure")
