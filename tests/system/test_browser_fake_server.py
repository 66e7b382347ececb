"""
The browser's own WebSocket against nbws.FakeServer: a page in headless Chromium (Debian's, via Playwright).

The page (``_support.webpage.PAGE``) sends a text and an ArrayBuffer message
on open. The recording answers each, pushes a greeting first, and ends with a
close code the page must see; a second recording expects something else, and
the page gets 1008 at once instead of waiting for a reply that never comes.
"""

from __future__ import annotations

import math

import pytest
from _support import timeout
from _support.webpage import open_page, page_server, wait_for_events
from playwright.async_api import Page

import nbws
from nbws.recording import RecordedEvent, Recording

pytestmark = pytest.mark.browser


def recording(expected_text: str) -> Recording:
    t = 1_700_000_000.0
    return Recording(
        [
            RecordedEvent("open", t, "c1", "client", url="wss://chat.example/room"),
            RecordedEvent("message", t + 0.01, "c1", "client", "receive", 1, "welcome"),
            RecordedEvent("message", t + 0.1, "c1", "client", "send", 1, expected_text),
            RecordedEvent("message", t + 0.11, "c1", "client", "receive", 2, "recorded: text"),
            RecordedEvent("message", t + 0.2, "c1", "client", "send", 2, bytes([0, 1, 127, 128, 254, 255])),
            RecordedEvent("message", t + 0.21, "c1", "client", "receive", 3, bytes([9, 8, 7])),
            RecordedEvent("close", t + 0.3, "c1", "client", code=4010, reason="recorded goodbye", was_clean=True),
        ]
    )


async def test_browser_websocket_plays_a_recording_and_gets_a_clear_close_on_a_mismatch(page: Page) -> None:
    with page_server() as origin:
        # The page offers subprotocols, and a browser insists that the server picks one.
        fake = nbws.FakeServer(recording("hello from chromium ☃"), speed=math.inf, protocols=["chat.v2"])
        async with fake:
            await open_page(page, origin, fake.url)
            events = await wait_for_events(page, "return events.some(e => e.event === 'close')")
            assert events == [
                {"event": "open", "protocol": "chat.v2"},
                {"event": "message", "binary": False, "data": "welcome"},
                {"event": "message", "binary": False, "data": "recorded: text"},
                {"event": "message", "binary": True, "data": [9, 8, 7]},
                {"event": "close", "code": 4010, "reason": "recorded goodbye", "wasClean": True},
            ]
            await fake.wait_played(timeout=timeout())
            fake.check()

        async with nbws.FakeServer(recording("hello from firefox"), speed=math.inf, protocols=["chat.v1"]) as fake:
            await open_page(page, origin, fake.url)
            events = await wait_for_events(page, "return events.some(e => e.event === 'close')")
            assert events[-1]["code"] == 1008
            assert "recorded: text" not in [e.get("data") for e in events]
            with pytest.raises(nbws.MismatchError) as failure:
                fake.check()
    assert "expected: 'hello from firefox'" in str(failure.value)
    assert "received: 'hello from chromium ☃'" in str(failure.value)
