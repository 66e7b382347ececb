"""
Follow-ups on the engine found by the Autobahn runs: a server connection's
own plugin registry is made only when asked for, and a TCP reset after a
complete closing handshake is a normal close.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from _support import StartEchoServer, timeout
from _support.raw import close_payload, frame, read_frame, reset
from websockets.utils import accept_key

import nbws
from nbws import _plugins

# -- a connection's own registry is lazy -----------------------------------------------


class _Seen:
    def __init__(self) -> None:
        self.received: list[object] = []

    @nbws.hookimpl
    def nbws_message_received(self, conn: object, message: nbws.Message) -> None:
        self.received.append(message.data)


def registries_made(monkeypatch: pytest.MonkeyPatch) -> list[_plugins.PluginRegistry]:
    """From now on (until the test ends), every PluginRegistry made is appended to the list returned."""
    made: list[_plugins.PluginRegistry] = []
    original = _plugins.PluginRegistry.__init__

    def counting(self: _plugins.PluginRegistry, *args: object, **kwargs: object) -> None:
        made.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_plugins.PluginRegistry, "__init__", counting)
    return made


async def test_accepting_a_connection_builds_no_plugin_registry_until_conn_plugins_is_used(
    monkeypatch, start_echo_server: StartEchoServer
) -> None:  # type: ignore[no-untyped-def]
    server = await start_echo_server()
    made = registries_made(monkeypatch)
    ws = nbws.WebSocket(server.url)
    made_by_client = len(made)  # none: the client's own registry is lazy too
    assert made_by_client == 0
    try:
        await asyncio.wait_for(ws.opened(), timeout())
        ws.send("one")
        assert (await asyncio.wait_for(ws.recv(), timeout())).data == "one"
        # The server accepted, delivered and echoed without building a registry for the connection.
        assert len(made) == made_by_client
        (conn,) = server.clients
        # First use: a registry of its own, that works like any other.
        seen = _Seen()
        conn.plugins.register(seen)
        assert len(made) == made_by_client + 1
        assert conn.plugins is conn.plugins
        ws.send("two")
        assert (await asyncio.wait_for(ws.recv(), timeout())).data == "two"
        assert seen.received == ["two"]
        conn.plugins.unregister(seen)
        ws.send("three")
        assert (await asyncio.wait_for(ws.recv(), timeout())).data == "three"
        assert seen.received == ["two"]
    finally:
        ws.close()
        await asyncio.wait_for(ws.closed(), timeout())
        await server.stop()


# -- a reset after the closing handshake --------------------------------------------------


def _server_frame(opcode: int, payload: bytes) -> bytes:
    return frame(opcode, payload, mask=False)


async def test_client_sees_a_reset_after_a_complete_closing_handshake_as_a_normal_close() -> None:
    handshake_done = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout())
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
        )
        writer.write(_server_frame(0x1, b"hello"))
        writer.write(_server_frame(0x8, close_payload(1000, b"bye")))
        await writer.drain()
        # The client's close frame answers ours: the closing handshake is complete on both sides.
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and payload[:2] == struct.pack("!H", 1000), (opcode, payload)
        handshake_done.set()
        # Then vanish with a TCP reset instead of a FIN, as Autobahn's fuzzing server may.
        reset(writer)

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ws = nbws.WebSocket(f"ws://127.0.0.1:{port}/", compression=None)
    errors: list[nbws.ErrorEvent] = []
    closes: list[nbws.CloseEvent] = []
    ws.on("error", errors.append)
    ws.on("close", closes.append)
    try:
        assert (await asyncio.wait_for(ws.recv(), timeout())).data == "hello"
        await asyncio.wait_for(ws.closed(), timeout())
        assert handshake_done.is_set()
        assert errors == [], [e.message for e in errors]
        assert len(closes) == 1
        assert (closes[0].code, closes[0].reason, closes[0].was_clean) == (1000, "bye", True)
    finally:
        ws.close()
        server.close()
        await server.wait_closed()


async def test_a_relayed_pair_opens_without_building_a_plugin_registry(
    monkeypatch, start_echo_server: StartEchoServer
) -> None:  # type: ignore[no-untyped-def]
    upstream = await start_echo_server()
    relay = nbws.Relay(upstream.url)
    await relay.start()
    made = registries_made(monkeypatch)
    ws = nbws.WebSocket(relay.url)
    try:
        await asyncio.wait_for(ws.opened(), timeout())
        ws.send("through")
        assert (await asyncio.wait_for(ws.recv(), timeout())).data == "through"
        # Client, relay's server side, relay's upstream leg, upstream server: no registry made for any.
        assert made == []
    finally:
        ws.close()
        await asyncio.wait_for(ws.closed(), timeout())
        await relay.stop()
        await upstream.stop()
