"""
Load: 500 concurrent clients on one server in this process, each sending and
receiving, then a broadcast to all of them. Nothing may be lost and no error
event may fire.
"""

from __future__ import annotations

import asyncio
import resource

import pytest
from _support import StartEchoServer, timeout

import nbws

CLIENTS = 500
MESSAGES = 10  # per client, each way


@pytest.fixture(autouse=True)
def _enough_file_descriptors() -> None:
    """Each connection costs a descriptor at each end, all in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * CLIENTS + 256
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise RuntimeError(f"the load test needs {needed} file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class Done:
    """Counts arrivals and wakes the test when the expected number is reached."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.event = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.event.set()

    async def wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.event.wait(), timeout(seconds))
        except asyncio.TimeoutError:
            raise AssertionError(f"only {self.count} of {self.expected} arrived") from None


async def test_500_clients_send_receive_and_get_a_broadcast(start_echo_server: StartEchoServer) -> None:
    server = await start_echo_server()
    errors: list[object] = []
    server.on("error", lambda conn, event: errors.append(event))
    inboxes: list[list[object]] = [[] for _ in range(CLIENTS)]
    echoes = Done(CLIENTS * MESSAGES)
    broadcasts = Done(CLIENTS)
    clients: list[nbws.WebSocket] = []
    try:
        for i in range(CLIENTS):
            ws = nbws.WebSocket(server.url, ping_interval=None)
            inbox = inboxes[i]

            def on_message(message: nbws.Message, inbox: list[object] = inbox) -> None:
                inbox.append(message.data)
                (broadcasts if message.data == "to everyone" else echoes).add()

            ws.onmessage = on_message
            ws.onerror = errors.append
            clients.append(ws)
        await asyncio.wait_for(asyncio.gather(*(ws.opened() for ws in clients)), timeout(60))
        assert len(server.clients) == CLIENTS

        for k in range(MESSAGES):
            for i, ws in enumerate(clients):
                ws.send(f"client {i} message {k}")
        await echoes.wait(60)
        for i, inbox in enumerate(inboxes):
            assert inbox == [f"client {i} message {k}" for k in range(MESSAGES)]

        assert server.broadcast("to everyone") == CLIENTS
        await broadcasts.wait(30)
        assert all(inbox[-1] == "to everyone" and len(inbox) == MESSAGES + 1 for inbox in inboxes)
        assert sum(conn.messages_received for conn in server.clients) == CLIENTS * MESSAGES
        assert sum(conn.messages_sent for conn in server.clients) == CLIENTS * (MESSAGES + 1)
    finally:
        for ws in clients:
            ws.close()
        await asyncio.wait_for(asyncio.gather(*(ws.closed() for ws in clients)), timeout(60))
        await server.stop()
    assert all(ws.close_event is not None and ws.close_event.was_clean for ws in clients)
    assert server.clients == []
    assert errors == []
