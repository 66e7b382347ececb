"""
Memory the engine holds for received messages: bounded in bytes, released when a connection ends.

Each test failed on the main this work started from: the recv() buffer was
bounded by a count alone (4,096 messages of up to 1 MiB), and a closed
connection stayed alive through a cycle with its close event until a full
garbage collection.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import psutil
import pytest
from _support import timeout, until

import nbws


async def pushed(server: nbws.Server, ws: nbws.WebSocket, messages: list[str]) -> None:
    """Have ``server`` send ``messages`` to ``ws`` (opened first if need be); return once all arrived."""
    await ws.opened(timeout=timeout())
    await until(lambda: server.clients, what="the connection")
    expected = ws.messages_received + len(messages)
    for message in messages:
        server.clients[0].send(message)
    await until(lambda: ws.messages_received == expected, what=f"{len(messages)} messages")


async def test_the_recv_buffer_is_bounded_in_bytes(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url, recv_buffer_bytes=10_000)
    await pushed(server, ws, [f"{i:04d}" + "x" * 996 for i in range(20)])  # 1,000 bytes each
    assert ws.recv_overflow == 10  # 10 messages of 1,000 bytes kept, the 10 oldest discarded
    first = await ws.recv(timeout=timeout())
    assert str(first.data).startswith("0010")
    ws.close()
    await ws.closed(timeout=timeout())


async def test_the_recv_buffer_keeps_the_newest_recv_buffer_messages_and_warns_once(
    server: nbws.Server, caplog: pytest.LogCaptureFixture
) -> None:
    ws = nbws.WebSocket(server.url, recv_buffer=3)
    await pushed(server, ws, [f"m{i}" for i in range(7)])
    assert ws.recv_overflow == 4
    assert [(await ws.recv(timeout=timeout())).data for _ in range(3)] == ["m4", "m5", "m6"]
    warnings = [r for r in caplog.records if "wait for recv()" in r.getMessage()]
    assert len(warnings) == 1 and "more than 3 messages" in warnings[0].getMessage()
    # The buffer is whole again after it was emptied: three more are kept, none lost.
    await pushed(server, ws, [f"n{i}" for i in range(3)])
    assert ws.recv_overflow == 4
    assert [(await ws.recv(timeout=timeout())).data for _ in range(3)] == ["n0", "n1", "n2"]
    ws.close()
    await ws.closed(timeout=timeout())


async def test_a_connection_with_a_handler_discards_from_its_recv_buffer_quietly(
    server: nbws.Server, caplog: pytest.LogCaptureFixture
) -> None:
    ws = nbws.WebSocket(server.url, recv_buffer=2)
    seen: list[str] = []
    ws.onmessage = lambda message: seen.append(str(message.data))
    await pushed(server, ws, [f"m{i}" for i in range(5)])
    assert ws.recv_overflow == 3 and seen == [f"m{i}" for i in range(5)]
    assert not [r for r in caplog.records if "wait for recv()" in r.getMessage()]
    assert (await ws.recv(timeout=timeout())).data == "m3"
    ws.close()
    await ws.closed(timeout=timeout())


async def test_a_message_for_a_waiting_recv_is_handed_over_not_kept(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url, recv_buffer_bytes=1)
    await ws.opened(timeout=timeout())
    for i in range(3):
        pending = ws.recv(timeout=timeout())
        ws.send(f"m{i}")
        assert (await pending).data == f"echo: m{i}"
    assert ws.recv_overflow == 0
    ws.close()
    await ws.closed(timeout=timeout())


def test_recv_buffer_bytes_must_be_a_positive_int() -> None:
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="recv_buffer_bytes"):
            nbws.Server(recv_buffer_bytes=bad)  # type: ignore[arg-type]


async def delivered(ws: nbws.WebSocket, got: list[int], count: int) -> None:
    await until(lambda: len(got) == count and ws.messages_received == count, what="the messages")


async def test_a_closed_connection_is_freed_at_once_without_a_garbage_collection() -> None:
    server = nbws.Server()
    got: list[int] = []
    server.on("message", lambda conn, message: got.append(1))
    await server.start()
    ws = nbws.WebSocket(server.url)
    observer = _Observer()
    ws.plugins.register(observer)  # the client's own hooks, with its observer runners built
    await ws.opened(timeout=timeout())
    await until(lambda: server.clients, what="the connection")
    conn = server.clients[0]
    for _ in range(5):
        conn.send("x" * 1000)  # kept for a recv() nobody makes
        ws.send("y" * 1000)
    await delivered(ws, got, 5)
    await until(lambda: observer.seen == 10, what="the observer to see 10 messages")
    gc.collect()
    gc.disable()  # only reference counting may free them now
    try:
        client_ref, conn_ref, hooks_ref = weakref.ref(ws), weakref.ref(conn), weakref.ref(ws._hooks)
        ws.close()
        event = await ws.closed(timeout=timeout())
        assert event.target is ws
        await until(lambda: not server.clients, what="the server side to end")
        del ws, conn, event
        await until(lambda: client_ref() is None and conn_ref() is None, what="both ends freed")
        assert hooks_ref() is None, "the client's hooks are freed with it"
    finally:
        gc.enable()
        await server.stop()


async def test_a_flood_of_compressed_megabyte_messages_stays_under_100_mib() -> None:
    """The adversary's flood from issue 10: 1 MB messages that compress to almost nothing."""
    server = nbws.Server()
    received: list[int] = []
    server.on("message", lambda conn, message: received.append(len(message.data)))
    await server.start()
    try:
        ws = nbws.WebSocket(server.url)
        await ws.opened(timeout=timeout())
        process = psutil.Process()
        gc.collect()
        before = process.memory_info().rss
        payload = b"a" * 1_000_000
        count = 150  # 150 MB uncompressed; the old count-only bound would have kept all of it
        for _ in range(count):
            while ws.buffered_amount > 2_000_000:  # a polite sender: the attack is the receiver's memory
                await asyncio.sleep(0.001)
            ws.send(payload)
        await until(lambda: len(received) == count, 30, "the flood to arrive")
        grown = (process.memory_info().rss - before) / 2**20
        assert grown < 100, f"RSS grew by {grown:.0f} MiB"
        assert server.clients[0]._inbox_bytes <= 4 * 2**20
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await server.stop()


class _Observer:
    def __init__(self) -> None:
        self.seen = 0

    @nbws.hookimpl
    def nbws_message_sent(self) -> None:
        self.seen += 1

    @nbws.hookimpl
    def nbws_message_received(self) -> None:
        self.seen += 1
