"""
A raw WebSocket peer for the fault and bad-input tests: bytes on a TCP socket, no library.

It can say what no well-behaved library will: unmasked frames, reserved
opcodes, invalid UTF-8, oversize lengths, and TCP resets instead of closing
handshakes (RFC 6455 section 5).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

from .waits import timeout


def handshake_request(path: str = "/", extra: str = "") -> bytes:
    """A valid client opening handshake (RFC 6455 section 4.1)."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def raw_client(port: int, sock: socket.socket | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection that has completed the opening handshake and says nothing more on its own."""
    if sock is None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    else:
        reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(handshake_request())
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout())
    assert response.startswith(b"HTTP/1.1 101 "), response
    return reader, writer


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True, length: int | None = None
) -> bytes:
    """One frame as a client sends it (masked), or broken in any way the arguments say."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 2**16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one frame, masked (a client's) or not (a server's): its opcode and unmasked payload."""
    first, second = await asyncio.wait_for(reader.readexactly(2), timeout())
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
    payload = await asyncio.wait_for(reader.readexactly(size), timeout())
    return first & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def read_close(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read server frames until its close frame; return the close code and reason."""
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0], payload[2:]


def reset(writer: asyncio.StreamWriter) -> None:
    """Vanish: close with SO_LINGER 0, so the peer gets a TCP RST and no close frame."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
