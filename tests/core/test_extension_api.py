"""The public API the modules built on the core (relay, replay, recorder, intercept, logger) use instead of other modules' private names."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import logging
from pathlib import Path
from typing import Any

import pytest
from _support import StartEchoServer, free_port, timeout, until

import nbws

NBWS = Path(nbws.__file__).parent


@pytest.mark.parametrize(
    "module",
    [
        "relay.py",
        "recording/replay.py",
        "recording/recorder.py",
        *sorted(f"builtins/{path.name}" for path in (NBWS / "builtins").glob("*.py")),
    ],
)
def test_no_private_attribute_of_another_object(module: str) -> None:
    # ``self._x`` is the class's own; any other ``obj._x`` reaches into another object. The only
    # exceptions are names of relay.py's own classes (Pair, Relay) that it uses among themselves.
    tree = ast.parse((NBWS / module).read_text(encoding="utf-8"))
    own = {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for item in ast.walk(node)
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
        for name in [item.name]
        if name.startswith("_")
    }
    own |= {
        target.attr
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
        and target.attr.startswith("_")
    }
    found = [
        f"{module}:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        and node.attr not in own
    ]
    assert found == []


# Every module built on the core, for the check below (a package's modules one by one).
BUILT_ON_CORE = sorted(
    ".".join(("nbws", *path.relative_to(NBWS).with_suffix("").parts)).removesuffix(".__init__")
    for pattern in ("relay.py", "cassette.py", "fake.py", "testing.py", "recording/*.py", "builtins/*.py")
    for path in NBWS.glob(pattern)
)


def private_names(cls: type) -> set[str]:
    """
    The ``_names`` class ``cls`` of nbws defines, read from its source: in its body and on ``self``.

    Read from the ``.py`` file rather than from the class, so that it works on a compiled core too.
    """
    path = NBWS.parent.joinpath(*cls.__module__.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    if not path.is_file():  # a class of this test
        path = Path(inspect.getfile(cls))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (node,) = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
    names: set[str] = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(item.name)
        elif isinstance(item, (ast.Assign, ast.AnnAssign)):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    names |= {
        sub.attr
        for sub in ast.walk(node)
        if isinstance(sub, ast.Attribute)
        and isinstance(sub.ctx, ast.Store)
        and isinstance(sub.value, ast.Name)
        and sub.value.id == "self"
    }
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def overridden_privates(cls: type) -> list[str]:
    """What ``cls`` defines under a private name of a class of another nbws module it subclasses."""
    own = private_names(cls)
    return [
        f"{cls.__qualname__}.{name} overrides {base.__module__}.{base.__qualname__}.{name}"
        for base in cls.__mro__[1:]
        if base.__module__.split(".")[0] == "nbws" and base.__module__ != cls.__module__
        for name in sorted(own & private_names(base))
    ]


@pytest.mark.parametrize("module", BUILT_ON_CORE)
def test_no_class_overrides_a_private_name_of_a_core_class(module: str) -> None:
    # A subclass of a core class (the relay's upstream leg is a WebSocket) customises it through
    # what the core documents for that (endpoint_close_codes, pass_error_on, awaited_by_owner),
    # never by defining a method or attribute the core names privately: the core may rename or
    # drop it, or rely on it meaning what it means there.
    classes = [cls for cls in vars(importlib.import_module(module)).values() if inspect.isclass(cls)]
    assert [line for cls in classes if cls.__module__ == module for line in overridden_privates(cls)] == []


class _LegOverridingThePrivates(nbws.WebSocket):
    # As the relay's upstream leg did: a method and an attribute the core names privately.
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._plugins = None
        self._own = 1  # its own private name: allowed

    def _a_waiter_will_raise(self, phase: str) -> bool:
        return False

    def pass_error_on(self, event: nbws.ErrorEvent) -> bool:  # the public way: allowed
        return False


def test_the_override_check_sees_private_names_defined_again() -> None:
    assert overridden_privates(_LegOverridingThePrivates) == [
        "_LegOverridingThePrivates._a_waiter_will_raise overrides nbws._connection.BaseConnection._a_waiter_will_raise",
        "_LegOverridingThePrivates._plugins overrides nbws._connection.BaseConnection._plugins",
    ]


class OwnedClient(nbws.WebSocket):
    """A client a user's tool opens on someone's behalf and awaits itself, telling its own listeners of its errors."""

    awaited_by_owner = True

    def __init__(self, url: str, owner: list[Any], **options: Any) -> None:
        self.owner = owner  # the tool's error listeners
        super().__init__(url, **options)

    def pass_error_on(self, event: nbws.ErrorEvent) -> bool:
        for fn in self.owner:
            fn(event)
        return bool(self.owner)


async def test_a_subclass_passes_its_errors_to_its_owner_who_decides_whether_they_were_seen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"ws://127.0.0.1:{free_port()}/"
    handled_by: dict[str, bool] = {}

    class Reported:
        @nbws.hookimpl
        def nbws_error_reported(self, event: nbws.ErrorEvent, handled: bool) -> None:
            handled_by[event.target.id] = handled

    async def refused(ws: nbws.WebSocket) -> bool:
        with pytest.raises(nbws.ConnectError):
            await ws.opened(timeout())
        await until(lambda: ws.id in handled_by, timeout(), "the error reported")
        return handled_by[ws.id]

    # A user's own opened() raises the failure: it reached them.
    assert await refused(nbws.WebSocket(url, plugins=[Reported()])) is True
    # Its owner awaits it: seen only if the owner has a listener.
    assert await refused(OwnedClient(url, [], plugins=[Reported()])) is False
    heard: list[nbws.ErrorEvent] = []
    ws = OwnedClient(url, [heard.append], plugins=[Reported()])
    assert await refused(ws) is True
    (event,) = heard
    assert event.target is ws and event.phase == "connect"

    def broken(event: nbws.ErrorEvent) -> None:
        raise RuntimeError("owner listener bug")

    # A pass_error_on that raises is logged; the error counts as unseen and the client fails as usual.
    caplog.set_level(logging.ERROR, logger="nbws")
    assert await refused(OwnedClient(url, [broken], plugins=[Reported()])) is False
    assert any(record.exc_info and "owner listener bug" in str(record.exc_info[1]) for record in caplog.records)


async def test_send_message_sends_the_callers_message(start_echo_server: StartEchoServer) -> None:
    seen: list[nbws.Message] = []

    class Watch:
        @nbws.hookimpl
        def nbws_message_sent(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
            seen.append(message)

    server = await start_echo_server()
    try:
        ws = nbws.WebSocket(server.url, plugins=[Watch()])
        await ws.opened(timeout())
        message = nbws.Message("hi", "send", injected=True)
        ws.send_message(message)
        echo = await ws.recv(timeout())
        assert echo.data == "hi"
        assert len(seen) == 1 and seen[0] is message, (seen, message)
        assert message.injected and message.connection == ws.id and message.seq == 1
        ws.close()
        await ws.closed(timeout())
        with pytest.raises(nbws.InvalidStateError):
            ws.send_message(nbws.Message("late", "send"))
    finally:
        await server.stop()


async def test_loop_properties_are_the_running_loop() -> None:
    loop = asyncio.get_running_loop()
    server = nbws.Server()
    assert server.loop is loop
    with pytest.raises(AttributeError):
        server.loop = loop  # type: ignore[misc]
    await server.start()
    try:
        ws = nbws.WebSocket(server.url)
        assert ws.loop is loop
        await ws.opened(timeout())
        assert server.clients and all(conn.loop is loop for conn in server.clients)
        ws.close()
        await ws.closed(timeout())
    finally:
        await server.stop()


async def test_parent_plugins_apply_after_own_before_global_and_stay_lazy() -> None:
    order: list[str] = []

    def tag(name: str) -> object:
        class Tag:
            @nbws.hookimpl
            def nbws_open(self, conn: nbws.BaseConnection) -> None:
                if conn.role == "client":  # the global plugin sees the server's connection too
                    order.append(name)

        return Tag()

    parent = nbws.PluginRegistry()
    parent.register(tag("parent"))
    glob = tag("global")
    nbws.plugins.register(glob)
    server = nbws.Server()
    await server.start()
    try:
        ws = nbws.WebSocket(server.url, parent_plugins=parent)
        assert ws._plugins is None  # no registry of its own until .plugins is used
        ws.plugins.register(tag("own"))
        await ws.opened(timeout())
        await asyncio.sleep(0)
        assert order == ["own", "parent", "global"]
        ws.close()
        await ws.closed(timeout())
    finally:
        nbws.plugins.unregister(glob)
        await server.stop()
    with pytest.raises(TypeError, match="parent_plugins"):
        nbws.WebSocket("ws://127.0.0.1:1/", parent_plugins=[tag("x")])  # type: ignore[arg-type]


@pytest.mark.parametrize(("public", "private"), [("nbws.events", "nbws._events"), ("nbws.loop", "nbws._loop")])
def test_a_public_twin_names_what_its_private_module_defines_and_nothing_else(public: str, private: str) -> None:
    # nbws.events and nbws.loop give public names to nbws._events and nbws._loop (for the modules nbws
    # imports while it is still loading); a class of another module is imported from where it belongs.
    module = importlib.import_module(public)
    strays = [f"{name} (from {getattr(module, name).__module__})" for name in module.__all__
              if getattr(module, name).__module__ != private]  # fmt: skip
    assert strays == []


def test_the_old_name_nbws_events_base_connection_still_imports_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="import it from nbws"):
        from nbws.events import BaseConnection  # type: ignore[attr-defined]
    assert BaseConnection is nbws.BaseConnection
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        nbws.events.Nothing  # type: ignore[attr-defined]  # noqa: B018


def test_endpoint_close_codes() -> None:
    assert nbws.WebSocket.endpoint_close_codes is False
    assert nbws.Connection.endpoint_close_codes is True
