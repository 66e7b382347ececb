"""A relay to a wss:// upstream (a test certificate from trustme), and 200 pairs at once through one relay."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest
import trustme
from _support import timeout
from websockets.asyncio.server import ServerConnection, serve

import nbws


async def echo(ws: ServerConnection) -> None:
    async for data in ws:
        await ws.send(data)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def wss_upstream(ca: trustme.CA) -> AsyncIterator[str]:
    """A websockets echo server over TLS, with a certificate for 127.0.0.1 signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with serve(echo, "127.0.0.1", 0, ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"wss://127.0.0.1:{port}"


async def test_wss_upstream_with_an_untrusted_certificate_is_refused_clearly(wss_upstream: str) -> None:
    errors: list[str] = []
    relay = nbws.Relay(wss_upstream)  # verification on, system trust store: the test CA is not in it
    relay.on("error", lambda pair, event: errors.append(event.message))
    await relay.start()
    ws = nbws.WebSocket(relay.url)
    with pytest.raises(nbws.ConnectError, match="HTTP 502"):
        await ws.opened(timeout=timeout())
    body = ws.last_error.response.body.decode()  # type: ignore[union-attr]
    assert "upstream unreachable" in body and "CERTIFICATE_VERIFY_FAILED" in body
    assert errors and "certificate verify failed" in errors[0]
    await relay.stop()


async def test_wss_upstream_with_a_custom_context_works(wss_upstream: str, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    relay = nbws.Relay(wss_upstream, ssl=context)
    await relay.start()
    ws = nbws.WebSocket(relay.url + "secure?x=1")
    await ws.opened(timeout=timeout())
    ws.send("over tls")
    assert (await ws.recv(timeout=timeout())).data == "over tls"
    [pair] = relay.pairs
    assert pair.upstream_url == wss_upstream + "/secure?x=1"
    ws.close()
    await relay.stop()


def test_ssl_must_be_a_context() -> None:
    with pytest.raises(TypeError, match=r"ssl\.SSLContext"):
        nbws.Relay("wss://127.0.0.1:1/", ssl=True)  # type: ignore[arg-type]


async def test_200_pairs_100_messages_each_way_nothing_lost_or_reordered() -> None:
    pairs, count = 200, 100
    async with serve(echo, "127.0.0.1", 0, compression=None) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        relay = nbws.Relay(f"ws://127.0.0.1:{port}", compression=None)
        errors: list[nbws.ErrorEvent] = []
        relay.on("error", lambda pair, event: errors.append(event))
        await relay.start()
        clients = [nbws.WebSocket(relay.url + f"c{i}", compression=None) for i in range(pairs)]
        await asyncio.gather(*(ws.opened(timeout=timeout(30)) for ws in clients))
        assert len(relay.pairs) == pairs

        async def talk(i: int, ws: nbws.WebSocket) -> list[str | bytes]:
            for n in range(count):
                ws.send(f"{i}:{n}")
            return [(await ws.recv(timeout=timeout(30))).data for _ in range(count)]

        results = await asyncio.gather(*(talk(i, ws) for i, ws in enumerate(clients)))
        for i, got in enumerate(results):
            assert got == [f"{i}:{n}" for n in range(count)]
        assert all(p.counts == {"client->upstream": count, "upstream->client": count} for p in relay.pairs)
        for ws in clients:
            ws.close()
        await asyncio.gather(*(ws.closed(timeout=timeout(30)) for ws in clients))
        await relay.stop()
        assert not relay.pairs and not errors
        assert not relay._live  # the hooks' look-up table lets go of every closed leg
