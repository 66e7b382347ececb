"""The intercept holds messages until each is forwarded, edited or dropped, and holds up nothing else."""

from __future__ import annotations

import asyncio
import json

import pytest
from _support import timeout, until

import nbws


async def open_client(server: nbws.Server, *plugins: object) -> nbws.WebSocket:
    ws = nbws.WebSocket(server.url, plugins=plugins)
    await ws.opened(timeout=timeout())
    return ws


async def close(*clients: nbws.WebSocket) -> None:
    for ws in clients:
        ws.close()
        await ws.closed(timeout=timeout())


async def test_forward_edit_and_drop_received_messages(server: nbws.Server) -> None:
    icpt = nbws.Intercept("receive")
    ws = await open_client(server, icpt)
    for word in ("one", "two", "three", "four"):
        ws.send(word)

    held = await icpt.next(timeout=timeout())
    assert (held.message.data, held.direction, held.conn) == ("echo: one", "receive", ws)
    held.forward()
    assert (await ws.recv(timeout=timeout())).data == "echo: one"

    held = await icpt.next(timeout=timeout())
    assert held.message.data == "echo: two"
    icpt.edit("echo: TWO (edited)")
    assert (await ws.recv(timeout=timeout())).data == "echo: TWO (edited)"

    dropped = icpt.drop(await icpt.next(timeout=timeout()))
    assert dropped.message.data == "echo: three" and dropped.message.dropped
    icpt.forward((await icpt.next(timeout=timeout())).id)
    assert (await ws.recv(timeout=timeout())).data == "echo: four"  # three never arrived

    assert icpt.counts == {"held": 4, "forward": 2, "edit": 1, "drop": 1}
    assert [held.decision for held in (dropped,)] == ["drop"]
    assert icpt.held == []
    await close(ws)


async def test_held_sends_do_not_reach_the_peer_until_forwarded(server: nbws.Server) -> None:
    arrived: list[str | bytes] = []
    server.on("message", lambda conn, message: arrived.append(message.data))
    icpt = nbws.Intercept("send")
    ws = await open_client(server, icpt)
    ws.send("held back")
    held = await icpt.next(timeout=timeout())
    assert held.message.data == "held back"

    # The other direction of the same connection goes on meanwhile: a round trip from the server.
    server.clients[0].send("ping from the server")
    assert (await ws.recv(timeout=timeout())).data == "ping from the server"
    assert arrived == []

    held.edit(b"\x01binary now")
    await until(lambda: arrived == [b"\x01binary now"])
    assert (await ws.recv(timeout=timeout())).data == b"\x01binary now"
    await close(ws)


async def test_a_held_message_holds_up_no_other_connection(server: nbws.Server) -> None:
    icpt = nbws.Intercept("receive")
    held_up = await open_client(server, icpt)
    free = await open_client(server)
    held_up.send("wait")
    held = await icpt.next(timeout=timeout())
    for n in range(20):
        free.send(f"go {n}")
        assert (await free.recv(timeout=timeout())).data == f"echo: go {n}"
    assert not held.decided
    held.forward()
    assert (await held_up.recv(timeout=timeout())).data == "echo: wait"
    await close(held_up, free)


async def test_registered_globally_it_holds_every_connection_separately(server: nbws.Server) -> None:
    ours: set[str] = set()  # other tests' leftover connections are not ours to hold
    icpt = nbws.Intercept("receive", match=lambda m: m.connection in ours)
    nbws.plugins.register(icpt)
    a = await open_client(server)
    b = await open_client(server)
    ours.update((a.id, b.id))
    a.send("from a")
    b.send("from b")
    await until(lambda: len(icpt.held) == 2)
    assert {held.conn for held in icpt.held} == {a, b}
    # Release b's first: a's stays held, b's arrives.
    icpt.forward(next(held for held in icpt.held if held.conn is b))
    assert (await b.recv(timeout=timeout())).data == "echo: from b"
    assert [held.conn for held in icpt.held] == [a]
    assert icpt.forward_all() == 1
    assert (await a.recv(timeout=timeout())).data == "echo: from a"
    await close(a, b)


async def test_match_chooses_which_messages_to_hold(server: nbws.Server) -> None:
    def is_order(message: nbws.Message) -> bool:
        return isinstance(message.data, str) and message.data.startswith("{")

    icpt = nbws.Intercept("send", match=is_order)
    ws = await open_client(server, icpt)
    ws.send(json.dumps({"buy": 10}))
    held = await icpt.next(timeout=timeout())
    ws.send("chat")  # queued behind the held order: same connection, same direction
    held.edit(json.dumps({"buy": 1}))
    assert (await ws.recv(timeout=timeout())).data == 'echo: {"buy": 1}'
    assert (await ws.recv(timeout=timeout())).data == "echo: chat"
    assert icpt.counts["held"] == 1
    await close(ws)


async def test_a_connection_closing_releases_its_held_message(server: nbws.Server) -> None:
    icpt = nbws.Intercept("receive")
    ws = await open_client(server, icpt)
    server.clients[0].send("last words")
    held = await icpt.next(timeout=timeout())
    server.clients[0].close(1000, "bye")
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason) == (1000, "bye")
    assert (held.decision, held.reason) == ("forward", "closed")
    assert (await ws.recv(timeout=timeout())).data == "last words"


async def test_a_server_stops_with_messages_held() -> None:
    icpt = nbws.Intercept("receive")
    srv = nbws.Server(plugins=[icpt])
    await srv.start()
    ws = nbws.WebSocket(srv.url)
    await ws.opened(timeout=timeout())
    ws.send("stuck")
    held = await icpt.next(timeout=timeout())
    await asyncio.wait_for(srv.stop(), timeout())  # does not hang on the held message
    # This side started closing (server.stop() closes each connection): told at once by conn.ending(),
    # before the peer's answer closes the transport (a 20 ms poll used to see "closed" first).
    assert held.reason == "closing"
    assert (await ws.closed(timeout=timeout())).code == 1001


async def test_timeout_forwards_by_itself(server: nbws.Server) -> None:
    icpt = nbws.Intercept("receive", timeout=0.05)
    ws = await open_client(server, icpt)
    ws.send("anyone?")
    held = await icpt.next(timeout=timeout())
    assert (await ws.recv(timeout=timeout())).data == "echo: anyone?"
    assert (held.decision, held.reason) == ("forward", "timeout")
    await close(ws)


async def test_stop_forwards_everything_and_start_holds_again(server: nbws.Server) -> None:
    icpt = nbws.Intercept("receive")
    ws = await open_client(server, icpt)
    ws.send("a")
    await icpt.next(timeout=timeout())
    icpt.stop()
    assert not icpt.active
    assert (await ws.recv(timeout=timeout())).data == "echo: a"
    ws.send("b")
    assert (await ws.recv(timeout=timeout())).data == "echo: b"
    icpt.start()
    ws.send("c")
    held = await icpt.next(timeout=timeout())
    assert held.message.data == "echo: c"
    held.forward()
    await ws.recv(timeout=timeout())
    await close(ws)


async def test_misuse_is_reported_clearly(server: nbws.Server) -> None:
    icpt = nbws.Intercept()
    with pytest.raises(nbws.InvalidStateError, match="no message is held"):
        icpt.forward()
    with pytest.raises(nbws.TimeoutError, match=r"no message was held within 0\.01 seconds"):
        await icpt.next(timeout=0.01)
    with pytest.raises(ValueError, match="direction must be"):
        nbws.Intercept("sideways")  # type: ignore[arg-type]
    ws = await open_client(server, icpt)
    ws.send("x")
    held = await icpt.next(timeout=timeout())
    held.forward()
    with pytest.raises(nbws.InvalidStateError, match="already forwarded"):
        held.drop()
    with pytest.raises(nbws.InvalidStateError, match="no held message with id"):
        icpt.edit("y", held.id)
    await ws.recv(timeout=timeout())
    await close(ws)
