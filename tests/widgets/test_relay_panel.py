"""The RelayPanel driven without a browser (buttons clicked with .click()), over real sockets; and its Dashboard tab."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _support import timeout, until

import nbws


@pytest.fixture
async def relay() -> AsyncIterator[nbws.Relay]:
    upstream = nbws.Server()
    upstream.on("message", lambda conn, message: conn.send(f"echo: {message.data!r}"))
    await upstream.start()
    relay = nbws.Relay(upstream.url)
    await relay.start()
    yield relay
    await relay.stop()
    await upstream.stop()


async def test_panel_shows_pairs_and_injects_both_ways(relay: nbws.Relay) -> None:
    panel = relay.panel()
    assert panel is relay.panel()  # one panel per relay
    assert relay.url in panel.header.value and "listening" in panel.header.value
    assert "no client yet" in panel.table.value
    ws = nbws.WebSocket(relay.url + "app?v=1")
    await ws.opened(timeout=timeout())
    await until(lambda: panel.pair_choice.value is not None, what="the pair in the panel")
    [pair] = relay.pairs
    assert panel.pair_choice.value == pair.id and "/app?v=1" in panel.table.value

    panel.composer.text.value = "hello upstream"
    panel.inject_button.click()
    assert (await ws.recv(timeout=timeout())).data == "echo: 'hello upstream'"
    panel.to.value = "client"
    panel.composer.mode.value = "hex"
    panel.composer.text.value = "00ff"
    panel.inject_button.click()
    assert (await ws.recv(timeout=timeout())).data == b"\x00\xff"
    assert "to the client" in panel.status.value
    assert pair.injected == {"client->upstream": 1, "upstream->client": 1}
    panel.refresh()
    assert "(1/1 injected)" in panel.table.value

    panel.composer.text.value = "not hex!"
    panel.inject_button.click()  # shown in words, nothing sent, nothing raised
    assert "hex" in panel.status.value and "nbws-error-text" in panel.status.value
    assert pair.injected["upstream->client"] == 1
    ws.close()
    await pair.wait_closed(timeout=timeout())
    await until(lambda: panel.pair_choice.value is None, what="the pair leaving the list")
    assert "closed" in panel.table.value
    panel.close()


async def test_inject_with_no_pair_says_so(relay: nbws.Relay) -> None:
    panel = relay.panel()
    with pytest.raises(ValueError, match="no pair to inject into"):
        panel.inject("x")
    assert "no pair to inject into" in panel.status.value
    panel.inject_button.click()  # the button shows it and does not raise
    panel.close()


async def test_intercept_switch_holds_relayed_messages_until_forwarded(relay: nbws.Relay) -> None:
    panel = relay.panel()
    ws = nbws.WebSocket(relay.url)
    await ws.opened(timeout=timeout())
    intercept = panel.intercept()
    assert intercept is not None and relay.plugins.name_of(intercept) == "relay-intercept"
    ws.send("held?")
    held = await intercept.next(timeout=timeout())
    assert held.message.flow == "client->upstream"
    assert len(panel.intercept_box.children) == 1  # the intercept's own panel
    held.edit("edited")
    held = await intercept.next(timeout=timeout())  # the echo, on its way back
    held.forward()
    assert (await ws.recv(timeout=timeout())).data == "echo: 'edited'"
    panel.intercept(False)
    assert relay.plugins.name_of(intercept) is None and not panel.intercept_box.children
    ws.send("free")
    assert (await ws.recv(timeout=timeout())).data == "echo: 'free'"
    ws.close()
    panel.close()


async def test_a_running_relay_is_a_dashboard_tab(relay: nbws.Relay) -> None:
    dashboard = nbws.Dashboard()
    assert dashboard.panels["Relay"] is relay.panel()
    dashboard.close()
    await relay.stop()
    dashboard = nbws.Dashboard()
    assert "Relay" not in dashboard.panels
    dashboard.close()
