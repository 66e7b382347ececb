"""
The recording package and the built-in plugins' folder: what moved still works from where it was, HAR keeps
a relay's legs, the Recorder and the Logger share one append-only writer, edits are the replayer's state, and
``conn.ending()`` tells a held message when to go without polling. Real sockets on 127.0.0.1 throughout.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import threading
from collections import Counter
from pathlib import Path

import pytest
from _support import timeout, until

import nbws
import nbws.builtins.intercept
import nbws.builtins.logger
import nbws.builtins.transforms
import nbws.recording.replay
from nbws.recording.jsonl import JsonLinesWriter

# -- names -------------------------------------------------------------------------------------------


def test_nbws_replay_is_the_function_and_its_module_is_nbws_recording_replay() -> None:
    module = nbws.recording.replay
    assert module.__name__ == "nbws.recording.replay"
    assert nbws.replay is module.replay and nbws.Replayer is module.Replayer
    with pytest.warns(DeprecationWarning, match=r"nbws\.recording\.replay"):
        from nbws.replay import Replayer
    assert Replayer is module.Replayer
    assert nbws.replay is module.replay, "importing the old module path replaced the function"
    with pytest.raises(ImportError):
        from nbws.replay import no_such_name  # type: ignore[attr-defined]  # noqa: F401


def test_moved_modules_still_import_from_their_old_paths() -> None:
    assert nbws.Logger is nbws.logger.Logger is nbws.builtins.logger.Logger
    assert nbws.logger.preview is nbws.builtins.logger.preview
    assert nbws.Intercept is nbws.intercept.Intercept is nbws.builtins.intercept.Intercept
    assert nbws.Held is nbws.intercept.Held
    for name in nbws.builtins.transforms.__all__:
        assert getattr(nbws.transforms, name) is getattr(nbws.builtins.transforms, name), name
    assert set(nbws.transforms.__all__) >= set(nbws.builtins.transforms.__all__)
    assert nbws.recording.Recording is nbws.Recording and nbws.recording.Recorder is nbws.Recorder
    assert nbws.recording.RecordedEvent is nbws.RecordedEvent
    assert nbws.recording.FORMAT_VERSION == 1


def test_the_panels_live_in_the_widgets_and_the_old_module_says_so() -> None:
    from nbws import widgets

    with pytest.warns(DeprecationWarning, match=r"import ReplayPanel from nbws\.widgets"):
        from nbws.recording_panels import ReplayPanel
    assert ReplayPanel is widgets.ReplayPanel
    assert widgets.RecorderPanel.__module__ == widgets.InterceptPanel.__module__ == "nbws.widgets._recording"
    with pytest.raises(ImportError):
        from nbws.recording_panels import Throttle  # type: ignore[attr-defined]  # noqa: F401


# -- HAR keeps a relay's legs -------------------------------------------------------------------------


async def test_har_of_a_relay_recording_loads_back_with_each_events_leg_and_pair(tmp_path: Path) -> None:
    backend = nbws.Server()
    backend.on("message", lambda conn, message: conn.send("echo: " + message.data))
    await backend.start()
    recorder = nbws.Recorder()
    relay = nbws.Relay(backend.url, plugins=[recorder])
    await relay.start()
    ws = nbws.WebSocket(relay.url)
    await ws.opened(timeout=timeout())
    ws.send("hi")
    assert (await ws.recv(timeout=timeout())).data == "echo: hi"
    await until(lambda: relay.pairs, what="the pair")
    [pair] = relay.pairs
    pair.inject("pushed", to="client")
    assert (await ws.recv(timeout=timeout())).data == "pushed"
    ws.close(4000, "done")
    await pair.wait_closed(timeout=timeout())
    await relay.stop()
    await backend.stop()

    recorded = list(recorder.recording)
    assert {event.leg for event in recorded} == {"client", "upstream"}
    loaded = nbws.Recording.load(recorder.recording.to_har(tmp_path / "relay.har"))

    def facts(event: nbws.RecordedEvent) -> tuple[object, ...]:
        return (event.type, event.connection, event.direction, event.data, event.leg, event.pair, event.injected)

    assert Counter(map(facts, loaded)) == Counter(map(facts, recorded))
    assert {event.pair for event in loaded} == {pair.id}
    flows = {(event.flow, event.data) for event in loaded.messages() if event.direction == "send"}
    assert flows == {("client->upstream", "hi"), ("upstream->client", "echo: hi"), ("upstream->client", "pushed")}
    # And back to JSON lines: nothing lost on the way.
    assert nbws.Recording.load(loaded.save(tmp_path / "relay.jsonl")) == loaded


def test_a_har_entry_with_a_bad_leg_names_it(tmp_path: Path) -> None:
    entry = {"startedDateTime": "2024-01-01T00:00:00Z", "_webSocketMessages": [], "_nbws": {"leg": "up", "pair": "p1"}}
    document = {"log": {"entries": [entry]}}
    with pytest.raises(nbws.RecordingError, match=r"log\.entries\[0\]\._nbws: 'leg' must be"):
        nbws.Recording.from_har(document)
    entry["_nbws"] = {"close": 3}
    with pytest.raises(nbws.RecordingError, match=r"_nbws\.close must be an object"):
        nbws.Recording.from_har(document)


# -- one append-only writer ----------------------------------------------------------------------------


def test_the_writer_removes_a_line_a_crash_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_bytes(b'{"event": "open"}\n{"event": "mess')
    writer = JsonLinesWriter(path)
    assert not writer.is_open
    with pytest.warns(nbws.RecordingWarning, match="cut short"):
        writer.write({"event": "close", "code": 1000})
    writer.close()
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"event": "open"},
        {"event": "close", "code": 1000},
    ]


def test_the_writer_keeps_lines_whole_when_threads_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "threads.jsonl"
    writer = JsonLinesWriter(path, header=lambda: {"format": "test"})

    def write_many(n: int) -> None:
        for i in range(200):
            writer.write({"thread": n, "i": i, "pad": "x" * 500})

    threads = [threading.Thread(target=write_many, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"format": "test"} and len(lines) == 1 + 6 * 200 == writer.lines
    assert Counter(line["thread"] for line in lines[1:]) == {n: 200 for n in range(6)}


async def test_logger_and_recorder_both_append_through_the_shared_writer(server: nbws.Server, tmp_path: Path) -> None:
    log_path, rec_path = tmp_path / "log.jsonl", tmp_path / "rec.jsonl"
    log_path.write_bytes(b'{"event": "listening"}\n{"eve')  # an earlier kernel died mid-line
    logger = nbws.Logger(logger=logging.getLogger("nbws.test.silent"), path=log_path)
    recorder = nbws.Recorder(rec_path)
    ws = nbws.WebSocket(server.url, plugins=[logger, recorder])
    with pytest.warns(nbws.RecordingWarning, match="cut short"):
        await ws.opened(timeout=timeout())
    ws.send("one")
    await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())
    logger.close()
    recorder.close()
    logged = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [line["event"] for line in logged] == ["listening", "open", "message", "message", "close"]
    recorded = nbws.Recording.load(rec_path)
    assert [event.type for event in recorded] == ["open", "message", "message", "close"]
    assert recorded == recorder.recording


# -- edits are the replayer's ---------------------------------------------------------------------------


async def test_edits_are_replay_state_in_the_replayer_not_in_its_panel(
    sink: tuple[nbws.Server, list[str | bytes]],
) -> None:
    fresh, got = sink
    recording = nbws.Recording(
        [nbws.RecordedEvent("message", 1.0 + n, "c0", "client", "send", n + 1, f"m{n}") for n in range(3)]
        + [nbws.RecordedEvent("message", 5.0, "c0", "client", "receive", 1, "r0")]
    )
    target = nbws.WebSocket(fresh.url)
    await target.opened(timeout=timeout())
    replayer = nbws.Replayer(recording, target)
    replayer.edit(-1, "last, edited")
    assert replayer.edits == {2: "last, edited"} and replayer.messages[2].data == "last, edited"
    assert replayer.connection == "c0"
    replayer.stop()

    panel = recording.panel([target])
    panel.edit(0, b"\x01")
    assert panel.replayer is not None and panel.replayer.state == "ready"
    assert panel.replayer.edits == {0: b"\x01"} and panel.messages[0].data == b"\x01"
    first = panel.replayer
    panel.mode_buttons.value = "reactive"  # not started yet: a replayer in the new mode, with the same edits
    assert panel.replayer is not first and first.state == "stopped"
    assert panel.replayer.mode == "reactive" and panel.replayer.edits == {0: b"\x01"}
    panel.set_direction("receive")  # other messages: the edits were for the others
    assert panel.replayer is None and [event.data for event in panel.messages] == ["r0"]
    panel.set_direction("send")
    panel.edit(1, "m1 edited")
    panel.set_speed(float("inf"))
    panel.play()
    await panel.replayer.done(timeout=timeout())
    await until(lambda: len(got) == 3)
    assert got == ["m0", "m1 edited", "m2"]
    panel.edit(0, "again")  # a finished replay is forgotten: the edit starts a new one
    assert panel.replayer.state == "ready" and panel.replayer.edits == {0: "again"}
    panel.close()
    target.close()
    await target.closed(timeout=timeout())


async def test_editing_needs_a_target_and_says_so_in_the_status_line() -> None:
    recording = nbws.Recording([nbws.RecordedEvent("message", 1.0, "c0", "client", "send", 1, "hi")])
    panel = recording.panel([])
    with pytest.raises(ValueError, match="choose a target"):
        panel.edit(0, "changed")
    assert panel.status.kind == "error" and "choose a target" in panel.status.text
    panel.apply_button.click()  # nothing selected: shown, not raised
    assert "select a message" in panel.status.text
    panel.close()


# -- ending(): when a held message must go --------------------------------------------------------------


async def test_ending_is_done_the_moment_close_is_called_here(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ending = ws.ending()
    forgotten = ws.ending()
    forgotten.cancel()
    assert not ending.done()
    ws.close()
    assert ending.done() and ending.result() == "closing"  # at once: nothing polls
    await ws.closed(timeout=timeout())
    assert ws.ending().result() == "closed"  # not open: done at once


async def test_ending_is_done_when_the_peer_closes_even_while_delivery_is_held(server: nbws.Server) -> None:
    icpt = nbws.Intercept("receive")
    ws = nbws.WebSocket(server.url, plugins=[icpt])
    await ws.opened(timeout=timeout())
    ending = ws.ending()
    ws.send("held")
    held = await icpt.next(timeout=timeout())
    [conn] = server.clients
    conn.close(4001, "bye")
    assert await asyncio.wait_for(ending, timeout()) == "closed"
    await until(lambda: held.decided, what="the held message released")
    assert (held.decision, held.reason) == ("forward", "closed")
    event = await ws.closed(timeout=timeout())
    assert event.code == 4001


async def test_a_message_held_when_close_is_called_is_released_with_reason_closing(server: nbws.Server) -> None:
    icpt = nbws.Intercept("send")
    ws = nbws.WebSocket(server.url, plugins=[icpt])
    await ws.opened(timeout=timeout())
    ws.send("last words")
    held = await icpt.next(timeout=timeout())
    ws.close()
    await until(lambda: held.decided, what="the held message released")
    assert (held.decision, held.reason) == ("forward", "closing")
    await ws.closed(timeout=timeout())


# -- the layers, from the imports -------------------------------------------------------------------------

NBWS = Path(nbws.__file__).parent


def runtime_imports(path: Path) -> list[str]:
    """The modules a file imports when it runs (``if TYPE_CHECKING:`` blocks left out), made absolute."""
    package = ".".join(path.relative_to(NBWS.parent).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(), str(path))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return found


def test_recording_and_builtins_never_import_the_widgets_and_recording_has_no_import_cycle() -> None:
    files = sorted([*(NBWS / "recording").glob("*.py"), *(NBWS / "builtins").glob("*.py")])
    assert len(files) >= 12
    graph: dict[str, set[str]] = {}
    for path in files:
        imports = runtime_imports(path)
        assert not [name for name in imports if "widgets" in name or name == "ipywidgets"], path
        name = path.stem
        graph[name] = {
            part.split(".")[2] for part in imports if part.startswith("nbws.recording.") and part.count(".") >= 2
        } - {name}

    # model <- jsonl, har <- query <- recorder, replay: a walk from any module never comes back to it.
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph.get(start, ())
        )

    assert graph["model"] <= {"model"} and {"jsonl", "har"} <= graph["query"]
    assert not [name for name in graph if reaches(name, name, set())]


def test_the_recording_panels_use_no_private_name_of_the_core() -> None:
    path = NBWS / "widgets" / "_recording.py"
    tree = ast.parse(path.read_text(), str(path))
    private = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert private == []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module not in ("_common", "__future__"):  # own package, fine
            assert not (node.module or "").startswith("_"), f"imports the private module {node.module}"
            assert not any(alias.name.startswith("_") for alias in node.names), ast.unparse(node)
