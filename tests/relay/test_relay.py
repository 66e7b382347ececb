"""nbws.Relay between nbws clients (or Node's ws) and a Node ws upstream: forwarding, handshake, closes, inject."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _support import timeout, until
from _support.node import NodePeer, backend

import nbws
from nbws.relay import join_url, leg_of


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[NodePeer, str]]:
    """A Node ws server standing for the real backend (tests/interop/echo_server.js as a backend)."""
    async with backend("v2.chat", "v1.chat") as found:
        yield found


@pytest.fixture
async def relay(upstream: tuple[NodePeer, str]) -> AsyncIterator[nbws.Relay]:
    relay = nbws.Relay(upstream[1])
    await relay.start()
    yield relay
    await relay.stop()


def test_join_url_appends_the_clients_path_and_merges_queries() -> None:
    assert join_url("ws://up:1", "/chat?x=1") == "ws://up:1/chat?x=1"
    assert join_url("ws://up:1/", "/") == "ws://up:1/"
    assert join_url("ws://up:1/base/", "/chat") == "ws://up:1/base/chat"
    assert join_url("wss://up/api?key=k", "/v1?a=1&a=2") == "wss://up/api/v1?key=k&a=1&a=2"


def test_bad_upstream_is_refused_at_once() -> None:
    with pytest.raises(nbws.InvalidURLError, match="not a ws:// or wss:// URL"):
        nbws.Relay("http://example.test/")
    with pytest.raises(TypeError, match="routing function"):
        nbws.Relay(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="high_water"):
        nbws.Relay("ws://127.0.0.1:1/", high_water=0)


async def test_messages_both_ways_in_order_with_path_headers_and_subprotocol(
    upstream: tuple[NodePeer, str], relay: nbws.Relay
) -> None:
    peer, _ = upstream
    ws = nbws.WebSocket(
        relay.url + "room/7?user=ann",
        ["v1.chat", "v2.chat"],
        origin="http://app.test",
        headers={"Cookie": "sid=abc", "Authorization": "Bearer t0k", "X-Secret": "kept-back"},
    )
    await ws.opened(timeout=timeout())
    seen = await peer.expect("connection")
    assert seen["path"] == "/room/7?user=ann"
    assert seen["offered"] == "v1.chat, v2.chat"
    # The upstream chose v2.chat (its preference): the client gets that, not a choice of the relay's.
    assert seen["protocol"] == "v2.chat" and ws.protocol == "v2.chat"
    assert (seen["cookie"], seen["authorization"], seen["origin"]) == ("sid=abc", "Bearer t0k", "http://app.test")
    assert seen["secret"] is None  # not in forward_headers
    assert seen["user_agent"].startswith("Python/")  # the client's own, forwarded
    assert (await ws.recv(timeout=timeout())).data == "hello v2.chat"
    for i in range(20):
        ws.send(f"m{i}")
    ws.send(b"\x00\xff")
    got = [(await ws.recv(timeout=timeout())).data for _ in range(21)]
    assert got == [f"echo: m{i}" for i in range(20)] + [b"echo: \x00\xff"]
    [pair] = relay.pairs
    assert pair.counts == {"client->upstream": 21, "upstream->client": 22}
    assert leg_of(pair.upstream_side) == (pair, "upstream")
    assert pair.client_side is not None and leg_of(pair.client_side) == (pair, "client")
    ws.close()
    await ws.closed(timeout=timeout())


async def test_hooks_see_leg_and_flow_of_every_message(relay: nbws.Relay) -> None:
    seen: list[tuple[str | None, str, str | None, object]] = []

    class Watch:
        @nbws.hookimpl
        def nbws_message_received(self, message: nbws.Message) -> None:
            seen.append((message.leg, message.direction, message.flow, message.data))

        @nbws.hookimpl
        def nbws_message_sent(self, message: nbws.Message) -> None:
            seen.append((message.leg, message.direction, message.flow, message.data))

    relay.plugins.register(Watch())
    ws = nbws.WebSocket(relay.url)
    assert (await ws.recv(timeout=timeout())).data == "hello "
    ws.send("hi")
    assert (await ws.recv(timeout=timeout())).data == "echo: hi"
    assert seen == [
        ("upstream", "receive", "upstream->client", "hello "),
        ("client", "send", "upstream->client", "hello "),
        ("client", "receive", "client->upstream", "hi"),
        ("upstream", "send", "client->upstream", "hi"),
        ("upstream", "receive", "upstream->client", "echo: hi"),
        ("client", "send", "upstream->client", "echo: hi"),
    ]
    ws.close()


async def test_intercept_holds_edits_and_drops_in_both_directions(upstream: tuple[NodePeer, str]) -> None:
    peer, url = upstream
    icpt = nbws.Intercept("receive", match=lambda m: m.data != "hello ")
    relay = nbws.Relay(url, plugins=[icpt])
    await relay.start()
    ws = nbws.WebSocket(relay.url)
    assert (await ws.recv(timeout=timeout())).data == "hello "
    ws.send("buy 1")
    held = await icpt.next(timeout=timeout())
    assert (held.message.leg, held.message.flow) == ("client", "client->upstream")
    held.edit("buy 100")
    assert (await peer.expect("connection"))["path"] == "/"
    assert (await peer.expect("message"))["data"] == "buy 100"
    held = await icpt.next(timeout=timeout())  # the upstream's answer, held on the way back
    assert held.message.flow == "upstream->client" and held.message.data == "echo: buy 100"
    held.edit("echo: edited")
    assert (await ws.recv(timeout=timeout())).data == "echo: edited"
    ws.send("secret")
    icpt.drop(await icpt.next(timeout=timeout()))
    ws.send("after")
    icpt.forward(await icpt.next(timeout=timeout()))
    assert (await peer.expect("message"))["data"] == "after"  # "secret" never reached the upstream
    icpt.forward(await icpt.next(timeout=timeout()))
    assert (await ws.recv(timeout=timeout())).data == "echo: after"
    ws.close()
    await relay.stop()


async def test_inject_reaches_each_side_marked_injected(upstream: tuple[NodePeer, str], relay: nbws.Relay) -> None:
    peer, _ = upstream
    sent: list[nbws.Message] = []

    class Watch:
        @nbws.hookimpl
        def nbws_message_sent(self, message: nbws.Message) -> None:
            sent.append(message)

    relay.plugins.register(Watch())
    ws = nbws.WebSocket(relay.url)
    assert (await ws.recv(timeout=timeout())).data == "hello "
    await until(lambda: relay.pairs, what="the pair")
    [pair] = relay.pairs
    relay.inject(pair.id, "from the notebook", to="client")
    assert (await ws.recv(timeout=timeout())).data == "from the notebook"
    message = pair.inject(b"\x01\x02", to="upstream")
    assert message.injected and message.leg == "upstream"
    await peer.expect("connection")
    assert (await peer.expect("message")) == {"event": "message", "binary": True, "data": "0102"}
    assert (
        await ws.recv(timeout=timeout())
    ).data == b"echo: \x01\x02"  # the upstream's answer still reaches the client
    injected = [m for m in sent if m.injected]
    assert [(m.flow, m.data) for m in injected] == [
        ("upstream->client", "from the notebook"),
        ("client->upstream", b"\x01\x02"),
    ]
    assert pair.injected == {"client->upstream": 1, "upstream->client": 1}
    with pytest.raises(ValueError, match="'client' or 'upstream'"):
        pair.inject("x", to="server")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"str \(text\) or bytes"):
        pair.inject(42)  # type: ignore[arg-type]
    ws.close()
    await pair.wait_closed(timeout=timeout())
    with pytest.raises(nbws.InvalidStateError):
        pair.inject("too late")


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4001, "bye now"), (1008, "policy: é")])
async def test_upstream_close_reaches_the_client_with_code_and_reason(
    relay: nbws.Relay, code: int, reason: str
) -> None:
    ws = nbws.WebSocket(relay.url)
    await ws.recv(timeout=timeout())
    ws.send(f"close {code} {reason}")
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason, event.was_clean) == (code, reason, True)
    await until(lambda: not relay.pairs and relay.closed_pairs, what="the pair closed")


@pytest.mark.parametrize(("code", "reason"), [(1000, "done"), (4002, "client says bye")])
async def test_client_close_reaches_the_upstream_with_code_and_reason(
    upstream: tuple[NodePeer, str], relay: nbws.Relay, code: int, reason: str
) -> None:
    peer, _ = upstream
    ws = nbws.WebSocket(relay.url)
    await ws.recv(timeout=timeout())
    await peer.expect("connection")
    ws.close(code, reason)
    assert await peer.expect("close") == {"event": "close", "code": code, "reason": reason}
    closed = await ws.closed(timeout=timeout())
    assert closed.code == code


async def test_an_upstream_that_drops_gives_the_client_1014(relay: nbws.Relay) -> None:
    ws = nbws.WebSocket(relay.url)
    await ws.recv(timeout=timeout())
    ws.send("drop")
    event = await ws.closed(timeout=timeout())
    assert event.code == 1014 and "bad gateway" in event.reason and event.was_clean


@pytest.mark.parametrize("status", [401, 403, 429, 503])
async def test_an_upstream_refusal_is_mirrored_to_the_client(relay: nbws.Relay, status: int) -> None:
    errors: list[nbws.ErrorEvent] = []
    relay.on("error", lambda pair, event: errors.append(event))
    ws = nbws.WebSocket(relay.url + f"refuse/{status}")
    with pytest.raises(nbws.ConnectError, match=f"HTTP {status}"):
        await ws.opened(timeout=timeout())
    response = ws.last_error.response  # type: ignore[union-attr]
    assert response.headers["WWW-Authenticate"] == "Bearer realm=test"
    assert f"upstream refused the handshake: HTTP {status}" in response.body.decode()
    assert errors and errors[0].phase == "handshake"
    assert not relay.pairs


async def test_an_unreachable_upstream_gives_502_with_the_reason() -> None:
    relay = nbws.Relay("ws://127.0.0.1:9/")  # discard port: nothing listens
    relay.on("error", lambda pair, event: None)
    await relay.start()
    ws = nbws.WebSocket(relay.url)
    with pytest.raises(nbws.ConnectError, match="HTTP 502"):
        await ws.opened(timeout=timeout())
    body = ws.last_error.response.body.decode()  # type: ignore[union-attr]
    assert "upstream unreachable" in body and "connection refused" in body
    await relay.stop()


async def test_routing_function_picks_the_upstream_or_refuses(upstream: tuple[NodePeer, str]) -> None:
    peer, url = upstream

    async def route(request: nbws.Request) -> str | None:
        if request.path.startswith("/api/"):
            return url + "/backend/" + request.path.removeprefix("/api/")
        return None

    relay = nbws.Relay(route)
    await relay.start()
    ws = nbws.WebSocket(relay.url + "api/ticks")
    await ws.opened(timeout=timeout())
    assert (await peer.expect("connection"))["path"] == "/backend/ticks"
    other = nbws.WebSocket(relay.url + "elsewhere")
    with pytest.raises(nbws.ConnectError, match="HTTP 404"):
        await other.opened(timeout=timeout())
    ws.close()
    await relay.stop()


async def test_stop_closes_both_legs(upstream: tuple[NodePeer, str], relay: nbws.Relay) -> None:
    peer, _ = upstream
    ws = nbws.WebSocket(relay.url)
    await ws.recv(timeout=timeout())
    await peer.expect("connection")
    await relay.stop()
    assert (await ws.closed(timeout=timeout())).code == 1001
    assert (await peer.expect("close"))["code"] == 1001
    assert not relay.pairs


async def test_a_slow_client_slows_the_upstream_instead_of_filling_memory(upstream: tuple[NodePeer, str]) -> None:
    """The upstream bursts 5,000 messages of 2 KiB at a client that reads nothing: the relay stops reading the upstream."""
    _, url = upstream
    high_water = 64 * 1024
    relay = nbws.Relay(url, high_water=high_water, compression=None)
    await relay.start()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", relay.port))  # a client that never reads
    raw.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await until(lambda: relay.pairs, what="the pair")
    [pair] = relay.pairs
    client = pair.client_side
    assert client is not None
    pair.inject("burst 5000 2048", to="upstream")
    await until(lambda: client.buffered_amount > high_water, seconds=10, what="a backlog towards the client")
    # The relay paused the upstream: the backlog stays within high_water plus what was in flight
    # (one message being delivered), and most of the burst is still waiting in the upstream.
    for _ in range(20):
        assert client.buffered_amount < high_water + 2 * 2100
        await asyncio.sleep(0.01)  # let the upstream push, if the relay were still reading it
    assert pair.counts["upstream->client"] < 5000
    raw.close()
    await relay.stop()


async def test_a_backlog_drains_and_the_relay_reads_on_until_everything_arrived_in_order(
    upstream: tuple[NodePeer, str],
) -> None:
    """A 4 MiB burst at a client that stops reading, then reads again: the relay stops, then reads on, losing nothing."""
    _, url = upstream
    high_water = 64 * 1024
    relay = nbws.Relay(url, high_water=high_water, compression=None)
    await relay.start()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", relay.port))
    raw.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(
        raw,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    await until(lambda: relay.pairs, what="the pair")
    [pair] = relay.pairs
    client = pair.client_side
    assert client is not None
    pair.inject("burst 2000 2048", to="upstream")
    # The client does not read yet: the relay waits for its side to drain.
    await until(lambda: "client" in pair._drains, seconds=10, what="the relay waiting for the client to drain")
    assert pair.counts["upstream->client"] < 2001
    # Now it reads everything: the relay reads the upstream again each time the client's side drains.
    data = bytearray()
    last = b"n2000" + b"x" * 2048
    while not data.endswith(last):
        chunk = await asyncio.wait_for(loop.sock_recv(raw, 2**16), timeout(10))
        assert chunk, "the relay closed the connection"
        data += chunk
    assert _server_frames(bytes(data)) == ["hello "] + [f"n{i}" + "x" * 2048 for i in range(1, 2001)]
    assert pair.counts["upstream->client"] == 2001 and not pair._drains
    raw.close()
    await relay.stop()


def _server_frames(data: bytes) -> list[str]:
    """The complete unmasked text frames after the HTTP response in ``data`` (as a relay sends them to its client)."""
    _, _, rest = data.partition(b"\r\n\r\n")
    texts, i = [], 0
    while i + 2 <= len(rest):
        length, start = rest[i + 1] & 0x7F, i + 2
        if length == 126:
            if start + 2 > len(rest):
                break
            length, start = int.from_bytes(rest[start : start + 2], "big"), start + 2
        if start + length > len(rest):
            break
        assert rest[i] == 0x81  # a final text frame
        texts.append(rest[start : start + length].decode())
        i = start + length
    return texts


async def test_recording_a_relay_keeps_both_legs_in_one_file_as_jsonl_and_har(
    upstream: tuple[NodePeer, str], tmp_path: Path
) -> None:
    peer, url = upstream
    recorder = nbws.Recorder(tmp_path / "session.jsonl")
    relay = nbws.Relay(url, plugins=[recorder])
    await relay.start()
    ws = nbws.WebSocket(relay.url + "feed")
    assert (await ws.recv(timeout=timeout())).data == "hello "
    ws.send("sub ticks")
    assert (await ws.recv(timeout=timeout())).data == "echo: sub ticks"
    await until(lambda: relay.pairs, what="the pair")
    [pair] = relay.pairs
    pair.inject("injected!", to="client")
    assert (await ws.recv(timeout=timeout())).data == "injected!"
    ws.close(4000, "done")
    await pair.wait_closed(timeout=timeout())
    await relay.stop()
    recorder.close()

    loaded = nbws.Recording.load(tmp_path / "session.jsonl")
    assert loaded == recorder.recording
    assert pair.client_side is not None
    client_leg, upstream_leg = pair.client_side.id, pair.upstream_side.id
    assert set(loaded.connections) == {client_leg, upstream_leg}
    assert {e.pair for e in loaded} == {pair.id}
    flows = [(e.connection, e.direction, e.flow, e.data, e.injected) for e in loaded.messages()]
    assert (upstream_leg, "send", "client->upstream", "sub ticks", False) in flows
    assert (client_leg, "send", "upstream->client", "injected!", True) in flows
    closes = {e.leg: (e.code, e.reason) for e in loaded if e.type == "close"}
    assert closes == {"client": (4000, "done"), "upstream": (4000, "done")}

    # As HAR: one entry per leg, the injected frame marked; it loads back with the same messages.
    har = loaded.to_har(tmp_path / "session.har")
    again = nbws.Recording.load(har)
    assert [(e.direction, e.data) for e in again.messages()] == [(e.direction, e.data) for e in loaded.messages()]
    frames = [f for entry in json.loads(har.read_text())["log"]["entries"] for f in entry["_webSocketMessages"]]
    assert [f["data"] for f in frames if f.get("_injected")] == ["injected!"]

    # Replay what the client sent to the upstream, straight to the upstream.
    await peer.expect("connection")
    direct = nbws.WebSocket(url)
    await direct.opened(timeout=timeout())
    replayer = await nbws.replay(loaded, direct, connection=upstream_leg, speed=100)
    assert [m.data for m in replayer.sent] == ["sub ticks"]
    assert (await peer.expect("message"))["data"] == "sub ticks"  # the relayed one
    await peer.expect("close")
    await peer.expect("connection")
    assert (await peer.expect("message"))["data"] == "sub ticks"  # the replayed one
    direct.close()


def test_old_recordings_without_relay_fields_still_load_and_bad_ones_say_why(tmp_path: Path) -> None:
    header = '{"format": "nbws-recording", "version": 1, "created": 1.0}\n'
    old = tmp_path / "old.jsonl"
    old.write_text(
        header + '{"type": "message", "time": 2.0, "connection": "c1", "direction": "send", "opcode": 1, "data": "x"}\n'
    )
    [event] = nbws.Recording.load(old)
    assert (event.leg, event.pair, event.injected, event.flow) == (None, "", False, None)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        header
        + '{"type": "message", "time": 2.0, "connection": "c1", "direction": "send", "opcode": 1, "data": "x", "leg": "side"}\n'
    )
    with pytest.raises(nbws.RecordingError, match="'leg' must be 'client' or 'upstream'"):
        nbws.Recording.load(bad)


async def test_a_client_that_drops_closes_the_upstream_with_1001(
    upstream: tuple[NodePeer, str], relay: nbws.Relay
) -> None:
    peer, _ = upstream
    raw = socket.create_connection(("127.0.0.1", relay.port))
    raw.sendall(
        b"GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert (await peer.expect("connection"))["path"] == "/x"
    await until(lambda: relay.pairs, what="the pair")
    raw.close()  # no closing handshake
    assert await peer.expect("close") == {"event": "close", "code": 1001, "reason": "client went away"}


async def test_a_routing_function_that_raises_refuses_with_502() -> None:
    def route(request: nbws.Request) -> str:
        raise RuntimeError("routing table is empty")

    relay = nbws.Relay(route)
    errors: list[nbws.ErrorEvent] = []
    relay.on("error", lambda pair, event: errors.append(event))
    await relay.start()
    ws = nbws.WebSocket(relay.url)
    with pytest.raises(nbws.ConnectError, match="HTTP 502"):
        await ws.opened(timeout=timeout())
    assert "routing table is empty" in ws.last_error.response.body.decode()  # type: ignore[union-attr]
    assert errors and "routing / failed" in errors[0].message
    await relay.stop()
