"""
Faults: a server that stops and comes back while clients keep sending, peers
that vanish without a closing handshake, and a reader too slow to keep up.
"""

from __future__ import annotations

import asyncio
import socket
import tracemalloc
from typing import Any

from _support import StartEchoServer, timeout, until
from _support.raw import close_payload, frame, handshake_request, raw_client, read_close, reset
from websockets.utils import accept_key

import nbws

# -- restart under traffic -------------------------------------------------------------

FAST = nbws.Reconnect(initial_delay=0.01, max_delay=0.05, jitter=0)


async def test_server_restart_while_clients_keep_sending_delivers_each_message_once_in_order() -> None:
    arrived: dict[str, list[int]] = {}

    def record(conn: nbws.Connection, message: nbws.Message) -> None:
        name, number = str(message.data).split(":")
        arrived.setdefault(name, []).append(int(number))

    first = nbws.Server()
    first.on("message", record)
    await first.start()
    assert first.port is not None
    clients = {f"client{i}": nbws.WebSocket(first.url, reconnect=FAST) for i in range(5)}
    errors: list[nbws.ErrorEvent] = []
    for ws in clients.values():
        ws.on("error", errors.append)
    await asyncio.wait_for(asyncio.gather(*(ws.opened() for ws in clients.values())), timeout())

    sent = dict.fromkeys(clients, 0)
    sent_while_away = dict.fromkeys(clients, 0)
    producing = True

    async def produce() -> None:
        # Every client sends without pause, whatever its state: held while reconnecting.
        while producing:
            for name, ws in clients.items():
                if ws.ready_state is not nbws.OPEN:
                    sent_while_away[name] += 1
                sent[name] += 1
                ws.send(f"{name}:{sent[name]}")
            await asyncio.sleep(0)

    producer = asyncio.create_task(produce())
    try:
        await until(lambda: all(len(arrived.get(name, ())) >= 200 for name in clients), 10, "traffic")
        await first.stop()
        await until(lambda: all(ws.ready_state is not nbws.OPEN for ws in clients.values()), what="drop")
        await until(lambda: min(sent_while_away.values()) >= 200, what="sends while away")
        second = nbws.Server(port=first.port)
        second.on("message", record)
        await second.start()
        await asyncio.wait_for(asyncio.gather(*(ws.opened() for ws in clients.values())), timeout())
        marks = dict(sent)
        await until(lambda: all(len(arrived[name]) >= marks[name] + 200 for name in clients), 10, "resumed traffic")
    finally:
        producing = False
        await producer
    await until(lambda: all(len(arrived[name]) >= sent[name] for name in clients), 10, "last messages")
    for name in clients:
        assert arrived[name] == list(range(1, sent[name] + 1)), f"{name}: lost, repeated or reordered messages"
    for ws in clients.values():
        ws.close()
    await asyncio.wait_for(asyncio.gather(*(ws.closed() for ws in clients.values())), timeout())
    await second.stop()
    # Nothing went wrong but reconnection attempts refused while no server listened.
    assert all(event.phase == "connect" and "refused" in event.message for event in errors), errors


# -- peers that vanish ---------------------------------------------------------------


async def test_client_vanishing_with_a_tcp_reset_is_closed_1006_and_freed(server: nbws.Server) -> None:
    closes: asyncio.Queue[tuple[nbws.Connection, nbws.CloseEvent]] = asyncio.Queue()
    errors: list[tuple[nbws.Connection, nbws.ErrorEvent]] = []
    server.on("close", lambda conn, event: closes.put_nowait((conn, event)))
    server.on("error", lambda conn, event: errors.append((conn, event)))
    assert server.port is not None
    _, writer = await raw_client(server.port)
    await until(lambda: len(server.clients) == 1)
    (vanished,) = server.clients
    reset(writer)
    conn, event = await asyncio.wait_for(closes.get(), timeout())
    assert conn is vanished
    assert (event.code, event.was_clean) == (1006, False)
    assert vanished.ready_state is nbws.CLOSED
    assert server.clients == []
    assert [(c, e.phase) for c, e in errors] == [(vanished, "receive")]
    # The server goes on serving.
    async with nbws.WebSocket(server.url) as ws:
        ws.send("still there?")
        assert (await ws.recv(timeout=timeout())).data == "echo: still there?"


async def test_server_vanishing_with_a_tcp_reset_closes_the_client_1006() -> None:
    async def accept_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n"
            b"\x81\x05hello"
        )
        await writer.drain()
        await reader.read(100)  # until the client's first message
        reset(writer)

    raw = await asyncio.start_server(accept_then_reset, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    events: list[Any] = []
    ws = nbws.WebSocket(f"ws://127.0.0.1:{port}/")
    ws.onmessage = events.append
    ws.onerror = events.append
    ws.onclose = events.append
    assert (await ws.recv(timeout=timeout())).data == "hello"
    ws.send("hi")
    event = await ws.closed(timeout=timeout())
    raw.close()
    await raw.wait_closed()
    assert (event.code, event.was_clean) == (1006, False)
    assert [e.type for e in events] == ["message", "error", "close"]
    assert events[1].phase == "receive"


# -- slow readers -----------------------------------------------------------------


async def test_slow_reader_keeps_server_memory_bounded_and_others_unaffected(
    start_echo_server: StartEchoServer,
) -> None:
    limit = 256 * 1024
    server = await start_echo_server(max_buffered=limit, compression=None)
    errors: list[tuple[nbws.Connection, nbws.ErrorEvent]] = []
    server.on("error", lambda conn, event: errors.append((conn, event)))
    assert server.port is not None
    # A client that completes the handshake and then reads nothing, with a small receive window.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(handshake_request())
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout())
    fast = nbws.WebSocket(server.url, compression=None)
    await fast.opened(timeout=timeout())
    await until(lambda: len(server.clients) == 2)
    slow, fast_conn = server.clients
    assert fast_conn.request.headers.get("Sec-WebSocket-Extensions") is None

    chunk = b"x" * 64 * 1024
    offered = refused = 0
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        peak_buffered = 0
        for i in range(100):
            # 64 MB offered to the slow reader, by send() and by broadcast().
            for _ in range(8):
                offered += 1
                try:
                    slow.send(chunk)
                except nbws.BufferFullError:
                    refused += 1
            assert server.broadcast(f"tick {i}") in (1, 2)
            peak_buffered = max(peak_buffered, slow.buffered_amount)
            # Meanwhile the other client talks to the server as if nothing happened.
            fast.send(f"ping {i}")
            assert (await fast.recv(timeout=timeout())).data == f"tick {i}"
            assert (await fast.recv(timeout=timeout())).data == f"ping {i}"
        growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert refused > offered * 0.9
    # What waits for the slow reader: up to max_buffered in nbws, plus websockets' write buffer.
    assert peak_buffered <= limit + 2 * len(chunk) + 64 * 1024
    assert growth < 4 * limit, f"memory grew by {growth} bytes"
    assert all(conn is slow and isinstance(event.error, nbws.BufferFullError) for conn, event in errors)
    assert fast_conn.messages_received == 100 and fast.messages_received == 200
    reset(writer)
    fast.close()
    await fast.closed(timeout=timeout())
    await server.stop()


async def test_a_peer_that_answers_the_close_but_keeps_tcp_open_is_a_clean_close() -> None:
    # websocket-client does this when the server closes and its user does not call shutdown().
    server = nbws.Server(close_timeout=0.5)
    errors: list[nbws.ErrorEvent] = []
    closes: asyncio.Queue[nbws.CloseEvent] = asyncio.Queue()
    server.on("error", lambda conn, event: errors.append(event))
    server.on("close", lambda conn, event: closes.put_nowait(event))
    server.on("message", lambda conn, message: conn.close(4000, "bye"))
    await server.start()
    assert server.port is not None
    reader, writer = await raw_client(server.port)
    writer.write(frame(0x1, b"close please"))
    assert await read_close(reader) == (4000, b"bye")
    writer.write(frame(0x8, close_payload(4000, b"bye")))
    # The server waits for our TCP close until its close_timeout, then closes it.
    started = asyncio.get_running_loop().time()
    event = await asyncio.wait_for(closes.get(), timeout(20))
    # close_timeout=0.5 was honoured (websockets' default would have waited 10 s).
    assert asyncio.get_running_loop().time() - started < timeout(5)
    assert (event.code, event.reason, event.was_clean) == (4000, "bye", True)
    assert errors == []
    assert server.clients == []
    writer.close()
    await server.stop()
