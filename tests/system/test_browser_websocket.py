"""
The browser's own ``WebSocket`` against ``nbws.Server``: a page in headless Chromium.

The page is served over HTTP from 127.0.0.1 (Chromium lets only local pages
open WebSockets to local addresses). It connects to the URL given in its query
string, sends a text and an ``ArrayBuffer`` message from ``onopen``, and logs
every event in ``window.events`` for the test to read.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from _support import timeout
from _support.browser import chromium
from playwright.async_api import Page

import nbws

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>nbws browser interop</title>
<script>
const params = new URLSearchParams(location.search);
window.events = [];
const ws = new WebSocket(params.get("ws"), ["chat.v1", "chat.v2"]);
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  events.push({ event: "open", protocol: ws.protocol });
  ws.send("hello from chromium ☃");
  ws.send(new Uint8Array([0, 1, 127, 128, 254, 255]).buffer);
};
ws.onmessage = (e) => {
  if (e.data instanceof ArrayBuffer) {
    events.push({ event: "message", binary: true, data: Array.from(new Uint8Array(e.data)) });
  } else {
    events.push({ event: "message", binary: false, data: e.data });
  }
};
ws.onerror = () => events.push({ event: "error" });
ws.onclose = (e) => events.push({ event: "close", code: e.code, reason: e.reason, wasClean: e.wasClean });
window.socket = ws;
</script>
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def page_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the test page; yields its origin."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="page-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium() as browser:
        page = await browser.new_page()
        yield page


async def open_page(page: Page, origin: str, ws_url: str) -> None:
    await page.goto(f"{origin}/?ws={quote(ws_url, safe='')}", timeout=timeout(10) * 1000)


async def wait_for_events(page: Page, condition: str) -> list[dict[str, Any]]:
    """Wait until ``condition`` (JavaScript over ``events``) holds; return the page's events."""
    await page.wait_for_function(f"(() => {{ {condition} }})()", timeout=timeout(10) * 1000)
    events: list[dict[str, Any]] = await page.evaluate("window.events")
    return events


@pytest.fixture
async def server() -> AsyncIterator[nbws.Server]:
    """Echoes text as 'nbws: ...' and binary reversed; greets on connection."""
    server = nbws.Server(protocols=["chat.v2", "chat.v1"])

    @server.on("connection")
    def greet(conn: nbws.Connection) -> None:
        conn.send(f"welcome, {conn.request.origin}")

    @server.on("message")
    def echo(conn: nbws.Connection, message: nbws.Message) -> None:
        data = message.data
        if data == "close please":
            conn.close(4006, "server says adiós ☃")
        else:
            conn.send("nbws: " + data if isinstance(data, str) else data[::-1])

    await server.start()
    yield server
    await server.stop()


async def test_browser_websocket_exchanges_text_and_arraybuffer_with_nbws_server(
    server: nbws.Server, page: Page
) -> None:
    received: list[nbws.Message] = []
    closes: asyncio.Queue[nbws.CloseEvent] = asyncio.Queue()
    server.on("message", lambda conn, message: received.append(message))
    server.on("close", lambda conn, event: closes.put_nowait(event))
    with page_server() as origin:
        await open_page(page, origin, server.url)
        events = await wait_for_events(page, "return events.filter(e => e.event === 'message').length >= 3")
        assert events == [
            {"event": "open", "protocol": "chat.v2"},
            {"event": "message", "binary": False, "data": f"welcome, {origin}"},
            {"event": "message", "binary": False, "data": "nbws: hello from chromium ☃"},
            {"event": "message", "binary": True, "data": [255, 254, 128, 127, 1, 0]},
        ]
        assert [m.data for m in received] == ["hello from chromium ☃", bytes([0, 1, 127, 128, 254, 255])]
        await page.evaluate("socket.close(4005, 'bye from chromium ☃')")
        event = await asyncio.wait_for(closes.get(), timeout())
        assert (event.code, event.reason, event.was_clean) == (4005, "bye from chromium ☃", True)
        events = await wait_for_events(page, "return events.some(e => e.event === 'close')")
        assert events[-1] == {"event": "close", "code": 4005, "reason": "bye from chromium ☃", "wasClean": True}
    assert server.clients == []


async def test_browser_sees_the_close_code_and_reason_of_nbws_server(server: nbws.Server, page: Page) -> None:
    with page_server() as origin:
        await open_page(page, origin, server.url)
        await wait_for_events(page, "return events.length >= 2")
        await page.evaluate("socket.send('close please')")
        events = await wait_for_events(page, "return events.some(e => e.event === 'close')")
        assert events[-1] == {"event": "close", "code": 4006, "reason": "server says adiós ☃", "wasClean": True}
        assert {"event": "error"} not in events


async def test_server_origins_admit_the_pages_origin_and_refuse_others(page: Page) -> None:
    with page_server() as allowed, page_server() as other:
        server = nbws.Server(protocols=["chat.v1"], origins=[allowed])
        connections: list[nbws.Connection] = []
        server.on("connection", connections.append)
        await server.start()
        try:
            await open_page(page, other, server.url)
            events = await wait_for_events(page, "return events.some(e => e.event === 'close')")
            assert events == [{"event": "error"}, {"event": "close", "code": 1006, "reason": "", "wasClean": False}]
            assert connections == []
            await open_page(page, allowed, server.url)
            events = await wait_for_events(page, "return events.length >= 1")
            assert events[0] == {"event": "open", "protocol": "chat.v1"}
            assert [conn.request.origin for conn in connections] == [allowed]
        finally:
            await server.stop()
