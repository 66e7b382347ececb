"""
nbws.cassette: record once through nbws from a live upstream, replay after; modes, routing, redaction, assertions.

The upstream is a real nbws.Server on 127.0.0.1 port 0 that wants a token
(query or bearer) and answers an auth and a subscribe message; the clients are
``websockets``, websocket-client and nbws.WebSocket. Every written cassette is
read back from disk to check that no secret reached it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import websocket  # websocket-client
import websockets
from _support import timeout
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import nbws
from nbws.cassette import redact_recording
from nbws.recording import RecordedEvent, Recording

pytestmark = pytest.mark.interop

TOKEN = "tok-0123456789"
API_KEY = "key-abcdefghij"


def feed_server(price: float = 100.0) -> nbws.Server:
    """A live price feed that wants TOKEN and answers auth and subscribe."""
    server = nbws.Server(token=TOKEN)

    @server.on("message")
    def answer(conn: nbws.Connection, message: nbws.Message) -> None:
        request = json.loads(message.data)
        if request["op"] == "auth":
            # Echoes of secrets: the API key, and the Authorization header (as some servers echo a session).
            session = conn.request.headers.get("Authorization", "")
            conn.send(json.dumps({"type": "authed", "key_seen": request["api_key"], "session": session}))
        elif request["op"] == "subscribe":
            conn.send(json.dumps({"type": "subscribed", "symbols": request["symbols"]}))
            for i, symbol in enumerate(request["symbols"]):
                conn.send(json.dumps({"type": "tick", "symbol": symbol, "price": price + i}))

    return server


@pytest.fixture
async def upstream() -> AsyncIterator[nbws.Server]:
    server = feed_server()
    await server.start()
    yield server
    await server.stop()


async def talk(url: str, symbols: Sequence[str] = ("BTC",), api_key: str = API_KEY) -> list[dict[str, object]]:
    """The client under test: auth, subscribe, read the ticks, close."""
    async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        await ws.send(json.dumps({"op": "auth", "api_key": api_key}))
        replies = [json.loads(await ws.recv())]
        await ws.send(json.dumps({"op": "subscribe", "symbols": list(symbols)}))
        for _ in range(1 + len(symbols)):
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), timeout())))
    return replies


def assert_no_secret(path: Path) -> str:
    text = path.read_text()
    for secret in (TOKEN, API_KEY):
        assert secret not in text, f"{secret} was written to {path}"
    return text


async def test_record_once_then_replay_with_the_upstream_gone(upstream: nbws.Server, tmp_path: Path) -> None:
    path = tmp_path / "cassettes" / "feed.jsonl"
    async with nbws.cassette(path, upstream=upstream.url, redact_keys=["api_key", "key_seen"]) as c:
        assert c.recording_now
        live = await talk(c.url)
    assert live[0] == {"type": "authed", "key_seen": API_KEY, "session": f"Bearer {TOKEN}"}  # the real upstream
    text = assert_no_secret(path)
    assert "REDACTED" in text
    written = Recording.load(path)
    assert written.connections == ["c1"] and len(written.messages()) == 5
    assert written[0].url == upstream.url  # the upstream's URL, not the proxy's
    assert [event.direction for event in written.messages()][:2] == ["send", "receive"]  # as the client saw it
    await upstream.stop()

    async with nbws.cassette(path, mode="none", speed=math.inf) as c:
        assert not c.recording_now
        replayed = await talk(c.url, api_key="another-key")  # a redacted value matches any value
        await c.expect_message({"op": "subscribe", "symbols": ["BTC"]}, timeout=timeout())
    assert replayed[1:] == live[1:]
    assert replayed[0] == {"type": "authed", "key_seen": "REDACTED", "session": "REDACTED"}
    assert [json.loads(m.data)["op"] for m in c.sent] == ["auth", "subscribe"]
    assert len(c.received) == 3


async def test_a_har_cassette_records_and_replays(upstream: nbws.Server, tmp_path: Path) -> None:
    path = tmp_path / "feed.har"
    async with nbws.cassette(path, upstream=upstream.url, redact_keys=["api_key", "key_seen"]) as c:
        live = await talk(c.url)
    har = json.loads(assert_no_secret(path))
    assert [frame["type"] for frame in har["log"]["entries"][0]["_webSocketMessages"]][:2] == ["send", "receive"]
    await upstream.stop()
    async with nbws.cassette(path, mode="none", speed=math.inf) as c:
        assert (await talk(c.url))[1:] == live[1:]


async def test_a_changed_client_fails_with_the_diff(upstream: nbws.Server, tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    async with nbws.cassette(path, upstream=upstream.url) as c:
        await talk(c.url)
    with pytest.raises(nbws.MismatchError) as failure:
        async with nbws.cassette(path, mode="none", speed=math.inf) as c:
            with pytest.raises(websockets.ConnectionClosed):
                await talk(c.url, symbols=["ETH"])
    text = str(failure.value)
    assert 'expected: \'{"op": "subscribe", "symbols": ["BTC"]}\'' in text
    assert 'received: \'{"op": "subscribe", "symbols": ["ETH"]}\'' in text
    assert "never sent" not in text.split("\n\n")[0]


async def test_modes_none_all_and_new_episodes(upstream: nbws.Server, tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    with pytest.raises(nbws.CassetteError, match="does not exist and the record mode is 'none'"):
        nbws.cassette(path, mode="none")
    async with nbws.cassette(path, upstream=upstream.url) as c:
        await talk(c.url)
    first = Recording.load(path)

    # new_episodes: the recorded connection is replayed, a further one is recorded and appended.
    async with nbws.cassette(path, mode="new_episodes", upstream=upstream.url, speed=math.inf) as c:
        replayed, live = await talk(c.url), await talk(c.url)
    assert replayed[0]["session"] == "REDACTED" and live[0]["session"] == f"Bearer {TOKEN}"
    assert replayed[1:] == live[1:]
    grown = Recording.load(path)
    assert grown.connections == ["c1", "c2"]
    assert list(grown.filter(connection="c1")) == list(first)

    # all: re-recorded from a changed upstream, replacing the file.
    await upstream.stop()
    changed = feed_server(price=200.0)
    await changed.start()
    try:
        async with nbws.cassette(path, mode="all", upstream=changed.url) as c:
            replies = await talk(c.url)
    finally:
        await changed.stop()
    assert replies[-1]["price"] == 200.0
    assert Recording.load(path).connections == ["c1"]


async def test_upstream_refusals_pass_through_and_an_unreachable_one_is_reported(
    upstream: nbws.Server, tmp_path: Path
) -> None:
    cassette = nbws.cassette(tmp_path / "refused.jsonl", upstream=upstream.url)
    async with cassette as c:
        with pytest.raises(InvalidStatus) as refused:
            await connect(c.url)  # no token: the upstream says 401, and so does the cassette
    assert refused.value.response.status_code == 401
    assert not (tmp_path / "refused.jsonl").exists()  # nothing recorded, nothing written

    gone = nbws.Server()
    await gone.start()
    url = gone.url
    await gone.stop()
    with pytest.raises(nbws.MismatchError, match="cannot connect to the upstream"):
        async with nbws.cassette(tmp_path / "gone.jsonl", upstream=url) as c:
            with pytest.raises(InvalidStatus):
                await connect(c.url)


async def test_route_sends_baked_in_urls_of_three_client_libraries_and_is_undone(
    upstream: nbws.Server, tmp_path: Path
) -> None:
    path = tmp_path / "routed.jsonl"
    baked = f"wss://feed.example.com/v1/stream?token={TOKEN}"
    originals = (websockets.asyncio.client.connect.__init__, nbws.WebSocket.__init__, websocket.WebSocket.connect)

    def blocking_client(url: str) -> str:
        ws = websocket.create_connection(url, timeout=timeout())
        ws.send(json.dumps({"op": "auth", "api_key": API_KEY}))
        reply: str = ws.recv()
        ws.close()
        return reply

    async def three_clients() -> list[object]:
        replies: list[object] = [(await talk(baked))[-1]]  # websockets.asyncio.client.connect
        replies.append(json.loads(await asyncio.to_thread(blocking_client, baked.replace("wss:", "ws:"))))
        ws = nbws.WebSocket(baked)
        await ws.opened(timeout=timeout())
        ws.send(json.dumps({"op": "auth", "api_key": API_KEY}))
        replies.append(json.loads((await ws.recv(timeout=timeout())).data))
        ws.close()
        await ws.closed(timeout=timeout())
        return replies

    async with nbws.cassette(path, route=["feed.example.com"], upstream=upstream.url, redact_keys=["key_seen"]) as c:
        recorded = await three_clients()
    assert (
        websockets.asyncio.client.connect.__init__,
        nbws.WebSocket.__init__,
        websocket.WebSocket.connect,
    ) == originals
    assert len(Recording.load(path).connections) == 3
    assert_no_secret(path)
    await upstream.stop()
    async with nbws.cassette(path, mode="none", route=["feed.example.com"], speed=math.inf) as c:
        replayed = await three_clients()
    assert replayed[0] == recorded[0]
    assert [reply["key_seen"] for reply in replayed[1:]] == ["REDACTED"] * 2  # type: ignore[index]
    assert len(c.sent) == 4


async def test_expect_message_and_assert_no_message(tmp_path: Path) -> None:
    events = [
        RecordedEvent("open", 1.0, "c1", "client", url="ws://x/"),
        RecordedEvent("message", 1.1, "c1", "client", "send", 1, '{"op": "hello", "n": 1}'),
        RecordedEvent("message", 1.2, "c1", "client", "receive", 1, "hi"),
    ]
    Recording(events).save(tmp_path / "hello.jsonl")
    async with nbws.cassette(tmp_path / "hello.jsonl", speed=math.inf) as c:
        await c.assert_no_message(within=0.05)
        async with connect(c.url) as ws:
            await ws.send('{"n": 1, "op": "hello"}')
            found = await c.expect_message({"op": "hello"}, timeout=timeout())
            assert found.data == '{"n": 1, "op": "hello"}'
            assert (await c.expect_message("hi", direction="received", timeout=timeout())).data == "hi"
            with pytest.raises(nbws.MismatchError) as missing:
                await c.expect_message({"op": "bye"}, timeout=0.05)
            assert "expected: {'op': 'bye'}" in str(missing.value) and "(nothing)" in str(missing.value)
            watching = asyncio.ensure_future(c.assert_no_message(within=timeout(0.3)))
            await ws.send("unexpected")
            with pytest.raises(nbws.MismatchError, match="received: 'unexpected'"):
                await watching
        c.fake.problems.clear()  # "unexpected" is not in the recording: that is this test's point


def test_redaction_covers_headers_query_json_keys_and_their_echoes() -> None:
    events = [
        RecordedEvent("open", 1.0, "c1", "client", url="wss://u:pw-secret@h/x?token=t-secret-1&page=2"),
        RecordedEvent("message", 1.1, "c1", "client", "send", 1, '{"auth":{"Api_Key":"k-secret-2"},"n":1}'),
        RecordedEvent("message", 1.2, "c1", "client", "receive", 1, "echo k-secret-2 and t-secret-1 and h-secret-3"),
        RecordedEvent("message", 1.3, "c1", "client", "receive", 2, b"bin h-secret-3"),
        RecordedEvent("close", 1.4, "c1", "client", code=4000, reason="bye h-secret-3", was_clean=True),
    ]
    clean = redact_recording(Recording(events), secrets=["Bearer h-secret-3", "h-secret-3"], keys=["api_key"])
    dumped = json.dumps([e.to_json() for e in clean]) + repr([e.data for e in clean])
    for secret in ("pw-secret", "t-secret-1", "k-secret-2", "h-secret-3"):
        assert secret not in dumped
    assert clean[0].url == "wss://u:REDACTED@h/x?token=REDACTED&page=2"
    assert clean[1].data == '{"auth":{"Api_Key":"REDACTED"},"n":1}'  # compact stays compact
    assert clean[3].data == b"bin REDACTED"
    assert clean[4].reason == "bye REDACTED"


def test_a_plain_script_and_asyncio_run_use_the_same_cassette(tmp_path: Path) -> None:
    """No loop in the script: the cassette runs on nbws's background loop; then asyncio.run replays it."""
    script = textwrap.dedent(
        f"""
        import asyncio, json, math
        import websocket
        import nbws

        upstream = nbws.Server()
        upstream.on("message", lambda conn, m: conn.send("got " + m.data))
        upstream.start().wait()
        with nbws.cassette("plain.jsonl", upstream=upstream.url) as c:
            ws = websocket.create_connection(c.url)
            ws.send("one")
            print(ws.recv())
            ws.close()
        upstream.stop().wait()

        async def main():
            async with nbws.cassette("plain.jsonl", mode="none", speed=math.inf) as c:
                ws = nbws.WebSocket(c.url)
                await ws.opened()
                ws.send("one")
                print((await ws.recv(timeout={timeout()})).data)
                ws.close()
                await ws.closed()

        asyncio.run(main())
        with nbws.cassette("plain.jsonl", mode="none", speed=math.inf) as c:
            ws = websocket.create_connection(c.url)
            ws.send("two")
            try:
                ws.recv()
            except websocket.WebSocketConnectionClosedException:
                pass
            ws.close()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout(60),
        env={**os.environ, "NBWS_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert result.stdout.splitlines() == ["got one", "got one"], result.stderr
    assert result.returncode == 1
    assert "nbws.exceptions.MismatchError" in result.stderr
    assert "expected: 'one'" in result.stderr and "received: 'two'" in result.stderr
