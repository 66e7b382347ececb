"""
A real app through the relay: Chromium's own WebSocket → nbws.Relay → a Node ws upstream.

The page (served from 127.0.0.1, see tests/_support/webpage.py) connects
to the relay with two subprotocols; the upstream picks one. In the relay an
intercept edits what the page sends, the notebook injects messages both ways,
closes travel with their code and reason, and the recording of the session
reloads and replays to the upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from _support import timeout
from _support.browser import chromium
from _support.node import NodePeer, backend
from _support.webpage import page_server, wait_for_events
from playwright.async_api import Page

import nbws

pytestmark = pytest.mark.browser


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[NodePeer, str]]:
    async with backend("v2.chat", "v1.chat") as found:
        yield found


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium() as browser:
        yield await browser.new_page()


def messages(events: list[dict[str, Any]]) -> list[Any]:
    return [e["data"] for e in events if e["event"] == "message"]


async def test_browser_through_the_relay_to_node(upstream: tuple[NodePeer, str], page: Page, tmp_path: Path) -> None:
    peer, upstream_url = upstream
    intercept = nbws.Intercept("receive", match=lambda m: isinstance(m.data, str) and m.data.startswith("buy"))
    recorder = nbws.Recorder(tmp_path / "app.jsonl")
    relay = nbws.Relay(upstream_url, plugins=[intercept, recorder])
    await relay.start()
    try:
        with page_server() as origin:
            # The test page of _support.webpage offers chat.v1 and chat.v2; this one offers ours.
            await page.goto(f"{origin}/?ws={quote(relay.url + 'trade', safe='')}", timeout=timeout(10) * 1000)
            await page.evaluate(
                """url => {
                  window.events = [];
                  // The page's own socket may still be connecting: none of its events may reach the new list.
                  socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null; socket.close();
                  const ws = new WebSocket(url, ["v1.chat", "v2.chat"]);
                  ws.onopen = () => events.push({ event: "open", protocol: ws.protocol });
                  ws.onmessage = (e) => events.push({ event: "message", data: e.data });
                  ws.onclose = (e) => events.push({ event: "close", code: e.code, reason: e.reason, wasClean: e.wasClean });
                  window.app = ws;
                }""",
                relay.url + "trade?user=ann",
            )
            events = await wait_for_events(page, "return events.filter(e => e.event === 'message').length >= 1")
            # The subprotocol the upstream chose (its preference, v2.chat) reaches the page.
            assert events[:2] == [
                {"event": "open", "protocol": "v2.chat"},
                {"event": "message", "data": "hello v2.chat"},
            ]
            connection = await _next_event(peer, "connection")
            while connection["path"] != "/trade?user=ann":  # the page's first socket, closed at once
                connection = await _next_event(peer, "connection")
            assert connection["origin"] == origin and "Chrome" in connection["user_agent"]

            # Held and edited in the relay: the upstream gets the edited order.
            await page.evaluate("app.send('buy 1')")
            held = await intercept.next(timeout=timeout())
            assert held.message.flow == "client->upstream"
            held.edit("buy 100")
            assert await _next_message(peer) == "buy 100"
            await wait_for_events(page, "return events.some(e => e.data === 'echo: buy 100')")

            # Injected both ways from the notebook.
            [pair] = [p for p in relay.pairs if p.request.target == "/trade?user=ann"]
            pair.inject("notice from the notebook", to="client")
            pair.inject("ping from the notebook", to="upstream")
            assert await _next_message(peer) == "ping from the notebook"
            events = await wait_for_events(page, "return events.some(e => e.data === 'echo: ping from the notebook')")
            assert "notice from the notebook" in messages(events)

            # The page closes with its own code and reason: the upstream gets the same.
            await page.evaluate("app.close(4001, 'page leaves ☃')")
            assert await _next_event(peer, "close") == {"event": "close", "code": 4001, "reason": "page leaves ☃"}
            await pair.wait_closed(timeout=timeout())

            # And the other way: the upstream closes, the page sees its code and reason.
            await page.evaluate(
                """url => {
                  const ws = new WebSocket(url);
                  ws.onopen = () => ws.send("close 4002 server says bye");
                  ws.onclose = (e) => events.push({ event: "close2", code: e.code, reason: e.reason, wasClean: e.wasClean });
                }""",
                relay.url,
            )
            events = await wait_for_events(page, "return events.some(e => e.event === 'close2')")
            assert events[-1] == {"event": "close2", "code": 4002, "reason": "server says bye", "wasClean": True}
            assert await _next_event(peer, "close") == {"event": "close", "code": 4002, "reason": "server says bye"}
    finally:
        await relay.stop()
        recorder.close()

    # The recording reloads, and what reached the upstream replays to it.
    recording = nbws.Recording.load(tmp_path / "app.jsonl")
    upstream_leg = pair.upstream_side.id
    sent = [e.data for e in recording.messages(direction="send", connection=upstream_leg)]
    assert sent == ["buy 100", "ping from the notebook"]
    assert [e.injected for e in recording.messages(direction="send", connection=upstream_leg)] == [False, True]
    direct = nbws.WebSocket(upstream_url)
    await direct.opened(timeout=timeout())
    await nbws.replay(recording, direct, connection=upstream_leg, speed=100)
    assert await _next_message(peer) == "buy 100"
    assert await _next_message(peer) == "ping from the notebook"
    direct.close()
    await direct.closed(timeout=timeout())


async def _next_event(peer: NodePeer, name: str) -> dict[str, Any]:
    while True:
        event = await peer.event()
        if event["event"] == name:
            return event


async def _next_message(peer: NodePeer) -> Any:
    return (await _next_event(peer, "message"))["data"]
