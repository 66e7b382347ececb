"""
nbws's own behaviour as default plugins: the handshake guard and the error log are ordinary
plugins in ``nbws.default_plugins``, each replaceable by name, with the behaviour they had in the core.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from _support import timeout

import nbws
from nbws.builtins.errors import ErrorLog
from nbws.builtins.handshake import HandshakeGuard


def test_the_defaults_are_registered_by_name() -> None:
    names = {info.name: type(info.plugin) for info in nbws.default_plugins}
    assert names == {"nbws.handshake": HandshakeGuard, "nbws.errors": ErrorLog}


async def refused(url: str, **options: Any) -> str:
    """Connect to ``url`` and return the error message of the refused handshake."""
    ws = nbws.WebSocket(url, **options)
    errors: list[nbws.ErrorEvent] = []
    ws.onerror = errors.append
    await ws.closed(timeout=timeout())
    assert errors, "the handshake was accepted"
    return errors[0].message


async def test_the_guard_checks_path_origin_and_token_before_other_plugins() -> None:
    seen: list[str] = []

    class Watch:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            seen.append(request.path)

    server = nbws.Server(path="/ws", origins=["http://ok.example"], token="s3cret", plugins=[Watch()])
    await server.start()
    root = server.url.rsplit("/", 1)[0]
    try:
        assert "HTTP 404" in await refused(root + "/other?token=s3cret", origin="http://ok.example")
        assert "HTTP 403" in await refused(server.url + "?token=s3cret", origin="http://evil.example")
        assert "HTTP 401" in await refused(server.url + "?token=wrong", origin="http://ok.example")
        assert seen == []  # a refused request reached no other plugin
        ws = nbws.WebSocket(server.url, origin="http://ok.example", headers={"Authorization": "Bearer s3cret"})
        await ws.opened(timeout=timeout())
        assert seen == ["/ws"]
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await server.stop()


async def test_the_guard_can_be_replaced_and_a_failing_replacement_refuses_access(
    defaults: nbws.PluginRegistry,
) -> None:
    class Broken:
        @nbws.hookimpl(tryfirst=True)
        def nbws_handshake(self, request: nbws.Request) -> None:
            raise RuntimeError("guard bug")

    server = nbws.Server(token="s3cret")
    server.on("error", lambda conn, event: None)  # the plugin fault is expected here
    await server.start()
    try:
        defaults.unregister("nbws.handshake")
        defaults.register(Broken(), "nbws.handshake")
        # Fail closed: even the right token does not get in through a guard that raises.
        assert "HTTP 500" in await refused(server.url + "?token=s3cret")
        assert defaults.info("nbws.handshake").errors == 1
    finally:
        await server.stop()


async def test_a_server_with_checks_and_no_guard_refuses_every_handshake(defaults: nbws.PluginRegistry) -> None:
    errors: list[nbws.ErrorEvent] = []
    server = nbws.Server(token="s3cret")
    server.on("error", lambda conn, event: errors.append(event))
    open_server = nbws.Server()  # nothing to check: no guard needed
    await server.start()
    await open_server.start()
    try:
        defaults.disable("nbws.handshake")
        # Fail closed: with its guard switched off, a server made with token= lets nobody in.
        assert "HTTP 500" in await refused(server.url + "?token=s3cret")
        assert "HTTP 500" in await refused(server.url)
        assert any("'nbws.handshake'" in e.message and "token=" in e.message for e in errors), errors
        defaults.unregister("nbws.handshake")
        assert "HTTP 500" in await refused(server.url + "?token=s3cret")
        ws = nbws.WebSocket(open_server.url)
        await ws.opened(timeout=timeout())
        ws.close()
        await ws.closed(timeout=timeout())
        defaults.register(HandshakeGuard(), "nbws.handshake")
        ok = nbws.WebSocket(server.url + "?token=s3cret")
        await ok.opened(timeout=timeout())
        ok.close()
        await ok.closed(timeout=timeout())
    finally:
        await server.stop()
        await open_server.stop()


async def test_unhandled_errors_are_logged_by_the_error_plugin(
    defaults: nbws.PluginRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    reported: list[tuple[str, bool]] = []

    class Collect:
        @nbws.hookimpl
        def nbws_error_reported(self, event: nbws.ErrorEvent, handled: bool) -> None:
            reported.append((event.phase, handled))

    defaults.register(Collect(), "collect")
    with caplog.at_level(logging.DEBUG, logger="nbws"):
        unhandled = nbws.WebSocket("ws://127.0.0.1:9/")
        await unhandled.closed(timeout=timeout())
        handled = nbws.WebSocket("ws://127.0.0.1:9/")
        handled.onerror = lambda event: None
        await handled.closed(timeout=timeout())
    assert reported == [("connect", False), ("connect", True)]
    levels = [r.levelno for r in caplog.records if "connect error" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG]

    caplog.clear()
    defaults.disable("nbws.errors")
    with caplog.at_level(logging.DEBUG, logger="nbws"):
        quiet = nbws.WebSocket("ws://127.0.0.1:9/")
        await quiet.closed(timeout=timeout())
    assert not [r for r in caplog.records if "connect error" in r.getMessage()]
    assert reported[-1] == ("connect", False)  # the hook still ran for the other plugin


async def test_server_errors_are_logged_with_the_server_address(
    defaults: nbws.PluginRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    first = nbws.Server()
    await first.start()
    try:
        second = nbws.Server(port=first.port)
        with caplog.at_level(logging.WARNING, logger="nbws"), pytest.raises(nbws.ServerError):
            second.start()
        (record,) = [r for r in caplog.records if "listen error" in r.getMessage()]
        assert record.getMessage().startswith("server 127.0.0.1 listen error: port")
    finally:
        await first.stop()
