"""The async handshake hook a relay needs: await first, then choose the subprotocol and add response headers."""

from __future__ import annotations

import asyncio

import pytest
from _support import timeout

import nbws


async def test_async_handshake_hook_runs_before_the_response() -> None:
    order: list[str] = []

    class Slow:
        @nbws.hookimpl
        async def nbws_handshake(self, request: nbws.Request) -> None:
            await asyncio.sleep(0)  # an awaited step, as a relay opening its upstream
            order.append("hook")

    server = nbws.Server(plugins=[Slow()])
    server.on("connection", lambda conn: order.append("connection"))
    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    assert order[0] == "hook"
    ws.close()
    await server.stop()


async def test_hook_chooses_the_subprotocol_over_the_servers_preference() -> None:
    class Choose:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            assert request.subprotocols == ["a", "b", "c"]
            request.subprotocol = "c"

    server = nbws.Server(protocols=["a", "b"], plugins=[Choose()])
    await server.start()
    ws = nbws.WebSocket(server.url, ["a", "b", "c"])
    await ws.opened(timeout=timeout())
    assert ws.protocol == "c"
    ws.close()
    await server.stop()


async def test_without_a_choice_the_server_chooses_as_before() -> None:
    server = nbws.Server(protocols=["b", "a"])
    await server.start()
    ws = nbws.WebSocket(server.url, ["a", "b"])
    await ws.opened(timeout=timeout())
    assert ws.protocol == "b"
    ws.close()
    await server.stop()


async def test_a_subprotocol_the_client_did_not_offer_is_refused_in_the_hook() -> None:
    errors: list[str] = []

    class Wrong:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            try:
                request.subprotocol = "nope"
            except ValueError as exc:
                errors.append(str(exc))
            assert request.subprotocol is None

    server = nbws.Server(plugins=[Wrong()])
    await server.start()
    ws = nbws.WebSocket(server.url, ["chat"])
    await ws.opened(timeout=timeout())
    assert ws.protocol == ""
    assert errors and "'nope' was not offered" in errors[0]
    ws.close()
    await server.stop()


async def test_hook_adds_response_headers_and_bad_ones_are_reported_not_sent() -> None:
    class Headers:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            request.response_headers.append(("X-Upstream", "example"))
            request.response_headers.append(("X-Bad", "evil\r\nSet-Cookie: x=1"))

    server = nbws.Server(plugins=[Headers()])
    errors: list[nbws.ErrorEvent] = []
    server.on("error", lambda conn, event: errors.append(event))
    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    assert ws.response_headers["X-Upstream"] == "example"
    assert "X-Bad" not in ws.response_headers and "Set-Cookie" not in ws.response_headers
    assert [e.phase for e in errors] == ["handshake"]
    ws.close()
    await server.stop()


async def test_request_target_keeps_the_raw_path_and_query() -> None:
    targets: list[str] = []

    class Seen:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            targets.append(request.target)

    server = nbws.Server(plugins=[Seen()])
    await server.start()
    ws = nbws.WebSocket(server.url + "room%201?a=1&a=2&b=%C3%A9")
    await ws.opened(timeout=timeout())
    assert targets == ["/room%201?a=1&a=2&b=%C3%A9"]
    ws.close()
    await server.stop()


@pytest.mark.parametrize("status", [401, 430, 502])
async def test_a_rejection_can_carry_headers(status: int) -> None:
    class Refuse:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            request.response_headers.append(("WWW-Authenticate", "Bearer"))
            request.reject(status, "no")

    server = nbws.Server(plugins=[Refuse()])
    await server.start()
    ws = nbws.WebSocket(server.url)
    with pytest.raises(nbws.ConnectError, match=f"HTTP {status}"):
        await ws.opened(timeout=timeout())
    assert ws.last_error is not None
    assert ws.last_error.response.headers["WWW-Authenticate"] == "Bearer"  # type: ignore[attr-defined]
    await server.stop()
