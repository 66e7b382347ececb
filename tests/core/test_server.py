"""The server behaves like Node's ws: connection, message, close and error events, clients, broadcast, limits."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
from _support import timeout, until

import nbws


async def test_events_mirror_node_ws() -> None:
    events: list[str] = []
    server = nbws.Server()

    @server.on("listening")
    def listening(srv: nbws.Server) -> None:
        events.append(f"listening {srv is server}")

    @server.on("connection")
    def connection(conn: nbws.Connection) -> None:
        events.append(f"connection {conn.role}")
        conn.send("Welcome to the WebSocket server!")
        conn.on("message", lambda message: events.append(f"conn message {message.data}"))
        conn.on("close", lambda event: events.append(f"conn close {event.code}"))

    @server.on("message")
    def message(conn: nbws.Connection, message: nbws.Message) -> None:
        events.append(f"message {message.data}")
        conn.send("Server says: " + str(message.data))

    @server.on("close")
    def close(conn: nbws.Connection, event: nbws.CloseEvent) -> None:
        events.append(f"close {event.code} {event.reason}")

    await server.start()
    ws = nbws.WebSocket(server.url)
    assert (await ws.recv(timeout=timeout())).data == "Welcome to the WebSocket server!"
    ws.send("hi")
    assert (await ws.recv(timeout=timeout())).data == "Server says: hi"
    ws.close(4001, "bye")
    await ws.closed(timeout=timeout())
    await until(lambda: len(events) == 6)
    assert events == [
        "listening True",
        "connection server",
        "conn message hi",
        "message hi",
        "conn close 4001",
        "close 4001 bye",
    ]
    await server.stop()


async def test_port_and_url_are_known_as_soon_as_start_returns() -> None:
    server = nbws.Server()
    with pytest.raises(nbws.InvalidStateError, match=r"call server\.start"):
        _ = server.url
    pending = server.start()  # no await: bound already
    assert server.port and server.url == f"ws://127.0.0.1:{server.port}/"
    assert await pending is server
    assert server.listening
    await server.stop()
    assert not server.listening


async def test_port_in_use_fails_at_start_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = nbws.Server(port=port)
        errors: list[Any] = []
        server.on("error", lambda conn, event: errors.append((conn, event)))
        with pytest.raises(nbws.ServerError, match=f"port {port} on 127.0.0.1 is already in use"):
            server.start()
        assert errors[0][0] is None
        assert errors[0][1].phase == "listen"


async def test_a_start_elsewhere_that_fails_keeps_the_previous_address() -> None:
    """start(host=, port=) that cannot bind names the address it tried and leaves the server stopped where it was."""
    server = nbws.Server()
    errors: list[nbws.ErrorEvent] = []
    server.on("error", lambda conn, event: errors.append(event))
    await server.start()
    url = server.url
    await server.stop()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(nbws.ServerError, match=f"port {port} on 127.0.0.1 is already in use"):
            server.start(port=port)
        with pytest.raises(nbws.ServerError, match=r"host '192\.0\.2\.1'"):
            server.start(host="192.0.2.1", port=port)
        assert (server.host, server.requested_port, server.url) == ("127.0.0.1", 0, url)
        assert repr(server) == f"<Server 127.0.0.1:{url.rsplit(':', 1)[1].rstrip('/')} stopped clients=0>"
        assert [event.phase for event in errors] == ["listen", "listen"]
        assert f"port {port}" in errors[0].message and "192.0.2.1" in errors[1].message
        # Started again, it listens where it was asked to before (any free port), not on the taken one.
        await server.start()
        try:
            assert server.listening and server.port != port and server.requested_port == 0
        finally:
            await server.stop()


async def test_a_server_that_never_started_keeps_no_address_after_a_failed_start() -> None:
    server = nbws.Server(port=0)
    with pytest.raises(nbws.ServerError, match="not an address of this machine"):
        server.start(host="192.0.2.1")
    assert server.host == "127.0.0.1" and server.port is None and not server.listening
    with pytest.raises(nbws.InvalidStateError, match=r"call server\.start"):
        _ = server.url
    # A host name the socket layer cannot even encode: the same ServerError, and the same address kept.
    with pytest.raises(nbws.ServerError, match="not a valid host name"):
        server.start(host="\u00e9" * 70)
    assert server.host == "127.0.0.1" and not server.listening


async def test_report_error_takes_the_servers_own_path(caplog: pytest.LogCaptureFixture) -> None:
    """What code built on a server reports reaches nbws_error, the error listeners and one log line."""
    seen: list[tuple[Any, str, str | None]] = []

    class Watch:
        @nbws.hookimpl
        def nbws_error(self, conn: Any, error: BaseException, phase: str, plugin: str | None) -> None:
            seen.append((conn, phase, plugin))

    caplog.set_level(logging.DEBUG, logger="nbws")
    server = nbws.Server(plugins=[Watch()])
    server.report_error(ValueError("no route"), "handshake", "routing failed: no route")
    assert seen == [(None, "handshake", None)]
    assert [(r.levelno, r.getMessage()) for r in caplog.records if "no route" in r.getMessage()] == [
        (logging.WARNING, "server 127.0.0.1 handshake error: routing failed: no route")
    ]
    events: list[tuple[Any, nbws.ErrorEvent]] = []
    server.on("error", lambda conn, event: events.append((conn, event)))
    caplog.clear()
    server.report_error(KeyError("k"), "plugin", plugin="router")
    assert seen[-1] == (None, "plugin", "router")
    ((conn, event),) = events
    assert conn is None and event.target is server and event.plugin == "router" and event.message == "KeyError: 'k'"
    assert [r.levelno for r in caplog.records if "'k'" in r.getMessage()] == [logging.DEBUG]


def test_bad_server_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="port must be an int from 0 to 65535"):
        nbws.Server(port=70000)
    with pytest.raises(ValueError, match="path must start with '/'"):
        nbws.Server(path="chat")
    with pytest.raises(TypeError, match="origins must be a list"):
        nbws.Server(origins="http://a")  # type: ignore[arg-type]
    with pytest.raises(nbws.ServerError, match="not an address of this machine"):
        nbws.Server(host="192.0.2.1").start()


async def test_clients_and_connection_details() -> None:
    server = nbws.Server()
    await server.start()
    a = nbws.WebSocket(server.url + "room?x=1")
    b = nbws.WebSocket(server.url)
    await a.opened(timeout=timeout())
    await b.opened(timeout=timeout())
    await until(lambda: len(server.clients) == 2)
    first = server.clients[0]
    assert first.role == "server"
    assert first.id.startswith("s")
    assert first.remote_address is not None and first.remote_address[0] == "127.0.0.1"
    assert {c.request.path for c in server.clients} == {"/room", "/"}
    assert any(c.request.query == {"x": "1"} for c in server.clients)
    assert all(c.ready_state == nbws.OPEN for c in server.clients)
    a.close()
    await a.closed(timeout=timeout())
    await until(lambda: len(server.clients) == 1)
    b.close()
    await server.stop()


async def test_broadcast_reaches_every_open_client_except_excluded() -> None:
    server = nbws.Server()
    await server.start()
    clients = [nbws.WebSocket(server.url) for _ in range(5)]
    for ws in clients:
        await ws.opened(timeout=timeout())
    await until(lambda: len(server.clients) == 5)
    excluded = server.clients[0]
    assert server.broadcast("news", exclude=excluded) == 4
    assert server.broadcast(b"\x01", exclude=[excluded]) == 4
    received = []
    for ws in clients[1:]:
        received.append(((await ws.recv(timeout=timeout())).data, (await ws.recv(timeout=timeout())).data))
    assert received == [("news", b"\x01")] * 4
    with pytest.raises(TypeError):
        server.broadcast(42)  # type: ignore[arg-type]
    await server.stop()


async def test_stop_closes_clients_with_1001_and_frees_the_port() -> None:
    server = nbws.Server()
    server_closes: list[int] = []
    server.on("close", lambda conn, event: server_closes.append(event.code))
    await server.start()
    port = server.port
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    await server.stop()
    assert server_closes == [1001]
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.was_clean) == (1001, True)
    again = nbws.Server(port=port)
    await again.start()  # the port is free
    assert again.port == port
    await again.stop()


async def test_server_connection_close_codes() -> None:
    server = nbws.Server()
    server.on("connection", lambda conn: conn.close(1008, "policy"))
    await server.start()
    ws = nbws.WebSocket(server.url)
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason) == (1008, "policy")
    conn_errors = []
    server.off("connection")

    @server.on("connection")
    def bad_close(conn: nbws.Connection) -> None:
        for code in (1005, 1006, 1015, 2000):
            try:
                conn.close(code)
            except ValueError as exc:
                conn_errors.append(str(exc))
        conn.close()

    ws2 = nbws.WebSocket(server.url)
    await ws2.closed(timeout=timeout())
    assert len(conn_errors) == 4
    assert "close code 1005 is not allowed" in conn_errors[0]
    await server.stop()


async def test_path_origins_and_token_reject_at_the_handshake() -> None:
    server = nbws.Server(path="/ws", origins=["http://good.test"], token="s3cret")
    await server.start()
    base = f"ws://127.0.0.1:{server.port}"

    async def outcome(url: str, **kwargs: Any) -> str:
        ws = nbws.WebSocket(url, **kwargs)
        errors: list[nbws.ErrorEvent] = []
        ws.onerror = errors.append
        try:
            await ws.opened(timeout=timeout())
        except nbws.ConnectError:
            return errors[0].message.rsplit("HTTP ", 1)[-1].split(":")[0]  # the status, without the body
        ws.close()
        return "open"

    good = {"origin": "http://good.test"}
    assert await outcome(f"{base}/other?token=s3cret", **good) == "404 Not Found"
    assert await outcome(f"{base}/ws", **good) == "401 Unauthorized"
    assert await outcome(f"{base}/ws?token=wrong", **good) == "401 Unauthorized"
    assert await outcome(f"{base}/ws?token=s3cret", origin="http://evil.test") == "403 Forbidden"
    assert await outcome(f"{base}/ws?token=s3cret", **good) == "open"
    assert await outcome(f"{base}/ws", headers={"Authorization": "Bearer s3cret"}, **good) == "open"
    await server.stop()


async def test_handshake_hook_can_inspect_and_reject() -> None:
    seen: list[str] = []

    class Gate:
        @nbws.hookimpl
        def nbws_handshake(self, server: nbws.Server, request: nbws.Request) -> None:
            seen.append(request.path)
            if request.headers.get("X-Team") != "blue":
                request.reject(403, "blue team only")

    server = nbws.Server(plugins=[Gate()])
    await server.start()
    refused = nbws.WebSocket(server.url)
    with pytest.raises(nbws.ConnectError, match="HTTP 403"):
        await refused.opened(timeout=timeout())
    admitted = nbws.WebSocket(server.url, headers={"X-Team": "blue"})
    await admitted.opened(timeout=timeout())
    assert seen == ["/", "/"]
    admitted.close()
    await server.stop()


async def test_default_bind_is_loopback_only() -> None:
    server = nbws.Server()
    await server.start()
    assert server.host == "127.0.0.1"
    assert server._sock is not None
    assert server._sock.getsockname()[0] == "127.0.0.1"
    await server.stop()


async def test_slow_reader_cannot_make_the_server_buffer_without_bound() -> None:
    server = nbws.Server(max_buffered=64 * 1024, compression=None)
    errors: list[nbws.ErrorEvent] = []
    server.on("error", lambda conn, event: errors.append(event))
    await server.start()
    # A raw client that completes the handshake and then never reads.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await reader.readuntil(b"\r\n\r\n")
    fast = nbws.WebSocket(server.url)
    await fast.opened(timeout=timeout())
    await until(lambda: len(server.clients) == 2)
    slow = server.clients[0]
    chunk = "x" * 16 * 1024
    refused = 0
    for _ in range(2000):  # 32 MB offered to a reader that reads nothing
        try:
            slow.send(chunk)
        except nbws.BufferFullError:
            refused += 1
        await asyncio.sleep(0)
    assert refused > 0
    assert slow._outbox_bytes <= 64 * 1024
    fast.send("unaffected?")
    server.clients[1].send("yes")
    assert (await fast.recv(timeout=timeout())).data == "yes"
    writer.close()
    fast.close()
    await server.stop()


async def test_raising_server_handler_is_reported_and_server_keeps_serving() -> None:
    server = nbws.Server()
    errors: list[tuple[Any, nbws.ErrorEvent]] = []

    @server.on("message")
    def broken(conn: nbws.Connection, message: nbws.Message) -> None:
        if message.data == "boom":
            raise RuntimeError("handler bug")
        conn.send("ok " + str(message.data))

    server.on("error", lambda conn, event: errors.append((conn, event)))
    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ws.send("boom")
    ws.send("after")
    assert (await ws.recv(timeout=timeout())).data == "ok after"
    assert len(errors) == 1
    assert errors[0][0] is server.clients[0]
    assert errors[0][1].phase == "handler"
    assert "handler bug" in errors[0][1].message
    ws.close()
    await server.stop()


def test_sync_context_manager_in_a_plain_thread() -> None:
    # No loop runs in this test: the server lives on nbws's background loop.
    with nbws.Server() as server:
        ws = nbws.WebSocket(server.url)
        server.on("message", lambda conn, message: conn.send(message.data))
        ws.opened().wait(timeout())
        ws.send("blocking")
        assert ws.recv().wait(timeout()).data == "blocking"
        ws.close()
        assert ws.closed().wait(timeout()).code == 1000
    assert not server.listening


async def test_reject_accepts_any_error_status() -> None:
    statuses = iter([430, 429, 302])
    refusals: list[str] = []

    class Gate:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            try:
                request.reject(next(statuses))
            except ValueError as exc:
                refusals.append(str(exc))

    server = nbws.Server(plugins=[Gate()])
    await server.start()
    for expected in ("HTTP 430 Rejected", "HTTP 429 Too Many Requests"):
        with pytest.raises(nbws.ConnectError, match=expected):
            await nbws.WebSocket(server.url).opened(timeout=timeout())
    admitted = nbws.WebSocket(server.url)  # 302 is no error status: refused by reject(), so admitted
    await admitted.opened(timeout=timeout())
    assert refusals == ["reject() takes an HTTP error status from 400 to 599, not 302"]
    admitted.close()
    await server.stop()
