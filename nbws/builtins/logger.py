"""
Log every event to Python's :mod:`logging`, and optionally to a JSON-lines file.

:class:`Logger` is an ordinary plugin::

    logging.basicConfig(level=logging.INFO)
    nbws.plugins.register(nbws.Logger())

logs lines such as::

    INFO nbws.events: c1 open ws://127.0.0.1:8765/
    INFO nbws.events: c1 send text 5 B #1: 'hello'
    INFO nbws.events: c1 receive text 11 B #1: 'echo: hello'
    INFO nbws.events: c1 close 1000 'bye' (clean)

Each record also carries the event as a dict in ``record.nbws_event``, for
handlers that want structure. URLs and error texts are redacted first with
the policy of :mod:`nbws.redact` (``?token=REDACTED``).
"""

from __future__ import annotations

import logging
import os
import time as _time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import redact
from ..exceptions import describe
from ..hookspecs import hookimpl
from ..recording.jsonl import JsonLinesWriter
from ._common import plugin_name, url_of

if TYPE_CHECKING:
    from .. import BaseConnection
    from ..events import Message
    from ..server import Server

__all__ = ["Logger", "preview"]


def preview(data: str | bytes, limit: int = 80) -> str:
    """A short ``repr`` of a payload: at most about ``limit`` characters, with ``...`` when cut."""
    if len(data) <= limit:
        return repr(data)
    return repr(data[:limit]) + f"... ({len(data)} {'bytes' if isinstance(data, bytes) else 'chars'})"


class Logger:
    """
    A plugin that logs each event: opens, messages both ways, closes, errors,
    reconnections, and servers starting and stopping.

    Message lines give the connection, direction, kind (text or binary),
    size, sequence number and a preview of the data, and say when a
    transform changed or dropped the message, or when it was replayed.

    Args:
        level: The logging level of the records (errors included: nbws
            already logs them as warnings on the ``nbws`` logger).
        logger: The logger or its name; by default ``nbws.events``, a child
            of ``nbws``.
        path: Also append each event to this JSON-lines file, one object per
            line, flushed at once (through the writer the Recorder uses,
            :class:`nbws.recording.jsonl.JsonLinesWriter`: a last line a crash
            cut short is removed before appending).
        preview: How many characters or bytes of a payload to show.
        messages: Log messages (set False to log the lifecycle alone).
    """

    def __init__(
        self,
        level: int = logging.INFO,
        *,
        logger: str | logging.Logger = "nbws.events",
        path: str | os.PathLike[str] | None = None,
        preview: int = 80,
        messages: bool = True,
    ) -> None:
        self.__name__ = plugin_name("logger")
        self.level = level
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.path = Path(path) if path is not None else None
        self.preview = preview
        self.messages = messages
        self._writer = JsonLinesWriter(self.path, default=str) if self.path is not None else None

    def __repr__(self) -> str:
        where = f" and {self.path}" if self.path else ""
        return f"<Logger {self.__name__} to {self.logger.name}{where}>"

    def close(self) -> None:
        """Close the JSON-lines file (it is opened again at the next event)."""
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- output -----------------------------------------------------------------

    def _emit(self, text: str, args: tuple[Any, ...], event: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, text, *args, extra={"nbws_event": event})
        if self._writer is not None:
            self._writer.write(event)

    def _message(self, conn: BaseConnection, message: Message) -> None:
        if not self.messages or (not self.logger.isEnabledFor(self.level) and self.path is None):
            return
        kind = "binary" if message.is_binary else "text"
        flags = []
        if message.dropped:
            flags.append("dropped")
        if message.changed:
            flags.append("changed")
        if message.replayed:
            flags.append("replayed")
        note = f" ({', '.join(flags)})" if flags else ""
        shown = preview(message.data, self.preview)
        event = {
            "time": message.time,
            "event": "message",
            "connection": conn.id,
            "role": conn.role,
            "direction": message.direction,
            "seq": message.seq,
            "opcode": 2 if message.is_binary else 1,
            "size": message.size,
            "preview": shown,
            "dropped": message.dropped,
            "changed": message.changed,
            "replayed": message.replayed,
        }
        self._emit(
            "%s %s %s %d B #%d%s: %s",
            (conn.id, message.direction, kind, message.size, message.seq, note, shown),
            event,
        )

    # -- hooks ------------------------------------------------------------------

    @hookimpl
    def nbws_server_start(self, server: Server) -> None:
        """Log a server that starts listening (hook)."""
        url = redact.url(server.url)
        self._emit("server listening on %s", (url,), {"time": _time.time(), "event": "listening", "url": url})

    @hookimpl
    def nbws_server_stop(self, server: Server) -> None:
        """Log a server that stopped (hook)."""
        where = f"{server.host}:{server.port}"
        self._emit("server on %s stopped", (where,), {"time": _time.time(), "event": "stopped", "address": where})

    @hookimpl
    def nbws_open(self, conn: BaseConnection) -> None:
        """Log the opening of ``conn`` (hook)."""
        url = redact.url(url_of(conn))
        self._emit(
            "%s open %s",
            (conn.id, url),
            {"time": _time.time(), "event": "open", "connection": conn.id, "role": conn.role, "url": url},
        )

    @hookimpl
    def nbws_message_sent(self, conn: BaseConnection, message: Message) -> None:
        """Log a message sent or dropped (hook)."""
        self._message(conn, message)

    @hookimpl
    def nbws_message_received(self, conn: BaseConnection, message: Message) -> None:
        """Log a message received or dropped (hook)."""
        self._message(conn, message)

    @hookimpl
    def nbws_close(self, conn: BaseConnection, code: int, reason: str, was_clean: bool) -> None:
        """Log the close of ``conn`` (hook)."""
        self._emit(
            "%s close %d %r (%s)",
            (conn.id, code, reason, "clean" if was_clean else "not clean"),
            {
                "time": _time.time(),
                "event": "close",
                "connection": conn.id,
                "role": conn.role,
                "code": code,
                "reason": reason,
                "was_clean": was_clean,
            },
        )

    @hookimpl
    def nbws_error(self, conn: BaseConnection | None, error: BaseException, phase: str, plugin: str | None) -> None:
        """Log an error (hook)."""
        who = conn.id if conn is not None else "server"
        text = redact.text(describe(error))
        by = f" in plugin {plugin!r}" if plugin else ""
        self._emit(
            "%s error (%s)%s: %s",
            (who, phase, by, text),
            {
                "time": _time.time(),
                "event": "error",
                "connection": conn.id if conn is not None else None,
                "phase": phase,
                "plugin": plugin,
                "error": text,
            },
        )

    @hookimpl
    def nbws_reconnect(self, conn: BaseConnection, attempt: int, delay: float) -> None:
        """Log a client's reconnection attempt (hook)."""
        self._emit(
            "%s reconnecting: attempt %d in %.2f s",
            (conn.id, attempt, delay),
            {"time": _time.time(), "event": "reconnect", "connection": conn.id, "attempt": attempt, "delay": delay},
        )
