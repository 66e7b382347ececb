"""The nbws command line, end to end in subprocesses: connect, serve, relay, replay, fake; bad arguments; failures."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _support import StartEchoServer, timeout
from _support.node import NodePeer, backend

import nbws


class Cli:
    """One ``python -m nbws ...`` process; read its stdout and stderr line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *args: str) -> Cli:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nbws",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(process)

    async def line(self, stream: str = "stdout", seconds: float = 10) -> str:
        reader = self.process.stdout if stream == "stdout" else self.process.stderr
        assert reader is not None
        raw = await asyncio.wait_for(reader.readline(), timeout(seconds))
        if not raw:
            raise AssertionError(f"nbws exited ({await self.process.wait()}) before printing on {stream}")
        return raw.decode().rstrip("\n")

    async def until(self, pattern: str, stream: str = "stderr") -> re.Match[str]:
        while True:
            found = re.search(pattern, await self.line(stream))
            if found:
                return found

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def finish(self, seconds: float = 10) -> tuple[int, str, str]:
        """Close stdin, wait for the exit; return (status, rest of stdout, rest of stderr)."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        out, err = await asyncio.wait_for(self.process.communicate(), timeout(seconds))
        return self.process.returncode or 0, out.decode(), err.decode()

    async def terminate(self) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGTERM)
        return await self.finish()


async def run(*args: str) -> tuple[int, str, str]:
    cli = await Cli.start(*args)
    return await cli.finish()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[NodePeer, str]]:
    async with backend("chat") as found:
        yield found


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("connect",), "the following arguments are required: url"),
        (("connect", "http://example.test/"), "is not a WebSocket URL"),
        (("connect", "ws://127.0.0.1:1/", "-H", "no colon"), "is not a header"),
        (("serve", "--port", "70000"), "port 70000 is not from 0 to 65535"),
        (("relay", "ftp://x/"), "is not a WebSocket URL"),
        (("replay", "x.jsonl", "ws://127.0.0.1:1/", "--speed", "0"), "speed must be more than 0"),
        (("serve", "--port", "0", "--plugin", "no-such-plugin"), "no plugin named 'no-such-plugin'"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
async def test_bad_arguments_exit_2_with_a_usage_message(args: tuple[str, ...], message: str) -> None:
    status, out, err = await run(*args)
    assert status == 2, err
    assert message in err and "usage: nbws" in err
    assert out == ""


async def test_version() -> None:
    status, out, _ = await run("--version")
    # As black says it: which build runs (tests/system/test_compiled_build.py checks "yes" on the compiled one).
    assert (status, out.strip()) == (0, f"nbws {nbws.__version__} (compiled: {'yes' if nbws.COMPILED else 'no'})")


async def test_unreachable_url_exits_1_with_a_clear_message() -> None:
    status, out, err = await run("connect", "ws://127.0.0.1:9/")
    assert status == 1
    assert "nbws: error: could not connect to ws://127.0.0.1:9/: connection refused" in err
    assert "Traceback" not in err and out == ""


async def test_missing_recording_exits_1() -> None:
    status, _, err = await run("replay", "/nonexistent/rec.jsonl", "ws://127.0.0.1:9/")
    assert status == 1 and "no such recording: /nonexistent/rec.jsonl" in err


async def test_fake_says_a_recording_is_missing() -> None:
    status, _, err = await run("fake", "/nonexistent/rec.jsonl", "--port", "0")
    assert status == 1
    assert "no such recording" in err
    assert "Traceback" not in err


async def test_fake_plays_the_server_side_of_a_recording(tmp_path: Path, start_echo_server: StartEchoServer) -> None:
    # Record a real session from the client's side, then let `nbws fake` answer a new client from it.
    server = await start_echo_server("echo: ")
    path = tmp_path / "session.jsonl"
    recorder = nbws.Recorder(path)
    ws = nbws.WebSocket(server.url, plugins=[recorder])
    await ws.opened(timeout=timeout())
    ws.send("hi")
    assert (await ws.recv(timeout=timeout())).data == "echo: hi"
    ws.close()
    await ws.closed(timeout=timeout())
    recorder.close()
    await server.stop()

    fake = await Cli.start("fake", str(path), "--port", "0")
    url = (await fake.until(r"on (ws://\S+)")).group(1)
    client = nbws.WebSocket(url)
    await client.opened(timeout=timeout())
    client.send("hi")
    assert (await client.recv(timeout=timeout())).data == "echo: hi"
    client.close()
    await client.closed(timeout=timeout())
    fake.process.send_signal(signal.SIGINT)
    status, _, _ = await fake.finish()
    assert status == 0  # Ctrl-C is how a fake server is meant to stop


async def test_serve_echo_and_connect_interactively_with_json_and_binary(tmp_path: Path) -> None:
    server = await Cli.start("serve", "--port", "0", "--echo")
    url = (await server.until(r"listening on (ws://\S+)")).group(1)
    record = tmp_path / "client.jsonl"
    client = await Cli.start("connect", url, "--json", "--record", str(record), "-w", "0")
    await client.until("connected to")
    await client.send("hello")
    assert await client.line() == "< hello"
    assert re.fullmatch(r"s\d+ < hello", await server.line())  # the server prints what it received
    await client.send('{"a": [1, 2]}')
    assert [await client.line() for _ in range(6)] == ["< {", '  "a": [', "    1,", "    2", "  ]", "}"]
    status, _, err = await client.finish()
    assert status == 0 and "disconnected (code 1000)" in err
    messages = nbws.Recording.load(record).messages()
    assert [(m.direction, m.data) for m in messages] == [
        ("send", "hello"),
        ("receive", "hello"),
        ("send", '{"a": [1, 2]}'),
        ("receive", '{"a": [1, 2]}'),
    ]
    binary = await Cli.start("connect", url, "--binary", "-x", "00ff10", "-w", "5")
    assert await binary.line() == "< [binary 3 bytes] 00ff10"
    binary.process.send_signal(signal.SIGINT)
    status, _, _ = await binary.finish()
    assert status == 0
    status, _, err = await server.terminate()
    assert status == 0 and "stopped" in err


async def test_serve_broadcasts_the_lines_typed_and_prints_what_arrives() -> None:
    server = await Cli.start("serve", "--port", "0", "-s", "chat")
    url = (await server.until(r"listening on (ws://\S+)")).group(1)
    ws = nbws.WebSocket(url, ["chat"])
    await ws.opened(timeout=timeout())
    assert ws.protocol == "chat"
    await server.until("connected from")
    ws.send("from the client")
    assert re.fullmatch(r"s\d+ < from the client", await server.line())
    await server.send("to everyone")
    assert (await ws.recv(timeout=timeout())).data == "to everyone"
    ws.close()
    await ws.closed(timeout=timeout())
    status, _, _ = await server.terminate()
    assert status == 0


async def test_relay_prints_both_ways_records_and_the_recording_replays(
    upstream: tuple[NodePeer, str], tmp_path: Path
) -> None:
    peer, upstream_url = upstream
    record = tmp_path / "relay.jsonl"
    relay = await Cli.start("relay", upstream_url, "--port", "0", "--record", str(record))
    url = (await relay.until(r"relaying (ws://\S+) ->")).group(1)
    ws = nbws.WebSocket(url, ["chat"])
    assert (await ws.recv(timeout=timeout())).data == "hello chat"
    ws.send("ping 1")
    assert (await ws.recv(timeout=timeout())).data == "echo: ping 1"
    ws.send(b"\x01")
    assert (await ws.recv(timeout=timeout())).data == b"echo: \x01"
    printed = [(await relay.line()).split(" ", 1) for _ in range(5)]
    assert len({pair for pair, _ in printed}) == 1 and printed[0][0].startswith("p")
    assert [line for _, line in printed] == [
        "< hello chat",
        "> ping 1",
        "< echo: ping 1",
        "> [binary 1 bytes] 01",
        "< [binary 7 bytes] 6563686f3a2001",
    ]
    ws.close(4005, "bye")
    assert (await peer.expect("connection"))["protocol"] == "chat"
    await peer.expect("message")
    await peer.expect("message")
    assert await peer.expect("close") == {"event": "close", "code": 4005, "reason": "bye"}
    await relay.until(r"p\d+ closed \(client 4005, upstream 4005\)")
    status, out, _ = await relay.terminate()
    assert status == 0
    # The whole session, both legs, in one recording.
    recording = nbws.Recording.load(record)
    legs = {(e.leg, e.direction, e.data) for e in recording.messages()}
    assert ("client", "receive", "ping 1") in legs and ("upstream", "send", "ping 1") in legs
    assert ("upstream", "receive", "echo: ping 1") in legs and ("client", "send", "echo: ping 1") in legs
    upstream_leg = next(e.connection for e in recording if e.leg == "upstream")
    # Replay what the client sent, to the upstream, with the CLI.
    status, out, err = await run("replay", str(record), upstream_url, "--connection", upstream_leg, "--speed", "50")
    assert status == 0, err
    assert "> ping 1" in out and "replayed 2 messages" in err
    await peer.expect("connection")
    assert (await peer.expect("message"))["data"] == "ping 1"
    assert (await peer.expect("message"))["data"] == "01"


async def test_relay_refusal_and_unreachable_upstream_are_told(upstream: tuple[NodePeer, str]) -> None:
    _, upstream_url = upstream
    relay = await Cli.start("relay", upstream_url, "--port", "0", "-q")
    url = (await relay.until(r"relaying (ws://\S+) ->")).group(1)
    status, _, err = await run("connect", url + "refuse/403")
    assert status == 1 and "HTTP 403" in err
    assert "rejected the handshake with HTTP 403 Forbidden" in await relay.line("stderr")
    status, _, _ = await relay.terminate()
    assert status == 0
    dead = await Cli.start("relay", "ws://127.0.0.1:9/", "--port", "0")
    url = (await dead.until(r"relaying (ws://\S+) ->")).group(1)
    status, _, err = await run("connect", url)
    assert status == 1 and "HTTP 502" in err
    await dead.terminate()
