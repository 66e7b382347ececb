"""nbws-stats: discovered through its entry point; counts, sizes and rates over real sockets; a live panel."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
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
# The hooks only bump counts and note where each second began; the per-second buckets, the rates,
# the series and the totals are computed from those when read. These tests feed the plugin's hooks
# real messages with chosen times, on a real (in-memory) connection, and check every figure.


@pytest.fixture
async def memory_pair() -> AsyncIterator[tuple[nbws.Server, nbws.WebSocket]]:
    from nbws.testing import connect

    server = nbws.Server()
    ws = connect(server)
    await ws.opened(timeout=timeout())
    yield server, ws
    ws.close()
    await ws.closed(timeout=timeout())
    await server.stop()


def _feed(counter: Stats, conn: nbws.BaseConnection, data: str | bytes, direction: str, at: float) -> nbws.Message:
    message = nbws.Message(data, "send" if direction == "send" else "receive", connection=conn.id, time=at)
    hook = counter.nbws_message_sent if direction == "send" else counter.nbws_message_received
    hook(conn, message)
    return message


async def test_per_second_buckets_are_worked_out_from_the_counts(
    memory_pair: tuple[nbws.Server, nbws.WebSocket],
) -> None:
    _, ws = memory_pair
    counter = Stats(history=3)
    t0 = 1_000_000.0
    _feed(counter, ws, "ab", "send", t0 + 0.1)
    _feed(counter, ws, b"xyz", "receive", t0 + 0.5)
    _feed(counter, ws, "é", "send", t0 + 0.9)  # 2 bytes
    mine = counter.snapshot()[ws.id]
    assert list(mine.history) == [[1_000_000, 2, 1, 4, 3]]  # the current second, filled in when read
    _feed(counter, ws, "abcd", "receive", t0 + 1.2)  # a new second: the first bucket is closed
    _feed(counter, ws, "a", "send", t0 + 0.95)  # late (older time): counted in the current second
    assert list(mine.history) == [[1_000_000, 2, 1, 4, 3], [1_000_001, 1, 1, 1, 4]]
    _feed(counter, ws, "x", "send", t0 + 5.0)  # a gap: no empty buckets between
    _feed(counter, ws, "y", "send", t0 + 7.5)
    assert [bucket[0] for bucket in mine.history] == [1_000_001, 1_000_005, 1_000_007]  # only the last 3 kept
    assert mine.rate("send", window=10, now=t0 + 8) == pytest.approx(3 / 10)
    assert mine.rate("receive", window=3, now=t0 + 8) == 0.0
    assert mine.rate("both", window=10, now=t0 + 8) == pytest.approx(4 / 10)
    assert counter.series(4, now=t0 + 7) == [(0, 0), (1, 0), (0, 0), (1, 0)]
    # The counts themselves are exact, whatever the buckets kept.
    assert (mine.sent.messages, mine.sent.bytes, mine.sent.min_size, mine.sent.max_size) == (5, 7, 1, 2)
    assert (mine.received.messages, mine.received.bytes, mine.received.min_size) == (2, 7, 3)
    assert mine.received.mean_size == 3.5


async def test_sizes_min_max_and_totals_are_exact(memory_pair: tuple[nbws.Server, nbws.WebSocket]) -> None:
    _, ws = memory_pair
    counter = Stats()
    counter.nbws_open(ws)
    fresh = counter.snapshot()[ws.id]
    assert (fresh.sent.min_size, fresh.sent.max_size, fresh.sent.mean_size) == (None, 0, 0.0)
    now = 2_000_000.0
    for data in ("aaaa", b"", "€€", b"z" * 70_000):  # 4, 0, 6 (UTF-8) and 70,000 bytes
        _feed(counter, ws, data, "send", now)
    dropped = nbws.Message("not counted, far bigger than the others" * 10_000, "send", time=now)
    dropped.drop()
    counter.nbws_message_sent(ws, dropped)
    mine = counter.snapshot()[ws.id]
    assert (mine.sent.messages, mine.sent.bytes, mine.sent.min_size, mine.sent.max_size) == (4, 70_010, 0, 70_000)
    assert list(mine.history) == [[2_000_000, 4, 0, 70_010, 0]]
    other = nbws.WebSocket("ws://unused.invalid/")  # a second connection's counts (never opened)
    _feed(counter, other, "bb", "receive", now)
    _feed(counter, other, "b", "send", now)
    sent, received = counter.totals()
    assert (sent.messages, sent.bytes, sent.min_size, sent.max_size) == (5, 70_011, 0, 70_000)
    assert (received.messages, received.bytes, received.min_size, received.max_size) == (1, 2, 2, 2)
    assert repr(sent) == "DirectionStats(messages=5, bytes=70011, min_size=0, max_size=70000)"
    assert nbws_stats_direction(1, 2, None, 0) == nbws_stats_direction(1, 2, None, 0)
    assert nbws_stats_direction(1, 2, None, 0) != nbws_stats_direction(1, 2, 2, 2)
    other.close()


def nbws_stats_direction(messages: int, size: int, low: int | None, high: int) -> object:
    from nbws_stats import DirectionStats

    return DirectionStats(messages, size, low, high)
