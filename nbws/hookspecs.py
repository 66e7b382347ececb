"""
The plugin API of nbws: every hook a plugin can implement, in one place.

A plugin is any object (a module, a class instance) with methods named after
these hooks and marked with :data:`nbws.hookimpl` (defined here, as
:data:`hookimpl`). Register it for every endpoint with
``nbws.plugins.register(plugin)``, for one with
``ws.plugins.register(plugin)`` or ``server.plugins.register(plugin)``, or
publish it under the ``nbws`` entry-point group so that it loads by itself.

How nbws calls hooks (this differs from plain pluggy on purpose):

* Arguments are passed by keyword; an implementation may accept any subset of
  them, as in pluggy.
* Order: ``tryfirst`` implementations run first, then the others, then
  ``trylast`` ones. Within each group the plugin registered last runs first
  (pluggy's rule), and an endpoint's own plugins run before global ones.
* Every implementation runs, even when another one raises: nbws catches the
  error (any exception, ``asyncio.CancelledError`` and other
  ``BaseException`` included, but ``KeyboardInterrupt`` and ``SystemExit``),
  counts it against the plugin, reports it through ``nbws_error`` (phase
  ``"plugin"``) and the endpoint's error event with the plugin's name, logs
  it, and goes on. Whatever a hook raises, every connection still ends with
  exactly one close event and one ``nbws_close``.
* Exception: a hook that decides access (``nbws_handshake``) fails closed. If
  it raises, the handshake is refused with HTTP 500 and the fault is reported.
* An ``async def`` implementation is awaited before the next one runs. On the
  message path this delays that connection's messages only. A synchronous
  implementation runs on the event loop: while it runs, *every* connection
  of the process waits, so keep it short (or make it ``async``).
* An awaited implementation never holds a connection forever: it is
  cancelled (and reported by name) when its connection closes, when
  ``close()`` has waited ``close_timeout`` for the messages before it, or
  after the endpoint's ``hook_timeout`` (off by default). ``nbws_close`` and
  ``nbws_server_stop`` implementations get ``close_timeout`` each, so
  ``server.stop()`` and ``ws.close()`` finish whatever plugins do. A
  transform (``nbws_message_send``/``nbws_message_receive``) cancelled that way
  drops its message: it never approved it.
* The same rules hold for every hook, on clients, server connections and
  servers: one runner calls them all.
* Transforms compose by editing the message in place: ``message.data = ...``
  or ``message.drop()``. Each implementation sees the message as the previous
  ones left it; once a message is dropped the remaining transform hooks are
  not called for it.
* Hook wrappers (``wrapper=True``, ``hookwrapper=True``) are not supported; use
  ``tryfirst``/``trylast``.

The ``conn`` argument is an :class:`nbws.WebSocket` (``conn.role ==
"client"``) or a server-side :class:`nbws.Connection` (``conn.role ==
"server"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from .typing import HookResult

if TYPE_CHECKING:
    from ._connection import BaseConnection
    from ._events import ErrorEvent, Message
    from .codecs import Codec
    from .server import Request, Server

hookspec = pluggy.HookspecMarker("nbws")
"""Marks the functions below as nbws's hook specifications (plugins use :data:`hookimpl`)."""

hookimpl = pluggy.HookimplMarker("nbws")
"""
Marks a function or method as the implementation of an nbws hook: ``@hookimpl``, ``@hookimpl(tryfirst=True)``.

It is :data:`nbws.hookimpl`; importing it from here lets a module that
``nbws`` itself imports (the built-in plugins) use it while the package is
still loading. Any pluggy marker of the project ``"nbws"`` marks the same way.
"""

__all__ = [
    "hookimpl",
    "hookspec",
    "nbws_close",
    "nbws_codecs",
    "nbws_error",
    "nbws_error_reported",
    "nbws_handshake",
    "nbws_message_receive",
    "nbws_message_received",
    "nbws_message_send",
    "nbws_message_sent",
    "nbws_open",
    "nbws_panel",
    "nbws_reconnect",
    "nbws_server_start",
    "nbws_server_stop",
]

# -------------------------------------------------------------------------
# Server lifecycle
# -------------------------------------------------------------------------


@hookspec
def nbws_server_start(server: Server) -> HookResult:
    """
    Called when a server is listening, before it accepts its first connection.

    Args:
        server: The :class:`nbws.Server`; ``server.url`` and ``server.port``
            are known.

    The return value is ignored.
    """


@hookspec
def nbws_server_stop(server: Server) -> HookResult:
    """
    Called when a server has stopped: every client was closed and the port is free.

    Args:
        server: The :class:`nbws.Server`.

    The return value is ignored.
    """


@hookspec
def nbws_handshake(server: Server, request: Request) -> HookResult:
    """
    Called for each opening handshake a server receives, before it is accepted.

    Inspect ``request.path``, ``request.headers``, ``request.query`` and
    ``request.remote_address``; call ``request.reject(status, reason)`` to
    refuse the connection with that HTTP status (403 by default). Once a
    request is rejected the remaining implementations are not called.

    It runs before the handshake response is sent, and an ``async def``
    implementation may ``await`` (open an upstream connection, ask a
    database). It may also set ``request.subprotocol = "name"`` (one the
    client offered, see ``request.subprotocols``; it overrides the server's
    own ``protocols`` preference) and append ``(name, value)`` pairs to
    ``request.response_headers`` for the ``101`` response.

    **It fails closed**: if an implementation raises, the client is refused
    with HTTP 500, the other implementations are not called, and the fault
    is reported (error event, phase ``"plugin"``, with the plugin's name).

    The server's own ``origins=`` and ``token=`` checks run before this hook.
    It runs before the response is sent, so an ``async def`` implementation
    may await something first (a relay opens its upstream connection here).
    It may also set ``request.subprotocol`` to one the client offered (it
    overrides the server's own choice) and append ``(name, value)`` pairs to
    ``request.response_headers`` to add them to the response.

    Args:
        server: The :class:`nbws.Server` receiving the request.
        request: The :class:`nbws.Request`.

    The return value is ignored.
    """


# -------------------------------------------------------------------------
# Connection lifecycle
# -------------------------------------------------------------------------


@hookspec
def nbws_open(conn: BaseConnection) -> HookResult:
    """
    Called when a connection opens: a client's handshake succeeded, or a
    server accepted a client.

    Runs before the ``open`` (client) or ``connection`` (server) event
    handlers, so a plugin may send a first message or set up per-connection
    state. A client that reconnects calls this hook at every new opening.

    Args:
        conn: The connection; ``conn.role`` tells its side.

    The return value is ignored.
    """


@hookspec
def nbws_close(conn: BaseConnection, code: int, reason: str, was_clean: bool) -> HookResult:
    """
    Called when a connection is closed, before the ``close`` event handlers.

    Args:
        conn: The connection.
        code: The close code (1006 if it dropped without a closing handshake
            or never opened).
        reason: The close reason, possibly empty.
        was_clean: True if the closing handshake completed.

    The return value is ignored.
    """


@hookspec
def nbws_error(conn: BaseConnection | None, error: BaseException, phase: str, plugin: str | None) -> HookResult:
    """
    Called when something goes wrong, before the ``error`` event handlers.

    Args:
        conn: The connection, or None for an error of a server itself
            (phase ``"listen"``).
        error: The exception.
        phase: ``"connect"``, ``"handshake"``, ``"receive"``, ``"send"``,
            ``"close"``, ``"listen"``, ``"handler"`` or ``"plugin"``.
        plugin: For phase ``"plugin"``, the name of the plugin that raised;
            otherwise None.

    An error raised by an implementation of this hook is logged (and counted
    against the plugin), not reported again. An ``async def`` implementation
    runs as a task of its own (on the server path too), so an error is
    reported without waiting for it. The return value is ignored.
    """


@hookspec
def nbws_error_reported(event: ErrorEvent, handled: bool) -> HookResult:
    """
    Called after an error was reported (``nbws_error``, then the ``error`` event handlers).

    Args:
        event: The :class:`nbws.ErrorEvent`; ``event.target`` is the
            connection, or the server for an error of a server itself.
        handled: True if a handler took the event, an awaited call
            (``opened()``, ``recv()``) raises it, or the caller logs it
            itself; False if nobody saw it.

    The default plugin ``"nbws.errors"`` (:mod:`nbws.builtins.errors`)
    implements it: it logs an unhandled error as a warning on the ``nbws``
    logger and a handled one as a debug line, as Node does for an
    ``error`` event nobody listens to. Faults are logged, never reported
    again. The return value is ignored.
    """


@hookspec
def nbws_reconnect(conn: BaseConnection, attempt: int, delay: float) -> HookResult:
    """
    Called when a client schedules a reconnection attempt.

    Args:
        conn: The :class:`nbws.WebSocket`.
        attempt: The attempt number, from 1 since the last successful open.
        delay: The seconds it will wait before trying.

    The return value is ignored.
    """


# -------------------------------------------------------------------------
# Messages
# -------------------------------------------------------------------------


@hookspec
def nbws_message_send(conn: BaseConnection, message: Message) -> HookResult:
    """
    Called for each outgoing message, before its frame is written.

    Transform it by assigning ``message.data`` (``str`` for a text frame,
    ``bytes`` for a binary one), or stop it with ``message.drop()``. An
    ``async def`` implementation may delay it. Edits compose in hook order
    (see the module docstring); after a drop, later implementations are skipped.

    Args:
        conn: The connection sending it.
        message: The :class:`nbws.Message`, ``direction == "send"``.

    The return value is ignored.
    """


@hookspec
def nbws_message_sent(conn: BaseConnection, message: Message) -> HookResult:
    """
    Called after an outgoing message was written, or after it was dropped
    (``message.dropped`` tells which).

    For observing: logging, counting, recording. Sending from here is allowed.

    Args:
        conn: The connection.
        message: The :class:`nbws.Message` as it was sent.

    The return value is ignored.
    """


@hookspec
def nbws_message_receive(conn: BaseConnection, message: Message) -> HookResult:
    """
    Called for each incoming message, before it reaches the handlers.

    Transform it by assigning ``message.data``, or stop it with
    ``message.drop()`` so that no handler, ``recv()`` or later transform sees
    it. Edits compose in hook order; after a drop, later implementations are
    skipped.

    Args:
        conn: The connection receiving it.
        message: The :class:`nbws.Message`, ``direction == "receive"``.

    The return value is ignored.
    """


@hookspec
def nbws_message_received(conn: BaseConnection, message: Message) -> HookResult:
    """
    Called after an incoming message was delivered to the handlers, or after
    it was dropped (``message.dropped`` tells which).

    For observing or responding: ``conn.send(...)`` is allowed here.

    Args:
        conn: The connection.
        message: The :class:`nbws.Message` as the handlers saw it.

    The return value is ignored.
    """


# -------------------------------------------------------------------------
# Widgets
# -------------------------------------------------------------------------


@hookspec
def nbws_panel(dashboard: Any) -> tuple[str, Any] | None:
    """
    Called when an :class:`nbws.Dashboard` is built, to let a plugin add a tab.

    Args:
        dashboard: The dashboard being built.

    Return ``(title, widget)`` to add ``widget`` (an ipywidgets widget) as a
    tab named ``title``, or None to add nothing. Every implementation's
    result is used, in hook order.
    """


# -------------------------------------------------------------------------
# Protocol codecs
# -------------------------------------------------------------------------


@hookspec
def nbws_codecs() -> Codec | Iterable[Codec] | None:
    """
    Called when nbws first needs the codecs (the first ``message.decoded``),
    and again after the plugins change, to collect the protocol codecs.

    Return a :class:`nbws.codecs.Codec` or a list of them (or None). Every
    implementation's result is used; a codec whose ``name`` is one of nbws's
    built-in codecs replaces it. Codecs cost nothing until a message is
    decoded: this hook is not called on the message path.

    A codec recognises a connection by its subprotocol, URL *and* data (its
    ``sniff``), decodes each message to a :class:`nbws.codecs.Decoded` view,
    keeps per-connection state, marks requests and responses for correlation,
    and encodes an edited view back to the wire format.

    Only plugins of the global registry (``nbws.plugins``, entry points
    included) are asked: a codec decodes messages of any connection, and
    recordings. The return value is the codecs to add.
    """
