"""
nbws's own I/O: an asyncio protocol per connection driving websockets' sans-I/O core.

websockets' :class:`~websockets.client.ClientProtocol` and
:class:`~websockets.server.ServerProtocol` do the protocol: the opening
handshake, framing, permessage-deflate, the size limit (1009), control frames
and the closing handshake. A :class:`Wire` only moves bytes and events:

* bytes read are fed to the protocol in ``data_received``, and each complete
  message goes to its connection at once, in the same call: no reader task,
  no queue, no wake-up;
* bytes to write are taken from the protocol once per loop turn, so the
  frames sent by every handler in that turn leave in one ``transport.write``;
* the connection can *hold* delivery (while an ``async`` hook works on a
  message): the Wire keeps the frames that arrive meanwhile, in order, until
  :meth:`Wire.release`, and pauses reading once they pass ``HOLD_LIMIT``
  bytes. It keeps reading below that, so that the protocol still answers
  pings and sees the peer's close while a message is held;
* flow control comes from the transport's ``pause_writing`` and
  ``resume_writing``; the connection keeps its messages while writing is
  paused, bounded by ``max_buffered``;
* what websockets' sans-I/O layer leaves to the I/O layer is here: UTF-8
  checks of text messages (1007, RFC 6455 section 8.1), keepalive pings with
  a pong timeout (1011), and the close timeout (RFC 6455 section 7.1.1: the
  TCP connection is dropped if the peer does not close it in time).

It touches only websockets' public API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time as _time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

__all__ = ["KEEPALIVE_TIMEOUT", "Wire"]

OPEN = State.OPEN
CLOSED = State.CLOSED
_TEXT, _BINARY, _CONT, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG

_now = _time.time

KEEPALIVE_TIMEOUT = "keepalive ping timeout"
"""The reason a connection fails with (1011) when no pong came within ping_timeout."""

# The transport's buffer before it asks us to pause writing (websockets uses 32 KiB too).
WRITE_HIGH_WATER = 2**15

# Bytes of frames kept while delivery is held before reading pauses.
HOLD_LIMIT = 2**20


def _frame_end(buf: memoryview, start: int) -> int | None:
    """Where the frame starting at ``buf[start]`` ends (RFC 6455 section 5.2), or None if it is not all there."""
    size = len(buf)
    if size - start < 2:
        return None
    second = buf[start + 1]
    length = second & 0x7F
    header = 2
    if length == 126:
        if size - start < 4:
            return None
        length = int.from_bytes(buf[start + 2 : start + 4], "big")
        header = 4
    elif length == 127:
        if size - start < 10:
            return None
        length = int.from_bytes(buf[start + 2 : start + 10], "big")
        header = 10
    if second & 0x80:
        header += 4  # the masking key
    end = start + header + length
    return end if end <= size else None


if TYPE_CHECKING:
    # The connection a Wire carries, by its class (no Protocol restating its four _wire_* methods).
    from ._connection import BaseConnection as Owner

    Sans = ClientProtocol | ServerProtocol


class _Flusher:
    """
    The Wires of one loop that wrote this turn: flushed together at its end, with one callback.

    A broadcast to a thousand clients schedules one callback, not a thousand.
    """

    __slots__ = ("handle", "loop", "wires")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.wires: list[Wire] = []
        self.handle: asyncio.Handle | None = None

    def add(self, wire: Wire) -> None:
        self.wires.append(wire)
        if self.handle is None:
            self.handle = self.loop.call_soon(self.run)

    def run(self) -> None:
        self.handle = None
        wires, self.wires = self.wires, []
        for wire in wires:
            if wire._flush_pending:
                try:
                    wire.flush()
                except Exception:  # one connection's failure must not keep the others' bytes
                    logging.getLogger("nbws").exception("flushing %r failed", wire)
                    wire.abort()
            elif wire._written_now:
                # Only write_now() wrote this turn: nothing left to write, tell the connection.
                wire._written_now = False
                owner = wire.owner
                if owner is not None:
                    try:
                        owner._wire_flushed()
                    except Exception:  # as above: the other connections' turn goes on
                        logging.getLogger("nbws").exception("after writing %r", wire)


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = weakref.WeakKeyDictionary()


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    found = _flushers.get(loop)
    if found is None:
        found = _flushers[loop] = _Flusher(loop)
    return found


class Wire:
    """
    One WebSocket connection's bytes: a sans-I/O protocol, a transport, and the connection it carries.

    An asyncio protocol by its methods (``connection_made``, ``data_received``, ``eof_received``,
    ``connection_lost``, ``pause_writing``, ``resume_writing``), which is all asyncio asks of one, not by
    subclassing ``asyncio.Protocol``: compiled by mypyc, a class with a Python base is a slower kind
    (and one whose weak references dangle), where this one is a native class (which refuses them).

    Attributes:
        proto: websockets' sans-I/O protocol (client or server side).
        transport: The asyncio transport, once connected.
        owner: The connection its messages go to, once open (None during the handshake).
        handshake: Done with the request (server side) or the response
            (client side) once it arrived, or with None if the connection
            was lost first.
        lost: Done once the transport is closed.
        cause: The error that made this side fail the connection, if any
            (invalid UTF-8, a protocol error, a message too big).
    """

    def __init__(
        self,
        proto: Sans,
        loop: asyncio.AbstractEventLoop,
        *,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        close_timeout: float | None = 10,
        on_made: Callable[[Wire], bool] | None = None,
        on_gone: Callable[[Wire], None] | None = None,
    ) -> None:
        self.proto = proto
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.owner: Owner | None = None
        self.request: Any = None  # the nbws.Request of a server-side handshake
        self.counted = False  # against its server's max_connections
        self.response: Response | None = None
        self.handshake: asyncio.Future[Request | Response | None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.cause: BaseException | None = None
        self.paused = False
        self.held = False
        self.delivering = False
        self._receiving = False
        self._queue: deque[Frame] = deque()
        self._queued = 0  # bytes in _queue
        self._reading_paused = False
        # The first read after reading resumes may hold several frames that piled up meanwhile:
        # they are fed to the protocol one at a time (see _receive_frames).
        self._one_by_one = False
        self._fragments: list[bytes] | None = None
        self._fragments_text = False
        self._failed = False
        self._lost_told = False
        self._flush_pending = False  # on its loop's flush list for the end of this turn
        self._written_now = False  # on it for write_now() alone: the connection is told, nothing to write
        self._flusher = _flusher(loop)
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._on_made = on_made
        self._on_gone = on_gone

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._on_made is not None and not self._on_made(self):
            return
        transport.set_write_buffer_limits(WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        if self._one_by_one:
            self._one_by_one = False
            self._receive_frames(data)
            return
        self.proto.receive_data(data)
        self._deliver_received()
        # Control frames the protocol answered (pong, close) and what the handlers sent meanwhile.
        self.flush()

    def _receive_frames(self, data: bytes) -> None:
        """
        Feed ``data`` to the protocol a frame at a time, delivering each message before the next frame is parsed.

        Used for the first read after reading resumed (after the opening
        handshake, or after a hook held delivery), when frames that piled up
        in the socket come in one read. Parsed at once, a valid message
        followed by an invalid frame would fail the connection before the
        message's handlers run, so their replies could not be sent; fed one
        by one, every message before the invalid frame is handled first, as
        when the frames come in separate reads (Autobahn 3.4, 4.x.5).
        """
        proto = self.proto
        view = memoryview(data)
        start, size = 0, len(data)
        while start < size and proto.state is OPEN and self.delivering and not self.held:
            end = _frame_end(view, start)
            if end is None or end == size:
                break
            proto.receive_data(bytes(view[start:end]))
            start = end
            self._deliver_received()
        if start < size:
            proto.receive_data(bytes(view[start:]) if start else data)
        self._deliver_received()
        self.flush()

    def _deliver_received(self) -> None:
        """Deliver what the protocol parsed; replies sent meanwhile wait for the caller's flush()."""
        events = self.proto.events_received()
        if events:
            self._receiving = True
            try:
                self._events(events)
            finally:
                self._receiving = False

    def eof_received(self) -> bool | None:
        proto = self.proto
        proto.receive_eof()
        events = proto.events_received()
        if events:
            self._events(events)
        self.flush()
        # Endpoints never write after the peer's EOF (RFC 6455 closes after the close frames).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        proto = self.proto
        proto.receive_eof()  # idempotent: the state is CLOSED afterwards
        events = proto.events_received()
        if events:
            self._events(events)
        self._cancel_timers()
        self._flush_pending = False
        self._written_now = False
        if not self.handshake.done():
            self.handshake.set_result(None)
        if not self.lost.done():
            self.lost.set_result(None)
        if self._on_gone is not None:
            self._on_gone(self)
        if self.owner is not None and self.delivering and not self._queue and not self.held:
            self._tell_lost()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        owner = self.owner
        if owner is not None:
            owner._wire_resumed()

    # -- receiving ------------------------------------------------------------------

    def _events(self, events: list[Any]) -> None:
        queue = self._queue
        now = _now()  # when these frames were read: every message among them arrived then
        for index, event in enumerate(events):
            if not isinstance(event, Frame):
                self._handshake_event(event)
                continue
            if not self.delivering or self.held or queue:
                # Before the connection is attached, or while it holds delivery: keep them in order.
                for later in events[index:]:
                    if isinstance(later, Frame):
                        queue.append(later)
                        self._queued += len(later.data)
                    else:
                        self._handshake_event(later)
                if self._queued > HOLD_LIMIT:
                    self._pause_reading()
                return
            payload = event.data
            # The common case, here rather than in _frame: a whole text frame, parsed as bytes when
            # it came masked, as a bytearray when not; both decode in one step.
            if event.opcode is _TEXT and event.fin and not self._failed and isinstance(payload, (bytes, bytearray)):
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    pass  # _frame fails the connection with 1007
                else:
                    self.owner._wire_message(text, now)  # type: ignore[union-attr]  # delivering: attached
                    continue
            self._frame(event, now)

    def _handshake_event(self, event: Request | Response) -> None:
        if isinstance(event, Response):
            self.response = event
        if not self.handshake.done():
            self.handshake.set_result(event)

    def _frame(self, frame: Frame, time: float | None = None) -> None:
        """Handle one frame; a message it completes is delivered as received at ``time`` (None: now)."""
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if frame.fin:
                self._message(frame.data, opcode is _TEXT, time)
            else:
                self._fragments = [bytes(frame.data)]
                self._fragments_text = opcode is _TEXT
        elif opcode is _CONT:
            fragments = self._fragments
            if fragments is None:  # the protocol already failed the connection for it
                return
            fragments.append(bytes(frame.data))
            if frame.fin:
                self._fragments = None
                self._message(b"".join(fragments), self._fragments_text, time)
        elif opcode is _PONG and self._ping_payload is not None and frame.data == self._ping_payload:
            self._ping_payload = None
            if self._pong_timer is not None:
                self._pong_timer.cancel()
                self._pong_timer = None
        # Pings and close frames are answered by the protocol itself.

    def _message(self, payload: bytes | bytearray | memoryview, text: bool, time: float | None) -> None:
        if self._failed:
            return
        data: str | bytes
        if text:
            try:
                data = bytes(payload).decode() if not isinstance(payload, bytes) else payload.decode()
            except UnicodeDecodeError as exc:
                # RFC 6455 section 8.1: invalid UTF-8 in a text message fails the connection with 1007.
                self.fail(1007, f"{exc.reason} at position {exc.start}", exc)
                return
        else:
            data = payload if isinstance(payload, bytes) else bytes(payload)
        owner = self.owner
        assert owner is not None
        owner._wire_message(data, time)

    def attach(self, owner: Owner) -> None:
        """The handshake succeeded: deliver to ``owner`` from now on (what arrived meanwhile first)."""
        self.owner = owner
        self.delivering = True
        self._start_keepalive()
        self.release()

    def hold(self) -> None:
        """Stop delivering messages until :meth:`release` (reading goes on up to ``HOLD_LIMIT`` bytes)."""
        self.held = True

    def release(self) -> None:
        """Deliver what was kept, in order, then read again (unless a message holds delivery again)."""
        self.held = False
        queue = self._queue
        while queue and not self.held and self.owner is not None:
            frame = queue.popleft()
            self._queued -= len(frame.data)
            self._frame(frame)
        if self.held:
            return
        if self.lost.done():
            if self.owner is not None and not queue:
                self._tell_lost()
        elif self._reading_paused:
            self._reading_paused = False
            transport = self.transport
            if transport is not None and not transport.is_closing():
                self._one_by_one = True
                transport.resume_reading()
        self.flush()

    def _pause_reading(self) -> None:
        if not self._reading_paused:
            self._reading_paused = True
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()

    def _tell_lost(self) -> None:
        if not self._lost_told:
            self._lost_told = True
            owner = self.owner
            assert owner is not None
            owner._wire_lost()
            # The connection keeps its Wire (for its subprotocol and headers); not the other way round
            # any more, so that a closed connection is freed without waiting for the garbage collector.
            self.owner = None

    # -- sending ----------------------------------------------------------------------

    def send(self, data: str | bytes, encoded: bytes | None = None) -> bool:
        """
        Frame a message and write it; False if the connection is not open.

        ``encoded``: a text message's UTF-8 bytes, if the caller has them
        (a broadcast encodes once for all its copies).

        The first message of a loop turn is written at once (no added
        latency); the others of that turn leave together at its end, in one
        write, as do the replies handlers send while messages are delivered.
        """
        proto = self.proto
        if proto.state is not OPEN:
            return False
        if isinstance(data, str):
            proto.send_text(data.encode() if encoded is None else encoded)
        else:
            proto.send_binary(data)
        if not self._flush_pending and not self._receiving:
            self._flush_pending = True
            self._flusher.add(self)
            self._write_out()
        return True

    def write_now(self, data: str | bytes, encoded: bytes | None) -> bool:
        """
        Frame a message and hand it to the transport at once (a broadcast's copy); False if not done.

        Not done (the caller sends it the ordinary way) unless the connection
        is open, writing is not paused and this Wire is not delivering
        messages (whose replies leave together at the end of the turn).
        Frames the protocol still holds go first, in order.
        """
        proto = self.proto
        if self.paused or self._receiving or proto.state is not OPEN:
            return False
        if isinstance(data, str):
            proto.send_text(data.encode() if encoded is None else encoded)
        else:
            proto.send_binary(data)
        self._write_out()
        if not self._flush_pending and not self._written_now:
            self._written_now = True
            self._flusher.add(self)
        return True

    def flush(self) -> None:
        """Write what the protocol has to send, in one ``transport.write``, then tell the connection."""
        self._flush_pending = False
        self._written_now = False
        self._write_out()
        if self._close_timer is None and self.proto.close_expected():
            self._start_close_timer()
        owner = self.owner
        if owner is not None:
            owner._wire_flushed()

    def _write_out(self) -> None:
        transport = self.transport
        chunks = self.proto.data_to_send()
        if chunks and transport is not None and not transport.is_closing():
            eof = False
            if not chunks[-1]:
                chunks.pop()
                eof = True
            if len(chunks) == 1:
                transport.write(chunks[0])
            elif chunks:
                if len(chunks) > 2 or len(chunks[0]) + len(chunks[-1]) < 2**14:
                    transport.write(b"".join(chunks))  # many small frames: one write
                else:
                    for chunk in chunks:  # a big frame: no copy to join it with its header
                        transport.write(chunk)
            if eof:
                # The protocol is done with this connection (RFC 6455 section 7.1.1).
                if transport.can_write_eof():
                    try:
                        transport.write_eof()
                    except Exception:  # not documented; OSError is plausible
                        transport.close()
                else:
                    transport.close()
                if self.owner is None:
                    transport.close()  # a refused or broken handshake: nothing more to say

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake now (what was sent before goes first)."""
        proto = self.proto
        if proto.state is OPEN:
            proto.send_close(code, reason)
        self.flush()

    def fail(self, code: int, reason: str, cause: BaseException | None = None) -> None:
        """Fail the connection (RFC 6455 section 7.1.7) with ``code``: no message is delivered after this."""
        self._failed = True
        if self.cause is None:
            self.cause = cause
        self.proto.fail(code, reason)
        self.flush()

    def abort(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.abort()

    # -- timers ---------------------------------------------------------------------------

    def _start_close_timer(self) -> None:
        timeout = self._close_timeout
        if timeout is not None and not self.lost.done():
            self._close_timer = self.loop.call_later(timeout, self._close_overdue)

    def _close_overdue(self) -> None:
        self._close_timer = None
        self.abort()  # the peer did not close the TCP connection in time

    def _start_keepalive(self) -> None:
        if self._ping_interval is not None and not self.lost.done():
            self._ping_timer = self.loop.call_later(self._ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.proto.state is not OPEN:
            return
        payload = os.urandom(4)
        self._ping_payload = payload
        self.proto.send_ping(payload)
        self.flush()
        if self._ping_timeout is not None:
            self._pong_timer = self.loop.call_later(self._ping_timeout, self._pong_overdue)
        self._start_keepalive()

    def _pong_overdue(self) -> None:
        self._pong_timer = None
        if self.proto.state is OPEN:
            self.fail(1011, KEEPALIVE_TIMEOUT)

    def _cancel_timers(self) -> None:
        for timer in (self._close_timer, self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._ping_timer = self._pong_timer = None

    # -- for the connection -------------------------------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int] | None:
        transport = self.transport
        address = transport.get_extra_info("peername") if transport is not None else None
        return (address[0], address[1]) if isinstance(address, tuple) and len(address) >= 2 else None

    @property
    def buffered(self) -> int:
        """Bytes handed to the transport and not yet written to the network."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return 0
        return transport.get_write_buffer_size()

    async def wait_closed(self) -> None:
        """Wait until the transport is closed."""
        await asyncio.shield(self.lost)
