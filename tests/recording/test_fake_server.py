"""
nbws.FakeServer against clients nbws did not write: websockets, websocket-client (a thread), aiohttp, Node's ws.

Each test builds a small recording (as a Recorder writes it), plays it with a
FakeServer on 127.0.0.1 port 0, and checks what the foreign client gets:
reactive and ordered matching, JSON key matching, a user function, an
unmatched message (a clear failure, never a hang), pushes on their schedule,
several connections in order of arrival, and recorded close codes.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest
import websocket  # websocket-client
from _support import timeout
from _support.node import NodePeer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import nbws
from nbws.recording import RecordedEvent, Recording

pytestmark = pytest.mark.interop

T0 = 1_700_000_000.0


def session(
    steps: Sequence[tuple[float, str, str | bytes]],
    *,
    connection: str = "c1",
    close: tuple[float, int, str] | None = (9.0, 1000, ""),
    role: str = "client",
    url: str = "ws://feed.example/v1?x=1",
) -> list[RecordedEvent]:
    """One recorded connection: steps are (seconds after open, "client" or "server", data)."""
    events = [RecordedEvent("open", T0, connection, role, url=url)]
    seqs = {"send": 0, "receive": 0}
    for offset, who, data in steps:
        direction = "send" if (who == "client") == (role == "client") else "receive"
        seqs[direction] += 1
        events.append(RecordedEvent("message", T0 + offset, connection, role, direction, seqs[direction], data))
    if close is not None:
        offset, code, reason = close
        events.append(RecordedEvent("close", T0 + offset, connection, role, code=code, reason=reason, was_clean=True))
    return events


FEED = [
    (0.0, "server", '{"type": "hello"}'),
    (0.1, "client", '{"op": "subscribe", "channel": "BTC-USD", "id": 1}'),
    (0.11, "server", '{"type": "subscribed", "channel": "BTC-USD"}'),
    (0.2, "client", '{"op": "ping", "id": 2}'),
    (0.21, "server", '{"type": "pong"}'),
]


@pytest.fixture
async def feed() -> AsyncIterator[nbws.FakeServer]:
    fake = nbws.FakeServer(Recording(session(FEED)), speed=math.inf)
    await fake.start()
    yield fake
    await fake.stop()


async def test_websockets_client_gets_the_recorded_replies(feed: nbws.FakeServer) -> None:
    assert feed.url == feed.server.url + "v1"  # the recorded path (not its query), on the fake's port
    async with connect(feed.url) as ws:
        assert json.loads(await ws.recv()) == {"type": "hello"}  # a push: sent with no request
        # Key order and spacing do not matter: the same JSON value matches.
        await ws.send('{"id":1,"channel":"BTC-USD","op":"subscribe"}')
        assert json.loads(await ws.recv()) == {"type": "subscribed", "channel": "BTC-USD"}
        await ws.send('{"op": "ping", "id": 2}')
        assert json.loads(await ws.recv()) == {"type": "pong"}
    await feed.wait_played(timeout=timeout())
    feed.check()
    assert [m.data for m in feed.received][1] == '{"op": "ping", "id": 2}'


async def test_reactive_matching_takes_messages_in_any_order(feed: nbws.FakeServer) -> None:
    async with connect(feed.url) as ws:
        await ws.recv()
        await ws.send('{"op": "ping", "id": 2}')
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.send('{"op": "subscribe", "channel": "BTC-USD", "id": 1}')
        assert json.loads(await ws.recv())["type"] == "subscribed"
    await feed.wait_played(timeout=timeout())
    feed.check()


async def test_ordered_matching_refuses_a_message_out_of_order_with_a_side_by_side_diff() -> None:
    async with nbws.FakeServer(Recording(session(FEED)), match="order", speed=math.inf) as fake:
        async with connect(fake.url) as ws:
            await ws.recv()
            await ws.send('{"op": "ping", "id": 2}')
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout())
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        with pytest.raises(nbws.MismatchError) as failure:
            fake.check(all_played=False)
    text = str(failure.value)
    assert 'expected: \'{"op": "subscribe", "channel": "BTC-USD", "id": 1}\'' in text
    assert 'received: \'{"op": "ping", "id": 2}\'' in text
    assert 'differs at op: recorded "subscribe", received "ping"' in text
    assert isinstance(failure.value, AssertionError)


async def test_key_matching_ignores_the_other_fields() -> None:
    async with nbws.FakeServer(Recording(session(FEED)), keys=["op"], speed=math.inf) as fake:
        async with connect(fake.url) as ws:
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "channel": "ETH-USD", "id": 99, "extra": True}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            await ws.send(json.dumps({"op": "ping"}))
            assert json.loads(await ws.recv())["type"] == "pong"
        await fake.wait_played(timeout=timeout())
        fake.check()


async def test_ignore_leaves_request_ids_out_and_a_function_can_decide() -> None:
    async with nbws.FakeServer(Recording(session(FEED)), ignore=["id"], speed=math.inf) as fake:
        async with connect(fake.url) as ws:
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "channel": "BTC-USD", "id": 7}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
        assert fake.problems == []

    def same_op(expected: str | bytes, received: str | bytes) -> bool:
        return bool(json.loads(expected)["op"] == json.loads(received)["op"])

    async with nbws.FakeServer(Recording(session(FEED)), match=same_op, speed=math.inf) as fake:
        async with connect(fake.url) as ws:
            await ws.recv()
            await ws.send(json.dumps({"op": "ping", "anything": "goes"}))
            assert json.loads(await ws.recv())["type"] == "pong"
            await ws.send(json.dumps({"op": "unknown"}))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout())
        assert len(fake.problems) == 1 and '\'{"op": "unknown"}\'' in fake.problems[0]


def test_websocket_client_in_a_thread_gets_a_close_not_a_hang_on_an_unmatched_message() -> None:
    """A blocking client: the fake runs on nbws's background loop; the unmatched message closes with 1008."""
    fake = nbws.FakeServer(Recording(session(FEED)), speed=math.inf)
    errors: list[nbws.ErrorEvent] = []
    fake.on("error", lambda conn, event: errors.append(event))
    fake.start().wait(timeout())
    try:
        result: dict[str, object] = {}

        def client() -> None:
            ws = websocket.create_connection(fake.url, timeout=timeout())
            result["hello"] = ws.recv()
            ws.send(json.dumps({"op": "subscribe", "channel": "DOGE-USD", "id": 1}))
            opcode, frame = ws.recv_data_frame(control_frame=True)
            result["opcode"] = opcode
            result["code"] = int.from_bytes(frame.data[:2], "big")
            ws.shutdown()  # the close frame was answered by recv_data_frame: let go of the socket

        thread = threading.Thread(target=client)
        thread.start()
        thread.join(timeout(10))
        assert not thread.is_alive()
        assert result["hello"] == '{"type": "hello"}'
        assert (result["opcode"], result["code"]) == (websocket.ABNF.OPCODE_CLOSE, 1008)
    finally:
        fake.stop().wait(timeout())
    assert len(errors) == 1 and errors[0].phase == "replay"
    assert 'differs at channel: recorded "BTC-USD", received "DOGE-USD"' in errors[0].message
    with pytest.raises(nbws.MismatchError) as failure:
        fake.check()
    # all_played: the ping was never sent either.
    assert "never sent recorded message #2" in str(failure.value)


async def test_aiohttp_client_plays_the_session() -> None:
    async with nbws.FakeServer(Recording(session(FEED)), speed=math.inf) as fake:
        async with aiohttp.ClientSession() as http, http.ws_connect(fake.url) as ws:
            assert (await ws.receive_json(timeout=timeout()))["type"] == "hello"
            await ws.send_json({"op": "subscribe", "channel": "BTC-USD", "id": 1})
            assert (await ws.receive_json(timeout=timeout()))["type"] == "subscribed"
            await ws.send_str('{"op": "ping", "id": 2}')
            assert (await ws.receive_json(timeout=timeout()))["type"] == "pong"
        await fake.wait_played(timeout=timeout())
        fake.check()


async def test_pushes_follow_their_recorded_schedule_scaled_by_speed() -> None:
    ticks = [(0.2 * i, "server", f"tick {i}") for i in range(1, 4)]
    async with nbws.FakeServer(Recording(session(ticks)), speed=2.0) as fake, connect(fake.url) as ws:
        opened = time.monotonic()
        arrivals = []
        for _ in ticks:
            arrivals.append((await asyncio.wait_for(ws.recv(), timeout()), time.monotonic() - opened))
    assert [data for data, _ in arrivals] == ["tick 1", "tick 2", "tick 3"]
    # Never early: each tick comes no sooner than its recorded offset at double speed (0.1, 0.2, 0.3 s).
    for (_, at), (recorded, _, _) in zip(arrivals, ticks, strict=True):
        assert at >= recorded / 2 - 0.01


async def test_replies_keep_their_recorded_delay() -> None:
    steps = [(0.0, "client", "go"), (0.3, "server", "late reply")]
    async with nbws.FakeServer(Recording(session(steps))) as fake, connect(fake.url) as ws:
        await ws.send("go")
        sent = time.monotonic()
        assert await asyncio.wait_for(ws.recv(), timeout()) == "late reply"
        assert time.monotonic() - sent >= 0.29


async def test_several_connections_are_served_in_order_of_arrival_and_an_extra_one_is_refused() -> None:
    recording = Recording(
        [
            *session([(0.1, "client", "who?"), (0.2, "server", "first")], connection="c1"),
            *session([(0.1, "client", "who?"), (0.2, "server", "second")], connection="c2"),
        ]
    )
    async with nbws.FakeServer(recording, speed=math.inf) as fake:
        replies = []
        for _ in range(2):
            async with connect(fake.url) as ws:
                await ws.send("who?")
                replies.append(await ws.recv())
        assert replies == ["first", "second"]
        with pytest.raises(InvalidStatus) as refused:
            await connect(fake.url)
        assert refused.value.response.status_code == 503
        assert "the recording has only 2 connection(s)" in fake.problems[0]


@pytest.mark.parametrize("role", ["client", "server"])
async def test_the_recorded_close_code_and_reason_reach_the_client(role: str) -> None:
    steps = [(0.1, "client", "login"), (0.2, "server", "denied")]
    recording = Recording(session(steps, close=(0.3, 4001, "bad credentials"), role=role))
    async with nbws.FakeServer(recording, speed=math.inf) as fake:
        async with connect(fake.url) as ws:
            await ws.send("login")
            assert await ws.recv() == "denied"
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout())
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bad credentials")
        fake.check()


async def test_a_normal_close_is_left_to_the_client_unless_asked() -> None:
    steps = [(0.1, "client", "bye"), (0.2, "server", "ok")]
    async with nbws.FakeServer(Recording(session(steps, close=(0.3, 1000, ""))), speed=math.inf) as fake:
        async with connect(fake.url) as ws:
            await ws.send("bye")
            assert await ws.recv() == "ok"
            with pytest.raises(asyncio.TimeoutError):  # the fake waits: the client closes when it wants
                await asyncio.wait_for(ws.recv(), 0.2)
        assert ws.close_code == 1000
    recording = Recording(session(steps, close=(0.3, 1000, "done")))
    async with nbws.FakeServer(recording, speed=math.inf, close="recorded") as fake:
        async with connect(fake.url) as ws:
            await ws.send("bye")
            await ws.recv()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout())
        assert closed.value.rcvd is not None and closed.value.rcvd.reason == "done"


async def test_binary_messages_and_a_har_file(tmp_path: Path) -> None:
    steps = [(0.1, "client", b"\x00\x01"), (0.2, "server", b"\xff\xfe")]
    har = Recording(session(steps)).to_har(tmp_path / "session.har")
    async with nbws.FakeServer(har, speed=math.inf) as fake:
        async with connect(fake.url) as ws:
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\xff\xfe"
        await fake.wait_played(timeout=timeout())
        fake.check()


async def test_a_redacted_value_matches_anything_and_bad_options_are_refused() -> None:
    steps = [(0.1, "client", '{"op": "auth", "key": "REDACTED"}'), (0.2, "server", "welcome")]
    async with nbws.FakeServer(Recording(session(steps)), speed=math.inf) as fake, connect(fake.url) as ws:
        await ws.send('{"op": "auth", "key": "real-secret"}')
        assert await ws.recv() == "welcome"
    assert nbws.fake.messages_match("token=REDACTED&x=1", "token=abc&x=1")
    assert not nbws.fake.messages_match("token=REDACTED&x=1", "token=abc&x=2")
    with pytest.raises(nbws.CassetteError, match="match must be"):
        nbws.FakeServer(Recording(), match="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(nbws.CassetteError, match="speed"):
        nbws.FakeServer(Recording(), speed=0)
    with pytest.raises(nbws.RecordingError):
        nbws.FakeServer(Path(__file__))


async def test_a_message_after_the_script_is_an_error_too() -> None:
    steps = [(0.1, "client", "login"), (0.2, "server", "denied")]
    recording = Recording(session(steps, close=(5.0, 4001, "bad credentials")))
    async with nbws.FakeServer(recording, speed=1.0) as fake, connect(fake.url) as ws:
        await ws.send("login")
        assert await ws.recv() == "denied"
        await ws.send("login again")  # the recorded close is 4.8 s away: the fake answers this one with 1008
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout())
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "expected: nothing more" in fake.problems[0] and "received: 'login again'" in fake.problems[0]


async def test_node_ws_client_plays_the_session_and_sees_the_recorded_close() -> None:
    steps = [
        (0.1, "client", "grüße ☃"),
        (0.2, "server", "recorded ☃"),
        (0.3, "client", "0001"),
        (0.4, "server", b"\xff"),
    ]
    recording = Recording(session(steps, close=(0.5, 4002, "recorded end ☃")))
    async with nbws.FakeServer(recording, speed=math.inf) as fake:
        peer = await NodePeer.start("client.js", fake.url)
        try:
            await peer.expect("open")
            await peer.command(send="grüße ☃")
            assert await peer.expect("message") == {"event": "message", "binary": False, "data": "recorded ☃"}
            await peer.command(send="0001")
            assert await peer.expect("message") == {"event": "message", "binary": True, "data": "ff"}
            assert await peer.expect("close") == {"event": "close", "code": 4002, "reason": "recorded end ☃"}
        finally:
            await peer.stop()
        fake.check()


async def test_a_mismatch_report_hides_secrets_and_a_raising_match_function_closes_with_1011() -> None:
    steps = [(0.1, "client", '{"op": "auth", "key": "REDACTED", "user": "ada"}'), (0.2, "server", "welcome")]
    fake = nbws.FakeServer(Recording(session(steps)), secret_keys=["password"], speed=math.inf)
    async with fake, connect(fake.url) as ws:
        await ws.send('{"op": "auth", "key": "k-live-123", "user": "bob", "password": "p-live-456"}')
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), timeout())
    report = fake.problems[0]
    assert "k-live-123" not in report and "p-live-456" not in report
    assert '"user": "bob"' in report and "(secrets hidden)" in report

    def broken(expected: str | bytes, received: str | bytes) -> bool:
        raise KeyError("op")

    fake = nbws.FakeServer(Recording(session(steps)), match=broken, speed=math.inf)
    async with fake, connect(fake.url) as ws:
        await ws.send("anything")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout())
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    assert "the match function raised KeyError" in fake.problems[0]
