"""
The one hook runner: the same semantics for every hook on every path, and hooks that fail closed.

Each test here failed on the main this work started from: an async
``nbws_error`` on the server path was never awaited, a raising
``nbws_handshake`` let the client in, a hung async hook hung ``stop()`` and
``close()`` forever, and a ``CancelledError`` in a hook ended a connection
with no close event.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from _support import StartEchoServer, timeout, until
from _support.raw import handshake_request, raw_client

import nbws

# -- helpers -----------------------------------------------------------------------------


async def client_of(server: nbws.Server, **options: Any) -> nbws.WebSocket:
    ws = nbws.WebSocket(server.url, **options)
    await ws.opened(timeout=timeout())
    await until(lambda: len(server.clients) >= 1, what="the server's side of the connection")
    return ws


class Forever:
    """An async hook that never finishes, and notes that it was cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def wait(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


# -- one runner for every path -------------------------------------------------------------


async def test_an_async_nbws_error_is_awaited_on_the_server_path() -> None:
    seen: list[tuple[Any, str, str | None]] = []

    class Watcher:
        @nbws.hookimpl
        async def nbws_error(self, conn: Any, phase: str, plugin: str | None) -> None:
            await asyncio.sleep(0)
            seen.append((conn, phase, plugin))

    class Broken:
        @nbws.hookimpl
        def nbws_server_start(self) -> None:
            raise RuntimeError("broken at start")

    server = nbws.Server(plugins=[Watcher(), Broken()])
    server.on("error", lambda conn, event: None)
    await server.start()
    try:
        await until(lambda: seen, what="the async nbws_error hook to run")
        assert seen == [(None, "plugin", "Broken")]
        assert server.plugins.info("Broken").errors == 1
    finally:
        await server.stop()


async def test_the_order_is_the_same_on_the_server_path_as_on_connections() -> None:
    order: list[str] = []

    def plugin(name: str, **marks: bool) -> object:
        class P:
            @nbws.hookimpl(**marks)
            def nbws_server_start(self) -> None:
                order.append(name)

            @nbws.hookimpl(**marks)
            def nbws_open(self, conn: Any) -> None:
                order.append(f"{conn.role}:{name}")

        return P()

    nbws.plugins.register(plugin("global-last", trylast=True), name="global-last")
    nbws.plugins.register(plugin("global"), name="global")
    nbws.plugins.register(plugin("global-first", tryfirst=True), name="global-first")
    server = nbws.Server()
    server.plugins.register(plugin("server-a"), name="server-a")
    server.plugins.register(plugin("server-b"), name="server-b")
    await server.start()
    try:
        expected = ["global-first", "server-b", "server-a", "global", "global-last"]
        assert order == expected
        order.clear()
        ws = await client_of(server)
        await until(lambda: len(order) >= 8, what="nbws_open on both sides")
        # Each side in the same order (the client has no server registry).
        assert [x for x in order if x.startswith("server:")] == [f"server:{name}" for name in expected]
        assert [x for x in order if x.startswith("client:")] == [
            "client:global-first",
            "client:global",
            "client:global-last",
        ]
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await server.stop()


async def test_call_lists_are_rebuilt_only_for_the_endpoints_whose_registries_changed(server: nbws.Server) -> None:
    ws = await client_of(server)
    conn = server.clients[0]
    ws.send("hi")
    await ws.recv(timeout=timeout())
    assert ws._hooks._cache and conn._hooks._cache  # the message path filled both caches

    class Observer:
        @nbws.hookimpl
        def nbws_message_received(self) -> None:
            pass

    ws.plugins.register(Observer())  # the client's own registry: the server side is not concerned
    assert not ws._hooks._cache
    assert conn._hooks._cache
    server.plugins.register(Observer())
    assert not conn._hooks._cache
    ws.close()
    await ws.closed(timeout=timeout())


async def test_the_dashboard_hook_goes_through_the_runner_and_counts_faults() -> None:
    class Bad:
        @nbws.hookimpl
        def nbws_panel(self) -> Any:
            raise ValueError("no panel today")

    class Good:
        @nbws.hookimpl
        def nbws_panel(self, dashboard: Any) -> Any:
            return ("good", dashboard)

    nbws.plugins.register(Bad(), name="bad")
    nbws.plugins.register(Good(), name="good")
    results = nbws.plugins.collect("nbws_panel", dashboard="D")
    assert [(r.plugin, r.value, type(r.error)) for r in results] == [
        ("good", ("good", "D"), type(None)),
        ("bad", None, ValueError),
    ]
    assert nbws.plugins.info("bad").errors == 1


# -- access hooks fail closed ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_handshake_hook_that_raises_refuses_the_client_with_500(kind: str) -> None:
    class Auth:
        if kind == "sync":

            @nbws.hookimpl
            def nbws_handshake(self, request: nbws.Request) -> None:
                raise KeyError("users table unavailable")

        else:

            @nbws.hookimpl
            async def nbws_handshake(self, request: nbws.Request) -> None:
                await asyncio.sleep(0)
                raise KeyError("users table unavailable")

    server = nbws.Server(plugins=[Auth()])
    server_errors: list[nbws.ErrorEvent] = []
    server.on("error", lambda conn, event: server_errors.append(event))
    connected: list[nbws.Connection] = []
    server.on("connection", connected.append)
    await server.start()
    try:
        ws = nbws.WebSocket(server.url)
        errors: list[nbws.ErrorEvent] = []
        ws.on("error", errors.append)
        event = await ws.closed(timeout=timeout())
        assert event.code == 1006
        assert "HTTP 500" in errors[0].message
        assert connected == []
        assert [(e.phase, e.plugin) for e in server_errors] == [("plugin", "Auth")]
        assert "refused with HTTP 500" in server_errors[0].message
    finally:
        await server.stop()


async def test_an_async_handshake_hook_may_choose_the_subprotocol_and_add_response_headers() -> None:
    class Upstream:
        @nbws.hookimpl
        async def nbws_handshake(self, request: nbws.Request) -> None:
            await asyncio.sleep(0.01)  # e.g. open an upstream connection first
            request.subprotocol = "chat.v2"  # overrides the server's preference for chat.v1
            request.response_headers.append(("X-Upstream", "ready"))

    server = nbws.Server(protocols=["chat.v1", "chat.v2"], plugins=[Upstream()])
    await server.start()
    try:
        ws = nbws.WebSocket(server.url, ["chat.v1", "chat.v2"])
        await ws.opened(timeout=timeout())
        assert ws.protocol == "chat.v2"
        assert ws.response_headers["X-Upstream"] == "ready"
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await server.stop()


async def test_a_subprotocol_the_client_did_not_offer_is_refused() -> None:
    class Wrong:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            request.subprotocol = "not-offered"

    server = nbws.Server(plugins=[Wrong()])
    server.on("error", lambda conn, event: None)
    await server.start()
    try:
        ws = nbws.WebSocket(server.url, ["chat.v1"])
        errors: list[nbws.ErrorEvent] = []
        ws.on("error", errors.append)
        await ws.closed(timeout=timeout())
        assert "HTTP 500" in errors[0].message
    finally:
        await server.stop()


# -- no hook can hang a connection, close() or stop() ------------------------------------------


async def test_stop_finishes_within_close_timeout_when_a_hook_hangs_and_names_the_plugin() -> None:
    forever = Forever()

    class Stuck:
        @nbws.hookimpl
        async def nbws_message_received(self) -> None:
            await forever.wait()

    server = nbws.Server(plugins=[Stuck()], close_timeout=0.5)
    errors: list[nbws.ErrorEvent] = []
    closes: list[nbws.CloseEvent] = []
    server.on("error", lambda conn, event: errors.append(event))
    server.on("close", lambda conn, event: closes.append(event))
    await server.start()
    ws = await client_of(server)
    ws.send("hold me")
    await asyncio.wait_for(forever.started.wait(), timeout())
    await asyncio.wait_for(server.stop(), timeout(2))
    assert server.clients == []
    assert [event.code for event in closes] == [1001]
    assert forever.cancelled
    assert [(e.phase, e.plugin) for e in errors] == [("plugin", "Stuck")]
    assert "still running when the connection closed" in errors[0].message
    await ws.closed(timeout=timeout())


async def test_close_finishes_within_close_timeout_behind_a_send_hook_that_hangs() -> None:
    forever = Forever()

    class Stuck:
        @nbws.hookimpl
        async def nbws_message_send(self, message: nbws.Message) -> None:
            await forever.wait()

    server = nbws.Server()
    await server.start()
    try:
        ws = await client_of(server, plugins=[Stuck()], close_timeout=0.3)
        errors: list[nbws.ErrorEvent] = []
        ws.on("error", errors.append)
        ws.send("held by the hook")
        await asyncio.wait_for(forever.started.wait(), timeout())
        ws.close(1000, "done")
        event = await ws.closed(timeout=timeout(2))
        assert (event.code, event.reason, event.was_clean) == (1000, "done", True)
        assert [(e.phase, e.plugin) for e in errors] == [("plugin", "Stuck")]
        assert "close_timeout=0.3s" in errors[0].message
        assert ws.messages_sent == 0  # a transform that never finished did not approve its message
    finally:
        await server.stop()


async def test_a_hung_nbws_close_hook_cannot_hold_stop() -> None:
    class Stuck:
        @nbws.hookimpl
        async def nbws_close(self) -> None:
            await asyncio.Event().wait()

    server = nbws.Server(plugins=[Stuck()], close_timeout=0.3)
    errors: list[nbws.ErrorEvent] = []
    server.on("error", lambda conn, event: errors.append(event))
    await server.start()
    ws = await client_of(server)
    await asyncio.wait_for(server.stop(), timeout(2))
    assert [(e.phase, e.plugin) for e in errors] == [("plugin", "Stuck")]
    assert "did not finish within 0.3 s" in errors[0].message
    await ws.closed(timeout=timeout())


async def test_hook_timeout_cancels_a_slow_hook_and_the_connection_carries_on(server: nbws.Server) -> None:
    forever = Forever()

    class Slow:
        @nbws.hookimpl
        async def nbws_message_received(self) -> None:
            await forever.wait()

    ws = await client_of(server, plugins=[Slow()], hook_timeout=0.05)
    errors: list[nbws.ErrorEvent] = []
    ws.on("error", errors.append)
    ws.send("one")
    assert (await ws.recv(timeout=timeout())).data == "echo: one"
    await until(lambda: errors, what="the hook timeout")
    await until(lambda: forever.cancelled, what="the slow hook cancelled")
    assert errors[0].plugin == "Slow" and "did not finish within 0.05 s" in errors[0].message
    ws.send("two")
    assert (await ws.recv(timeout=timeout())).data == "echo: two"
    ws.close()
    await ws.closed(timeout=timeout())


@pytest.mark.parametrize("bad", ["hook_timeout", "handshake_timeout", "close_timeout"])
@pytest.mark.parametrize("value", [0, -1, "1", True])
def test_timeouts_must_be_positive_numbers(bad: str, value: Any) -> None:
    with pytest.raises(ValueError, match=bad):
        nbws.Server(**{bad: value})
    if bad != "handshake_timeout":
        with pytest.raises(ValueError, match=bad):
            nbws.WebSocket("ws://127.0.0.1:9/", **{bad: value})
    assert not nbws.endpoints()


# -- whatever a hook raises, one close event and one nbws_close ------------------------------------


class Counting:
    def __init__(self) -> None:
        self.closes: list[int] = []

    @nbws.hookimpl
    def nbws_close(self, conn: Any, code: int) -> None:
        if conn.role == "server":
            self.closes.append(code)


class _Boom(BaseException):
    pass


@pytest.mark.parametrize("raised", ["cancelled-sync", "cancelled-async", "base-exception"])
async def test_a_hook_raising_a_base_exception_still_gives_one_close_event(
    raised: str, start_echo_server: StartEchoServer
) -> None:
    class Raising:
        @nbws.hookimpl
        def nbws_message_receive(self, conn: Any) -> Any:
            if conn.role != "server":
                return None
            if raised == "cancelled-sync":
                raise asyncio.CancelledError()
            if raised == "base-exception":
                raise _Boom("not an Exception")

            async def later() -> None:
                await asyncio.sleep(0)
                raise asyncio.CancelledError()

            return later()

    counting = Counting()
    server = await start_echo_server(plugins=[Raising(), counting])
    closes: list[nbws.CloseEvent] = []
    errors: list[nbws.ErrorEvent] = []
    server.on("close", lambda conn, event: closes.append(event))
    server.on("error", lambda conn, event: errors.append(event))
    try:
        ws = await client_of(server)
        ws.send("x")
        assert (await ws.recv(timeout=timeout())).data == "x"  # the connection carried on
        assert [(e.phase, e.plugin) for e in errors] == [("plugin", "Raising")]
        ws.close()
        await ws.closed(timeout=timeout())
        await until(lambda: closes, what="the server's close event")
        assert [event.code for event in closes] == [1000]
        assert counting.closes == [1000]
    finally:
        await server.stop()
    assert len(closes) == 1 and counting.closes == [1000]


# -- smaller: codes, keepalive, broadcast -------------------------------------------------------


async def test_close_event_codes_are_plain_ints(server: nbws.Server) -> None:
    ws = await client_of(server)
    codes: list[Any] = []
    server.clients[0].on("close", lambda event: codes.append(event.code))
    await server.stop()
    event = await ws.closed(timeout=timeout())
    await until(lambda: codes, what="the server-side close event")
    assert type(event.code) is int and type(codes[0]) is int
    assert (event.code, codes[0]) == (1001, 1001)


async def test_a_keepalive_timeout_is_reported_as_a_keepalive_timeout() -> None:
    server = nbws.Server(ping_interval=0.05, ping_timeout=0.05, close_timeout=0.1)
    errors: list[nbws.ErrorEvent] = []
    server.on("error", lambda conn, event: errors.append(event))
    await server.start()
    try:
        assert server.port is not None
        _reader, writer = await raw_client(server.port)  # completes the handshake, then never answers a ping
        await until(lambda: errors, what="the keepalive timeout")
        assert "keepalive" in errors[0].message and "ping_timeout" in errors[0].message
        assert "timed out while closing" not in errors[0].message
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()


async def test_broadcast_logs_one_warning_for_all_the_clients_it_skips(caplog: pytest.LogCaptureFixture) -> None:
    server = nbws.Server(max_buffered=64)
    await server.start()
    try:
        clients = [nbws.WebSocket(server.url) for _ in range(5)]
        await asyncio.wait_for(asyncio.gather(*(ws.opened() for ws in clients)), timeout())
        await until(lambda: len(server.clients) == 5, what="5 connections")
        errors: list[nbws.ErrorEvent] = []
        for conn in server.clients:
            conn.on("error", errors.append)  # each connection is still told
        with caplog.at_level(logging.WARNING, logger="nbws"):
            # One message of any size goes out on an idle connection; in the same loop turn the
            # next ones wait behind it, and past max_buffered a broadcast skips every client.
            counts = [server.broadcast("x" * 100)]
            while counts[-1]:
                assert len(counts) < 10, f"no client's buffer filled up: {counts}"
                counts.append(server.broadcast("x" * 100))
            assert counts[0] == 5
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "skipped 5 slow client(s)" in warnings[0].getMessage()
        assert len(errors) == 5
        for ws in clients:
            ws.close()
    finally:
        await server.stop()


# -- connections and handshakes are bounded ---------------------------------------------------


async def test_max_connections_refuses_new_sockets_quickly_and_admits_clients_once_others_leave() -> None:
    server = nbws.Server(max_connections=2, handshake_timeout=30)
    await server.start()
    assert server.port is not None
    try:
        # Two half-open handshakes hold both places.
        holders = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        for _, writer in holders:
            writer.write(b"GET / HTTP/1.1\r\n")
        await until(lambda: server._sockets == 2, what="two sockets counted")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(handshake_request())
        response = await asyncio.wait_for(reader.read(), timeout())
        assert response.startswith(b"HTTP/1.1 503 ")  # refused at once, not after the handshake timeout
        writer.close()
        ws = nbws.WebSocket(server.url)
        errors: list[nbws.ErrorEvent] = []
        ws.on("error", errors.append)
        await ws.closed(timeout=timeout())
        assert "503" in errors[0].message
        holders[0][1].close()
        await until(lambda: server._sockets == 1, what="a place freed")
        ws = nbws.WebSocket(server.url)
        await ws.opened(timeout=timeout())
        ws.close()
        await ws.closed(timeout=timeout())
        holders[1][1].close()
        await holders[0][1].wait_closed()
        await holders[1][1].wait_closed()
    finally:
        await server.stop()


async def test_a_handshake_that_never_completes_is_dropped_after_handshake_timeout() -> None:
    server = nbws.Server(max_connections=1, handshake_timeout=0.2)
    await server.start()
    assert server.port is not None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\n")  # and nothing more
        assert await asyncio.wait_for(reader.read(), timeout()) == b""  # the server closed it
        writer.close()
        ws = nbws.WebSocket(server.url)
        await ws.opened(timeout=timeout())
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await server.stop()
