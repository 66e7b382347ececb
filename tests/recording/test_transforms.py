"""The transform helpers edit or drop messages over real sockets, one direction at a time, and compose in order."""

from __future__ import annotations

import asyncio
import json

import pytest
from _support import timeout

import nbws
from nbws import transforms


async def round_trip(server: nbws.Server, plugins: list[object], *messages: str | bytes) -> list[str | bytes]:
    """Send each message to the echo server through a client with ``plugins``; return what came back."""
    ws = nbws.WebSocket(server.url, plugins=plugins)
    await ws.opened(timeout=timeout())
    for data in messages:
        ws.send(data)
    ws.send("END")
    got = []
    while True:
        data = (await ws.recv(timeout=timeout())).data
        if isinstance(data, str) and "END" in data:
            break
        got.append(data)
    ws.close()
    await ws.closed(timeout=timeout())
    return got


async def test_map_text_in_one_direction(server: nbws.Server) -> None:
    got = await round_trip(server, [transforms.map_text(str.upper, direction="send")], "abc", b"abc")
    assert got == ["echo: ABC", b"abc"]
    got = await round_trip(server, [transforms.map_text(str.upper, direction="receive")], "abc")
    assert got == ["ECHO: ABC"]


async def test_map_binary(server: nbws.Server) -> None:
    got = await round_trip(server, [transforms.map_binary(lambda b: b[::-1], "send")], b"\x01\x02", "text")
    assert got == [b"\x02\x01", "echo: text"]


async def test_drop_if_and_keep_if(server: nbws.Server) -> None:
    got = await round_trip(server, [transforms.drop_if(lambda m: "spam" in m.data, "send")], "spam 1", "ham", "spam 2")
    assert got == ["echo: ham"]
    keep = transforms.keep_if(lambda m: m.is_binary or m.data.endswith("END") or "ham" in m.data, "receive")
    got = await round_trip(server, [keep], "spam", "ham", b"\x00")
    assert got == ["echo: ham", b"\x00"]


async def test_json_pretty_and_map_json(server: nbws.Server) -> None:
    got = await round_trip(
        server, [transforms.json_pretty("send", indent=1, sort_keys=True)], '{"b":1,"a":[1]}', "not json"
    )
    assert got == ['echo: {\n "a": [\n  1\n ],\n "b": 1\n}', "echo: not json"]

    def double(value: dict[str, int]) -> dict[str, int]:
        return {key: 2 * n for key, n in value.items()}

    got = await round_trip(server, [transforms.map_json(double, "send")], '{"x": 21}', "[oops")
    assert got == ['echo: {"x": 42}', "echo: [oops"]


async def test_redact_keys_at_any_depth(server: nbws.Server) -> None:
    redact = transforms.redact_keys(["password", "Token"], "send")
    message = json.dumps({"user": "ann", "password": "s3cret", "auth": [{"token": "abc", "scope": "read"}]})
    untouched = '{"user":  "bob"}'
    got = await round_trip(server, [redact], message, untouched, b'{"password": 1}')
    assert json.loads(str(got[0]).removeprefix("echo: ")) == {
        "user": "ann",
        "password": "***",
        "auth": [{"token": "***", "scope": "read"}],
    }
    assert got[1:] == ['echo: {"user":  "bob"}', b'{"password": 1}']  # not re-serialized; binary untouched
    with pytest.raises(ValueError, match="at least one key"):
        transforms.redact_keys([])


async def test_chain_applies_steps_in_the_order_written(server: nbws.Server) -> None:
    add_a = transforms.map_text(lambda s: s + "a", "send")
    add_b = transforms.map_text(lambda s: s + "b", "send")
    # Registered separately, the one registered last runs first (pluggy's order).
    assert await round_trip(server, [add_a, add_b], "x") == ["echo: xba"]
    # Chained, they run in the order written; a drop stops the chain.
    assert await round_trip(server, [transforms.chain(add_a, add_b)], "x") == ["echo: xab"]
    assert await round_trip(server, [add_b | add_a], "x") == ["echo: xba"]
    stop = transforms.drop_if(lambda m: m.data == "xa")
    seen: list[str | bytes] = []
    after = transforms.Transform(lambda m: seen.append(m.data))
    assert await round_trip(server, [transforms.chain(add_a, stop, after, direction="send")], "x", "y") == ["echo: ya"]
    assert seen == ["ya", "ENDa"]  # not "xa": nothing runs after a drop


async def test_async_transforms_delay_their_own_connection_only(server: nbws.Server) -> None:
    release = asyncio.Event()

    @transforms.transform("send")
    async def wait_for_release(message: nbws.Message) -> None:
        if message.data == "slow":
            await release.wait()
            message.data = "slow, released"

    slow = nbws.WebSocket(
        server.url, plugins=[transforms.chain(wait_for_release, transforms.map_text(str.upper, "send"))]
    )
    fast = nbws.WebSocket(server.url)
    await slow.opened(timeout=timeout())
    await fast.opened(timeout=timeout())
    slow.send("slow")
    fast.send("fast")
    assert (await fast.recv(timeout=timeout())).data == "echo: fast"
    release.set()
    assert (await slow.recv(timeout=timeout())).data == "echo: SLOW, RELEASED"
    for ws in (slow, fast):
        ws.close()
        await ws.closed(timeout=timeout())


async def test_a_failing_transform_is_reported_and_the_message_goes_on(server: nbws.Server) -> None:
    errors: list[nbws.ErrorEvent] = []
    broken = transforms.map_text(lambda s: 1 / 0, "send")  # type: ignore[arg-type, return-value]
    ws = nbws.WebSocket(server.url, plugins=[broken])
    ws.onerror = errors.append
    await ws.opened(timeout=timeout())
    ws.send("still sent")
    assert (await ws.recv(timeout=timeout())).data == "echo: still sent"
    assert [(e.phase, e.plugin) for e in errors] == [("plugin", broken.__name__)]
    ws.close()
    await ws.closed(timeout=timeout())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="direction must be"):
        transforms.map_text(str.upper, direction="up")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a callable"):
        transforms.Transform("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="chain"):
        transforms.chain(42)  # type: ignore[arg-type]


def test_each_transform_registers_under_its_own_name() -> None:
    registry = nbws.PluginRegistry()
    names = [registry.register(transforms.map_text(str.upper)) for _ in range(3)]
    assert len(set(names)) == 3 and all(name.startswith("map_text:upper") for name in names)
