"""
The send path keeps its promises whichever way a message takes.

``send()`` writes a message itself when the writer task is idle and no
transform is registered, and leaves it to the writer otherwise (see
``BaseConnection._write_now``). Plugins, handlers and the peer must not be
able to tell: the order of messages and of hook calls, the observers' view,
``buffered_amount`` and sends from other threads are the same either way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _support import timeout, until

import nbws


class Trace:
    """An observer that notes every message it sees, on both sides, in one list."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    @nbws.hookimpl
    def nbws_message_sent(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.log.append(f"{self.name} {conn.role} sent {message.data!r} #{message.seq}")

    @nbws.hookimpl
    def nbws_message_received(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.log.append(f"{self.name} {conn.role} received {message.data!r} #{message.seq}")


async def test_an_echo_server_observes_each_message_received_before_its_reply_sent(server: nbws.Server) -> None:
    log: list[str] = []
    nbws.plugins.register(Trace("t", log))
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    for text in ("one", "two"):
        ws.send(text)
        await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())
    assert log == [
        "t client sent 'one' #1",
        "t server received 'one' #1",
        "t server sent 'echo: one' #1",
        "t client received 'echo: one' #1",
        "t client sent 'two' #2",
        "t server received 'two' #2",
        "t server sent 'echo: two' #2",
        "t client received 'echo: two' #2",
    ]


async def test_a_burst_is_written_and_observed_in_order(server: nbws.Server) -> None:
    log: list[str] = []
    ws = nbws.WebSocket(server.url, plugins=[Trace("t", log)])
    await ws.opened(timeout=timeout())
    for i in range(200):
        ws.send(f"m{i}")
    echoes = [(await ws.recv(timeout=timeout())).data for _ in range(200)]
    assert echoes == [f"echo: m{i}" for i in range(200)]
    sent = [line for line in log if " sent " in line]
    assert sent == [f"t client sent 'm{i}' #{i + 1}" for i in range(200)]
    assert ws.messages_sent == 200 and ws.bytes_sent == sum(len(f"m{i}") for i in range(200))
    ws.close()


async def test_an_async_observer_finishes_before_the_next_message_is_observed(server: nbws.Server) -> None:
    log: list[str] = []

    class Slow:
        @nbws.hookimpl
        async def nbws_message_sent(self, message: nbws.Message) -> None:
            log.append(f"start {message.data}")
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            log.append(f"end {message.data}")

    ws = nbws.WebSocket(server.url, plugins=[Slow(), Trace("after", log)])
    await ws.opened(timeout=timeout())
    ws.send("a")
    ws.send("b")
    assert (await ws.recv(timeout=timeout())).data == "echo: a"
    assert (await ws.recv(timeout=timeout())).data == "echo: b"
    await until(lambda: len([line for line in log if line.startswith("after")]) == 4)
    ws.close()
    # Plugins registered later run first (pluggy's order): Trace, then Slow, for each message.
    sent = [line for line in log if "received" not in line]
    assert sent == ["after client sent 'a' #1", "start a", "end a", "after client sent 'b' #2", "start b", "end b"]


async def test_a_message_sent_by_an_observer_comes_after_every_observer_of_the_first(server: nbws.Server) -> None:
    log: list[str] = []

    class Chatty:
        @nbws.hookimpl
        def nbws_message_sent(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
            if message.data == "hello":
                conn.send("world")

    ws = nbws.WebSocket(server.url, plugins=[Trace("B", log), Chatty(), Trace("A", log)])
    await ws.opened(timeout=timeout())
    ws.send("hello")
    assert [(await ws.recv(timeout=timeout())).data for _ in range(2)] == ["echo: hello", "echo: world"]
    ws.close()
    sent = [line for line in log if " sent " in line]
    assert sent == [
        "A client sent 'hello' #1",
        "B client sent 'hello' #1",
        "A client sent 'world' #2",
        "B client sent 'world' #2",
    ]


async def test_closing_right_after_sending_still_observes_and_delivers_the_message(server: nbws.Server) -> None:
    log: list[str] = []
    received: list[Any] = []
    server.on("message", lambda conn, message: received.append(message.data))
    ws = nbws.WebSocket(server.url, plugins=[Trace("t", log)])
    await ws.opened(timeout=timeout())
    ws.send("last words")
    ws.close(4000, "bye")
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.was_clean) == (4000, True)
    assert received == ["last words"]
    # The server may echo before it reads the close frame (a peer may send data until its own
    # close, RFC 6455 section 5.5.1): the echo is then received too, after what was sent.
    assert log[0] == "t client sent 'last words' #1"
    assert log[1:] in ([], ["t client received 'echo: last words' #1"])


async def test_buffered_amount_counts_a_message_until_the_loop_turns(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url, compression=None)
    await ws.opened(timeout=timeout())
    ws.send(b"x" * 5000)
    ws.send("é" * 100)  # 200 bytes in UTF-8
    assert ws.buffered_amount >= 5200
    await until(lambda: ws.buffered_amount == 0)
    assert ws.bytes_sent == 5200
    ws.close()


async def test_sends_from_other_threads_keep_their_order(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())

    def from_a_thread() -> None:
        for i in range(100):
            ws.send(f"t{i}")

    await asyncio.to_thread(from_a_thread)
    ws.send("from the loop")
    echoes = [(await ws.recv(timeout=timeout())).data for _ in range(101)]
    assert echoes == [f"echo: t{i}" for i in range(100)] + ["echo: from the loop"]
    ws.close()


async def test_a_transform_still_sees_and_may_drop_every_message(server: nbws.Server) -> None:
    class Censor:
        @nbws.hookimpl
        def nbws_message_send(self, message: nbws.Message) -> None:
            if message.data == "secret":
                message.drop()
            else:
                message.data = str(message.data).upper()

    ws = nbws.WebSocket(server.url, plugins=[Censor()])
    await ws.opened(timeout=timeout())
    for text in ("a", "secret", "b"):
        ws.send(text)
    assert [(await ws.recv(timeout=timeout())).data for _ in range(2)] == ["echo: A", "echo: B"]
    assert ws.messages_sent == 2
    ws.close()


async def test_byte_counters_count_utf8_bytes_both_ways(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ws.send("é☃")  # 2 characters, 5 bytes in UTF-8
    echo = await ws.recv(timeout=timeout())
    assert echo.data == "echo: é☃" and echo.size == 11
    conn = server.clients[0]
    assert (ws.bytes_sent, conn.bytes_received) == (5, 5)
    assert (conn.bytes_sent, ws.bytes_received) == (11, 11)
    ws.close()


# -- the receive path: recv() on the connection's loop is a future the reader fulfils --------


async def test_concurrent_recvs_get_messages_in_the_order_they_were_called(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    first, second, third = ws.recv(timeout=timeout()), ws.recv(timeout=timeout()), ws.recv(timeout=timeout())
    for text in ("a", "b", "c"):
        ws.send(text)
    assert [(await p).data for p in (third, first, second)] == ["echo: c", "echo: a", "echo: b"]
    ws.close()


async def test_a_recv_that_timed_out_or_was_cancelled_takes_no_message(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    try:
        await ws.recv(timeout=0.01)
        raise AssertionError("recv() returned with nothing sent")
    except nbws.TimeoutError as exc:
        assert "recv: still waiting after 0.01 seconds" in str(exc)
    try:
        # wait_for() cancels the recv() it gave up on.
        await asyncio.wait_for(_await(ws.recv()), 0.01)
        raise AssertionError("recv() returned with nothing sent")
    except asyncio.TimeoutError:
        pass
    ws.send("kept")
    assert (await ws.recv(timeout=timeout())).data == "echo: kept"
    ws.close()


async def _await(pending: nbws.Pending[nbws.Message]) -> nbws.Message:
    return await pending


async def test_a_recv_not_awaited_is_under_way_and_keeps_its_message(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    early = ws.recv()
    ws.send("one")
    ws.send("two")
    assert (await ws.recv(timeout=timeout())).data == "echo: two"
    assert early.done() and early.result().data == "echo: one"
    ws.close()


async def test_messages_left_after_close_are_received_then_recv_raises(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    pending = ws.recv()
    ws.send("x")
    ws.send("y")
    await until(lambda: pending.done() and ws.messages_received == 2)
    ws.close()
    await ws.closed(timeout=timeout())
    assert (await ws.recv(timeout=timeout())).data == "echo: y"
    try:
        await ws.recv(timeout=timeout())
        raise AssertionError("recv() returned after the last message")
    except nbws.ConnectionClosed as exc:
        assert exc.code == 1000


async def test_recv_from_another_thread_and_from_the_loop_share_one_order(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    for i in range(20):
        ws.send(f"m{i}")
    in_thread = await asyncio.to_thread(lambda: [ws.recv().wait(timeout()).data for _ in range(10)])
    in_loop = [(await ws.recv(timeout=timeout())).data for _ in range(10)]
    assert in_thread + in_loop == [f"echo: m{i}" for i in range(20)]
    ws.close()
