"""
A relay's errors go where every endpoint's go: the ``nbws_error`` hooks, the ``error``
listeners, and one line of the default plugin ``"nbws.errors"`` (a warning if nobody listened).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from _support import StartEchoServer, free_port, timeout, until

import nbws


class SeesErrors:
    """A plugin that keeps what ``nbws_error`` was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[nbws.BaseConnection | None, BaseException, str]] = []

    @nbws.hookimpl
    def nbws_error(self, conn: nbws.BaseConnection | None, error: BaseException, phase: str) -> None:
        self.seen.append((conn, error, phase))


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger="nbws")
    yield caplog


def lines_about(caplog: pytest.LogCaptureFixture, text: str, but_not: str) -> list[tuple[int, str]]:
    """The log lines that mention ``text``, leaving out those of the relayed client (``but_not``, its id)."""
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if text in record.getMessage() and not record.getMessage().startswith(f"{but_not} ")
    ]


async def refused_by(relay: nbws.Relay) -> nbws.WebSocket:
    """A client of ``relay`` that it answers with 502 (its upstream failed); returned for its id."""
    ws = nbws.WebSocket(relay.url)
    with pytest.raises(nbws.ConnectError, match="HTTP 502"):
        await ws.opened(timeout=timeout())
    return ws


async def test_an_unreachable_upstream_reaches_the_plugins_and_is_logged_once(
    logged: pytest.LogCaptureFixture,
) -> None:
    upstream = f"ws://127.0.0.1:{free_port()}/"
    plugin = SeesErrors()
    relay = nbws.Relay(upstream, plugins=[plugin])
    await relay.start()
    try:
        ws = await refused_by(relay)
        ((conn, error, phase),) = plugin.seen
        assert isinstance(conn, nbws.WebSocket) and conn.url == upstream and phase == "connect"
        assert isinstance(error, ConnectionRefusedError)
        # Nobody listens to the relay's errors: one warning, from "nbws.errors", naming the upstream leg.
        lines = lines_about(logged, "connection refused", but_not=ws.id)
        assert lines == [(logging.WARNING, f"{conn.id} connect error: could not connect to {upstream}: "
                          "connection refused, nothing is listening there")]  # fmt: skip
    finally:
        await relay.stop()


async def test_a_relay_listener_takes_the_error_and_the_log_says_it_once_as_debug(
    logged: pytest.LogCaptureFixture,
) -> None:
    relay = nbws.Relay(f"ws://127.0.0.1:{free_port()}/")
    heard: list[tuple[nbws.Pair | None, nbws.ErrorEvent]] = []

    @relay.on("error")
    def listen(pair: nbws.Pair | None, event: nbws.ErrorEvent) -> None:
        heard.append((pair, event))

    await relay.start()
    try:
        ws = await refused_by(relay)
        ((pair, event),) = heard
        assert pair is not None and event.target is pair.upstream_side and event.phase == "connect"
        assert [level for level, _ in lines_about(logged, "connection refused", but_not=ws.id)] == [logging.DEBUG]
        # Without a listener again, the next one is a warning.
        relay.off("error", listen)
        logged.clear()
        again = await refused_by(relay)
        assert len(heard) == 1
        assert [level for level, _ in lines_about(logged, "connection refused", but_not=again.id)] == [logging.WARNING]
    finally:
        await relay.stop()


async def test_a_routing_function_that_raises_is_reported_like_a_server_error(
    logged: pytest.LogCaptureFixture,
) -> None:
    def route(request: nbws.Request) -> str:
        raise RuntimeError("routing table is empty")

    plugin = SeesErrors()
    relay = nbws.Relay(route, plugins=[plugin])
    await relay.start()
    try:
        ws = await refused_by(relay)
        ((conn, error, phase),) = plugin.seen
        assert conn is None and str(error) == "routing table is empty" and phase == "handshake"
        lines = lines_about(logged, "routing table is empty", but_not=ws.id)
        assert len(lines) == 1 and lines[0][0] == logging.WARNING and "routing / failed" in lines[0][1]
    finally:
        await relay.stop()


async def test_a_relay_listener_that_raises_is_reported_and_the_pair_goes_on(
    start_echo_server: StartEchoServer, logged: pytest.LogCaptureFixture
) -> None:
    upstream = await start_echo_server()
    plugin = SeesErrors()
    relay = nbws.Relay(upstream.url, plugins=[plugin])

    @relay.on("pair")
    def broken(pair: nbws.Pair) -> None:
        raise ValueError("listener bug")

    await relay.start()
    try:
        ws = nbws.WebSocket(relay.url)
        await ws.opened(timeout=timeout())
        await until(lambda: plugin.seen, timeout(), "the listener's fault reported")
        ((conn, error, phase),) = plugin.seen
        assert conn is None and isinstance(error, ValueError) and phase == "handler"
        lines = lines_about(logged, "listener bug", but_not=ws.id)
        assert len(lines) == 1 and lines[0][0] == logging.WARNING and "broken" in lines[0][1]
        ws.send("still relayed")
        assert (await ws.recv(timeout=timeout())).data == "still relayed"
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await relay.stop()


async def test_a_relay_plugin_that_raises_on_either_leg_is_reported_once_per_fault(
    start_echo_server: StartEchoServer, logged: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @nbws.hookimpl
        def nbws_message_received(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
            raise ValueError(f"hook bug on {conn.id}")

    upstream = await start_echo_server()
    plugin = SeesErrors()
    relay = nbws.Relay(upstream.url, plugins=[plugin, Broken()])
    heard: list[tuple[nbws.Pair | None, nbws.ErrorEvent]] = []
    await relay.start()
    try:
        ws = nbws.WebSocket(relay.url)
        await ws.opened(timeout=timeout())
        ws.send("x")
        assert (await ws.recv(timeout=timeout())).data == "x"  # relayed both ways all the same
        await until(lambda: len(plugin.seen) == 2, timeout(), "a fault on each leg")
        (pair,) = relay.pairs
        legs = {pair.client_side, pair.upstream_side}
        assert {conn for conn, _, _ in plugin.seen} == legs and {phase for _, _, phase in plugin.seen} == {"plugin"}
        lines = lines_about(logged, "hook bug", but_not=ws.id)
        assert sorted(lines) == sorted(
            (logging.WARNING, f"{conn.id} plugin error: plugin 'Broken' failed in nbws_message_received: "
             f"ValueError: hook bug on {conn.id}")
            for conn in legs if conn is not None
        )  # fmt: skip
        # With a relay listener, each fault reaches it with its pair, and the log line is a debug one.
        relay.on("error", lambda pair, event: heard.append((pair, event)))
        logged.clear()
        ws.send("y")
        assert (await ws.recv(timeout=timeout())).data == "y"
        await until(lambda: len(heard) == 2, timeout(), "both faults heard")
        assert {p for p, _ in heard} == {pair} and {e.target for _, e in heard} == legs
        assert [level for level, _ in lines_about(logged, "hook bug", but_not=ws.id)] == [logging.DEBUG] * 2
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await relay.stop()


async def test_a_users_server_off_error_does_not_stop_the_relay_hearing_its_servers_errors(
    start_echo_server: StartEchoServer, logged: pytest.LogCaptureFixture
) -> None:
    upstream = await start_echo_server()

    def route(request: nbws.Request) -> str:
        if request.path == "/nowhere":
            raise RuntimeError("routing table is empty")
        return upstream.url

    class Broken:  # on the client leg only: an error of one of the server's connections
        @nbws.hookimpl
        def nbws_message_received(self, conn: nbws.BaseConnection) -> None:
            if conn.role == "server":
                raise ValueError("client leg hook bug")

    relay = nbws.Relay(route, plugins=[Broken()])
    heard: list[tuple[nbws.Pair | None, nbws.ErrorEvent]] = []
    relay.on("error", lambda pair, event: heard.append((pair, event)))
    mine: list[nbws.ErrorEvent] = []
    relay.server.on("error", lambda conn, event: mine.append(event))
    await relay.start()
    try:
        relay.server.off("error")  # the user takes off every listener of the server's errors: theirs
        refused = nbws.WebSocket(relay.url + "nowhere")
        with pytest.raises(nbws.ConnectError, match="HTTP 502"):
            await refused.opened(timeout=timeout())
        ws = nbws.WebSocket(relay.url)
        await ws.opened(timeout=timeout())
        ws.send("x")
        assert (await ws.recv(timeout=timeout())).data == "x"
        await until(lambda: len(heard) == 2, timeout(), "the server's error and its connection's")
        (pair,) = relay.pairs
        assert [(p, str(e.error), e.phase) for p, e in heard] == [
            (None, "routing table is empty", "handshake"),
            (pair, "client leg hook bug", "plugin"),
        ]
        assert heard[1][1].target is pair.client_side and mine == []
        levels = [level for text in ("routing table is empty", "client leg hook bug")
                  for level, _ in lines_about(logged, text, but_not=refused.id)]  # fmt: skip
        assert levels == [logging.DEBUG] * 2  # the relay's listener took them
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await relay.stop()
