"""
Bad input: garbage and malformed handshakes on the server port, invalid frames,
invalid UTF-8 (1007), oversize messages (1009), wrong arguments to the API, and a
plugin that raises on every message. The endpoint under attack answers as RFC
6455 says, reports what happened, and keeps serving everyone else.
"""

from __future__ import annotations

import array
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from _support import StartEchoServer, timeout, until
from _support.raw import close_payload, frame, handshake_request, raw_client, read_close
from websockets.utils import accept_key

import nbws

MAX_SIZE = 1024


@pytest.fixture
async def strict(
    start_echo_server: StartEchoServer,
) -> tuple[nbws.Server, list[tuple[Any, nbws.ErrorEvent]], list[nbws.CloseEvent]]:
    """An echo server with max_size 1024, recording its error and close events."""
    server = await start_echo_server(max_size=MAX_SIZE)
    errors: list[tuple[Any, nbws.ErrorEvent]] = []
    closes: list[nbws.CloseEvent] = []
    server.on("error", lambda conn, event: errors.append((conn, event)))
    server.on("close", lambda conn, event: closes.append(event))
    return server, errors, closes


async def still_serving(server: nbws.Server) -> None:
    """A well-behaved client still gets its echo."""
    async with nbws.WebSocket(server.url) as ws:
        ws.send("still serving?")
        assert (await ws.recv(timeout=timeout())).data == "still serving?"


# -- garbage and malformed handshakes ---------------------------------------------------

GARBAGE = {
    "binary junk": bytes(range(256)) * 8 + b"\r\n\r\n",
    "not http": b"hello\r\n\r\n",
    "tls client hello": bytes.fromhex("160301") + b"\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(160),
    "plain http": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "wrong method": handshake_request().replace(b"GET", b"POST", 1),
    "http/1.0": b"GET / HTTP/1.0\r\n\r\n",
    "websocket version 8": handshake_request().replace(b"Version: 13", b"Version: 8"),
    "no key": b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "bad key": handshake_request().replace(b"Sec-WebSocket-Key: ", b"Sec-WebSocket-Key: xx"),
    "header without colon": handshake_request(extra="Broken header line\r\n"),
    "100 kB header": handshake_request(extra="X-Big: " + "a" * 100_000 + "\r\n"),
    "1000 headers": handshake_request(extra="".join(f"X-{i}: a\r\n" for i in range(1000))),
    "truncated handshake": handshake_request()[:40],
    "nul bytes": bytes(10_000),
}


async def send_raw(port: int, data: bytes) -> bytes:
    """Send ``data`` then end the stream; return all the server answers before it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), timeout())
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("data", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_on_the_port_is_refused_without_a_connection(
    strict: tuple[nbws.Server, list[Any], list[Any]], data: bytes
) -> None:
    server, errors, closes = strict
    connections: list[nbws.Connection] = []
    server.on("connection", connections.append)
    assert server.port is not None
    answer = await send_raw(server.port, data)
    # Either an HTTP error status or nothing at all; never an upgrade.
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status <= 599, answer[:80]
    assert connections == [] and server.clients == []
    await still_serving(server)
    assert errors == [] and [c.code for c in closes] == [1000]


# -- invalid frames from a client ----------------------------------------------------------

BAD_FRAMES = {
    "unmasked frame": (frame(0x1, b"hi", mask=False), 1002),
    "reserved bit without extension": (frame(0x1, b"hi", rsv=4), 1002),
    "reserved data opcode": (frame(0x3, b""), 1002),
    "reserved control opcode": (frame(0xB, b""), 1002),
    "fragmented ping": (frame(0x9, b"", fin=False), 1002),
    "ping over 125 bytes": (frame(0x9, b"x" * 126), 1002),
    "continuation without a start": (frame(0x0, b"x"), 1002),
    "new message inside a fragmented one": (frame(0x1, b"a", fin=False) + frame(0x1, b"b"), 1002),
    "one-byte close payload": (frame(0x8, b"\x03"), 1002),
    "close code 1005": (frame(0x8, close_payload(1005)), 1002),
    "close code 999": (frame(0x8, close_payload(999)), 1002),
    "close code 5000": (frame(0x8, close_payload(5000)), 1002),
    "invalid UTF-8 close reason": (frame(0x8, close_payload(1000, b"\xff")), 1007),
    "invalid UTF-8 text": (frame(0x1, b"\xc3\x28"), 1007),
    "invalid UTF-8 across fragments": (frame(0x1, b"ok\xe2", fin=False) + frame(0x0, b"\x28\xa1"), 1007),
    "overlong UTF-8 encoding": (frame(0x1, b"\xc0\xaf"), 1007),
    "UTF-16 surrogate in UTF-8": (frame(0x1, b"\xed\xa0\x80"), 1007),
    "oversize binary": (frame(0x2, b"x" * (MAX_SIZE + 1)), 1009),
    "oversize text": (frame(0x1, b"x" * (MAX_SIZE + 1)), 1009),
    "2**62 bytes announced": (frame(0x2, b"", length=2**62), 1009),
    "oversize across fragments": (frame(0x2, b"x" * 600, fin=False) + frame(0x0, b"x" * 600), 1009),
}


@pytest.mark.parametrize(("data", "code"), BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_invalid_frames_close_that_connection_with_the_rfc_code(
    strict: tuple[nbws.Server, list[tuple[Any, nbws.ErrorEvent]], list[nbws.CloseEvent]], data: bytes, code: int
) -> None:
    server, errors, closes = strict
    assert server.port is not None
    reader, writer = await raw_client(server.port)
    writer.write(data)
    closed_with, _ = await read_close(reader)
    writer.close()
    assert closed_with == code
    await until(lambda: closes, what="close event")
    await still_serving(server)
    assert [event.code for event in closes] == [code, 1000]
    ((conn, event),) = errors
    assert event.phase == "receive"
    assert f"closing with {code}" in event.message
    assert conn.close_event is closes[0]


async def test_good_messages_before_a_bad_frame_are_delivered(
    strict: tuple[nbws.Server, list[Any], list[nbws.CloseEvent]],
) -> None:
    server, _, closes = strict
    received: list[Any] = []
    server.on("message", lambda conn, message: received.append(message.data))
    assert server.port is not None
    reader, writer = await raw_client(server.port)
    writer.write(frame(0x1, "first ☃".encode()) + frame(0x2, b"\x00second") + frame(0x1, b"\xff"))
    assert (await read_close(reader))[0] == 1007
    writer.close()
    await until(lambda: closes, what="close event")
    assert received == ["first ☃", b"\x00second"]
    assert closes[0].code == 1007


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked frame from the server: its opcode and payload."""
    first, second = await asyncio.wait_for(reader.readexactly(2), timeout())
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await asyncio.wait_for(reader.readexactly(size), timeout())


@pytest.mark.parametrize(
    "bad", [frame(0xF, b"reserved opcode"), frame(0x1, b"reserved bits", rsv=2)], ids=["opcode", "rsv"]
)
async def test_a_message_is_answered_before_a_bad_frame_that_came_in_the_same_read(
    strict: tuple[nbws.Server, list[Any], list[nbws.CloseEvent]], bad: bytes
) -> None:
    # Frames that pile up while the server opens the connection arrive in one read; the echo of
    # the valid message must still leave before the bad frame fails the connection (Autobahn 3.4,
    # 4.1.5, 4.2.5: "NON-STRICT" otherwise). The server reads nothing between the handshake and
    # the connection's attachment, so both frames, written at once, come in its first read.
    server, _, closes = strict
    assert server.port is not None
    reader, writer = await raw_client(server.port)
    writer.write(frame(0x1, b"Hello, world!") + bad + frame(0x9, b""))
    assert await read_frame(reader) == (0x1, b"Hello, world!")
    assert (await read_close(reader))[0] == 1002
    writer.close()
    await until(lambda: closes, what="close event")
    assert closes[0].code == 1002


# -- invalid input to the client -------------------------------------------------------------


@asynccontextmanager
async def serve_raw(respond: Any) -> AsyncIterator[str]:
    """A TCP server that reads one handshake and answers with ``respond(key)``; yields its URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(respond(key))
        await writer.drain()
        await reader.read(4096)  # the client's close frame, or its going away
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()
        await server.wait_closed()


def upgrade(key: str) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )


BAD_RESPONSES = {
    "garbage": lambda key: b"\x00\x01garbage\r\n\r\n",
    "200 instead of 101": lambda key: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "wrong accept key": lambda key: upgrade(key).replace(accept_key(key).encode(), b"AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    "no upgrade header": lambda key: upgrade(key).replace(b"Upgrade: websocket\r\n", b""),
    "unrequested subprotocol": lambda key: upgrade(key)[:-2] + b"Sec-WebSocket-Protocol: chat\r\n\r\n",
    "unrequested extension": lambda key: upgrade(key)[:-2] + b"Sec-WebSocket-Extensions: x-unknown\r\n\r\n",
}


@pytest.mark.parametrize("respond", BAD_RESPONSES.values(), ids=BAD_RESPONSES.keys())
async def test_client_refuses_a_bad_handshake_response(respond: Any) -> None:
    events: list[Any] = []
    async with serve_raw(respond) as url:
        ws = nbws.WebSocket(url, compression=None)
        ws.onerror = events.append
        ws.onclose = events.append
        with pytest.raises(nbws.ConnectError):
            await ws.opened(timeout=timeout())
    assert [e.type for e in events] == ["error", "close"]
    assert events[0].phase in ("handshake", "connect")
    assert (events[1].code, events[1].was_clean) == (1006, False)


BAD_SERVER_FRAMES = {
    "masked frame from a server": (frame(0x1, b"hi", mask=True), 1002),
    "reserved opcode": (frame(0x3, b"", mask=False), 1002),
    "invalid UTF-8 text": (frame(0x1, b"\xed\xa0\x80", mask=False), 1007),
    "oversize message": (frame(0x2, b"x" * (MAX_SIZE + 1), mask=False), 1009),
}


@pytest.mark.parametrize(("data", "code"), BAD_SERVER_FRAMES.values(), ids=BAD_SERVER_FRAMES.keys())
async def test_client_fails_the_connection_on_invalid_frames(data: bytes, code: int) -> None:
    events: list[Any] = []
    async with serve_raw(lambda key: upgrade(key) + frame(0x1, b"fine", mask=False) + data) as url:
        ws = nbws.WebSocket(url, max_size=MAX_SIZE, compression=None)
        ws.onmessage = events.append
        ws.onerror = events.append
        ws.onclose = events.append
        await ws.closed(timeout=timeout())
    assert [e.type for e in events] == ["message", "error", "close"]
    assert events[0].data == "fine"
    assert events[1].phase == "receive"
    assert events[2].code == code


# -- wrong arguments to the API ---------------------------------------------------------------

WRONG_SEND = [None, 1, 1.5, True, ["a"], {"a": 1}, object(), array.array("b", [1]), 2j]


async def test_wrong_types_to_send_raise_type_error_and_change_nothing(server: nbws.Server) -> None:
    received: list[Any] = []
    server.on("message", lambda conn, message: received.append(message.data))
    async with nbws.WebSocket(server.url) as ws:
        await ws.opened()
        (conn,) = server.clients
        for value in WRONG_SEND:
            with pytest.raises(TypeError, match="send\\(\\) takes str"):
                ws.send(value)  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                conn.send(value)  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                server.broadcast(value)  # type: ignore[arg-type]
        assert ws.buffered_amount == 0 and ws.ready_state is nbws.OPEN
        ws.send("only this")
        assert (await ws.recv(timeout=timeout())).data == "echo: only this"
    assert received == ["only this"]


BAD_CLIENT_CLOSES: list[tuple[Any, Any, type[Exception]]] = [
    (999, "", ValueError),
    (1001, "", ValueError),  # the browser allows only 1000 and 3000-4999
    (1005, "", ValueError),
    (1006, "", ValueError),
    (1015, "", ValueError),
    (2999, "", ValueError),
    (5000, "", ValueError),
    (-1, "", ValueError),
    (True, "", TypeError),
    ("1000", "", TypeError),
    (1000.0, "", TypeError),
    (None, "", TypeError),
    (1000, "x" * 124, ValueError),
    (1000, "é" * 62, ValueError),  # 124 bytes in UTF-8
    (1000, b"bytes", TypeError),
    (1000, None, TypeError),
]


async def test_wrong_close_codes_and_reasons_raise_and_leave_the_connection_open(server: nbws.Server) -> None:
    closes: asyncio.Queue[nbws.CloseEvent] = asyncio.Queue()
    server.on("close", lambda conn, event: closes.put_nowait(event))
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    (conn,) = server.clients
    for code, reason, error in BAD_CLIENT_CLOSES:
        with pytest.raises(error):
            ws.close(code, reason)
    for code in (1004, 1005, 1006, 1015, 999, 2000, 5000, False):
        with pytest.raises((ValueError, TypeError)):
            conn.close(code)
    assert ws.ready_state is nbws.OPEN and conn.ready_state is nbws.OPEN
    ws.send("still open")
    assert (await ws.recv(timeout=timeout())).data == "echo: still open"
    for wait in (ws.recv, ws.opened, ws.closed):  # a timeout that is no number: at the call, not when awaited
        with pytest.raises(TypeError, match=r"float|number of seconds"):
            wait(timeout="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # data goes to send(); send_message() takes a Message
        ws.send_message("still open")  # type: ignore[arg-type]
    assert ws.ready_state is nbws.OPEN
    longest = "€" * 41  # 123 bytes: the longest reason allowed
    ws.close(4999, longest)
    event = await asyncio.wait_for(closes.get(), timeout())
    assert (event.code, event.reason) == (4999, longest)


# -- a plugin that always raises --------------------------------------------------------------


async def test_plugin_raising_on_every_message_for_10000_messages() -> None:
    class Broken:
        @nbws.hookimpl
        def nbws_message_receive(self, message: nbws.Message) -> None:
            raise RuntimeError(f"broken on receive #{message.seq}")

        @nbws.hookimpl
        def nbws_message_send(self, message: nbws.Message) -> None:
            raise ValueError(f"broken on send #{message.seq}")

    count = 10_000
    server = nbws.Server(plugins=[Broken()])
    received: list[Any] = []
    plugin_errors: list[str] = []

    @server.on("message")
    def echo(conn: nbws.Connection, message: nbws.Message) -> None:
        received.append(message.data)
        conn.send(message.data)

    @server.on("error")
    def error(conn: nbws.Connection, event: nbws.ErrorEvent) -> None:
        assert event.phase == "plugin" and event.plugin is not None
        plugin_errors.append(str(event.error))

    await server.start()
    echoes: list[Any] = []
    done = asyncio.Event()

    def on_echo(message: nbws.Message) -> None:
        echoes.append(message.data)
        if len(echoes) == count:
            done.set()

    ws = nbws.WebSocket(server.url)
    ws.onmessage = on_echo
    await ws.opened(timeout=timeout())
    bystander = nbws.WebSocket(server.url)
    await bystander.opened(timeout=timeout())
    for i in range(count):
        ws.send(str(i))
    await asyncio.wait_for(done.wait(), timeout(60))
    expected = [str(i) for i in range(count)]
    assert received == expected and echoes == expected
    assert sorted(plugin_errors) == sorted(
        [f"broken on receive #{i}" for i in range(1, count + 1)] + [f"broken on send #{i}" for i in range(1, count + 1)]
    )
    (name,) = [info.name for info in server.plugins]
    assert server.plugins.info(name).errors == 2 * count
    bystander.send("and me?")
    assert (await bystander.recv(timeout=timeout())).data == "and me?"
    ws.close()
    bystander.close()
    await server.stop()
