"""The recorder, replay and intercept panels, driven by their buttons as a user would, over real sockets."""

from __future__ import annotations

import base64
import math
from pathlib import Path

from _support import timeout, until

import nbws
from nbws.widgets import InterceptPanel, RecorderPanel, ReplayPanel


async def test_recorder_panel_start_stop_counts_and_har(server: nbws.Server, tmp_path: Path) -> None:
    rec = nbws.Recorder(tmp_path / "session.jsonl")
    server.plugins.register(rec)
    panel = rec.panel()
    assert isinstance(panel, RecorderPanel)
    assert "session.jsonl" in panel.file_label.value
    assert panel.record_button.value is True

    ws = nbws.WebSocket(server.url, plugins=[rec])
    await ws.opened(timeout=timeout())
    ws.send("one")
    await ws.recv(timeout=timeout())
    panel.refresh()
    assert "send 2 · receive 2" in panel.counts_label.value  # both sides of the connection

    panel.record_button.value = False  # the toggle, clicked off
    assert not rec.active
    ws.send("not recorded")
    await ws.recv(timeout=timeout())
    panel.start()
    assert rec.active and panel.record_button.value
    ws.close()
    await ws.closed(timeout=timeout())
    await until(lambda: rec.counts["close"] == 2)

    panel.har_path.value = str(tmp_path / "session.har")
    panel.save_button.click()
    assert "saved 4 messages" in panel.status.value
    loaded = nbws.Recording.load(tmp_path / "session.har")
    assert [e.data for e in loaded.messages(connection=ws)] == ["one", "echo: one"]
    assert len(loaded.messages()) == 4

    panel.har_path.value = str(tmp_path / "no such dir" / "x.har")
    panel.save_button.click()  # an error is shown, not raised
    assert "FileNotFoundError" in panel.status.value
    panel.close()
    rec.close()


async def test_the_recorder_panel_refreshes_by_itself(server: nbws.Server) -> None:
    rec = nbws.Recorder()
    panel = rec.panel()
    ws = nbws.WebSocket(server.url, plugins=[rec])
    await ws.opened(timeout=timeout())
    ws.send("x")
    await ws.recv(timeout=timeout())
    await until(lambda: panel.counts_label.value.startswith("3 events"))
    ws.close()
    await ws.closed(timeout=timeout())
    panel.close()


async def test_replay_panel_plays_a_recording_to_a_chosen_target(
    server: nbws.Server, sink: tuple[nbws.Server, list[str | bytes]]
) -> None:
    fresh, got = sink
    rec = nbws.Recorder()
    ws = nbws.WebSocket(server.url, plugins=[rec])
    await ws.opened(timeout=timeout())
    for data in ("alpha", b"\x00\x01", "gamma"):
        ws.send(data)
        await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())

    target = nbws.WebSocket(fresh.url, plugins=[rec])  # the recorder's open connections are the targets
    await target.opened(timeout=timeout())
    panel = rec.panel().replay
    panel.refresh()
    assert target in panel.targets and ws not in panel.targets  # only open connections
    panel.set_target(target)
    panel.connection_select.value = ws.id
    assert [label.split(": ", 1)[1] for label, _ in panel.message_list.options] == [
        "'alpha'",
        "b'\\x00\\x01'",
        "'gamma'",
    ]

    # Edit the binary one (as base64) and the last one before anything is sent.
    panel.select(1)
    assert panel.editor.value == base64.b64encode(b"\x00\x01").decode()
    panel.editor.value = base64.b64encode(b"\xff").decode()
    panel.apply_button.click()
    panel.edit(2, "gamma edited")

    panel.mode_buttons.value = "reactive"
    panel.step_button.click()
    await until(lambda: got == ["alpha"])
    assert panel.progress.value == 1 and panel.progress_label.value.startswith("1/3 sent · paused")
    panel.set_speed(math.inf)
    panel.play_button.click()
    assert panel.replayer is not None
    await panel.replayer.done(timeout=timeout())
    await until(lambda: len(got) == 3)
    assert got == ["alpha", b"\xff", "gamma edited"]
    panel.refresh()
    assert panel.progress_label.value == "3/3 sent · done"
    assert all(message.replayed for message in panel.replayer.sent)

    panel.editor.value = "not base64 !"
    panel.select(1)
    panel.editor.value = "%%%"
    panel.apply_button.click()  # shown, not raised
    assert "base64" in panel.status.value

    target.close()
    await target.closed(timeout=timeout())
    panel.close()


async def test_replay_panel_pause_and_stop(sink: tuple[nbws.Server, list[str | bytes]]) -> None:
    fresh, got = sink
    recording = nbws.Recording(
        [nbws.RecordedEvent("message", 1000.0 + 60 * n, "c0", "client", "send", n + 1, f"m{n}") for n in range(3)]
    )
    target = nbws.WebSocket(fresh.url)
    await target.opened(timeout=timeout())
    panel = recording.panel([target])
    assert isinstance(panel, ReplayPanel)
    panel.play_button.click()
    await until(lambda: got == ["m0"])  # the next is a minute away
    panel.pause_button.click()
    assert panel.replayer is not None and panel.replayer.state == "paused"
    panel.stop_button.click()
    assert panel.replayer.state == "stopped"
    panel.refresh()
    assert panel.progress_label.value == "1/3 sent · stopped"

    panel.play_button.click()  # a new replay from the start
    panel.set_speed(math.inf)
    await panel.replayer.done(timeout=timeout())
    await until(lambda: got == ["m0", "m0", "m1", "m2"])
    target.close()
    await target.closed(timeout=timeout())
    panel.play_button.click()  # no open target any more: said, not raised
    assert "choose a target" in panel.status.value
    panel.close()


async def test_a_replayer_has_its_panel(sink: tuple[nbws.Server, list[str | bytes]]) -> None:
    fresh, got = sink
    recording = nbws.Recording([nbws.RecordedEvent("message", 1.0, "c0", "client", "send", 1, "hi")])
    target = nbws.WebSocket(fresh.url)
    await target.opened(timeout=timeout())
    replayer = nbws.Replayer(recording, target)
    panel = replayer.panel()
    assert panel.target_select.value is target
    panel.step_button.click()
    await until(lambda: got == ["hi"])
    await until(lambda: panel.progress_label.value == "1/1 sent · done")
    target.close()
    await target.closed(timeout=timeout())
    panel.close()


async def test_intercept_panel_forward_edit_drop(server: nbws.Server) -> None:
    icpt = nbws.Intercept("receive")
    panel = icpt.panel()
    assert isinstance(panel, InterceptPanel)
    ws = nbws.WebSocket(server.url, plugins=[icpt])
    await ws.opened(timeout=timeout())
    for word in ("one", "two", "three", "four"):
        ws.send(word)
    await until(lambda: len(icpt.held) == 1)
    panel.refresh()
    assert len(panel.held_list.options) == 1 and panel.editor.value == "echo: one"

    panel.forward_button.click()
    assert (await ws.recv(timeout=timeout())).data == "echo: one"
    await until(lambda: len(icpt.held) == 1)
    panel.refresh()
    panel.editor.value = "echo: two, edited in the panel"
    panel.edit_button.click()
    assert (await ws.recv(timeout=timeout())).data == "echo: two, edited in the panel"
    await until(lambda: len(icpt.held) == 1)
    panel.refresh()
    panel.drop_button.click()
    await until(lambda: len(icpt.held) == 1)
    panel.refresh()
    assert panel.editor.value == "echo: four"
    panel.forward_all_button.click()
    assert (await ws.recv(timeout=timeout())).data == "echo: four"
    panel.refresh()
    assert panel.counts_label.value == "0 held · 2 forwarded · 1 edited · 1 dropped"

    panel.forward_button.click()  # nothing held: said, not raised
    assert "no message is held" in panel.status.value
    panel.stop()
    assert not icpt.active
    ws.send("free")
    assert (await ws.recv(timeout=timeout())).data == "echo: free"
    ws.close()
    await ws.closed(timeout=timeout())
    panel.close()


async def test_panels_join_the_dashboard_through_the_hook(tmp_path: Path) -> None:
    rec = nbws.Recorder()
    icpt = nbws.Intercept()
    nbws.plugins.register(rec)
    nbws.plugins.register(icpt)
    dashboard = nbws.Dashboard()
    panels = dashboard.panels
    assert isinstance(panels["Recorder"], RecorderPanel) and panels["Recorder"].recorder is rec
    assert isinstance(panels["Intercept"], InterceptPanel) and panels["Intercept"].intercept is icpt
    assert dashboard.select("Recorder") is panels["Recorder"]
    dashboard.close()
    panels["Recorder"].close()
    panels["Intercept"].close()


def test_a_closed_panel_is_forgotten() -> None:
    from nbws.widgets._common import shown

    for make in (nbws.Recorder, nbws.Intercept):
        obj = make()
        panel = obj.panel()
        assert obj.panel() is panel and shown(obj) is panel  # one panel per object while it is open
        panel.close()
        assert shown(obj) is None, f"a closed {make.__name__} panel is still kept for its object"
        again = obj.panel()
        assert again is not panel and again.comm is not None  # a closed panel is not handed out
        again.close()
