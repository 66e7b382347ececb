"""
Papercuts of the first hour, through the public API only (the contract any engine must keep):
large messages (item 4), browser parity (item 7) and errors that teach (item 6).
"""

from __future__ import annotations

from _waits import until
from conftest import timeout

import nbws

# -- item 4: large messages ------------------------------------------------------------------


async def test_one_message_bigger_than_max_buffered_goes_out_on_an_idle_connection() -> None:
    server = nbws.Server(max_buffered=1000)
    server.on("message", lambda conn, message: conn.send(message.data))
    await server.start()
    ws = nbws.WebSocket(server.url, max_buffered=1000)
    await ws.opened(timeout=timeout())
    big = "x" * 5000  # five times max_buffered: the browser sends it, so must we
    ws.send(big)
    echo = await ws.recv(timeout=timeout())
    assert echo.data == big, "the server echoed it too, though it is over its own max_buffered"
    ws.close()
    await ws.closed(timeout=timeout())
    await server.stop()


async def test_broadcast_of_a_message_bigger_than_max_buffered_reaches_every_client() -> None:
    server = nbws.Server(max_buffered=1000)
    await server.start()
    clients = [nbws.WebSocket(server.url) for _ in range(3)]
    for ws in clients:
        await ws.opened(timeout=timeout())
    await until(lambda: len(server.clients) == 3, what="three clients")
    errors: list[str] = []
    server.on("error", lambda conn, event: errors.append(event.message))
    assert server.broadcast(b"\x01" * 5000) == 3
    for ws in clients:
        assert (await ws.recv(timeout=timeout())).data == b"\x01" * 5000
    assert errors == []
    for ws in clients:
        ws.close()
        await ws.closed(timeout=timeout())
    await server.stop()


async def test_a_client_takes_a_3_mb_message_by_default_while_the_server_keeps_1_mib() -> None:
    big = b"\xab" * 3_000_000
    server = nbws.Server()
    server.on("connection", lambda conn: conn.send(big))
    await server.start()
    ws = nbws.WebSocket(server.url)
    assert (await ws.recv(timeout=timeout(10))).data == big
    ws.send(big)  # the server's 1 MiB default still protects it: 1009
    event = await ws.closed(timeout=timeout(10))
    assert event.code == 1009
    await server.stop()
