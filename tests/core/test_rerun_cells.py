"""Cells can be re-run: endpoints of the process can be found and closed, and nothing stacks up."""

from __future__ import annotations

import logging
import socket

import pytest
from _support import free_port, timeout, until

import nbws


async def test_endpoints_lists_live_servers_and_clients_and_close_all_closes_them_with_1001() -> None:
    server = nbws.Server()
    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    found = nbws.endpoints()
    assert server in found and ws in found
    assert found.index(server) < found.index(ws), "oldest first"

    closed = await nbws.close_all()
    assert server in closed and ws in closed
    assert not server.listening
    event = await ws.closed(timeout=timeout())
    assert event.code == 1001
    assert server not in nbws.endpoints() and ws not in nbws.endpoints()


async def test_close_all_reaches_an_endpoint_no_variable_names_any_more() -> None:
    server = nbws.Server()
    await server.start()
    peer_codes: list[int] = []
    peer = nbws.WebSocket(server.url)
    peer.onclose = lambda event: peer_codes.append(event.code)
    await peer.opened(timeout=timeout())
    url = server.url
    del server  # the cell's variable was rebound: the server still runs, and only endpoints() finds it
    assert any(isinstance(e, nbws.Server) and e.url == url for e in nbws.endpoints())
    await nbws.close_all()
    await until(lambda: peer_codes, what="the client's close event")
    assert peer_codes == [1001]


async def test_a_server_re_created_on_the_same_port_replaces_the_earlier_one_with_a_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()

    def cell(greeting: str) -> nbws.Server:
        # A notebook cell runs as __main__: only servers made there are replaced, not a panel's or a library's.
        namespace = {"__name__": "__main__", "nbws": nbws}
        source = f"server = nbws.Server(port={port})\nserver.on('connection', lambda conn: conn.send({greeting!r}))"
        exec(source, namespace)
        made: nbws.Server = namespace["server"]  # type: ignore[assignment]
        return made

    first = cell("first")
    await first.start()
    ws = nbws.WebSocket(first.url)
    assert (await ws.recv(timeout=timeout())).data == "first"

    # The same cell run again: a new Server object on the same explicit port.
    second = cell("second")
    with caplog.at_level(logging.WARNING, logger="nbws"):
        await second.start()
    assert "stopped the earlier server" in caplog.text and str(port) in caplog.text
    event = await ws.closed(timeout=timeout())
    assert event.code == 1001, "the earlier server's clients are told it went away"
    await until(lambda: not first.listening, what="the earlier server to stop")
    assert [e for e in nbws.endpoints() if isinstance(e, nbws.Server) and e.port == port] == [second]

    ws2 = nbws.WebSocket(second.url)
    assert (await ws2.recv(timeout=timeout())).data == "second"
    ws2.close()
    await ws2.closed(timeout=timeout())
    await second.stop()


async def test_a_port_held_by_a_server_made_elsewhere_fails_saying_how_to_stop_it() -> None:
    first = nbws.Server()  # made by a module, not a cell: a library's or a panel's server is not replaced
    await first.start()
    with pytest.raises(nbws.ServerError, match=r"already in use by <Server .*> of this process: stop it"):
        nbws.Server(port=first.port).start()  # type: ignore[arg-type]
    assert first.listening
    await first.stop()


async def test_a_port_held_by_another_program_still_fails_naming_the_port() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        server = nbws.Server(port=port)
        with pytest.raises(nbws.ServerError, match=f"port {port} .* already in use"):
            server.start()


def test_re_registering_a_plugin_of_the_same_class_replaces_it(caplog: pytest.LogCaptureFixture) -> None:
    registry = nbws.PluginRegistry()

    def define() -> type:
        # What running the same cell twice does: a new class object with the same name.
        class Tag:
            @nbws.hookimpl
            def nbws_message_receive(self, message: nbws.Message) -> None:
                message.data = str(message.data) + " +tag"

        return Tag

    first = registry.register(define()())
    with caplog.at_level(logging.WARNING, logger="nbws"):
        second = registry.register(define()())
    assert first == second == "Tag"
    assert [info.name for info in registry] == ["Tag"], "the transform must not run twice"
    assert "replaced plugin 'Tag'" in caplog.text

    message = nbws.Message("hi", "receive")
    for impl in registry.impls("nbws_message_receive"):
        impl.call({"message": message, "conn": None})
    assert message.data == "hi +tag"


def test_the_same_plugin_object_registered_again_is_a_no_op_and_a_named_one_keeps_both() -> None:
    registry = nbws.PluginRegistry()

    class Count:
        @nbws.hookimpl
        def nbws_open(self) -> None:
            pass

    plugin = Count()
    assert registry.register(plugin) == registry.register(plugin) == "Count"
    assert registry.register(Count(), name="second") == "second"
    assert [info.name for info in registry] == ["Count", "second"]
    with pytest.raises(nbws.PluginError, match=r"unregister\('second'\)"):
        registry.register(object(), name="second")


def test_plugins_registered_by_one_run_of_code_are_all_kept() -> None:
    # Outside a re-run cell (a script, one execution of a loop), several equal plugins are meant.
    registry = nbws.PluginRegistry()

    class Observer:
        @nbws.hookimpl
        def nbws_open(self) -> None:
            pass

    for _ in range(3):
        registry.register(Observer())
    registry.register(nbws.transforms.map_text(str.upper))
    registry.register(nbws.transforms.map_text(str.upper))
    assert [info.name for info in registry] == [
        "Observer",
        "Observer-2",
        "Observer-3",
        "map_text:upper",
        "map_text:upper-2",
    ]


async def test_a_handler_added_again_by_a_re_run_cell_is_replaced_not_stacked(
    server: nbws.Server, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []
    ws = nbws.WebSocket(server.url)
    source = "def show(message):\n    got.append(message.data)\n"
    with caplog.at_level(logging.WARNING, logger="nbws"):
        for _ in range(3):  # the same cell, run three times, defines a new function each time
            namespace: dict[str, object] = {"got": got}
            exec(compile(source, "<cell>", "exec"), namespace)
            ws.on("message", namespace["show"])
    assert "replaced the 'message' listener show" in caplog.text

    # Different handlers, and the same code with different defaults, are kept.
    ws.on("message", lambda message, n=1: got.append(f"a{n}"))
    ws.on("message", lambda message, n=2: got.append(f"a{n}"))
    await ws.opened(timeout=timeout())
    ws.send("x")
    await until(lambda: len(got) >= 3, what="the echo to reach the handlers")
    assert got == ["echo: x", "a1", "a2"]
    ws.close()
    await ws.closed(timeout=timeout())
