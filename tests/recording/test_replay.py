"""Replaying a recorded session against a fresh server delivers the same messages, on time or in step with the replies."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _support import timeout, until

import nbws
from nbws import transforms
from nbws.recording.replay import Mode


class Collector:
    """A fresh server that keeps every message it receives and answers each with ``replies`` echoes."""

    def __init__(self, replies: int = 1) -> None:
        self.server = nbws.Server()
        self.received: list[nbws.Message] = []
        self.replies = replies
        self.server.on("message", self._on_message)

    def _on_message(self, conn: nbws.Connection, message: nbws.Message) -> None:
        self.received.append(message)
        for n in range(self.replies):
            conn.send(f"reply {n} to {message.data!r}")

    @property
    def data(self) -> list[str | bytes]:
        return [message.data for message in self.received]


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    c = Collector()
    await c.server.start()
    yield c
    await c.server.stop()


async def client_of(server: nbws.Server, **kwargs: object) -> nbws.WebSocket:
    ws = nbws.WebSocket(server.url, **kwargs)  # type: ignore[arg-type]
    await ws.opened(timeout=timeout())
    return ws


SESSION: list[str | bytes] = ["hello", b"\x00\x01\x02", '{"op": "subscribe", "topic": "prices"}', "é" * 300, b"", "bye"]


async def record_session(server: nbws.Server, messages: list[str | bytes] = SESSION) -> tuple[nbws.Recording, str]:
    """Record a real session: a client sends ``messages`` to the echo server, each after the echo of the last."""
    rec = nbws.Recorder()
    server.plugins.register(rec)  # not globally: other tests' leftovers must not slip in
    ws = await client_of(server, plugins=[rec])
    for data in messages:
        ws.send(data)
        await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())
    await until(lambda: rec.counts["close"] == 2)
    server.plugins.unregister(rec)
    return rec.recording, ws.id


def retimed(recording: nbws.Recording, gaps: list[float]) -> nbws.Recording:
    """The same events with the client's sends ``gaps`` seconds apart (replies right after each)."""
    start = recording.start or 0.0
    sends = iter(gaps)
    events = []
    offset = 0.0
    for event in recording:
        if event.type == "message" and event.direction == "send" and event.role == "client":
            offset = next(sends)
        events.append(dataclasses.replace(event, time=start + offset + (0.001 if event.direction == "receive" else 0)))
    return nbws.Recording(events)


# -- what arrives ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "speed"), [("timed", 1.0), ("timed", 3.0), ("timed", math.inf), ("reactive", 1.0), ("reactive", 0.1)]
)
async def test_replay_delivers_the_recorded_messages_to_a_fresh_server(
    server: nbws.Server, collector: Collector, mode: Mode, speed: float
) -> None:
    recording, client_id = await record_session(server)
    target = await client_of(collector.server)

    replayer = await nbws.replay(recording, target, direction="send", connection=client_id, mode=mode, speed=speed)

    await until(lambda: len(collector.received) == len(SESSION))
    assert collector.data == SESSION
    assert [m.data for m in replayer.sent] == SESSION
    assert all(m.replayed for m in replayer.sent)
    assert (replayer.state, replayer.progress, replayer.position) == ("done", 1.0, len(SESSION))
    if mode == "reactive":
        # Each message went out only once the reply to the one before it had arrived.
        assert len(replayer.replies) == len(SESSION)
        for reply, following in zip(replayer.replies, replayer.sent[1:], strict=False):
            assert reply.time <= following.time
    target.close()
    await target.closed(timeout=timeout())


@pytest.mark.parametrize("speed", [0.5, 1.0, 4.0, math.inf])
async def test_timed_replay_keeps_the_recorded_gaps_scaled_by_speed(
    server: nbws.Server, collector: Collector, speed: float
) -> None:
    recorded, client_id = await record_session(server, ["a", "b", "c", "d"])
    gaps = [0.0, 0.1, 0.15, 0.3]
    recording = retimed(recorded, gaps)
    target = await client_of(collector.server)

    await nbws.replay(recording, target, connection=client_id, speed=speed)
    await until(lambda: len(collector.received) == 4)

    first = collector.received[0].time
    arrivals = [m.time - first for m in collector.received]
    for arrival, gap in zip(arrivals, gaps, strict=True):
        expected = gap / speed
        assert arrival >= expected - 0.005, (arrivals, speed)
        assert arrival <= expected + timeout(0.15), (arrivals, speed)
    target.close()
    await target.closed(timeout=timeout())


async def test_reactive_replay_waits_for_as_many_replies_as_were_recorded(server: nbws.Server) -> None:
    chatty = Collector(replies=2)
    await chatty.server.start()
    rec = nbws.Recorder()
    ws = await client_of(chatty.server, plugins=[rec])
    for data in ("one", "two", "three"):
        ws.send(data)
        await ws.recv(timeout=timeout())
        await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())

    fresh = Collector(replies=2)
    await fresh.server.start()
    target = await client_of(fresh.server)
    replayer = await nbws.replay(rec.recording, target, mode="reactive")
    assert [m.data for m in replayer.sent] == ["one", "two", "three"]
    assert len(replayer.replies) == 6
    for n, following in enumerate(replayer.sent[1:]):
        assert replayer.replies[2 * n + 1].time <= following.time
    target.close()
    await target.closed(timeout=timeout())
    await chatty.server.stop()
    await fresh.server.stop()


async def test_reactive_replay_fails_when_no_reply_comes(server: nbws.Server) -> None:
    recording, client_id = await record_session(server, ["ping", "ping again"])
    silent = nbws.Server()
    await silent.start()
    target = await client_of(silent)
    with pytest.raises(nbws.TimeoutError, match=r"no reply to message 0 within 0\.2 seconds"):
        await nbws.replay(recording, target, connection=client_id, mode="reactive", reply_timeout=0.2)
    target.close()
    await target.closed(timeout=timeout())
    await silent.stop()


async def test_transforms_apply_to_replayed_messages_which_are_marked(
    server: nbws.Server, collector: Collector, tmp_path: Path
) -> None:
    recording, client_id = await record_session(server, ["quiet", "please"])
    rec = nbws.Recorder(tmp_path / "replayed.jsonl")
    target = await client_of(collector.server, plugins=[rec, transforms.map_text(str.upper, "send")])

    await nbws.replay(recording, target, connection=client_id, speed=math.inf)
    await until(lambda: len(collector.received) == 2)

    assert collector.data == ["QUIET", "PLEASE"]
    target.close()
    await target.closed(timeout=timeout())
    rec.close()
    sent = nbws.Recording.load(rec.path).messages("send")
    assert [(e.data, e.original, e.replayed) for e in sent] == [("QUIET", "quiet", True), ("PLEASE", "please", True)]


async def test_replaying_received_messages_plays_the_server_part(server: nbws.Server, tmp_path: Path) -> None:
    # Record what a client received from a server that pushes three messages.
    pusher = nbws.Server()
    pusher.on("connection", lambda conn: [conn.send(x) for x in ("tick 1", b"\x02", "tick 3")])
    await pusher.start()
    rec = nbws.Recorder(tmp_path / "client.jsonl")
    ws = await client_of(pusher, plugins=[rec])
    for _ in range(3):
        await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())
    await pusher.stop()
    rec.close()

    # A fresh server plays the pusher's part, from the file, to a new client.
    fake = nbws.Server()
    done: list[nbws.Replayer] = []

    async def play(conn: nbws.Connection) -> None:
        done.append(await nbws.replay(rec.path, conn, direction="receive", speed=math.inf))

    fake.on("connection", play)
    await fake.start()
    client = await client_of(fake)
    got = [(await client.recv(timeout=timeout())).data for _ in range(3)]
    assert got == ["tick 1", b"\x02", "tick 3"]
    await until(lambda: bool(done))
    assert done[0].state == "done"
    client.close()
    await client.closed(timeout=timeout())
    await fake.stop()


async def test_original_sends_what_the_application_sent(server: nbws.Server, collector: Collector) -> None:
    rec = nbws.Recorder()
    ws = await client_of(
        server,
        plugins=[rec, transforms.map_text(str.upper, "send") | transforms.drop_if(lambda m: m.data == "NO", "send")],
    )
    for data in ("no", "yes"):
        ws.send(data)
    await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())

    wire = await client_of(collector.server)
    await nbws.replay(rec.recording, wire, speed=math.inf)
    original = await client_of(collector.server)
    await nbws.replay(rec.recording, original, speed=math.inf, original=True)
    await until(lambda: len(collector.received) == 3)
    assert collector.data[0] == "YES"
    assert sorted(collector.data[1:], key=str) == ["no", "yes"]
    for client in (wire, original):
        client.close()
        await client.closed(timeout=timeout())


# -- the interactive replayer ------------------------------------------------------------------------------


async def test_replayer_step_pause_resume_edit_speed_and_progress(server: nbws.Server, collector: Collector) -> None:
    recorded, client_id = await record_session(server, ["m0", "m1", "m2", "m3", "m4"])
    recording = retimed(recorded, [0.0, 30.0, 60.0, 90.0, 120.0])  # far apart: nothing goes by itself
    target = await client_of(collector.server)
    changes: list[str] = []
    replayer = nbws.Replayer(recording, target, connection=client_id)
    replayer.watch(lambda: changes.append(replayer.state))
    assert (replayer.state, replayer.total, replayer.progress) == ("ready", 5, 0.0)

    replayer.play()
    await until(lambda: len(collector.received) == 1)  # the first goes at once, the next is 30 s away
    assert (replayer.state, replayer.position) == ("playing", 1)
    replayer.pause()
    assert replayer.state == "paused"

    step = replayer.step()
    assert step is not None and step.data == "m1" and step.replayed
    replayer.edit(2, "m2 edited")
    replayer.edit(3, b"\x03")
    assert replayer.step() is not None
    await until(lambda: len(collector.received) == 3)
    assert collector.data == ["m0", "m1", "m2 edited"]
    assert replayer.progress == 3 / 5
    with pytest.raises(nbws.InvalidStateError, match="message 1 was already sent"):
        replayer.edit(1, "too late")

    replayer.resume()
    assert replayer.state == "playing"
    replayer.speed = math.inf  # the rest at once
    await replayer.done(timeout=timeout())
    await until(lambda: len(collector.received) == 5)
    assert collector.data == ["m0", "m1", "m2 edited", b"\x03", "m4"]
    assert replayer.state == "done"
    assert replayer.step() is None
    assert "paused" in changes and changes[-1] == "done"
    target.close()
    await target.closed(timeout=timeout())


async def test_replayer_stop_ends_it_early(server: nbws.Server, collector: Collector) -> None:
    recorded, client_id = await record_session(server, ["a", "b", "c"])
    recording = retimed(recorded, [0.0, 60.0, 120.0])
    target = await client_of(collector.server)
    replayer = nbws.Replayer(recording, target, connection=client_id)
    replayer.play()
    await until(lambda: replayer.position == 1)
    replayer.stop()
    assert await replayer.done(timeout=timeout()) is replayer
    assert (replayer.state, replayer.position) == ("stopped", 1)
    with pytest.raises(nbws.InvalidStateError, match="stopped"):
        replayer.play()
    await until(lambda: len(collector.received) == 1)
    target.close()
    await target.closed(timeout=timeout())


async def test_replay_fails_when_the_target_closes(server: nbws.Server, collector: Collector) -> None:
    recorded, client_id = await record_session(server, ["a", "b"])
    recording = retimed(recorded, [0.0, 0.5])
    target = await client_of(collector.server)
    replayer = nbws.Replayer(recording, target, connection=client_id)
    replayer.play()
    await until(lambda: replayer.position == 1)
    target.close(1000, "enough")
    await target.closed(timeout=timeout())
    with pytest.raises(nbws.ConnectionClosed) as info:
        await replayer.done(timeout=timeout())
    assert (info.value.code, info.value.reason) == (1000, "enough")
    assert replayer.state == "failed" and replayer.position == 1


async def test_replayer_done_times_out(server: nbws.Server, collector: Collector) -> None:
    recorded, client_id = await record_session(server, ["a", "b"])
    target = await client_of(collector.server)
    replayer = nbws.Replayer(retimed(recorded, [0.0, 60.0]), target, connection=client_id)
    replayer.play()
    with pytest.raises(nbws.TimeoutError, match=r"not finished after 0.05 seconds \(1/2 sent\)"):
        await replayer.done(timeout=0.05)
    replayer.stop()
    target.close()
    await target.closed(timeout=timeout())


async def test_a_recording_of_several_connections_needs_a_choice(server: nbws.Server, collector: Collector) -> None:
    recording, _ = await record_session(server, ["a"])
    target = await client_of(collector.server)
    # The client and the server side both sent messages.
    with pytest.raises(ValueError, match=r"'send' messages on 2 connections .*pass connection="):
        nbws.Replayer(recording, target)
    with pytest.raises(ValueError, match="mode must be"):
        nbws.Replayer(recording, target, connection=recording.connections[0], mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="speed must be a positive number"):
        nbws.Replayer(recording, target, connection=recording.connections[0], speed=0)
    with pytest.raises(TypeError, match="target must be"):
        nbws.Replayer(recording, "ws://nowhere", connection=recording.connections[0])  # type: ignore[arg-type]
    target.close()
    await target.closed(timeout=timeout())
