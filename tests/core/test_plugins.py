"""Plugins see every event through the hooks, compose in a documented order, and cannot break anything."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import inspect
from typing import Any

import pytest
from _support import StartEchoServer, free_port, timeout, until

import nbws
from nbws import hookspecs


class Log:
    """Records every hook call as (hook, details)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @nbws.hookimpl
    def nbws_server_start(self, server: nbws.Server) -> None:
        self.calls.append(("server_start", server.port))

    @nbws.hookimpl
    def nbws_server_stop(self, server: nbws.Server) -> None:
        self.calls.append(("server_stop", server.port))

    @nbws.hookimpl
    def nbws_open(self, conn: nbws.BaseConnection) -> None:
        self.calls.append(("open", conn.role))

    @nbws.hookimpl
    def nbws_message_send(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.calls.append(("send", (conn.role, message.data)))

    @nbws.hookimpl
    def nbws_message_sent(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.calls.append(("sent", (conn.role, message.data)))

    @nbws.hookimpl
    def nbws_message_receive(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.calls.append(("receive", (conn.role, message.data)))

    @nbws.hookimpl
    def nbws_message_received(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        self.calls.append(("received", (conn.role, message.data)))

    @nbws.hookimpl
    def nbws_close(self, conn: nbws.BaseConnection, code: int, reason: str, was_clean: bool) -> None:
        self.calls.append(("close", (conn.role, code, reason, was_clean)))

    @nbws.hookimpl
    def nbws_error(
        self, conn: nbws.BaseConnection | None, error: BaseException, phase: str, plugin: str | None
    ) -> None:
        self.calls.append(("error", (phase, plugin)))


async def test_every_lifecycle_event_reaches_a_global_plugin() -> None:
    log = Log()
    nbws.plugins.register(log)
    server = nbws.Server()
    server.on("message", lambda conn, message: conn.send("pong"))
    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ws.send("ping")
    await ws.recv(timeout=timeout())
    ws.close(1000, "done")
    await ws.closed(timeout=timeout())
    await server.stop()
    calls = log.calls
    assert calls[0] == ("server_start", server.port)
    assert calls[-1] == ("server_stop", server.port)
    client_calls = [(hook, d) for hook, d in calls if isinstance(d, tuple) and d[0] == "client"]
    assert client_calls == [
        ("send", ("client", "ping")),
        ("sent", ("client", "ping")),
        ("receive", ("client", "pong")),
        ("received", ("client", "pong")),
        ("close", ("client", 1000, "done", True)),
    ]
    server_calls = [(hook, d) for hook, d in calls if isinstance(d, tuple) and d[0] == "server"]
    assert server_calls == [
        ("receive", ("server", "ping")),
        ("received", ("server", "ping")),
        ("send", ("server", "pong")),
        ("sent", ("server", "pong")),
        ("close", ("server", 1000, "done", True)),
    ]
    assert calls.count(("open", "client")) == 1
    assert calls.count(("open", "server")) == 1


async def test_error_hook_sees_connection_failures() -> None:
    log = Log()
    ws = nbws.WebSocket(f"ws://127.0.0.1:{free_port()}/", plugins=[log])
    await ws.closed(timeout=timeout())
    assert ("error", ("connect", None)) in log.calls
    assert log.calls[-1] == ("close", ("client", 1006, "", False))


class Tag:
    """A transform that appends its name to text messages in both directions."""

    def __init__(self, name: str) -> None:
        self.name = name

    @nbws.hookimpl
    def nbws_message_send(self, message: nbws.Message) -> None:
        message.data = f"{message.data}>{self.name}"

    @nbws.hookimpl
    def nbws_message_receive(self, message: nbws.Message) -> None:
        message.data = f"{message.data}<{self.name}"


class First(Tag):
    @nbws.hookimpl(tryfirst=True)
    def nbws_message_send(self, message: nbws.Message) -> None:
        message.data = f"{message.data}>{self.name}"


class Last(Tag):
    @nbws.hookimpl(trylast=True)
    def nbws_message_send(self, message: nbws.Message) -> None:
        message.data = f"{message.data}>{self.name}"


async def test_transforms_compose_in_documented_order(server: nbws.Server) -> None:
    # Global plugins: registered a then b; endpoint plugins: c then d.
    nbws.plugins.register(Tag("a"))
    nbws.plugins.register(Tag("b"))
    ws = nbws.WebSocket(server.url, plugins=[Tag("c"), Last("z"), First("f")])
    ws.plugins.register(Tag("d"))
    await ws.opened(timeout=timeout())
    ws.send("m")
    message = await ws.recv(timeout=timeout())
    # send: tryfirst, then last-registered first with endpoint before global, then trylast.
    # The global plugins also apply to the echo server: it receives (<b<a) and sends back (>b>a).
    # receive: the same rule (z and f have ordinary receive hooks: f registered after z, so f first).
    assert message.data == "echo: m>f>d>c>b>a>z<b<a>b>a<d<f<z<c<b<a"
    assert message.original == "echo: m>f>d>c>b>a>z<b<a>b>a"
    assert message.changed
    ws.close()


class DropWhen:
    def __init__(self, word: str) -> None:
        self.word = word

    @nbws.hookimpl
    def nbws_message_send(self, message: nbws.Message) -> None:
        if message.data == self.word:
            message.drop()

    @nbws.hookimpl
    def nbws_message_receive(self, message: nbws.Message) -> None:
        if message.data == "echo: " + self.word:
            message.drop()


async def test_drop_stops_messages_in_both_directions() -> None:
    server = nbws.Server()
    arrived: list[str] = []

    @server.on("message")
    def echo(conn: nbws.Connection, message: nbws.Message) -> None:
        arrived.append(str(message.data))
        conn.send("echo: " + str(message.data))
        conn.send("echo: secret")  # dropped on the client's receive side

    await server.start()
    later = Tag("later")  # registered before the dropper, so it runs after it
    seen_sent: list[tuple[str, bool]] = []

    class Observe:
        @nbws.hookimpl
        def nbws_message_sent(self, message: nbws.Message) -> None:
            seen_sent.append((str(message.data), message.dropped))

    ws = nbws.WebSocket(server.url, plugins=[later, Observe(), DropWhen("secret")])
    await ws.opened(timeout=timeout())
    ws.send("secret")
    ws.send("public")
    first = await ws.recv(timeout=timeout())
    assert arrived == ["public>later"]
    assert first.data == "echo: public>later<later"
    ws.send("sync")
    assert (await ws.recv(timeout=timeout())).data == "echo: sync>later<later"
    # The dropped message skipped the transform registered before the dropper, and observers see it dropped.
    assert seen_sent[0] == ("secret", True)
    assert seen_sent[1] == ("public>later", False)
    assert ws.messages_sent == 2
    ws.close()
    await server.stop()


async def test_async_hooks_are_awaited_in_order(server: nbws.Server) -> None:
    class SlowUpper:
        @nbws.hookimpl
        async def nbws_message_send(self, message: nbws.Message) -> None:
            await asyncio.sleep(0.01 if message.data == "first" else 0)
            message.data = str(message.data).upper()

    ws = nbws.WebSocket(server.url, plugins=[SlowUpper()])
    await ws.opened(timeout=timeout())
    ws.send("first")
    ws.send("second")
    assert (await ws.recv(timeout=timeout())).data == "echo: FIRST"
    assert (await ws.recv(timeout=timeout())).data == "echo: SECOND"
    ws.close()


async def test_raising_plugin_is_isolated_reported_and_counted(server: nbws.Server) -> None:
    class Broken:
        @nbws.hookimpl
        def nbws_message_receive(self, message: nbws.Message) -> None:
            raise ValueError("plugin bug")

    after = Tag("after")
    errors: list[nbws.ErrorEvent] = []
    hook_errors: list[tuple[str, str | None]] = []

    class Watch:
        @nbws.hookimpl
        def nbws_error(self, phase: str, plugin: str | None) -> None:
            hook_errors.append((phase, plugin))

    ws = nbws.WebSocket(server.url, plugins=[after, Watch()])
    ws.plugins.register(Broken(), name="broken")
    ws.onerror = errors.append
    await ws.opened(timeout=timeout())
    for i in range(20):
        ws.send(str(i))
    received = [await ws.recv(timeout=timeout()) for _ in range(20)]
    # The raising plugin ran first (registered last); the others still ran for every message.
    assert [m.data for m in received] == [f"echo: {i}>after<after" for i in range(20)]
    assert len(errors) == 20
    assert errors[0].phase == "plugin"
    assert errors[0].plugin == "broken"
    assert errors[0].message == "plugin 'broken' failed in nbws_message_receive: ValueError: plugin bug"
    assert hook_errors == [("plugin", "broken")] * 20
    info = ws.plugins.info("broken")
    assert info.errors == 20
    assert info.last_error is not None and "plugin bug" in info.last_error
    assert ws.ready_state == nbws.OPEN
    ws.close()


async def test_raising_plugin_on_server_side_keeps_server_serving() -> None:
    class Broken:
        @nbws.hookimpl
        def nbws_open(self) -> None:
            raise RuntimeError("open bug")

        @nbws.hookimpl
        def nbws_server_start(self) -> None:
            raise RuntimeError("start bug")

    errors: list[tuple[Any, nbws.ErrorEvent]] = []
    server = nbws.Server(plugins=[Broken()])
    server.on("error", lambda conn, event: errors.append((conn, event)))
    server.on("message", lambda conn, message: conn.send(message.data))
    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ws.send("still served")
    assert (await ws.recv(timeout=timeout())).data == "still served"
    assert [e.plugin for _, e in errors] == ["Broken", "Broken"]
    assert errors[0][0] is None and "start bug" in errors[0][1].message
    assert errors[1][0] is server.clients[0] and "open bug" in errors[1][1].message
    ws.close()
    await server.stop()


async def test_disable_and_enable_take_effect_immediately(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    name = ws.plugins.register(Tag("t"), name="tagger")
    await ws.opened(timeout=timeout())
    ws.send("a")
    assert (await ws.recv(timeout=timeout())).data == "echo: a>t<t"
    ws.plugins.disable(name)
    ws.send("b")
    assert (await ws.recv(timeout=timeout())).data == "echo: b"
    ws.plugins.enable(name)
    ws.send("c")
    assert (await ws.recv(timeout=timeout())).data == "echo: c>t<t"
    ws.plugins.unregister(name)
    ws.send("d")
    assert (await ws.recv(timeout=timeout())).data == "echo: d"
    ws.close()


async def test_plugin_registered_globally_after_connect_applies_at_once(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ws.send("a")
    assert (await ws.recv(timeout=timeout())).data == "echo: a"
    nbws.plugins.register(Tag("g"))
    ws.send("b")
    # Client sends (>g), server receives (<g) and echoes (>g), client receives (<g).
    assert (await ws.recv(timeout=timeout())).data == "echo: b>g<g>g<g"
    ws.close()


async def test_server_plugins_apply_to_its_connections(start_echo_server: StartEchoServer) -> None:
    server = await start_echo_server(plugins=[Tag("srv")])
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    ws.send("x")
    # Received by the server (<srv), sent back (>srv).
    assert (await ws.recv(timeout=timeout())).data == "x<srv>srv"
    ws.close()
    await server.stop()


def test_registration_errors_are_explained() -> None:
    registry = nbws.PluginRegistry()

    class Typo:
        @nbws.hookimpl
        def nbws_mesage_send(self, message: nbws.Message) -> None: ...

    with pytest.raises(nbws.PluginError, match="unknown hook 'nbws_mesage_send'"):
        registry.register(Typo())

    class WrongArgs:
        @nbws.hookimpl
        def nbws_open(self, connection: Any) -> None: ...

    with pytest.raises(nbws.PluginError, match="invalid plugin"):
        registry.register(WrongArgs())

    class Wrapper:
        @nbws.hookimpl(wrapper=True)
        def nbws_open(self, conn: Any) -> Any:
            return (yield)

    with pytest.raises(nbws.PluginError, match="hook wrapper"):
        registry.register(Wrapper())
    assert len(registry) == 0

    tag = Tag("x")
    registry.register(tag, name="x")
    assert registry.register(tag) == "x", "the same object again (a re-run cell) is a no-op"
    with pytest.raises(nbws.PluginError, match=r"already registered: remove it first with plugins.unregister\('x'\)"):
        registry.register(object(), name="x")
    with pytest.raises(nbws.PluginError, match="no plugin named 'y'"):
        registry.disable("y")
    with pytest.raises(nbws.PluginError, match="not registered"):
        registry.unregister(Tag("other"))
    with pytest.raises(nbws.PluginError, match="must be a module or an object"):
        registry.register("nbws_faults")


async def test_a_plugin_registered_switched_off_does_nothing_until_enabled(server: nbws.Server) -> None:
    ws = nbws.WebSocket(server.url)
    tag = Tag("t")
    assert ws.plugins.register(tag, enabled=False) == "Tag"
    assert ws.plugins.name_of(tag) == "Tag" and ws.plugins.name_of(Tag("other")) is None
    await ws.opened(timeout=timeout())
    ws.send("a")
    assert (await ws.recv(timeout=timeout())).data == "echo: a"
    ws.plugins.enable("Tag")
    ws.send("b")
    assert (await ws.recv(timeout=timeout())).data == "echo: b>t<t"
    ws.close()


def test_registry_lists_plugins_with_their_hooks_and_notifies_watchers() -> None:
    registry = nbws.PluginRegistry()
    changes: list[int] = []
    registry.watch(lambda: changes.append(registry.version))
    registry.register(Tag("t"), name="tagger")
    registry.disable("tagger")
    [info] = list(registry)
    assert info.name == "tagger"
    assert registry.register(Tag("u")) == "Tag"
    assert registry.register(Tag("v")) == "Tag-2"
    assert info.hooks == ("nbws_message_receive", "nbws_message_send")
    assert info.enabled is False
    assert "tagger" in registry
    assert len(changes) == 4


def test_every_hook_is_prefixed_typed_and_documented() -> None:
    names = [name for name in hookspecs.__all__ if name not in ("hookspec", "hookimpl")]
    assert set(names) == {n for n, f in vars(hookspecs).items() if callable(f) and n.startswith("nbws_")}
    for name in names:
        spec = getattr(hookspecs, name)
        assert name.startswith("nbws_")
        doc = inspect.getdoc(spec)
        assert doc and "Called" in doc, f"{name} must say when it is called"
        signature = inspect.signature(spec)
        for parameter in signature.parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name}) is untyped"
            assert parameter.name in doc, f"{name} must document its argument {parameter.name}"
        assert "return" in doc.lower(), f"{name} must say what its return value means"


def test_autoload_switch_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBWS_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = nbws.PluginRegistry(autoload=True)
    assert list(registry) == []


async def test_many_messages_through_a_raising_plugin_are_all_delivered(server: nbws.Server) -> None:
    count = 0

    class Broken:
        @nbws.hookimpl
        def nbws_message_received(self) -> None:
            raise RuntimeError("always")

    ws = nbws.WebSocket(server.url, plugins=[Broken()])

    def onmessage(message: nbws.Message) -> None:
        nonlocal count
        count += 1

    errors = 0

    def onerror(event: nbws.ErrorEvent) -> None:
        nonlocal errors
        errors += 1

    ws.onmessage = onmessage
    ws.onerror = onerror
    await ws.opened(timeout=timeout())
    for i in range(500):
        ws.send(str(i))
    await until(lambda: count == 500, 20)
    assert errors == 500
    ws.close()


class Counter:
    def __init__(self) -> None:
        self.sent = 0
        self.received = 0

    @nbws.hookimpl
    def nbws_message_sent(self) -> None:
        self.sent += 1

    @nbws.hookimpl
    def nbws_message_received(self) -> None:
        self.received += 1


def _dict_made(obj: object) -> bool:
    """Whether ``obj``'s ``__dict__`` was made: CPython's GC then sees a dict instead of the inline values."""
    return any(type(ref) is dict for ref in gc.get_referents(obj))


def _dir_makes_the_dict() -> bool:
    """Whether this interpreter keeps attributes inline until ``dir()`` makes the ``__dict__`` (CPython 3.11, 3.12)."""
    probe = Counter()
    before = _dict_made(probe)
    dir(probe)
    return not before and _dict_made(probe)


@pytest.mark.skipif(not _dir_makes_the_dict(), reason="this interpreter has no inline attributes that dir() undoes")
async def test_registering_reads_hooks_from_the_class_and_leaves_the_instance_as_it_was(server: nbws.Server) -> None:
    # pluggy's dir() would turn the instance's inline attributes into a dict on CPython 3.11/3.12,
    # and every self.x in its hooks would be slower for the rest of its life.
    counter = Counter()
    assert not _dict_made(counter)
    registry = nbws.PluginRegistry()
    assert registry.register(counter) == "Counter"
    assert not _dict_made(counter)
    assert counter in registry and registry.name_of(counter) == "Counter" and registry.get("Counter") is counter
    assert registry.register(counter) == "Counter", "the same object again is still a no-op"
    assert registry.info("Counter").hooks == ("nbws_message_received", "nbws_message_sent")

    ws = nbws.WebSocket(server.url)
    ws.plugins.register(counter)
    await ws.opened(timeout=timeout())
    ws.send("a")
    await ws.recv(timeout=timeout())
    await until(lambda: counter.sent == 1 and counter.received == 1)
    assert not _dict_made(counter)
    ws.plugins.unregister(counter)
    assert counter not in ws.plugins and ws.plugins.name_of(counter) is None
    ws.send("b")
    await ws.recv(timeout=timeout())
    assert (counter.sent, counter.received) == (1, 1), "unregistered by object: no longer called"
    ws.close()


async def test_hooks_set_on_the_instance_and_static_hooks_are_still_found(server: nbws.Server) -> None:
    seen: list[str] = []

    class Bare:
        pass

    bare = Bare()
    bare.nbws_message_received = nbws.hookimpl(lambda message: seen.append(f"instance:{message.data}"))  # type: ignore[attr-defined]

    class Static:
        @nbws.hookimpl
        @staticmethod
        def nbws_message_received(message: nbws.Message) -> None:
            seen.append(f"static:{message.data}")

    ws = nbws.WebSocket(server.url)
    ws.plugins.register(bare)
    ws.plugins.register(Static())
    await ws.opened(timeout=timeout())
    ws.send("a")
    await ws.recv(timeout=timeout())
    await until(lambda: len(seen) == 2)
    assert sorted(seen) == ["instance:echo: a", "static:echo: a"]
    ws.close()


async def test_an_instance_can_still_add_or_hide_hooks_of_its_class(server: nbws.Server) -> None:
    seen: list[str] = []

    class Both(Counter):
        def __init__(self) -> None:
            super().__init__()
            self.nbws_open = nbws.hookimpl(lambda conn: seen.append("instance open"))

    class Hiding(Counter):
        def __init__(self) -> None:
            super().__init__()
            self.nbws_message_received = lambda: None  # unmarked: silences the class's hook

    both, hiding = Both(), Hiding()
    ws = nbws.WebSocket(server.url)
    assert ws.plugins.register(both) == "Both" and ws.plugins.register(hiding) == "Hiding"
    assert ws.plugins.info("Both").hooks == ("nbws_message_received", "nbws_message_sent", "nbws_open")
    assert ws.plugins.info("Hiding").hooks == ("nbws_message_sent",)
    await ws.opened(timeout=timeout())
    ws.send("a")
    await ws.recv(timeout=timeout())
    await until(lambda: both.received == 1 and hiding.sent == 1)
    assert seen == ["instance open"] and hiding.received == 0
    ws.close()


def test_registering_runs_no_code_of_the_plugins_class_attributes() -> None:
    class Settings:
        """A lazy settings object: asking it for anything it has not loaded raises."""

        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"settings not loaded: {name}")

    class Lazy(Counter):
        settings = Settings()

    registry = nbws.PluginRegistry()
    assert registry.register(Lazy()) == "Lazy"
    assert registry.info("Lazy").hooks == ("nbws_message_received", "nbws_message_sent")


def test_equal_plugins_are_distinct_plugins() -> None:
    """Registration goes by identity: an equal object (a dataclass with the same fields) is another plugin."""

    @dataclasses.dataclass
    class Same:
        label: str

        @nbws.hookimpl
        def nbws_open(self) -> None: ...

    registry = nbws.PluginRegistry()
    first, second = Same("x"), Same("x")
    assert first == second
    assert registry.register(first) == "Same" and registry.register(second) == "Same-2"
    assert registry.name_of(second) == "Same-2" and registry.name_of(first) == "Same"
    registry.unregister(first)
    assert first not in registry and second in registry
