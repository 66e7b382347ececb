"""A relay compresses as the peers ask: permessage-deflate on both legs only when the client offers it and the upstream accepts it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _support import timeout
from _support.node import BACKEND, NodePeer

import nbws

EXTENSIONS = "sec-websocket-extensions"


def extensions(headers: dict[str, str]) -> str | None:
    """The Sec-WebSocket-Extensions header of a handshake response, whatever its case."""
    return next((value for name, value in headers.items() if name.lower() == EXTENSIONS), None)


@pytest.fixture
async def python_upstream() -> AsyncIterator[tuple[nbws.Server, list[str | None]]]:
    """An nbws echo server (it accepts permessage-deflate); the list gets the extensions each client offered."""
    offers: list[str | None] = []
    server = nbws.Server()
    server.on("connection", lambda conn: offers.append(conn.request.headers.get("Sec-WebSocket-Extensions")))
    server.on("message", lambda conn, message: conn.send(message.data))
    await server.start()
    yield server, offers
    await server.stop()


async def echo_through(relay: nbws.Relay, compression: str | None) -> nbws.WebSocket:
    ws = nbws.WebSocket(relay.url, compression=compression)  # type: ignore[arg-type]
    await ws.opened(timeout=timeout())
    sent = [f"m{i} " + "x" * 200 for i in range(5)]
    for text in sent:
        ws.send(text)
    assert [(await ws.recv(timeout=timeout())).data for _ in sent] == sent
    return ws


async def test_both_legs_compress_when_the_client_offers_and_the_upstream_accepts(
    python_upstream: tuple[nbws.Server, list[str | None]],
) -> None:
    server, offers = python_upstream
    async with nbws.Relay(server.url) as relay:
        ws = await echo_through(relay, "deflate")
        [pair] = relay.pairs
        assert offers[0] is not None and "permessage-deflate" in offers[0]
        upstream_leg = extensions(pair.upstream_side.response_headers)
        client_leg = extensions(ws.response_headers)
        assert upstream_leg is not None and upstream_leg.startswith("permessage-deflate")
        assert client_leg is not None and client_leg.startswith("permessage-deflate")
        ws.close()
        await ws.closed(timeout=timeout())


async def test_no_leg_compresses_when_the_client_does_not_offer(
    python_upstream: tuple[nbws.Server, list[str | None]],
) -> None:
    server, offers = python_upstream
    async with nbws.Relay(server.url) as relay:
        ws = await echo_through(relay, None)
        [pair] = relay.pairs
        # The upstream would have accepted it, but the client did not ask: the relay does not ask either.
        assert offers == [None]
        assert extensions(pair.upstream_side.response_headers) is None
        assert extensions(ws.response_headers) is None
        ws.close()
        await ws.closed(timeout=timeout())


async def test_no_leg_compresses_when_the_upstream_declines() -> None:
    peer = await NodePeer.start("echo_server.js", *BACKEND)  # Node's ws declines permessage-deflate by default
    try:
        url = f"ws://127.0.0.1:{(await peer.expect('listening'))['port']}"
        async with nbws.Relay(url) as relay:
            ws = nbws.WebSocket(relay.url)  # offers permessage-deflate, as browsers do
            await ws.opened(timeout=timeout())
            seen = await peer.expect("connection")
            assert "permessage-deflate" in seen["extensions"]  # the client's offer was passed on
            [pair] = relay.pairs
            assert extensions(pair.upstream_side.response_headers) is None
            # ... and declined: the client's leg goes without too, as the direct connection would.
            assert extensions(ws.response_headers) is None
            assert (await ws.recv(timeout=timeout())).data == "hello "
            ws.send("hi")
            assert (await ws.recv(timeout=timeout())).data == "echo: hi"
            ws.close()
            await ws.closed(timeout=timeout())
    finally:
        await peer.stop()


async def test_compression_none_compresses_on_neither_leg(
    python_upstream: tuple[nbws.Server, list[str | None]],
) -> None:
    server, offers = python_upstream
    async with nbws.Relay(server.url, compression=None) as relay:
        ws = await echo_through(relay, "deflate")
        assert offers == [None]
        assert extensions(ws.response_headers) is None
        ws.close()
        await ws.closed(timeout=timeout())
