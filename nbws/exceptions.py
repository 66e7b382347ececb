"""
Every error nbws raises on purpose derives from :class:`NbwsError`.

The tree::

    NbwsError
    ├── InvalidStateError         the object is not in a state that allows the call
    │   └── BufferFullError       too much data is waiting to be sent on one connection
    ├── InvalidURLError           (also a ValueError) the URL is not a ws:// or wss:// URL
    ├── ConnectError              a client could not open its connection
    ├── ConnectionClosed          the connection is closed; carries ``code`` and ``reason``
    ├── ServerError               a server could not start (address in use, bad host)
    ├── TimeoutError              (also the builtin TimeoutError) a wait ran out of time
    │   └── HookTimeoutError      an awaited plugin hook was abandoned (reported, never raised to you)
    ├── PluginError               a plugin could not be loaded or registered
    ├── RecordingError            (also a ValueError) a recording file is malformed
    └── CassetteError             a cassette cannot be used (missing in mode "none", bad options)
        └── MismatchError         (also an AssertionError) a client did not do what the recording shows
    └── CodecError                (also a ValueError) a message cannot be decoded or encoded

Arguments of the wrong type or value raise the builtin :class:`TypeError` and
:class:`ValueError`, as the browser's ``WebSocket`` does; those of them that
are nbws's own also derive from :class:`NbwsError`.

Messages are short, lowercase, with no final period, and say what to do when
that is not obvious.
"""

from __future__ import annotations

import builtins

__all__ = [
    "BufferFullError",
    "CassetteError",
    "CodecError",
    "ConnectError",
    "ConnectionClosed",
    "HookTimeoutError",
    "InvalidStateError",
    "InvalidURLError",
    "MismatchError",
    "NbwsError",
    "PluginError",
    "RecordingError",
    "ServerError",
    "TimeoutError",
    "describe",
]


class NbwsError(Exception):
    """Base class of every exception nbws raises on purpose."""


class InvalidStateError(NbwsError):
    """
    The call is not allowed in the object's current state.

    For example :meth:`nbws.WebSocket.send` before the connection is open, as
    the browser raises ``InvalidStateError`` for ``send()`` on a ``CONNECTING``
    socket.
    """


class BufferFullError(InvalidStateError):
    """
    Too much data is already waiting to be sent on this connection.

    Raised by ``send()`` when the bytes queued on a connection would exceed its
    ``max_buffered`` limit, or when the queue of messages held during a
    reconnection is full. Nothing is dropped silently: the message that did not
    fit is the one refused.
    """


class InvalidURLError(NbwsError, ValueError):
    """The URL given to :class:`nbws.WebSocket` is not a valid ws:// or wss:// URL."""


class ConnectError(NbwsError):
    """
    A client could not open its connection.

    ``__cause__`` holds the underlying error (refused, name resolution,
    handshake rejected by the server).
    """


class ConnectionClosed(NbwsError):
    """
    The connection is closed, so there is nothing more to receive.

    Attributes:
        code: The close code of the close event (1006 when the connection
            dropped without a closing handshake).
        reason: The close reason, possibly empty.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        text = f"connection closed with code {code}"
        if reason:
            text += f" ({reason})"
        super().__init__(text)


class ServerError(NbwsError):
    """A server could not start: the port is in use, the host is unknown, and so on."""


class TimeoutError(NbwsError, builtins.TimeoutError):
    """A wait such as ``opened(timeout=...)`` or ``recv(timeout=...)`` ran out of time."""


class PluginError(NbwsError):
    """A plugin could not be loaded or registered, or does not follow the hook API."""


class RecordingError(NbwsError, ValueError):
    """A recording file is malformed; the message names the line or entry at fault."""


class CassetteError(NbwsError):
    """A cassette or fake server cannot be used: a missing cassette in mode ``"none"``, a bad option."""


class MismatchError(CassetteError, AssertionError):
    """
    A client did not do what the recording shows: a message matched nothing, or a recorded one never came.

    Attributes:
        problems: One text per problem, each with the expected and the received message side by side.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n\n".join(self.problems))


class CodecError(NbwsError, ValueError):
    """
    A message cannot be decoded or encoded by its protocol's codec.

    Decoding never raises it to the connection: a message that fails to decode
    gets a view whose ``error`` says why. :meth:`nbws.codecs.Decoded.encode`
    raises it for a view that cannot be put back on the wire.
    """


class HookTimeoutError(TimeoutError):
    """
    An awaited hook implementation was abandoned and cancelled.

    It was still running when its connection closed, when ``close()`` had
    waited ``close_timeout`` for it, or after ``hook_timeout``. nbws reports
    it (error event, phase ``"plugin"``, with the plugin's name) and goes on;
    it is never raised into your code.
    """


def describe(error: BaseException) -> str:
    """Say what an exception means in words, for error events, logs and panels."""
    text = str(error)
    name = type(error).__name__
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: nothing is listening there"
    if not text:
        return name
    return f"{name}: {text}" if name not in text else text
