"""
The in-memory transport (``nbws.testing``) and the layering of the engine.

In memory, a client and a server connection run the same pipeline as over
TCP: websockets' protocol, the hooks, handlers, ``recv()``, limits, flow
control and the closing handshake; only the bytes skip the socket.
"""

from __future__ import annotations

import ast
import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from _support import echo_server, timeout, until

import nbws
from nbws.testing import MemoryTransport, connect

NBWS = Path(nbws.__file__).parent


async def test_a_client_talks_to_a_server_that_never_listened() -> None:
    server = echo_server()
    ws = connect(server, "/room?name=ada")
    await ws.opened(timeout=timeout())
    assert server.port is None  # no socket anywhere
    (conn,) = server.clients
    assert (conn.request.path, conn.request.query) == ("/room", {"name": "ada"})
    ws.send("héllo")
    assert (await ws.recv(timeout=timeout())).data == "héllo"
    ws.send(b"\x00\xff" * 50_000)  # compressed both ways by permessage-deflate
    assert (await ws.recv(timeout=timeout())).data == b"\x00\xff" * 50_000
    ws.close(4001, "bye ✓")
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason, event.was_clean) == (4001, "bye ✓", True)
    await until(lambda: not server.clients, what="the server side to close")
    assert conn.close_event is not None and conn.close_event.code == 4001
    await server.stop()


async def test_hooks_transforms_and_the_handshake_run_as_over_tcp() -> None:
    seen: list[tuple[str, str]] = []

    class Upper:
        @nbws.hookimpl
        def nbws_message_receive(self, conn: Any, message: nbws.Message) -> None:
            seen.append((conn.role, str(message.data)))
            message.data = str(message.data).upper()

    class Gate:
        @nbws.hookimpl
        async def nbws_handshake(self, request: nbws.Request) -> None:
            await asyncio.sleep(0)
            if request.headers.get("X-Key") != "open sesame":
                request.reject(403, "no key")
                return
            request.subprotocol = "chat"
            request.response_headers.append(("X-Gate", "passed"))

    server = echo_server(plugins=[Upper(), Gate()])
    refused = connect(server)
    errors: list[nbws.ErrorEvent] = []
    refused.on("error", errors.append)
    await refused.closed(timeout=timeout())
    assert "HTTP 403" in errors[0].message

    ws = connect(server, headers={"X-Key": "open sesame"}, protocols=["chat"], plugins=[Upper()])
    await ws.opened(timeout=timeout())
    assert (ws.protocol, ws.response_headers["X-Gate"]) == ("chat", "passed")
    ws.send("ping")
    assert (await ws.recv(timeout=timeout())).data == "PING"
    assert seen == [("server", "ping"), ("client", "PING")]
    await server.stop()
    assert (await ws.closed(timeout=timeout())).code == 1001


async def test_limits_hold_in_memory_too() -> None:
    server = echo_server(max_size=1000)
    ws = connect(server)
    await ws.opened(timeout=timeout())
    ws.send("x" * 1001)
    event = await ws.closed(timeout=timeout())
    assert event.code == 1009
    await server.stop()


async def test_a_peer_that_stops_reading_makes_the_sender_buffer_then_refuse() -> None:
    release = asyncio.Event()

    class Stall:
        @nbws.hookimpl
        async def nbws_message_receive(self) -> None:
            await release.wait()  # the client holds delivery: the pipe fills up

    server = nbws.Server(max_buffered=256 * 1024)
    ws = connect(server, plugins=[Stall()], max_size=None)
    await ws.opened(timeout=timeout())
    await until(lambda: server.clients, what="the connection")
    conn = server.clients[0]
    sent = 0
    with pytest.raises(nbws.BufferFullError):
        for _ in range(1000):
            conn.send(os.urandom(16384))  # incompressible
            sent += 1
            await asyncio.sleep(0)  # let the pipe move
    assert 16 <= sent < 1000
    assert conn.buffered_amount <= 256 * 1024 + 2**16  # max_buffered, plus the transport's high-water mark
    release.set()
    await until(lambda: ws.messages_received == sent, what="every accepted message to arrive")
    ws.close()
    await ws.closed(timeout=timeout())
    await server.stop()


async def test_a_reconnecting_client_comes_back_through_memory() -> None:
    server = echo_server()
    ws = nbws.WebSocket(
        "ws://memory/", transport=MemoryTransport(server), reconnect=nbws.Reconnect(0.01, 0.05, jitter=0)
    )
    await ws.opened(timeout=timeout())
    await server.stop()
    await until(lambda: ws.ready_state is not nbws.OPEN, what="the drop")
    ws.send("held while away")
    await server.start()
    await ws.opened(timeout=timeout())
    assert (await ws.recv(timeout=timeout())).data == "held while away"
    ws.close()
    await ws.closed(timeout=timeout())
    await server.stop()


async def test_a_recorder_records_an_in_memory_session() -> None:
    recorder = nbws.Recorder()
    server = echo_server(plugins=[recorder])
    ws = connect(server)
    await ws.opened(timeout=timeout())
    ws.send("one")
    await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())
    await until(lambda: not server.clients, what="the close")
    kinds = [(e.type, e.direction) for e in recorder.recording.events if e.type == "message"]
    assert kinds == [("message", "receive"), ("message", "send")]
    await server.stop()


# -- layering --------------------------------------------------------------------------------

# What nbws may use of websockets: the sans-I/O protocol's documented API, no I/O layer.
PUBLIC_PROTOCOL_API = {
    "accept", "close_code", "close_exc", "close_expected", "close_rcvd", "close_reason", "close_sent",
    "connect", "data_to_send", "events_received", "fail", "handshake_exc", "receive_data", "receive_eof",
    "reject", "select_subprotocol", "send_binary", "send_close", "send_ping", "send_request",
    "send_response", "send_text", "state", "subprotocol",
}  # fmt: skip


def core_modules() -> list[Path]:
    return [path for path in NBWS.glob("*.py")]


def test_the_core_uses_no_private_name_and_no_io_layer_of_websockets() -> None:
    for path in core_modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("websockets"):
                module = node.module or ""
                # cassette.py routes `websockets.connect` to its fake server, so it patches that client;
                # its recording leg still uses it too (to move onto nbws.Relay: see the README).
                io_layer = module.startswith(("websockets.asyncio", "websockets.legacy", "websockets.sync"))
                assert not io_layer or path.name == "cassette.py", f"{path.name} imports websockets' I/O layer {module}"
                for alias in node.names:
                    assert not alias.name.startswith("_"), f"{path.name} imports the private {module}.{alias.name}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("websockets.asyncio"), f"{path.name} imports {alias.name}"
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, (ast.Name, ast.Attribute))
                and (node.value.id if isinstance(node.value, ast.Name) else node.value.attr) in ("proto", "protocol")
                and path.name in ("_protocol.py", "_connection.py", "client.py", "server.py")
            ):
                assert node.attr in PUBLIC_PROTOCOL_API, f"{path.name} uses websockets' protocol.{node.attr}"


def test_the_headless_core_never_imports_the_widgets() -> None:
    for path in core_modules():
        if path.name in ("recording_panels.py",):
            continue  # panels, loaded on first use
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:  # module level: what `import nbws` loads
            if isinstance(node, ast.ImportFrom):
                assert "widgets" not in (node.module or ""), f"{path.name} imports the widgets at import time"
