"""The public API the modules built on the core (relay, replay, recorder, intercept, logger) use instead of other modules' private names."""

from __future__ import annotations

import ast
import asyncio
import importlib
from pathlib import Path

import pytest
from _support import StartEchoServer, timeout

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


def test_endpoint_close_codes() -> None:
    assert nbws.WebSocket.endpoint_close_codes is False
    assert nbws.Connection.endpoint_close_codes is True
