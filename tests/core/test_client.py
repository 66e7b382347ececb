"""The client behaves like the browser's WebSocket: events, actions, states, errors, reconnection."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from _support import StartEchoServer, free_port, timeout, until

import nbws

# -- events and actions ---------------------------------------------------------


async def test_events_fire_in_browser_order(server: nbws.Server) -> None:
    events: list[str] = []
    ws = nbws.WebSocket(server.url)
    ws.onopen = lambda event: (events.append("open"), ws.send("Hello, server!"))
    ws.onmessage = lambda message: (events.append(f"message {message.data}"), ws.close())
    ws.onclose = lambda event: events.append(f"close {event.code} {event.was_clean}")
    ws.onerror = lambda event: events.append("error")
    await ws.closed(timeout=timeout())
    assert events == ["open", "message echo: Hello, server!", "close 1000 True"]


async def test_ready_state_follows_the_lifecycle(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    assert ws.ready_state == nbws.CONNECTING == 0
    await ws.opened(timeout=timeout())
    assert ws.ready_state == nbws.OPEN == 1
    ws.close()
    assert ws.ready_state == nbws.CLOSING == 2
    await ws.closed(timeout=timeout())
    assert ws.ready_state == nbws.CLOSED == 3


async def test_text_is_str_and_binary_is_bytes(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ws.send("text")
    ws.send(b"\x00\xffbinary")
    ws.send(bytearray(b"ba"))
    ws.send(memoryview(b"mv"))
    received = [await ws.recv(timeout=timeout()) for _ in range(4)]
    assert [m.data for m in received] == ["echo: text", b"\x00\xffbinary", b"ba", b"mv"]
    assert [m.is_binary for m in received] == [False, True, True, True]
    assert [m.direction for m in received] == ["receive"] * 4
    assert [m.seq for m in received] == [1, 2, 3, 4]
    assert all(m.connection == ws.id for m in received)
    ws.close()


async def test_listeners_add_and_remove(server: nbws.Server) -> None:
    seen: list[str] = []
    ws = nbws.WebSocket(server.url)

    @ws.on("message")
    def first(message: nbws.Message) -> None:
        seen.append("first " + str(message.data))

    def second(message: nbws.Message) -> None:
        seen.append("second " + str(message.data))

    ws.on("message", second)
    await ws.opened(timeout=timeout())
    ws.send("a")
    await ws.recv(timeout=timeout())
    ws.off("message", first)
    ws.send("b")
    await ws.recv(timeout=timeout())
    assert seen == ["first echo: a", "second echo: a", "second echo: b"]
    with pytest.raises(ValueError, match="unknown event 'mesage'"):
        ws.on("mesage", second)
    with pytest.raises(TypeError, match="callable"):
        ws.on("message", "not a function")  # type: ignore[arg-type]
    for on in (ws.on, ws.off, server.on):  # not a name: a TypeError in both builds (the compiled one checks first)
        with pytest.raises(TypeError):
            on(5, second)  # type: ignore[arg-type]
    ws.close()


async def test_async_handlers_run(server: nbws.Server) -> None:
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def onmessage(message: nbws.Message) -> None:
        await asyncio.sleep(0)
        got.set_result(str(message.data))

    ws = nbws.WebSocket(server.url)
    ws.onmessage = onmessage
    await ws.opened(timeout=timeout())
    ws.send("async")
    assert await asyncio.wait_for(got, timeout()) == "echo: async"
    ws.close()


async def test_async_for_yields_messages_until_close(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    for word in ("one", "two", "three"):
        ws.send(word)
    seen = []
    async for message in ws:
        seen.append(message.data)
        if len(seen) == 3:
            ws.close()
    assert seen == ["echo: one", "echo: two", "echo: three"]
    with pytest.raises(nbws.ConnectionClosed) as info:
        await ws.recv(timeout=timeout())
    assert info.value.code == 1000


async def test_sends_before_close_are_delivered_first(server: nbws.Server) -> None:
    arrived: list[str] = []
    done = asyncio.Event()
    server.on("message", lambda conn, message: arrived.append(str(message.data)))
    server.on("close", lambda conn, event: done.set())
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    for i in range(100):
        ws.send(f"m{i}")
    ws.close(4000, "done")
    await asyncio.wait_for(done.wait(), timeout())
    assert arrived == [f"m{i}" for i in range(100)]
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason, event.was_clean) == (4000, "done", True)


async def test_protocols_headers_and_origin_reach_the_server() -> None:
    seen: dict[str, Any] = {}

    server = nbws.Server(protocols=["chat.v2", "chat.v1"])

    @server.on("connection")
    def record(conn: nbws.Connection) -> None:
        seen["headers"] = conn.request.headers
        seen["subprotocols"] = conn.request.subprotocols
        seen["protocol"] = conn.protocol

    await server.start()
    ws = nbws.WebSocket(server.url, ["chat.v1", "chat.v2"], headers={"X-Trace": "abc"}, origin="http://notebook.test")
    await ws.opened(timeout=timeout())
    assert ws.protocol == "chat.v2"
    assert seen["protocol"] == "chat.v2"
    assert seen["subprotocols"] == ["chat.v1", "chat.v2"]
    assert seen["headers"]["X-Trace"] == "abc"
    assert seen["headers"]["Origin"] == "http://notebook.test"
    assert "Sec-WebSocket-Protocol" in ws.response_headers
    ws.close()
    await server.stop()


async def test_buffered_amount_counts_unwritten_bytes(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ws.send("x" * 1000)
    assert ws.buffered_amount >= 1000
    await ws.recv(timeout=timeout())
    await until(lambda: ws.buffered_amount == 0)
    ws.close()


# -- bad input from the caller ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["example.com", "ws://", "ws://host:notaport/", "ws://host/#frag", "ftp://x"],
)
def test_bad_url_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError, match=r"WebSocket URL|fragment") as info:
        nbws.WebSocket(url)
    assert isinstance(info.value, nbws.InvalidURLError)


def test_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="url must be a str"):
        nbws.WebSocket(b"ws://x/")  # type: ignore[arg-type]


@pytest.mark.parametrize("protocols", [["a b"], ["x", "x"], [""], [3]])
def test_bad_subprotocols_raise(protocols: Any) -> None:
    with pytest.raises(ValueError, match="subprotocol"):
        nbws.WebSocket("ws://127.0.0.1:1/", protocols)


async def test_send_rejects_other_types(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    for bad in (123, None, {"a": 1}, ["x"], 1.5):
        with pytest.raises(TypeError, match="send\\(\\) takes str"):
            ws.send(bad)  # type: ignore[arg-type]
    ws.close()


async def test_send_while_connecting_or_closed_raises_invalid_state(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    with pytest.raises(nbws.InvalidStateError, match="still connecting"):
        ws.send("too early")
    await ws.opened(timeout=timeout())
    ws.close()
    with pytest.raises(nbws.InvalidStateError, match="closing"):
        ws.send("too late")
    await ws.closed(timeout=timeout())
    with pytest.raises(nbws.InvalidStateError, match="closed"):
        ws.send("too late")


@pytest.mark.parametrize("code", [999, 1001, 1005, 1006, 2999, 5000, 1011])
async def test_close_codes_follow_browser_rules(server: nbws.Server, code: int) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    with pytest.raises(ValueError, match=f"close code {code} is not allowed"):
        ws.close(code)
    assert ws.ready_state == nbws.OPEN
    ws.close()


async def test_close_reason_at_most_123_bytes(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    with pytest.raises(ValueError, match="124 bytes"):
        ws.close(1000, "x" * 124)
    with pytest.raises(ValueError, match="at most 123"):
        ws.close(1000, "é" * 62)
    ws.close(1000, "é" * 61)
    event = await ws.closed(timeout=timeout())
    assert event.reason == "é" * 61


async def test_buffer_limit_refuses_instead_of_dropping(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url, max_buffered=10)
    await ws.opened(timeout=timeout())
    ws.send("0123456789")
    with pytest.raises(nbws.BufferFullError, match="max_buffered is 10"):
        ws.send("x")
    ws.close()


# -- failures become an error event then a close event ------------------------------------


async def error_then_close(url: str, seconds: float = 5.0) -> tuple[nbws.WebSocket, nbws.ErrorEvent, nbws.CloseEvent]:
    """Connect to ``url`` and wait until the client is closed, checking that an error came first, then the close."""
    events: list[Any] = []
    ws = nbws.WebSocket(url)
    ws.onerror = events.append
    ws.onclose = events.append
    await ws.closed(timeout=timeout(seconds))
    assert [e.type for e in events] == ["error", "close"]
    return ws, events[0], events[1]


async def test_connection_refused_is_error_then_close() -> None:
    ws, error, event = await error_then_close(f"ws://127.0.0.1:{free_port()}/")
    assert "connection refused" in error.message
    assert error.phase == "connect"
    assert (event.code, event.was_clean) == (1006, False)
    with pytest.raises(nbws.ConnectError, match="connection refused"):
        await ws.opened(timeout=timeout())


async def test_unknown_host_is_error_then_close() -> None:
    _, error, event = await error_then_close("ws://no-such-host.invalid:80/", 15)
    assert "cannot resolve host 'no-such-host.invalid'" in error.message
    assert event.code == 1006


async def test_rejected_handshake_is_error_then_close() -> None:
    server = nbws.Server(token="s3cret")
    await server.start()
    _, error, _ = await error_then_close(server.url)
    assert "HTTP 401" in error.message
    assert error.phase == "handshake"
    await server.stop()


async def test_close_while_connecting_closes_with_1006() -> None:
    ws = nbws.WebSocket(f"ws://127.0.0.1:{free_port()}/", reconnect={"initial_delay": 10, "max_delay": 10})
    ws.close()
    event = await ws.closed(timeout=timeout())
    assert event.code == 1006
    assert ws.ready_state == nbws.CLOSED


async def test_opened_times_out_with_a_clear_error() -> None:
    # A listening socket that never answers the handshake.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        ws = nbws.WebSocket(f"ws://127.0.0.1:{sock.getsockname()[1]}/", open_timeout=30)
        with pytest.raises(nbws.TimeoutError, match="still waiting after"):
            await ws.opened(timeout=0.05)
        ws.close()
        await ws.closed(timeout=timeout())


async def test_invalid_utf8_from_peer_is_error_then_close_1007() -> None:
    server = nbws.Server()

    @server.on("connection")
    async def send_bad_text(conn: nbws.Connection) -> None:
        # Write a raw text frame with invalid UTF-8, bypassing every check.
        assert conn._ws is not None
        conn._ws.transport.write(b"\x81\x02\xc3\x28")

    await server.start()
    _, error, event = await error_then_close(server.url)
    assert "invalid UTF-8" in error.message
    assert event.code == 1007
    await server.stop()


async def test_oversize_message_closes_that_connection_with_1009(start_echo_server: StartEchoServer) -> None:
    server = await start_echo_server(max_size=1000)
    closes: list[nbws.CloseEvent] = []
    errors: list[nbws.ErrorEvent] = []
    server.on("close", lambda conn, event: closes.append(event))
    server.on("error", lambda conn, event: errors.append(event))
    big = nbws.WebSocket(server.url)
    small = nbws.WebSocket(server.url)
    await big.opened(timeout=timeout())
    await small.opened(timeout=timeout())
    big.send("x" * 1001)
    event = await big.closed(timeout=timeout())
    assert event.code == 1009
    assert "message too big" in errors[0].message
    assert closes[0].code == 1009
    small.send("still here")
    assert (await small.recv(timeout=timeout())).data == "still here"
    small.close()
    await server.stop()


async def test_dropped_connection_ends_with_1006(server: nbws.Server) -> None:
    events: list[Any] = []
    ws = nbws.WebSocket(server.url)
    ws.onerror = events.append
    ws.onclose = events.append
    await ws.opened(timeout=timeout())
    assert ws._ws is not None
    server.clients[0]._ws.transport.abort()  # type: ignore[union-attr]
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.was_clean) == (1006, False)
    assert [e.type for e in events] == ["error", "close"]


# -- handlers that raise ---------------------------------------------------------------


async def test_raising_handler_is_reported_and_messages_keep_flowing(server: nbws.Server) -> None:
    errors: list[nbws.ErrorEvent] = []
    ws = nbws.WebSocket(server.url)

    def broken(message: nbws.Message) -> None:
        raise RuntimeError("handler bug")

    ws.onmessage = broken
    ws.onerror = errors.append
    await ws.opened(timeout=timeout())
    ws.send("one")
    ws.send("two")
    assert (await ws.recv(timeout=timeout())).data == "echo: one"
    assert (await ws.recv(timeout=timeout())).data == "echo: two"
    assert len(errors) == 2
    assert errors[0].phase == "handler"
    assert "handler bug" in errors[0].message
    assert ws.ready_state == nbws.OPEN
    ws.close()


async def test_raising_async_handler_is_reported(server: nbws.Server) -> None:
    errors: list[nbws.ErrorEvent] = []
    got_error = asyncio.Event()
    ws = nbws.WebSocket(server.url)

    async def broken(message: nbws.Message) -> None:
        raise RuntimeError("async handler bug")

    def onerror(event: nbws.ErrorEvent) -> None:
        errors.append(event)
        got_error.set()

    ws.onmessage = broken
    ws.onerror = onerror
    await ws.opened(timeout=timeout())
    ws.send("x")
    await asyncio.wait_for(got_error.wait(), timeout())
    assert "async handler bug" in errors[0].message
    ws.close()


async def test_raising_error_handler_does_not_loop(server: nbws.Server) -> None:
    calls = []

    def onerror(event: nbws.ErrorEvent) -> None:
        calls.append(event)
        raise RuntimeError("error handler bug")

    def onmessage(message: nbws.Message) -> None:
        raise RuntimeError("handler bug")

    ws = nbws.WebSocket(server.url)
    ws.onmessage = onmessage
    ws.onerror = onerror
    await ws.opened(timeout=timeout())
    ws.send("x")
    assert (await ws.recv(timeout=timeout())).data == "echo: x"
    assert len(calls) == 1
    ws.close()


# -- reconnection ----------------------------------------------------------------------


FAST = nbws.Reconnect(initial_delay=0.01, max_delay=0.05, jitter=0)


async def test_reconnects_after_server_restart_and_delivers_queue_in_order() -> None:
    server = nbws.Server()
    arrived: list[str] = []
    server.on("message", lambda conn, message: arrived.append(str(message.data)))
    await server.start()
    port = server.port
    opens: list[str] = []
    closes: list[int] = []
    ws = nbws.WebSocket(server.url, reconnect=FAST)
    ws.onopen = lambda event: opens.append("open")
    ws.onclose = lambda event: closes.append(event.code)
    await ws.opened(timeout=timeout())
    ws.send("before")
    await until(lambda: arrived == ["before"])
    await server.stop()
    await until(lambda: closes == [1001])
    for i in range(50):
        ws.send(f"queued {i}")  # held while reconnecting
    assert ws.ready_state in (nbws.CONNECTING, nbws.CLOSED)
    restarted = nbws.Server(port=port)
    restarted.on("message", lambda conn, message: arrived.append(str(message.data)))
    await restarted.start()
    await ws.opened(timeout=timeout())
    await until(lambda: len(arrived) == 51)
    assert arrived == ["before"] + [f"queued {i}" for i in range(50)]
    assert opens == ["open", "open"]
    ws.close()
    await ws.closed(timeout=timeout())
    await restarted.stop()


async def test_reconnect_hook_reports_attempts_and_backoff_grows() -> None:
    delays: list[tuple[int, float]] = []

    class Watch:
        @nbws.hookimpl
        def nbws_reconnect(self, conn: nbws.WebSocket, attempt: int, delay: float) -> None:
            delays.append((attempt, delay))

    policy = nbws.Reconnect(initial_delay=0.001, max_delay=0.004, factor=2, jitter=0, max_attempts=4)
    ws = nbws.WebSocket(f"ws://127.0.0.1:{free_port()}/", reconnect=policy, plugins=[Watch()])
    with pytest.raises(nbws.ConnectError):
        await ws.opened(timeout=timeout())
    assert delays == [(1, 0.001), (2, 0.002), (3, 0.004), (4, 0.004)]
    assert ws.ready_state == nbws.CLOSED


def test_reconnect_policy_validates_and_jitters() -> None:
    with pytest.raises(ValueError, match="factor"):
        nbws.Reconnect(factor=0.5)
    with pytest.raises(ValueError, match="max_attempts"):
        nbws.Reconnect(max_attempts=0)
    with pytest.raises(TypeError, match="reconnect must be"):
        nbws.WebSocket("ws://127.0.0.1:1/", reconnect="yes")  # type: ignore[arg-type]
    policy = nbws.Reconnect(initial_delay=1, max_delay=8, jitter=0.5)
    samples = [policy.delay(3) for _ in range(200)]
    assert all(2.0 <= s <= 4.0 for s in samples)
    assert len(set(samples)) > 1


async def test_close_stops_reconnecting() -> None:
    ws = nbws.WebSocket(f"ws://127.0.0.1:{free_port()}/", reconnect=FAST)
    closes: list[int] = []
    ws.onclose = lambda event: (closes.append(event.code), ws.close() if len(closes) == 3 else None)
    event = await ws.closed(timeout=timeout())
    assert event.code == 1006
    assert len(closes) == 3
    assert ws.ready_state == nbws.CLOSED


async def test_async_context_manager_opens_and_closes(server: nbws.Server) -> None:
    async with nbws.WebSocket(server.url) as ws:
        assert ws.ready_state == nbws.OPEN
        ws.send("ctx")
        assert (await ws.recv(timeout=timeout())).data == "echo: ctx"
    assert ws.ready_state == nbws.CLOSED
