"""Live panels of the first hour: replay defaults (item 5) and the intercept toggle (item 8)."""

from __future__ import annotations

import math

from _support import timeout, until

import nbws


async def test_the_replay_panel_replays_a_clients_sends_from_a_client_by_default_and_ends_at_done() -> None:
    rec = nbws.Recorder()
    server = nbws.Server(plugins=[rec])  # the server's connections are targets too, listed first
    server.on("message", lambda conn, message: conn.send("ok"))
    await server.start()
    first = nbws.WebSocket(server.url, plugins=[rec])
    await first.opened(timeout=timeout())
    for word in ("a", "b"):
        first.send(word)
        await first.recv(timeout=timeout())
    first.close()
    await first.closed(timeout=timeout())
    await until(lambda: not server.clients, what="the first client to leave")

    second = nbws.WebSocket(server.url, plugins=[rec])
    await second.opened(timeout=timeout())
    await until(lambda: len(server.clients) == 1, what="the second client")
    panel = rec.panel().replay
    panel.refresh()
    assert {conn.role for conn in panel.targets} == {"client", "server"}
    assert panel.connection_select.value == first.id
    assert panel.target_select.value is second, "what a client sent is replayed from a client"

    panel.set_speed(math.inf)
    panel.play()
    assert panel.replayer is not None
    await panel.replayer.done(timeout=timeout())
    await until(lambda: "done" in panel.status.value, what="the status line to say done")
    assert panel.progress_label.value == "2/2 sent · done"
    assert "playing" not in panel.status.value
    second.close()
    await second.closed(timeout=timeout())
    await server.stop()
    panel.close()


async def test_the_intercepting_toggle_shows_its_state() -> None:
    icpt = nbws.Intercept("receive")
    panel = icpt.panel()
    panel.start()
    panel.refresh()
    assert panel.active_button.button_style == "warning" and panel.active_button.description == "Intercepting: on"
    panel.stop()
    panel.refresh()
    assert panel.active_button.button_style == "" and panel.active_button.description == "Intercepting: off"
    panel.close()
