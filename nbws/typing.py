"""
The type aliases of nbws's public API, in one place for annotations in your own code::

    from nbws.typing import Direction, MessageHandler

    def log(message: nbws.Message) -> None: ...
    handler: MessageHandler = log

They are also importable where they were first defined (``Direction`` from
``nbws._events``, ``Which`` from :mod:`nbws.transforms`): those names stay.
Importing this module costs nothing at run time beyond :mod:`typing` itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._events import CloseEvent, ErrorEvent, Message, OpenEvent

__all__ = [
    "CloseHandler",
    "Data",
    "Direction",
    "ErrorHandler",
    "Flow",
    "HookResult",
    "Leg",
    "Listener",
    "MessageHandler",
    "OpenHandler",
    "Which",
]

Data = str | bytes
"""A message's payload: ``str`` for a text message, ``bytes`` for a binary one."""

Direction = Literal["send", "receive"]
"""Which way a message goes, seen from the local endpoint (as browser developer tools and HAR name it)."""

Which = Direction | Literal["both"]
"""The messages a transform applies to: those sent, those received, or both."""

Leg = Literal["client", "upstream"]
"""On a :class:`nbws.Relay`, the leg a message travels on: client-relay or relay-upstream."""

Flow = Literal["client->upstream", "upstream->client"]
"""On a :class:`nbws.Relay`, which way a message travels end to end (:attr:`nbws.Message.flow`)."""

HookResult = Awaitable[None] | None
"""What a hook implementation that returns nothing may return: None, or an awaitable nbws awaits (``async def``)."""

Listener = Callable[..., Any]
"""Any event listener or observer callback; a plain function or an ``async def`` one."""

OpenHandler = Callable[["OpenEvent"], Awaitable[None] | None]
"""``ws.onopen`` and ``ws.on("open", ...)``: gets the :class:`nbws.OpenEvent`."""

MessageHandler = Callable[["Message"], Awaitable[None] | None]
"""``ws.onmessage`` and ``ws.on("message", ...)``: gets the :class:`nbws.Message`."""

CloseHandler = Callable[["CloseEvent"], Awaitable[None] | None]
"""``ws.onclose`` and ``ws.on("close", ...)``: gets the :class:`nbws.CloseEvent`."""

ErrorHandler = Callable[["ErrorEvent"], Awaitable[None] | None]
"""``ws.onerror`` and ``ws.on("error", ...)``: gets the :class:`nbws.ErrorEvent`."""
