"""
Papercuts of the first hour, through the public API only (the contract any engine must keep):
large messages (item 4), browser parity (item 7) and errors that teach (item 6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
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


# -- item 7: browser parity ------------------------------------------------------------------


async def test_http_and_https_urls_are_accepted_as_browsers_do(server: nbws.Server) -> None:
    http_url = server.url.replace("ws://", "http://")
    ws = nbws.WebSocket(http_url)
    assert ws.url == server.url
    await ws.opened(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())
    secure = nbws.WebSocket("https://127.0.0.1:9/x", reconnect=False)
    assert secure.url == "wss://127.0.0.1:9/x"
    secure.close()
    await secure.closed(timeout=timeout())
    with pytest.raises(nbws.InvalidURLError, match="ftp"):
        nbws.WebSocket("ftp://127.0.0.1/")


async def test_close_while_connecting_moves_to_closing_then_closed(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    assert ws.ready_state is nbws.CONNECTING
    ws.close()
    assert ws.ready_state is nbws.CLOSING, "as in the browser"
    event = await ws.closed(timeout=timeout())
    assert ws.ready_state is nbws.CLOSED and event.code == 1006


@pytest.fixture
async def fed(server: nbws.Server) -> AsyncIterator[nbws.WebSocket]:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    for n in range(5):
        ws.send(str(n))
    await until(lambda: ws.messages_received == 5, what="five echoes")
    yield ws
    ws.close()
    await ws.closed(timeout=timeout())


async def test_recv_latest_skips_old_buffered_messages(fed: nbws.WebSocket) -> None:
    message = await fed.recv(latest=True, timeout=timeout())
    assert message.data == "echo: 4"
    fed.send("next")
    assert (await fed.recv(latest=True, timeout=timeout())).data == "echo: next"


async def test_drain_discards_what_waits_for_recv_and_says_how_many(fed: nbws.WebSocket) -> None:
    assert fed.drain() == 5
    assert fed.drain() == 0
    fed.send("fresh")
    assert (await fed.recv(timeout=timeout())).data == "echo: fresh"


# -- item 6: errors that teach ------------------------------------------------------------------


def test_an_empty_url_reads_cleanly() -> None:
    with pytest.raises(nbws.InvalidURLError) as info:
        nbws.WebSocket("")
    assert str(info.value) == "the URL is empty: use ws://host:port/path or wss://..."
