"""nbws-stats: discovered through its entry point; counts, sizes and rates over real sockets; a live panel."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref
from collections.abc import AsyncIterator, Callable

import pytest
from nbws_stats import Stats, sparkline, stats

import nbws

SCALE = float(os.environ.get("NBWS_TEST_TIMEOUT_SCALE", "1"))


def timeout(seconds: float = 5.0) -> float:
    return seconds * SCALE


async def until(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout(seconds)
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


@pytest.fixture
async def echo() -> AsyncIterator[nbws.Server]:
    server = nbws.Server()
    server.on("message", lambda conn, message: conn.send(message.data))
    await server.start()
    yield server
    await server.stop()


DISCOVERY = textwrap.dedent(
    """
    import asyncio, json
    import nbws

    async def main():
        names = [info.name for info in nbws.plugins]
        server = nbws.Server()
        server.on("message", lambda conn, message: conn.send(message.data))
        await server.start()
        ws = nbws.WebSocket(server.url)
        await ws.opened(timeout=10)
        for n in range(3):
            ws.send("x" * (n + 1))
            await ws.recv(timeout=10)
        ws.close()
        await ws.closed(timeout=10)
        await server.stop()
        counted = nbws.plugins.get("stats").snapshot()[ws.id]
        print(json.dumps({"names": names, "sent": counted.sent.messages, "bytes": counted.sent.bytes,
                          "received": counted.received.messages, "closed": counted.closed is not None}))

    asyncio.run(main())
    """
)


def test_import_nbws_discovers_it_and_it_counts_over_real_sockets() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NBWS_DISABLE_PLUGIN_AUTOLOAD"}
    out = subprocess.run(
        [sys.executable, "-c", DISCOVERY], env=env, capture_output=True, text=True, timeout=timeout(60), check=True
    )
    result = json.loads(out.stdout)
    assert "stats" in result["names"]
    assert (result["sent"], result["bytes"], result["received"], result["closed"]) == (3, 6, 3, True)


def test_a_fresh_registry_loads_the_entry_point() -> None:
    registry = nbws.PluginRegistry(autoload=True)
    registry.load_entrypoints()
    assert registry.get("stats") is stats
    assert set(registry.info("stats").hooks) >= {"nbws_message_sent", "nbws_message_received", "nbws_panel"}


async def test_counts_sizes_and_rates_per_connection(echo: nbws.Server) -> None:
    counter = Stats()
    ws = nbws.WebSocket(echo.url, plugins=[counter])
    other = nbws.WebSocket(echo.url, plugins=[counter])
    await ws.opened(timeout=timeout())
    await other.opened(timeout=timeout())
    sizes = [1, 10, 100, 1000]
    for size in sizes:
        ws.send(b"\x00" * size)
        await ws.recv(timeout=timeout())
    other.send("é")  # 2 bytes in UTF-8
    await other.recv(timeout=timeout())

    mine = counter.snapshot()[ws.id]
    assert (mine.role, mine.url, mine.open) == ("client", echo.url, True)
    assert (mine.sent.messages, mine.sent.bytes, mine.sent.min_size, mine.sent.max_size) == (4, 1111, 1, 1000)
    assert mine.sent.mean_size == 1111 / 4
    assert (mine.received.messages, mine.received.bytes) == (4, 1111)
    assert mine.rate("send") == pytest.approx(0.4)  # 4 messages over a 10 s window
    assert mine.rate() == pytest.approx(0.8)
    assert counter.snapshot()[other.id].sent.bytes == 2
    sent, received = counter.totals()
    assert (sent.messages, sent.bytes, received.messages) == (5, 1113, 5)
    assert sum(s for s, _ in counter.series(10)) == 5 and sum(r for _, r in counter.series(10)) == 5

    text = counter.table().splitlines()
    assert text[0].split()[:3] == ["conn", "role", "state"]
    assert any(line.split()[:5] == [ws.id, "client", "open", "4", "4"] for line in text)

    for client in (ws, other):
        client.close()
        await client.closed(timeout=timeout())
    assert not counter.snapshot()[ws.id].open
    counter.reset()
    assert counter.snapshot() == {}


async def test_dropped_messages_are_not_counted(echo: nbws.Server) -> None:
    counter = Stats()
    ws = nbws.WebSocket(echo.url, plugins=[counter, nbws.transforms.drop_if(lambda m: m.data == "no", "send")])
    await ws.opened(timeout=timeout())
    ws.send("no")
    ws.send("yes")
    await ws.recv(timeout=timeout())
    assert counter.snapshot()[ws.id].sent.messages == 1
    ws.close()
    await ws.closed(timeout=timeout())


@pytest.mark.parametrize("how", ["unregister", "disable"])
async def test_a_connection_open_when_the_plugin_goes_is_let_go_at_its_close(echo: nbws.Server, how: str) -> None:
    counter = Stats()
    nbws.plugins.register(counter, "counter")
    try:
        ws = nbws.WebSocket(echo.url)
        await ws.opened(timeout=timeout())
        for data in ("one", "two", "three"):
            ws.send(data)
            await ws.recv(timeout=timeout())
        await until(lambda: len(echo.clients) == 1)
        ids = (ws.id, echo.clients[0].id)
        client, server_side = weakref.ref(ws), weakref.ref(echo.clients[0])
        if how == "unregister":
            nbws.plugins.unregister("counter")  # no nbws_close will reach it now
        else:
            nbws.plugins.disable("counter")
        ws.send("four")  # still counted by the connection's own counters, as the README says
        await ws.recv(timeout=timeout())
        ws.close()
        await ws.closed(timeout=timeout())
        await until(lambda: echo.clients == [])
        del ws
        gc.collect()
        assert (client(), server_side()) == (None, None), "the plugin kept a closed connection alive"
        for conn_id in ids:
            mine = counter.snapshot()[conn_id]
            assert (mine.sent.messages, mine.received.messages, mine.open) == (4, 4, False), conn_id
        assert counter.snapshot()[ids[1]].sent.bytes == len("onetwothreefour")
    finally:
        if "counter" in [info.name for info in nbws.plugins]:
            nbws.plugins.unregister("counter")


async def test_a_cloned_client_is_counted_and_let_go_without_a_warning(
    echo: nbws.Server, caplog: pytest.LogCaptureFixture
) -> None:
    # clone() copies the client's listeners, the plugin's close listener with them: adding it again is no re-run cell.
    counter = Stats()
    nbws.plugins.register(counter, "counter")
    try:
        first = nbws.WebSocket(echo.url)
        await first.opened(timeout=timeout())
        first.close()
        await first.closed(timeout=timeout())
        second = first.clone()
        await second.opened(timeout=timeout())
        nbws.plugins.unregister("counter")
        second.send("x")
        await second.recv(timeout=timeout())
        second.close()
        await second.closed(timeout=timeout())
        assert [r.getMessage() for r in caplog.records if "replaced" in r.getMessage()] == []
        mine = counter.snapshot()[second.id]
        assert (mine.sent.messages, mine.received.messages, mine.open) == (1, 1, False)
        gone = weakref.ref(second)
        del first, second
        gc.collect()
        assert gone() is None
    finally:
        if "counter" in [info.name for info in nbws.plugins]:
            nbws.plugins.unregister("counter")


async def test_the_panel_shows_the_table_and_the_plot_and_refreshes_itself(echo: nbws.Server) -> None:
    counter = Stats()
    panel = counter.panel(interval=0.02)
    assert "peak 1 msg/s" in panel.plot.value and panel.plot.value.count("<polyline") == 2
    ws = nbws.WebSocket(echo.url, plugins=[counter])
    await ws.opened(timeout=timeout())
    for n in range(5):
        ws.send(f"m{n}")
        await ws.recv(timeout=timeout())
    await until(lambda: f"<td>{ws.id}</td>" in panel.table.value)  # its own timer refreshed it
    assert "<td>5</td><td>5</td>" in panel.table.value
    panel.refresh_button.click()
    assert "peak" in panel.plot.value
    panel.close()
    ws.close()
    await ws.closed(timeout=timeout())


async def test_it_joins_the_dashboard() -> None:
    counter = Stats()
    nbws.plugins.register(counter)
    try:
        dashboard = nbws.Dashboard()
        assert "Stats" in dashboard.panels
        dashboard.close()
        dashboard.panels["Stats"].close()
    finally:
        nbws.plugins.unregister(counter)


def test_sparkline_scales_to_the_peak() -> None:
    svg = sparkline([(0, 0), (5, 10), (10, 0)], width=148, height=50)
    assert "peak 10 msg/s" in svg
    # The plot area runs from x 40 to 140 and from y 34 (0 msg/s) up to y 16 (the peak).
    assert 'points="40.0,34.0 90.0,25.0 140.0,16.0"' in svg  # sent
    assert 'points="40.0,34.0 90.0,16.0 140.0,34.0"' in svg  # received


def test_the_plot_has_axes_and_a_legend() -> None:
    svg = sparkline([(1, 2)] * 61)
    assert 'class="nbws-axis-x"' in svg and 'class="nbws-axis-y"' in svg
    assert ">msg/s</text>" in svg and ">-60 s</text>" in svg and ">now</text>" in svg
    assert ">sent</text>" in svg and ">received</text>" in svg and 'fill="#1f77b4"' in svg


# -- the figures worked out when read ---------------------------------------------------------
# The hooks only note sizes and where each second began; message and byte counts are the
# connection's own, and the per-second buckets, rates, series and totals are computed from them
# when read. These tests send real messages over a real (in-memory) connection that the plugin is
# not registered on, then call the plugin's hooks as the hook runner would, with chosen times.


@pytest.fixture
async def memory_pair() -> AsyncIterator[tuple[nbws.Connection, nbws.WebSocket]]:
    from nbws.testing import connect

    server = nbws.Server()
    ws = connect(server)
    await ws.opened(timeout=timeout())
    await until(lambda: len(server.clients) == 1)
    yield server.clients[0], ws
    ws.close()
    await ws.closed(timeout=timeout())
    await server.stop()


async def _wire(
    counter: Stats,
    pair: tuple[nbws.Connection, nbws.WebSocket],
    data: str | bytes,
    direction: str,
    at: float,
    dropped: bool = False,
) -> None:
    """Send ``data`` over the wire (``direction`` seen from the client), then observe it at time ``at``."""
    peer, ws = pair
    if direction == "send":
        before = ws.messages_sent
        if not dropped:
            ws.send(data)
            await until(lambda: ws.messages_sent == before + 1)
    else:
        before = ws.messages_received
        if not dropped:
            peer.send(data)
            await until(lambda: ws.messages_received == before + 1)
    message = nbws.Message(data, "send" if direction == "send" else "receive", connection=ws.id, time=at)
    if dropped:
        message.drop()
    hook = counter.nbws_message_sent if direction == "send" else counter.nbws_message_received
    hook(ws, message)


async def test_per_second_buckets_are_worked_out_from_the_counts(
    memory_pair: tuple[nbws.Connection, nbws.WebSocket],
) -> None:
    _, ws = memory_pair
    counter = Stats(history=3)
    counter.nbws_open(ws)
    t0 = 1_000_000.0
    await _wire(counter, memory_pair, "ab", "send", t0 + 0.1)
    await _wire(counter, memory_pair, b"xyz", "receive", t0 + 0.5)
    await _wire(counter, memory_pair, "é", "send", t0 + 0.9)  # 2 bytes
    mine = counter.snapshot()[ws.id]
    assert list(mine.history) == [[1_000_000, 2, 1, 4, 3]]  # the current second, filled in when read
    await _wire(counter, memory_pair, "abcd", "receive", t0 + 1.2)  # a new second: the first bucket closes
    await _wire(counter, memory_pair, "a", "send", t0 + 0.95)  # late (older time): counted in the current second
    assert list(mine.history) == [[1_000_000, 2, 1, 4, 3], [1_000_001, 1, 1, 1, 4]]
    await _wire(counter, memory_pair, "x", "send", t0 + 5.0)  # a gap: no empty buckets between
    await _wire(counter, memory_pair, "y", "send", t0 + 7.5, dropped=True)  # opens a second, counts nothing
    assert list(mine.history)[1:] == [[1_000_005, 1, 0, 1, 0], [1_000_007, 0, 0, 0, 0]]
    await _wire(counter, memory_pair, "zz", "send", t0 + 7.6)
    assert [bucket[0] for bucket in mine.history] == [1_000_001, 1_000_005, 1_000_007]  # only the last 3 kept
    assert mine.rate("send", window=10, now=t0 + 8) == pytest.approx(3 / 10)
    assert mine.rate("receive", window=3, now=t0 + 8) == 0.0
    assert mine.rate("both", window=10, now=t0 + 8) == pytest.approx(4 / 10)
    assert counter.series(4, now=t0 + 7) == [(0, 0), (1, 0), (0, 0), (1, 0)]
    # The counts themselves are exact, whatever the buckets kept.
    assert (mine.sent.messages, mine.sent.bytes, mine.sent.min_size, mine.sent.max_size) == (5, 8, 1, 2)
    assert (mine.received.messages, mine.received.bytes, mine.received.min_size) == (2, 7, 3)
    assert mine.received.mean_size == 3.5


async def test_sizes_min_max_and_totals_are_exact(memory_pair: tuple[nbws.Connection, nbws.WebSocket]) -> None:
    peer, ws = memory_pair
    counter = Stats()
    counter.nbws_open(ws)
    fresh = counter.snapshot()[ws.id]
    assert (fresh.sent.messages, fresh.sent.min_size, fresh.sent.max_size, fresh.sent.mean_size) == (0, None, 0, 0.0)
    now = 2_000_000.0
    for data in ("aaaa", "€€", b"z" * 70_000):  # 4, 6 (UTF-8) and 70,000 bytes
        await _wire(counter, memory_pair, data, "send", now)
    await _wire(counter, memory_pair, "not counted, bigger than the others" * 10_000, "send", now, dropped=True)
    await _wire(counter, memory_pair, "-", "send", now, dropped=True)  # nor smaller
    mine = counter.snapshot()[ws.id]
    assert (mine.sent.messages, mine.sent.bytes, mine.sent.min_size, mine.sent.max_size) == (3, 70_010, 4, 70_000)
    assert list(mine.history) == [[2_000_000, 3, 0, 70_010, 0]]
    # The server side's connection, first seen in a message hook: counted from that message on.
    peer.send("bb")
    await until(lambda: peer.messages_sent == 1)
    counter.nbws_message_sent(peer, nbws.Message("bb", "send", connection=peer.id, time=now))
    sent, received = counter.totals()
    assert (sent.messages, sent.bytes, sent.min_size, sent.max_size) == (4, 70_012, 2, 70_000)
    assert (received.messages, received.bytes, received.min_size) == (0, 0, None)
    assert repr(sent) == "DirectionStats(messages=4, bytes=70012, min_size=2, max_size=70000)"
    # At the close the counts are kept, and the connection let go.
    counter.nbws_close(ws)
    assert (mine.sent.messages, mine.sent.bytes, mine.closed is not None) == (3, 70_010, True)
    ws.send("after the close of the plugin's view")
    await until(lambda: ws.messages_sent == 4)
    assert mine.sent.messages == 3
    assert direction_stats(1, 2, None, 0) == direction_stats(1, 2, None, 0)
    assert direction_stats(1, 2, None, 0) != direction_stats(1, 2, 2, 2)


async def test_reset_forgets_and_counts_again_from_the_next_message(
    memory_pair: tuple[nbws.Connection, nbws.WebSocket],
) -> None:
    _, ws = memory_pair
    counter = Stats()
    counter.nbws_open(ws)
    await _wire(counter, memory_pair, "one", "send", 3_000_000.0)
    counter.reset()
    assert counter.snapshot() == {}
    await _wire(counter, memory_pair, "two!", "send", 3_000_000.5)
    mine = counter.snapshot()[ws.id]
    assert (mine.sent.messages, mine.sent.bytes, mine.received.messages) == (1, 4, 0)
    assert list(mine.history) == [[3_000_000, 1, 0, 4, 0]]


def direction_stats(messages: int, size: int, low: int | None, high: int) -> object:
    from nbws_stats import DirectionStats

    return DirectionStats(messages, size, low, high)
