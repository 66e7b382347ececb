"""
Interop with peers nbws did not write: Node's ``ws`` as server and as client,
and the Python ``websocket-client`` package as client.

Each test checks what crosses the wire in both directions: text, binary,
close codes and reasons, and subprotocol negotiation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import websocket  # websocket-client
from _support import timeout
from _support.node import NodePeer

import nbws

pytestmark = pytest.mark.interop


# -- nbws.WebSocket against a Node ws server ----------------------------------


@pytest.fixture
async def node_server() -> AsyncIterator[tuple[NodePeer, str]]:
    """Node's ws echo server, supporting subprotocols chat.v1 and chat.v2 (in that order)."""
    peer = await NodePeer.start("echo_server.js", "chat.v1", "chat.v2")
    try:
        listening = await peer.expect("listening")
        yield peer, f"ws://127.0.0.1:{listening['port']}/room"
    finally:
        await peer.stop()


async def test_nbws_client_negotiates_a_subprotocol_and_gets_the_greeting(node_server: tuple[NodePeer, str]) -> None:
    peer, url = node_server
    ws = nbws.WebSocket(url, ["chat.v2", "chat.v3"])
    greeting = await ws.recv(timeout=timeout())
    connection = await peer.expect("connection")
    assert connection["protocol"] == "chat.v2"
    assert connection["path"] == "/room"
    assert ws.protocol == "chat.v2"
    assert greeting.data == "hello from node ws chat.v2"
    ws.close()
    await ws.closed(timeout=timeout())


async def test_nbws_client_without_a_shared_subprotocol_gets_none(node_server: tuple[NodePeer, str]) -> None:
    peer, url = node_server
    ws = nbws.WebSocket(url, "chat.v9")
    await ws.opened(timeout=timeout())
    assert (await peer.expect("connection"))["protocol"] == ""
    assert ws.protocol == ""
    ws.close()
    await ws.closed(timeout=timeout())


async def test_nbws_client_text_and_binary_round_trip_through_node(node_server: tuple[NodePeer, str]) -> None:
    peer, url = node_server
    ws = nbws.WebSocket(url)
    await ws.recv(timeout=timeout())  # the greeting
    text = "héllo ☃ — \U0001f600"
    binary = bytes(range(256)) * 4
    ws.send(text)
    ws.send(binary)
    ws.send(bytearray(b"\x00\xff"))
    ws.send(memoryview(b"view"))
    replies = [await ws.recv(timeout=timeout()) for _ in range(4)]
    assert [r.data for r in replies] == [
        "node echo: " + text,
        b"node echo: " + binary,
        b"node echo: \x00\xff",
        b"node echo: view",
    ]
    assert [r.is_binary for r in replies] == [False, True, True, True]
    await peer.expect("connection")
    seen = [await peer.expect("message") for _ in range(4)]
    assert seen[0] == {"event": "message", "binary": False, "data": text}
    assert seen[1] == {"event": "message", "binary": True, "data": binary.hex()}
    ws.close()
    await ws.closed(timeout=timeout())


async def test_nbws_client_close_code_and_reason_reach_node(node_server: tuple[NodePeer, str]) -> None:
    peer, url = node_server
    ws = nbws.WebSocket(url)
    await ws.opened(timeout=timeout())
    await peer.expect("connection")
    ws.close(4000, "nbws says adiós ☃")
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason, event.was_clean) == (4000, "nbws says adiós ☃", True)
    assert await peer.expect("close") == {"event": "close", "code": 4000, "reason": "nbws says adiós ☃"}


async def test_node_close_code_and_reason_reach_nbws_client(node_server: tuple[NodePeer, str]) -> None:
    peer, url = node_server
    ws = nbws.WebSocket(url)
    closes: list[nbws.CloseEvent] = []
    ws.onclose = closes.append
    await ws.recv(timeout=timeout())
    ws.send("close 4002 node says adiós ☃")
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason, event.was_clean) == (4002, "node says adiós ☃", True)
    assert closes == [event]
    assert ws.ready_state is nbws.CLOSED
    await peer.expect("connection")
    await peer.expect("message")
    # nbws answered the close frame with the same code, as RFC 6455 section 5.5.1 suggests.
    assert await peer.expect("close") == {"event": "close", "code": 4002, "reason": "node says adiós ☃"}


# -- a Node ws client against nbws.Server ----------------------------------------


@pytest.fixture
async def nbws_server() -> AsyncIterator[nbws.Server]:
    """An nbws server preferring chat.v2 over chat.v1; it echoes with the prefix 'nbws: '."""
    server = nbws.Server(protocols=["chat.v2", "chat.v1"])

    @server.on("message")
    def echo(conn: nbws.Connection, message: nbws.Message) -> None:
        data = message.data
        if data == "close please":
            conn.close(4003, "nbws server says tschüss")
        else:
            conn.send("nbws: " + data if isinstance(data, str) else b"nbws: " + data)

    await server.start()
    yield server
    await server.stop()


async def test_node_client_negotiates_the_servers_preferred_subprotocol(nbws_server: nbws.Server) -> None:
    connected: asyncio.Queue[nbws.Connection] = asyncio.Queue()
    nbws_server.on("connection", connected.put_nowait)
    peer = await NodePeer.start("client.js", nbws_server.url, "chat.v1", "chat.v2")
    try:
        assert await peer.expect("open") == {"event": "open", "protocol": "chat.v2"}
        conn = await asyncio.wait_for(connected.get(), timeout())
        assert conn.protocol == "chat.v2"
        assert conn.request.subprotocols == ["chat.v1", "chat.v2"]
    finally:
        await peer.stop()


async def test_node_client_without_a_subprotocol_is_refused_by_a_server_that_requires_one(
    nbws_server: nbws.Server,
) -> None:
    connections: list[nbws.Connection] = []
    nbws_server.on("connection", connections.append)
    peer = await NodePeer.start("client.js", nbws_server.url)
    try:
        assert await peer.expect("rejected") == {"event": "rejected", "status": 400}
    finally:
        await peer.stop()
    assert connections == []


async def test_node_client_text_and_binary_round_trip_through_nbws(nbws_server: nbws.Server) -> None:
    received: list[nbws.Message] = []
    closes: asyncio.Queue[tuple[nbws.Connection, nbws.CloseEvent]] = asyncio.Queue()
    nbws_server.on("message", lambda conn, message: received.append(message))
    nbws_server.on("close", lambda conn, event: closes.put_nowait((conn, event)))
    peer = await NodePeer.start("client.js", nbws_server.url, "chat.v1")
    try:
        await peer.expect("open")
        text = "grüße ☃ \U0001f680"
        binary = bytes(range(256))
        await peer.command(send=text)
        await peer.command(sendBinary=binary.hex())
        assert await peer.expect("message") == {"event": "message", "binary": False, "data": "nbws: " + text}
        assert await peer.expect("message") == {
            "event": "message",
            "binary": True,
            "data": (b"nbws: " + binary).hex(),
        }
        assert [m.data for m in received] == [text, binary]
        await peer.command(close=[4001, "node client says ciao ☃"])
        assert await peer.expect("close") == {"event": "close", "code": 4001, "reason": "node client says ciao ☃"}
    finally:
        await peer.stop()
    conn, event = await asyncio.wait_for(closes.get(), timeout())
    assert (event.code, event.reason, event.was_clean) == (4001, "node client says ciao ☃", True)
    assert conn.id == received[0].connection
    assert nbws_server.clients == []


async def test_node_client_sees_the_close_code_and_reason_of_the_nbws_server(nbws_server: nbws.Server) -> None:
    closes: asyncio.Queue[nbws.CloseEvent] = asyncio.Queue()
    nbws_server.on("close", lambda conn, event: closes.put_nowait(event))
    peer = await NodePeer.start("client.js", nbws_server.url, "chat.v1")
    try:
        await peer.expect("open")
        await peer.command(send="close please")
        assert await peer.expect("close") == {"event": "close", "code": 4003, "reason": "nbws server says tschüss"}
    finally:
        await peer.stop()
    event = await asyncio.wait_for(closes.get(), timeout())
    assert (event.code, event.reason, event.was_clean) == (4003, "nbws server says tschüss", True)


# -- websocket-client against nbws.Server ------------------------------------------


def _websocket_client_session(url: str) -> dict[str, object]:
    """What a websocket-client user does, in a thread: connect, talk, close with a code."""
    ws = websocket.create_connection(url, subprotocols=["chat.v1", "chat.v2"], timeout=timeout())
    try:
        protocol = ws.getsubprotocol()
        ws.send("hello from websocket-client ☃")
        text = ws.recv()
        ws.send_binary(b"\x00\x01\xfe\xff")
        opcode, binary = ws.recv_data()
        ws.send("close please")
        # websocket-client answers the close frame but leaves closing the socket to its user.
        close_opcode, close_frame = ws.recv_data(control_frame=True)
    finally:
        ws.shutdown()
    return {
        "protocol": protocol,
        "text": text,
        "binary": binary,
        "opcode": opcode,
        "close_opcode": close_opcode,
        "close_code": int.from_bytes(close_frame[:2], "big"),
        "close_reason": close_frame[2:].decode(),
    }


async def test_websocket_client_talks_to_nbws_server(nbws_server: nbws.Server) -> None:
    result = await asyncio.to_thread(_websocket_client_session, nbws_server.url)
    assert result == {
        "protocol": "chat.v2",
        "text": "nbws: hello from websocket-client ☃",
        "binary": b"nbws: \x00\x01\xfe\xff",
        "opcode": websocket.ABNF.OPCODE_BINARY,
        "close_opcode": websocket.ABNF.OPCODE_CLOSE,
        "close_code": 4003,
        "close_reason": "nbws server says tschüss",
    }


def _websocket_client_closes(url: str) -> None:
    ws = websocket.create_connection(url, subprotocols=["chat.v1"], timeout=timeout())
    ws.send("one last message")
    assert ws.recv() == "nbws: one last message"
    ws.close(status=4004, reason="websocket-client says bye ☃".encode())


async def test_nbws_server_sees_the_close_code_and_reason_of_websocket_client(nbws_server: nbws.Server) -> None:
    closes: asyncio.Queue[tuple[nbws.Connection, nbws.CloseEvent]] = asyncio.Queue()
    nbws_server.on("close", lambda conn, event: closes.put_nowait((conn, event)))
    await asyncio.to_thread(_websocket_client_closes, nbws_server.url)
    conn, event = await asyncio.wait_for(closes.get(), timeout())
    assert (event.code, event.reason) == (4004, "websocket-client says bye ☃")
    assert conn.protocol == "chat.v1"
    assert conn.messages_received == 1 and conn.messages_sent == 1
