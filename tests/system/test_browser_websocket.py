"""
The browser's own ``WebSocket`` against ``nbws.Server``: a page in headless Chromium.

The page is served over HTTP from 127.0.0.1 (Chromium lets only local pages
open WebSockets to local addresses). It connects to the URL given in its query
string, sends a text and an ``ArrayBuffer`` message from ``onopen``, and logs
every event in ``window.events`` for the test to read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from _support import timeout
from _support.webpage import open_page, page_server, wait_for_events
from playwright.async_api import Page

import nbws

pytestmark = pytest.mark.browser


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
