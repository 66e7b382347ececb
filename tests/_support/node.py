"""
Node.js peers for the interop tests: the scripts in tests/interop, run with Node's ``ws``.

Each script reports events on stdout as one JSON object a line and, for the
client, takes commands on stdin the same way. :class:`NodePeer` starts one as
a subprocess and reads its events with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .waits import timeout

INTEROP = Path(__file__).resolve().parents[1] / "interop"

BACKEND = ("--prefix", "echo: ", "--greeting", "hello ")
"""Options of ``echo_server.js`` for "the real backend" behind a relay: greets with "hello <protocol>", echoes as "echo: <text>"."""


def node_path() -> str:
    """Node.js, with the ``ws`` package installed by scripts/system-deps (``make test`` runs it)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: the interop tests need Node.js 18 or later")
    if not (INTEROP / "node_modules" / "ws").is_dir():
        raise RuntimeError("Node's ws is not installed in tests/interop: run scripts/system-deps (make test does)")
    return node


class NodePeer:
    """One running Node script; ``await peer.event()`` returns its next report."""

    def __init__(self, process: asyncio.subprocess.Process, script: str) -> None:
        self.process = process
        self.script = script

    @classmethod
    async def start(cls, script: str, *args: str) -> NodePeer:
        process = await asyncio.create_subprocess_exec(
            node_path(),
            str(INTEROP / script),
            *args,
            cwd=INTEROP,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process, script)

    async def event(self, seconds: float = 5.0) -> dict[str, Any]:
        """The next event the script reports; fails if it exits or stays silent for too long."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout(seconds))
        if not line:
            assert self.process.stderr is not None
            error = await self.process.stderr.read()
            raise AssertionError(f"{self.script} exited ({self.process.returncode}): {error.decode()}")
        event: dict[str, Any] = json.loads(line)
        return event

    async def expect(self, name: str, seconds: float = 5.0) -> dict[str, Any]:
        """The next event, which must be called ``name``."""
        event = await self.event(seconds)
        assert event["event"] == name, f"expected {name!r} from {self.script}, got {event}"
        return event

    async def command(self, **command: Any) -> None:
        """Send one command line to the script's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    async def stop(self) -> None:
        """Close its stdin and wait for it to exit (kill it if it does not)."""
        process = self.process
        if process.returncode is None and process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout(5))
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def backend(*protocols: str) -> AsyncIterator[tuple[NodePeer, str]]:
    """Node's ws as "the real backend" (``echo_server.js`` with :data:`BACKEND`, offering ``protocols``): the peer and its URL."""
    peer = await NodePeer.start("echo_server.js", *BACKEND, *protocols)
    listening = await peer.expect("listening")
    try:
        yield peer, f"ws://127.0.0.1:{listening['port']}"
    finally:
        await peer.stop()
