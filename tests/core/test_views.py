"""
The public surface the widgets stand on: views found through a registry and kept weakly,
``WebSocket.options``/``clone()``, ``Server.start(host=, port=)``, and the one observer class.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from typing import Any

import pytest
from _support import timeout, until

import nbws
import nbws.views
from nbws.widgets import _common


async def test_panel_is_found_through_the_registry_and_not_stored_on_the_client(
    server: nbws.Server, front_end: list[Any]
) -> None:
    ws = nbws.WebSocket(server.url)
    panel = ws.panel()
    assert isinstance(panel, nbws.ClientPanel) and panel.ws is ws
    assert ws.panel() is panel  # made once
    assert "_panel" not in vars(ws)
    bundle = ws._repr_mimebundle_()
    assert bundle["text/plain"] == repr(ws) and "application/vnd.jupyter.widget-view+json" in bundle
    panel.close()
    again = ws.panel()  # a closed panel is forgotten: the next call makes a new one
    assert again is not panel and again.ws is ws
    again.close()
    ws.close()
    await ws.closed(timeout=timeout())


async def test_a_panel_made_by_hand_is_the_one_panel_returns(server: nbws.Server, front_end: list[Any]) -> None:
    panel = nbws.ServerPanel(server)
    assert server.panel() is panel and "_panel" not in vars(server)
    panel.close()
    assert _common.shown(server) is None


def test_views_are_kept_weakly(front_end: list[Any]) -> None:
    server = nbws.Server()
    panel = server.panel()
    ref = weakref.ref(server)
    panel.close()
    del panel, server
    gc.collect()
    assert ref() is None


def test_an_unregistered_class_has_no_view_and_a_registered_one_has() -> None:
    class Thing:
        pass

    with pytest.raises(nbws.NbwsError, match="no view is registered for Thing"):
        nbws.views.view(Thing())
    made: list[object] = []
    nbws.views.register(Thing, lambda obj: made.append(obj) or "the view")
    try:
        thing = Thing()
        assert nbws.views.view(thing) == "the view" and made == [thing]
    finally:
        nbws.views.unregister(Thing)
    with pytest.raises(TypeError):
        nbws.views.register("Thing", lambda obj: None)  # type: ignore[arg-type]


async def test_clone_copies_options_plugins_and_handlers(server: nbws.Server) -> None:
    class Tag:
        @nbws.hookimpl
        def nbws_message_send(self, message: nbws.Message) -> None:
            message.data = f"[tag] {message.data}"

    seen: list[str] = []
    ws = nbws.WebSocket(
        server.url, headers={"X-Demo": "1"}, max_buffered=12345, recv_buffer=7, recv_buffer_bytes=4096, plugins=[Tag()]
    )
    ws.plugins.register(object(), "inert")
    ws.plugins.disable("inert")
    ws.on("message", lambda message: seen.append(message.data))
    await ws.opened(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())

    twin = ws.clone(reconnect=None)
    try:
        options = twin.options
        assert options["headers"] == [("X-Demo", "1")] and options["max_buffered"] == 12345
        assert options["recv_buffer"] == 7 and options["recv_buffer_bytes"] == 4096
        assert {info.name: info.enabled for info in twin.plugins} == {info.name: info.enabled for info in ws.plugins}
        await twin.opened(timeout=timeout())
        twin.send("hello")
        await until(lambda: seen == ["echo: [tag] hello"], timeout(), "the clone's listener got the echo")
    finally:
        twin.close()
        await twin.closed(timeout=timeout())
    with pytest.raises(TypeError, match="not_an_option"):
        ws.clone(not_an_option=1)


async def test_a_clone_on_another_threads_loop_has_its_plugins_and_handlers_before_it_connects(
    server: nbws.Server,
) -> None:
    """
    The clone's first nbws_open and open event reach the original's plugins and handlers, whatever the threads do.

    Made where no loop runs, a client lives on nbws's background loop, in another thread. The
    worst interleaving is forced through public names only: clone() reads the original's
    ``onopen`` (before it copies the plugins and listeners), and the original below answers that
    read, on the cloning thread, only once a clone already live (in ``nbws.endpoints()``) is open.
    A clone that started connecting before carrying its plugins and handlers misses its open.
    """
    opened: list[str] = []
    handled: list[str] = []
    listened: list[str] = []
    made: list[nbws.WebSocket] = []

    class Observer:
        @nbws.hookimpl
        def nbws_open(self, conn: nbws.BaseConnection) -> None:
            opened.append(conn.id)

    class Original(nbws.WebSocket):
        handler: Any = None
        cloning = False

        @property  # type: ignore[override]
        def onopen(self) -> Any:
            if self.cloning:
                for endpoint in nbws.endpoints():
                    if isinstance(endpoint, nbws.WebSocket) and all(endpoint is not m for m in made):
                        endpoint.opened().wait(timeout())  # the clone is already connecting: let it open first
            return self.handler

        @onopen.setter
        def onopen(self, fn: Any) -> None:
            self.handler = fn

    def make_and_clone() -> nbws.WebSocket:
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()  # none runs in this thread: the clients go to nbws's background loop
        original = Original(server.url, plugins=[Observer()])
        made.append(original)
        original.onopen = lambda event: handled.append(event.target.id)
        original.on("open", lambda event: listened.append(event.target.id))
        original.opened().wait(timeout())
        original.close()
        original.closed().wait(timeout())
        original.cloning = True
        twin = original.clone()
        original.cloning = False
        made.append(twin)
        return twin

    twin = await asyncio.to_thread(make_and_clone)
    try:
        assert twin.loop is not asyncio.get_running_loop() and type(twin) is nbws.WebSocket
        await twin.opened(timeout=timeout())
        assert opened == [made[0].id, twin.id]
        # (The original's own open may come before its onopen is set: it is on another thread's loop.)
        await until(lambda: twin.id in handled and twin.id in listened, timeout(), "the clone's onopen and listener")
    finally:
        twin.close()
        await twin.closed(timeout=timeout())


async def test_start_on_another_port_while_stopped_and_not_while_running() -> None:
    server = nbws.Server()
    assert server.requested_port == 0
    await server.start()
    first = server.port
    with pytest.raises(nbws.InvalidStateError, match="stop"):
        server.start(port=first + 1 if first < 65535 else first - 1)
    assert await server.start(port=0) is server  # the same settings: starting again does nothing
    await server.stop()
    with pytest.raises(ValueError):
        server.start(port=70000)
    await server.start(host="127.0.0.1", port=0)
    try:
        assert server.listening and server.port is not None
    finally:
        await server.stop()


# -- one observer mechanism ----------------------------------------------------------------------


def test_observers_call_in_order_isolate_faults_and_remove(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, int]] = []
    observers = nbws.Observers("test observer")

    def broken(n: int) -> None:
        raise RuntimeError("broken observer")

    first = observers.add(lambda n: calls.append(("first", n)))
    observers.add(broken)
    observers.add(lambda n: calls.append(("last", n)))
    with caplog.at_level(logging.ERROR, logger="nbws"):
        observers.notify(1)
    assert calls == [("first", 1), ("last", 1)]
    assert "test observer" in caplog.text and "broken observer" in caplog.text
    observers.remove(first)
    observers.remove(first)  # removing twice does nothing
    assert len(observers) == 2 and first not in observers
    faults: list[BaseException] = []
    observers.notify(2, on_error=lambda error, fn: faults.append(error))
    assert calls[-1] == ("last", 2) and [str(f) for f in faults] == ["broken observer"]
    observers.clear()
    assert not list(observers)
    with pytest.raises(TypeError):
        observers.add("not callable")  # type: ignore[arg-type]


async def test_an_async_observer_runs_as_a_task_and_its_fault_is_isolated() -> None:
    done = asyncio.Event()
    faults: list[str] = []

    async def slow(value: int) -> None:
        await asyncio.sleep(0)
        if value == 2:
            raise ValueError("async observer failed")
        done.set()

    observers = nbws.Observers("async observer")
    observers.add(slow)
    observers.notify(1)
    assert not done.is_set()  # not awaited by notify(): it runs on the loop
    await asyncio.wait_for(done.wait(), timeout())
    observers.notify(2, on_error=lambda error, fn: faults.append(str(error)))
    await until(lambda: faults == ["async observer failed"], timeout(), "the async fault was reported")


def test_listeners_replace_a_handler_from_a_rerun_cell(caplog: pytest.LogCaptureFixture) -> None:
    ws = nbws.WebSocket("ws://127.0.0.1:9/")
    ws.close()
    for _ in range(2):  # the same code run twice, as a re-run cell does
        ws.on("message", lambda message: None)
    assert "replaced the 'message' listener" in caplog.text
    with pytest.raises(ValueError, match="unknown event 'mesage'"):
        ws.on("mesage", print)


async def test_panels_tell_their_refreshed_observers(server: nbws.Server, front_end: list[Any]) -> None:
    panel = nbws.ServerPanel(server)
    told: list[object] = []
    panel.refreshed.add(told.append)
    panel.refresh()
    assert told == [panel]
    panel.close()
    assert len(panel.refreshed) == 0
