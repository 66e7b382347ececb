"""
Issue 10, item 4: closing never waits behind a message the Intercept holds.

A message held when its connection starts closing (``close()``, the Disconnect
button, ``server.stop()``) is released at once: forwarded, with reason
``"closing"``, so it is written before the close frame, as any message sent
before ``close()`` is (the browser's rule), and nothing is lost silently.
"""

from __future__ import annotations

import asyncio

from _support import timeout

import nbws


async def test_close_does_not_wait_behind_a_held_outgoing_message(server: nbws.Server) -> None:
    icpt = nbws.Intercept("send")
    ws = nbws.WebSocket(server.url, plugins=[icpt])
    await ws.opened(timeout=timeout())
    ws.send("held")
    held = await icpt.next(timeout=timeout())
    ws.close(1000, "bye")
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason, event.was_clean) == (1000, "bye", True)
    assert (held.decision, held.reason) == ("forward", "closing")
    assert icpt.held == [] and icpt.counts == {"held": 1, "forward": 1, "edit": 0, "drop": 0}


async def test_a_message_held_at_close_is_written_before_the_close_frame(server: nbws.Server) -> None:
    received: list[str] = []
    server.on("message", lambda conn, message: received.append(message.data))
    closed = asyncio.get_running_loop().create_future()
    server.on("close", lambda conn, event: closed.done() or closed.set_result(event.code))
    icpt = nbws.Intercept("send")
    ws = nbws.WebSocket(server.url, plugins=[icpt])
    await ws.opened(timeout=timeout())
    ws.send("first")
    await icpt.next(timeout=timeout())
    ws.close()
    assert await asyncio.wait_for(closed, timeout()) == 1000
    assert received == ["first"]


async def test_the_disconnect_button_works_while_a_message_is_held(server: nbws.Server) -> None:
    icpt = nbws.Intercept("send")
    ws = nbws.WebSocket(server.url, plugins=[icpt])
    panel = nbws.ClientPanel(ws)
    await ws.opened(timeout=timeout())
    ws.send("held")
    await icpt.next(timeout=timeout())
    panel.disconnect_button.click()
    assert (await ws.closed(timeout=timeout())).code == 1000
    assert ws.ready_state is nbws.CLOSED and icpt.held == []


async def test_server_stop_does_not_wait_behind_a_held_outgoing_message() -> None:
    icpt = nbws.Intercept("send")
    srv = nbws.Server(plugins=[icpt])
    srv.on("connection", lambda conn: conn.send("welcome"))
    await srv.start()
    ws = nbws.WebSocket(srv.url)
    await ws.opened(timeout=timeout())
    held = await icpt.next(timeout=timeout())
    await asyncio.wait_for(srv.stop(), timeout())
    # Released, not left undecided (whether the close frame or the release came first).
    assert held.decision == "forward" and held.reason in ("closing", "closed")
    assert icpt.held == [] and icpt.counts["forward"] == 1
    assert (await ws.closed(timeout=timeout())).code == 1001


async def test_a_decision_before_close_still_counts(server: nbws.Server) -> None:
    icpt = nbws.Intercept("send")
    ws = nbws.WebSocket(server.url, plugins=[icpt])
    await ws.opened(timeout=timeout())
    ws.send("dropped")
    held = await icpt.next(timeout=timeout())
    held.drop()
    ws.close()
    await ws.closed(timeout=timeout())
    assert (held.decision, held.reason) == ("drop", None)
    assert icpt.counts["drop"] == 1 and icpt.counts["forward"] == 0
