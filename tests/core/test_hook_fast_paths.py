"""
The message path's shortcuts keep the hook semantics: generated observer runners, call lists
shared through their registries, messages made without ``__init__``, the recv buffer's byte
count, and broadcast's one encoding for all copies.

Each test here would go red if its shortcut dropped a rule (an argument passed in the wrong
place, a fault not counted, an async observer not awaited, a stale call list).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _support import timeout, until

import nbws
from nbws._events import Message, _message
from nbws._hooks import CallList, Hooks, run


class Seen:
    """Observers of every shape a plugin may write, each noting what it was given, in one shared list."""

    def __init__(self, log: list[tuple[str, Any]], name: str) -> None:
        self.log = log
        self.name = name

    @nbws.hookimpl
    def nbws_message_received(self, message: nbws.Message, conn: Any) -> None:  # the hook's order reversed
        self.log.append((self.name, (conn, message)))


class OnlyMessage:
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log

    @nbws.hookimpl
    def nbws_message_received(self, message: nbws.Message) -> None:
        self.log.append(("only-message", message))


class NoArgs:
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log

    @nbws.hookimpl
    def nbws_message_received(self) -> None:
        self.log.append(("no-args", None))


class Raises:
    @nbws.hookimpl
    def nbws_message_received(self, conn: Any, message: nbws.Message) -> None:
        raise ValueError("observer bug")


class Later:
    """An async observer: the runner hands the rest to a Rest that the caller awaits."""

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log

    @nbws.hookimpl
    async def nbws_message_received(self, conn: Any, message: nbws.Message) -> None:
        await asyncio.sleep(0)
        self.log.append(("async", message))


def test_the_generated_observer_runner_passes_each_implementation_the_arguments_it_names() -> None:
    log: list[tuple[str, Any]] = []
    registry = nbws.PluginRegistry()
    registry.register(NoArgs(log), "no-args")
    registry.register(OnlyMessage(log), "only-message")
    registry.register(Seen(log, "reversed"), "reversed")
    calls = Hooks(registry).calls("nbws_message_received")
    assert isinstance(calls, CallList) and calls.observe is not None  # the generated path, not the loop
    conn, message = object(), Message("hi", "receive")
    failures: list[Any] = []
    assert run("nbws_message_received", calls, (conn, message), lambda *f: failures.append(f)) is None
    # The plugin registered last runs first (pluggy's order).
    assert log == [("reversed", (conn, message)), ("only-message", message), ("no-args", None)]
    assert failures == []


def test_a_raising_observer_is_counted_reported_and_the_others_still_run() -> None:
    log: list[tuple[str, Any]] = []
    registry = nbws.PluginRegistry()
    registry.register(OnlyMessage(log), "first-registered")
    registry.register(Raises(), "broken")
    calls = Hooks(registry).calls("nbws_message_received")
    failures: list[tuple[str, str, BaseException]] = []
    message = Message("hi", "receive")
    run("nbws_message_received", calls, (object(), message), lambda *f: failures.append(f))
    assert [(hook, name, str(error)) for hook, name, error in failures] == [
        ("nbws_message_received", "broken", "observer bug")
    ]
    assert registry.info("broken").errors == 1 and "observer bug" in (registry.info("broken").last_error or "")
    assert log == [("only-message", message)]


def test_keyboard_interrupt_in_an_observer_is_not_swallowed() -> None:
    class Interrupts:
        @nbws.hookimpl
        def nbws_message_received(self, message: nbws.Message) -> None:
            raise KeyboardInterrupt

    registry = nbws.PluginRegistry()
    registry.register(Interrupts(), "interrupts")
    calls = Hooks(registry).calls("nbws_message_received")
    with pytest.raises(KeyboardInterrupt):
        run("nbws_message_received", calls, (object(), Message("hi", "receive")), lambda *f: None)
    assert registry.info("interrupts").errors == 0


async def test_an_async_observer_hands_the_rest_over_in_order() -> None:
    log: list[tuple[str, Any]] = []
    registry = nbws.PluginRegistry()
    registry.register(OnlyMessage(log), "after")  # registered first: runs last
    registry.register(Later(log), "async")
    calls = Hooks(registry).calls("nbws_message_received")
    message = Message("hi", "receive")
    rest = run("nbws_message_received", calls, (object(), message), lambda *f: None)
    assert rest is not None and log == []  # nothing after the awaitable ran yet
    await rest
    assert log == [("async", message), ("only-message", message)]


def test_call_lists_follow_their_registry_after_a_change() -> None:
    log: list[tuple[str, Any]] = []
    registry = nbws.PluginRegistry()
    hooks = Hooks(registry)
    other = Hooks(registry)  # a second endpoint on the same registry shares its cached entries
    assert hooks.calls("nbws_message_received") == ()
    name = registry.register(OnlyMessage(log), "late")
    assert [entry[0] for entry in hooks.calls("nbws_message_received")] == ["late"]
    assert [entry[0] for entry in other.calls("nbws_message_received")] == ["late"]
    registry.disable(name)
    assert hooks.calls("nbws_message_received") == ()
    registry.enable(name)
    run("nbws_message_received", hooks.calls("nbws_message_received"), (object(), Message("x", "receive")), print)
    assert len(log) == 1


def test_a_message_made_on_the_fast_path_is_a_full_message() -> None:
    fast, slow = _message("hé", "receive", 7, "c1"), Message("hé", "receive", seq=7, connection="c1")
    # Compiled by mypyc, Message is a native class: its attributes are listed in __mypyc_attrs__.
    for name in getattr(Message, "__slots__", None) or Message.__mypyc_attrs__:
        if name != "time":
            assert getattr(fast, name) == getattr(slow, name), name
    assert abs(fast.time - slow.time) < 60 and fast.meta is not slow.meta
    fast.data = bytearray(b"x")
    assert fast.data == b"x" and fast.changed and fast.original == "hé"


async def test_the_recv_buffer_counts_its_bytes_through_drain_and_latest(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)  # echoes "echo: " + text
    await ws.opened(timeout=timeout())
    for text in ("a", "bb", "ccc"):
        ws.send(text)
    await until(lambda: ws.messages_received == 3, what="three echoes")
    assert ws._inbox_bytes == 3 * len("echo: ") + 6
    latest = await ws.recv(timeout=timeout(), latest=True)
    assert latest.data == "echo: ccc" and ws._inbox_bytes == 0
    ws.send("dddd")
    await until(lambda: ws.messages_received == 4, what="the fourth echo")
    assert ws._inbox_bytes == len("echo: dddd") and ws.drain() == 1 and ws._inbox_bytes == 0
    ws.close()
    await ws.closed(timeout=timeout())


class SentWatch:
    """Keeps (connection id, data, seq) of every message its endpoints' connections send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, int]] = []

    @nbws.hookimpl
    def nbws_message_sent(self, conn: Any, message: nbws.Message) -> None:
        self.sent.append((conn.id, message.data, message.seq))


@contextlib.asynccontextmanager
async def connected(server: nbws.Server, count: int) -> AsyncIterator[list[nbws.WebSocket]]:
    """Start ``server`` and connect ``count`` clients to it; close them and stop it after."""
    await server.start()
    try:
        clients = [nbws.WebSocket(server.url) for _ in range(count)]
        for ws in clients:
            await ws.opened(timeout=timeout())
        await until(lambda: len(server.clients) == count, what=f"{count} connections")
        yield clients
        for ws in clients:
            ws.close()
            await ws.closed(timeout=timeout())
    finally:
        await server.stop()


async def test_broadcast_sends_every_client_the_same_text_and_each_copy_is_observed() -> None:
    server = nbws.Server()
    watch = SentWatch()
    server.plugins.register(watch)
    async with connected(server, 3) as clients:
        assert server.broadcast("héllo") == 3
        for ws in clients:
            assert (await ws.recv(timeout=timeout())).data == "héllo"
        await until(lambda: len(watch.sent) == 3, what="three observed copies")
        assert sorted(watch.sent) == sorted((conn.id, "héllo", 1) for conn in server.clients)
        assert all(conn.bytes_sent == len("héllo".encode()) for conn in server.clients)


async def test_broadcast_copies_written_at_once_keep_their_order_and_counts() -> None:
    server = nbws.Server()
    async with connected(server, 3) as clients:
        first = server.clients[0]
        # In one loop turn: a send() (written at once, the turn's first), then two broadcasts.
        first.send("first")
        assert server.broadcast("b1") == 3
        assert server.broadcast(b"b2", exclude=server.clients[2]) == 2
        got = {}
        for ws in clients:
            got[ws.id] = [(await ws.recv(timeout=timeout())).data for _ in range(3 if ws is clients[0] else 1)]
        assert got[clients[0].id] == ["first", "b1", b"b2"]
        assert (await clients[1].recv(timeout=timeout())).data == b"b2"
        assert got[clients[2].id] == ["b1"]
        assert [(conn.messages_sent, conn.bytes_sent) for conn in server.clients] == [(3, 9), (2, 4), (1, 2)]
        assert all(conn.buffered_amount == 0 for conn in server.clients)


def test_meta_is_made_on_first_use_and_then_kept() -> None:
    for message in (_message("x", "send", 1, "c1"), Message("x", "send")):
        notes = message.meta
        assert notes == {} and message.meta is notes
        notes["seen"] = 1
        assert message.meta == {"seen": 1}
        message.meta = {"other": 2}
        assert message.meta == {"other": 2}


async def test_meta_notes_go_from_the_transforms_to_the_observers_and_hold_nothing_of_the_core(
    server: nbws.Server,
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    class Notes:
        @nbws.hookimpl
        def nbws_message_send(self, message: nbws.Message) -> None:
            seen.append(("send", dict(message.meta)))  # what the core kept there would show here
            message.meta["by"] = "transform"

        @nbws.hookimpl
        def nbws_message_sent(self, message: nbws.Message) -> None:
            seen.append(("sent", dict(message.meta)))

        @nbws.hookimpl
        def nbws_message_receive(self, message: nbws.Message) -> None:
            message.meta["in"] = message.data

        @nbws.hookimpl
        def nbws_message_received(self, message: nbws.Message) -> None:
            seen.append(("received", dict(message.meta)))

    ws = nbws.WebSocket(server.url)
    ws.plugins.register(Notes())
    await ws.opened(timeout=timeout())
    ws.send("a")
    ws.send("b")  # the same turn: waits in the outbox behind the first
    assert (await ws.recv(timeout=timeout())).meta == {"in": "echo: a"}
    await until(lambda: len(seen) == 6, what="both messages sent and echoed")
    assert sorted(seen, key=repr) == sorted(
        [
            *[("send", {}), ("send", {}), ("sent", {"by": "transform"}), ("sent", {"by": "transform"})],
            *[("received", {"in": "echo: a"}), ("received", {"in": "echo: b"})],
        ],
        key=repr,
    )
    ws.close()
    await ws.closed(timeout=timeout())


async def test_broadcast_copies_written_at_once_are_observed_in_order_after_a_send() -> None:
    server = nbws.Server()
    watch = SentWatch()
    sent = watch.sent
    server.plugins.register(watch)
    async with connected(server, 2):
        first, second = server.clients
        first.send("first")
        assert server.broadcast("b1") == 2
        assert server.broadcast(b"b2", exclude=second) == 1
        assert sent == []  # observed once written, at the end of the turn
        await until(lambda: len(sent) == 4, what="four observed messages")
        assert [s for s in sent if s[0] == first.id] == [
            (first.id, "first", 1),
            (first.id, "b1", 2),
            (first.id, b"b2", 3),
        ]
        assert [s for s in sent if s[0] == second.id] == [(second.id, "b1", 1)]
        assert (first.messages_sent, second.messages_sent) == (3, 1)


async def test_a_burst_of_sends_is_observed_in_order_with_each_message_as_it_was_sent(server: nbws.Server) -> None:
    seen: list[nbws.Message] = []
    gate = asyncio.Event()

    class Slow:
        """Async for the first message: the others wait for it, then come in order."""

        @nbws.hookimpl
        async def nbws_message_sent(self, message: nbws.Message) -> None:
            seen.append(message)
            if len(seen) == 1:
                await gate.wait()

    class Fast:
        @nbws.hookimpl(trylast=True)
        def nbws_message_sent(self, conn: Any, message: nbws.Message) -> None:
            assert conn.id == message.connection

    ws = nbws.WebSocket(server.url)
    ws.plugins.register(Slow())
    fast = ws.plugins.register(Fast())
    await ws.opened(timeout=timeout())
    before = time.time()
    ws.send("a")
    ws.send(b"b")
    ws.send(bytearray(b"c"))
    after = time.time()
    marked = Message("d", "send", replayed=True)
    ws.send_message(marked)  # through the outbox: a Message among the data of the others
    await until(lambda: len(seen) == 1, what="the first message observed")
    gate.set()
    await until(lambda: len(seen) == 4, what="all four observed")
    assert [(m.data, m.seq, m.direction, m.connection) for m in seen] == [
        ("a", 1, "send", ws.id),
        (b"b", 2, "send", ws.id),
        (b"c", 3, "send", ws.id),
        ("d", 4, "send", ws.id),
    ]
    assert all(before <= m.time <= after for m in seen[:3]) and seen[3] is marked and marked.replayed
    assert all(m.original == m.data and not m.dropped and m.meta == {} for m in seen)
    assert ws.messages_sent == 4 and ws.plugins.info(fast).errors == 0
    ws.close()
    await ws.closed(timeout=timeout())


async def test_server_connections_share_call_lists_until_one_gets_its_own_plugins() -> None:
    server = nbws.Server()
    sent: list[tuple[str, str, str]] = []

    class Watch:
        def __init__(self, label: str) -> None:
            self.label = label

        @nbws.hookimpl
        def nbws_message_sent(self, conn: Any, message: nbws.Message) -> None:
            sent.append((self.label, conn.id, message.data))

    server.plugins.register(Watch("server"))
    await server.start()
    try:
        clients = [nbws.WebSocket(server.url) for _ in range(2)]
        for ws in clients:
            await ws.opened(timeout=timeout())
        await until(lambda: len(server.clients) == 2, what="two connections")
        a, b = server.clients
        assert a._calls["nbws_message_sent"] is b._calls["nbws_message_sent"]  # one list for both
        a.plugins.register(Watch("a's own"))  # only a's messages, and only from now on
        assert a._calls["nbws_message_sent"] is not b._calls["nbws_message_sent"]
        server.broadcast("one")
        await until(lambda: len(sent) == 3, what="three observed")
        assert sorted(sent) == sorted([("server", a.id, "one"), ("server", b.id, "one"), ("a's own", a.id, "one")])
        sent.clear()
        server.plugins.register(Watch("later"), "later")  # a server change reaches both, a's own lists too
        server.broadcast("two")
        await until(lambda: len(sent) == 5, what="five observed")
        assert sorted(label for label, conn, _ in sent if conn == a.id) == ["a's own", "later", "server"]
        assert sorted(label for label, conn, _ in sent if conn == b.id) == ["later", "server"]
        for ws in clients:
            ws.close()
            await ws.closed(timeout=timeout())
    finally:
        await server.stop()
