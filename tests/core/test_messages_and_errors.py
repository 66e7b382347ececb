"""
Papercuts of the first hour, through the public API only (the contract any engine must keep):
large messages (item 4), browser parity (item 7) and errors that teach (item 6).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterable

import pytest
from _support import StartEchoServer, timeout, until

import nbws

# -- item 4: large messages ------------------------------------------------------------------


async def test_one_message_bigger_than_max_buffered_goes_out_on_an_idle_connection(
    start_echo_server: StartEchoServer,
) -> None:
    server = await start_echo_server(max_buffered=1000)
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


async def http_server(status: str, body: bytes) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def connect_error(url: str) -> str:
    ws = nbws.WebSocket(url)
    events: list[str] = []
    ws.onerror = lambda event: events.append(event.message)
    await ws.closed(timeout=timeout())
    assert len(events) == 1, events
    return events[0]


async def test_an_http_page_is_said_to_be_no_websocket_endpoint() -> None:
    http = await http_server("200 OK", b"<html>hello</html>")
    port = http.sockets[0].getsockname()[1]
    message = await connect_error(f"ws://127.0.0.1:{port}/")
    assert "is not a WebSocket endpoint" in message and "HTTP 200 OK" in message
    http.close()


async def test_a_400_shows_the_servers_response_body() -> None:
    http = await http_server("400 Bad Request", b"expected subprotocol: chat.v2\n")
    port = http.sockets[0].getsockname()[1]
    message = await connect_error(f"ws://127.0.0.1:{port}/")
    assert "HTTP 400 Bad Request" in message and "expected subprotocol: chat.v2" in message
    http.close()


async def test_forgetting_await_is_explained(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    pending = ws.recv()
    with pytest.raises(AttributeError, match=r"did you forget 'await'\? .*await ws.recv\(\)"):
        pending.data  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(TypeError, match="read them with 'async for message in ws'"):
        for _message in ws:  # type: ignore[attr-defined]
            pass
    assert not isinstance(ws, Iterable), "a connection is not an Iterable (code that accepts one or many relies on it)"
    with pytest.warns(RuntimeWarning, match=r"opening was never awaited: write 'await ws.opened\(\)'"):
        ws.opened()
        gc.collect()
    await ws.opened(timeout=timeout())  # awaited: no warning
    ws.close()
    await ws.closed(timeout=timeout())


def test_an_empty_url_reads_cleanly() -> None:
    with pytest.raises(nbws.InvalidURLError) as info:
        nbws.WebSocket("")
    assert str(info.value) == "the URL is empty: use ws://host:port/path or wss://..."


async def test_connection_ids_are_consecutive_per_kind(server: nbws.Server) -> None:
    first = nbws.WebSocket(server.url)
    second = nbws.WebSocket(server.url)
    assert int(second.id[1:]) == int(first.id[1:]) + 1, "no server-side id in between"
    for ws in (first, second):
        await ws.opened(timeout=timeout())
    await until(lambda: len(server.clients) == 2, what="two connections")
    ids = [int(conn.id[1:]) for conn in server.clients]
    assert ids[1] == ids[0] + 1 and all(conn.id.startswith("s") for conn in server.clients)
    for ws in (first, second):
        ws.close()
        await ws.closed(timeout=timeout())


async def test_a_failure_to_connect_is_told_once(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/"  # bound, not listening: refused
        with caplog.at_level(logging.WARNING, logger="nbws"):
            awaited = nbws.WebSocket(url)
            with pytest.raises(nbws.ConnectError, match="connection refused"):
                await awaited.opened(timeout=timeout())
        assert caplog.records == [], "the exception says it: no warning as well"

        with caplog.at_level(logging.WARNING, logger="nbws"):
            unwatched = nbws.WebSocket(url)
            await unwatched.closed(timeout=timeout())
        assert [r.getMessage() for r in caplog.records] == [
            f"{unwatched.id} connect error: could not connect to {url}: connection refused, nothing is listening there"
        ]


def test_the_public_classes_can_be_subclassed_in_either_build() -> None:
    # Compiled by mypyc (nbws.COMPILED), a native class refuses Python subclasses unless marked for them.
    class Tagged(nbws.Message):
        __slots__ = ("tag",)

    message = Tagged("hi", "send", seq=1, connection="c1")
    message.tag = "mine"
    message.data = b"changed"
    assert (message.tag, message.data, message.original, message.changed) == ("mine", b"changed", "hi", True)
    for cls in (nbws.OpenEvent, nbws.CloseEvent, nbws.ErrorEvent, nbws.Observers):
        assert issubclass(type(f"My{cls.__name__}", (cls,), {}), cls)
