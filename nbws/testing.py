"""
An in-memory transport: a client and a server connection with no socket between them.

The connections are the real ones: the same websockets protocol (handshake,
framing, permessage-deflate, the closing handshake), the same hooks,
handlers, ``recv()``, limits and events. Only the bytes travel through memory
instead of TCP, delivered in order at the next turn of the event loop, with
flow control (a peer that stops reading makes the writer pause at the same
high-water mark as a socket would). Use it to test plugins, transforms,
recordings, replays and widgets without ports::

    import nbws
    from nbws.testing import connect

    server = nbws.Server()              # no start() needed for in-memory clients
    server.on("message", lambda conn, m: conn.send(m.data))
    ws = connect(server)                # an nbws.WebSocket, connecting now
    await ws.opened()
    ws.send("hi")
    assert (await ws.recv()).data == "hi"
    ws.close()
    await ws.closed()
    await server.stop()

A WebSocket made with ``transport=MemoryTransport(server)`` reconnects
through memory too (``reconnect=True``): after ``server.stop()`` and
``server.start()`` it comes back.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from .client import WebSocket
from .exceptions import ConnectError

if TYPE_CHECKING:
    from ._protocol import Wire
    from .server import Server

__all__ = ["MemoryTransport", "connect"]

_numbers = itertools.count(1)
_EOF = object()


class MemoryTransport:
    """
    Where a :class:`~nbws.WebSocket` connects instead of a TCP socket: straight into ``server``.

    Pass it as ``nbws.WebSocket(url, transport=MemoryTransport(server))``; the
    URL's host and port only go into the ``Host`` header, its path and query
    into the request. The server need not listen on a port; once it is
    stopping, new in-memory connections are refused as a closed port would.
    """

    def __init__(self, server: Server) -> None:
        self.server = server

    def __repr__(self) -> str:
        return f"<MemoryTransport to {self.server!r}>"

    async def connect(self, wire: Wire) -> None:
        """Join ``wire`` (the client's) to a new server-side connection of the server (nbws calls this)."""
        server = self.server
        if server._stopping is not None and server._server is None:
            raise ConnectionRefusedError("the server is stopped")
        loop = asyncio.get_running_loop()
        if server._loop is not loop:
            raise ConnectError("an in-memory connection needs its client and server on the same event loop")
        number = next(_numbers)
        client_end = _End(loop, ("memory-client", number))
        server_end = _End(loop, ("memory-server", number))
        client_end.peer, server_end.peer = server_end, client_end
        server_wire = server._wire()
        server_end.set_protocol(cast(asyncio.Protocol, server_wire))
        client_end.set_protocol(cast(asyncio.Protocol, wire))
        server_wire.connection_made(server_end)
        wire.connection_made(client_end)


def connect(server: Server, path: str = "/", **options: Any) -> WebSocket:
    """
    Connect a new :class:`~nbws.WebSocket` to ``server`` in memory and return it (it is connecting).

    ``options`` are those of :class:`~nbws.WebSocket` (``protocols``,
    ``headers``, ``plugins``, ``reconnect``, ...). ``path`` may carry a query.
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
    return WebSocket(f"ws://memory{path}", transport=MemoryTransport(server), **options)


class _End(asyncio.Transport):
    """One end of an in-memory pipe, shaped like a socket transport for an ``asyncio.Protocol``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: tuple[str, int]) -> None:
        super().__init__()
        self._loop = loop
        self._name = name
        self.peer: _End | None = None
        self._protocol: asyncio.Protocol | None = None
        self._closing = False
        self._lost = False
        self._reading_paused = False
        self._inbox: deque[Any] = deque()  # bytes or _EOF the peer sent, not yet given to our protocol
        self._unread = 0  # bytes we wrote that the peer's protocol has not taken yet
        self._high = 2**16
        self._low = 2**14
        self._writing_paused = False

    # -- asyncio.BaseTransport --------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in ("peername", "sockname"):
            return self._name if name == "sockname" else (self.peer._name if self.peer is not None else None)
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close after what was written reaches the peer, which then sees EOF."""
        if self._closing:
            return
        self._closing = True
        peer = self.peer
        if peer is not None:
            self._loop.call_soon(peer._arrive, _EOF, self)
        self._loop.call_soon(self._gone, None)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        # An asyncio protocol by its methods: nbws's Wire subclasses none (see nbws._protocol).
        self._protocol = cast(asyncio.Protocol, protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    # -- asyncio.ReadTransport ------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._loop.call_soon(self._take)

    # -- asyncio.WriteTransport -------------------------------------------------------------

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 2**16 if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return self._unread

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        chunk = bytes(data)
        peer = self.peer
        if peer is None or peer._lost:
            return
        self._unread += len(chunk)
        self._loop.call_soon(peer._arrive, chunk, self)
        if not self._writing_paused and self._unread > self._high and self._protocol is not None:
            self._writing_paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        peer = self.peer
        if peer is not None and not self._closing:
            self._loop.call_soon(peer._arrive, _EOF, self)

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        """Drop the pipe at once: the peer sees a reset."""
        if self._lost:
            return
        self._closing = True
        peer = self.peer
        if peer is not None and not peer._lost:
            peer._closing = True
            self._loop.call_soon(peer._gone, ConnectionResetError("the in-memory peer aborted"))
        self._loop.call_soon(self._gone, None)

    # -- delivery -----------------------------------------------------------------------------

    def _arrive(self, item: Any, sender: _End) -> None:
        if self._lost:
            sender._taken(len(item) if item is not _EOF else 0)
            return
        self._inbox.append((item, sender))
        if not self._reading_paused:
            self._take()

    def _take(self) -> None:
        inbox = self._inbox
        protocol = self._protocol
        while inbox and not self._reading_paused and not self._lost and protocol is not None:
            item, sender = inbox.popleft()
            if item is _EOF:
                keep = protocol.eof_received()
                if not keep:
                    self.close()
                continue
            sender._taken(len(item))
            protocol.data_received(item)

    def _taken(self, size: int) -> None:
        self._unread -= size
        if self._writing_paused and self._unread <= self._low and not self._lost and self._protocol is not None:
            self._writing_paused = False
            self._protocol.resume_writing()

    def _gone(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._inbox.clear()
        protocol = self._protocol
        if protocol is not None:
            protocol.connection_lost(exc)
