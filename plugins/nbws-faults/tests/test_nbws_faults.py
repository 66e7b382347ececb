"""nbws-faults: discovered through its entry point, inert until configured, and each fault real over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable

import pytest
from nbws_faults import FaultInjector, faults

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


class Sink:
    """A server that keeps every message it receives, with its arrival time, and echoes it."""

    def __init__(self) -> None:
        self.server = nbws.Server()
        self.received: list[nbws.Message] = []
        self.server.on("message", self._on_message)

    def _on_message(self, conn: nbws.Connection, message: nbws.Message) -> None:
        self.received.append(message)
        conn.send(message.data)

    @property
    def data(self) -> list[str | bytes]:
        return [m.data for m in self.received]


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.server.start()
    yield s
    await s.server.stop()


async def client(sink: Sink, *plugins: object) -> nbws.WebSocket:
    ws = nbws.WebSocket(sink.server.url, plugins=plugins)
    await ws.opened(timeout=timeout())
    return ws


async def finish(ws: nbws.WebSocket) -> None:
    ws.close()
    await ws.closed(timeout=timeout())


# -- discovery ------------------------------------------------------------------------------------

DISCOVERY = textwrap.dedent(
    """
    import asyncio, json
    import nbws

    async def main():
        names = [info.name for info in nbws.plugins]
        injector = nbws.plugins.get("faults")
        inert = repr(injector)
        enabled = [nbws.plugins.info("faults").enabled]
        injector.configure(duplicate=1.0)
        enabled.append(nbws.plugins.info("faults").enabled)
        server = nbws.Server()
        got = []
        server.on("message", lambda conn, message: got.append(message.data))
        await server.start()
        ws = nbws.WebSocket(server.url)
        await ws.opened(timeout=10)
        ws.send("twice")
        for _ in range(1000):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        ws.close()
        await ws.closed(timeout=10)
        await server.stop()
        print(json.dumps({"names": names, "inert": inert, "got": got, "type": type(injector).__module__, "enabled": enabled}))

    asyncio.run(main())
    """
)


def test_import_nbws_discovers_it_through_its_entry_point() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NBWS_DISABLE_PLUGIN_AUTOLOAD"}
    out = subprocess.run(
        [sys.executable, "-c", DISCOVERY], env=env, capture_output=True, text=True, timeout=timeout(60), check=True
    )
    result = json.loads(out.stdout)
    assert "faults" in result["names"]
    assert result["type"] == "nbws_faults"
    assert result["inert"] == "<FaultInjector send inert>"
    assert result["enabled"] == [False, True]  # loaded switched off; configure() switched it on
    assert result["got"] == ["twice", "twice"]  # configured, it works over real sockets in that process


def test_a_fresh_registry_loads_the_entry_point() -> None:
    registry = nbws.PluginRegistry(autoload=True)
    assert "faults" in registry.load_entrypoints() or "faults" in registry
    assert registry.get("faults") is faults
    assert "nbws_message_send" in registry.info("faults").hooks
    assert registry.info("faults").enabled is False


# -- inert by default ------------------------------------------------------------------------------


async def test_the_loaded_instance_is_inert(sink: Sink) -> None:
    assert not faults.active and faults.counts == dict.fromkeys(("drop", "delay", "duplicate", "reorder"), 0)
    ws = await client(sink, faults)
    for n in range(50):
        ws.send(f"m{n}")
    await until(lambda: len(sink.received) == 50)
    assert sink.data == [f"m{n}" for n in range(50)]
    assert sum(faults.counts.values()) == 0
    await finish(ws)


# -- each fault -------------------------------------------------------------------------------------


async def test_drop_at_a_rate(sink: Sink) -> None:
    injector = FaultInjector(drop=0.3, seed=7, match=lambda m: m.data != "END")
    ws = await client(sink, injector)
    sent = [f"m{n}" for n in range(200)]
    for data in sent:
        ws.send(data)
    ws.send("END")
    await until(lambda: "END" in sink.data)
    arrived = [d for d in sink.data if d != "END"]
    dropped = 200 - len(arrived)
    assert 20 < dropped < 100  # about 30% of 200
    assert arrived == [d for d in sent if d in set(arrived)]  # in order, none invented
    await finish(ws)


async def test_drop_on_receive_with_a_filter(sink: Sink) -> None:
    injector = FaultInjector(drop=1.0, direction="receive", match=lambda m: m.data == "lost")
    ws = await client(sink, injector)
    for data in ("kept 1", "lost", "kept 2"):
        ws.send(data)
    assert (await ws.recv(timeout=timeout())).data == "kept 1"
    assert (await ws.recv(timeout=timeout())).data == "kept 2"
    assert sink.data == ["kept 1", "lost", "kept 2"]  # it was sent; the client never saw the echo
    assert injector.counts["drop"] == 1
    await finish(ws)


async def test_duplicate_sends_each_message_twice_and_only_twice(sink: Sink) -> None:
    injector = FaultInjector(duplicate=1.0)
    ws = await client(sink, injector)
    for n in range(10):
        ws.send(f"m{n}")
    await until(lambda: len(sink.received) == 20)
    assert sorted(sink.data) == sorted([f"m{n}" for n in range(10)] * 2)
    assert injector.counts["duplicate"] == 10
    await finish(ws)
    assert len(sink.received) == 20


async def test_two_injectors_act_on_their_own_decisions(sink: Sink) -> None:
    # The inert instance loaded from the entry point, beside one of your own.
    ws = await client(sink, faults, FaultInjector(duplicate=1.0))
    for n in range(5):
        ws.send(f"m{n}")
    await until(lambda: len(sink.received) == 10)
    await finish(ws)  # the server has read everything the client wrote
    assert sorted(sink.data) == sorted([f"m{n}" for n in range(5)] * 2)


async def test_reorder_delivers_everything_in_another_order(sink: Sink) -> None:
    injector = FaultInjector(reorder=0.4, reorder_window=0.05, seed=3)
    ws = await client(sink, injector)
    sent = [f"m{n}" for n in range(50)]
    for data in sent:
        ws.send(data)
    await until(lambda: len(sink.received) == 50)
    assert sorted(sink.data) == sorted(sent)
    assert sink.data != sent
    assert injector.counts["reorder"] > 5
    await finish(ws)


async def test_delay_holds_messages_back(sink: Sink) -> None:
    injector = FaultInjector(delay=1.0, delay_time=0.05)
    ws = await client(sink, injector)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(4):
        ws.send(f"m{n}")
    await until(lambda: len(sink.received) == 4)
    assert loop.time() - start >= 4 * 0.05
    gaps = [b.time - a.time for a, b in zip(sink.received, sink.received[1:], strict=False)]
    assert all(gap >= 0.045 for gap in gaps), gaps
    assert sink.data == ["m0", "m1", "m2", "m3"]
    await finish(ws)


async def test_a_delayed_connection_holds_up_no_other(sink: Sink) -> None:
    slow = await client(sink, FaultInjector(delay=1.0, delay_time=timeout(5)))
    fast = await client(sink)
    slow.send("slow")
    for n in range(10):
        fast.send(f"fast {n}")
        assert (await fast.recv(timeout=timeout())).data == f"fast {n}"
    assert "slow" not in sink.data
    slow.close()
    await finish(fast)


def test_configure_checks_its_arguments() -> None:
    injector = FaultInjector()
    with pytest.raises(ValueError, match="drop must be a probability"):
        injector.configure(drop=1.5)
    with pytest.raises(ValueError, match="duplicate and reorder apply to sent messages"):
        injector.configure(duplicate=0.5, direction="receive")
    with pytest.raises(ValueError, match="delay_time"):
        injector.configure(delay_time=(2, 1))
    assert repr(injector.configure(drop=0.5, delay=0.25)) == "<FaultInjector send drop=0.5, delay=0.25>"
    injector.reset()
    assert not injector.active
