"""
A test page for the browser tests: served over HTTP from 127.0.0.1 (Chromium lets only local pages open
WebSockets to local addresses), its own ``WebSocket`` connects to the URL in its query string
(``?ws=``), sends a text and an ``ArrayBuffer`` message on open, and logs every event in
``window.events`` for the test to read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

from playwright.async_api import Page

from .waits import timeout

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
    """Serves PAGE at every path."""

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


async def open_page(page: Page, origin: str, ws_url: str) -> None:
    """Open the test page (from ``page_server()``), which connects at once to ``ws_url``."""
    await page.goto(f"{origin}/?ws={quote(ws_url, safe='')}", timeout=timeout(10) * 1000)


async def wait_for_events(page: Page, condition: str) -> list[dict[str, Any]]:
    """Wait until ``condition`` (JavaScript over ``events``) holds; return the page's events."""
    await page.wait_for_function(f"(() => {{ {condition} }})()", timeout=timeout(10) * 1000)
    events: list[dict[str, Any]] = await page.evaluate("window.events")
    return events
