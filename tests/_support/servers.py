"""The one echo server of the tests, and a free port for tests that must name one before listening."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import nbws


def echo(prefix: str = "") -> Callable[[nbws.Connection, nbws.Message], None]:
    """A ``message`` handler that sends every message back: text with ``prefix`` in front, binary as it came."""

    def handler(conn: nbws.Connection, message: nbws.Message) -> None:
        data = message.data
        conn.send(prefix + data if isinstance(data, str) else data)

    return handler


def echo_server(prefix: str = "", **options: Any) -> nbws.Server:
    """An echo server (see :func:`echo`), not started: ``options`` go to ``nbws.Server``.

    Tests that only need one running use the ``start_echo_server`` fixture (or ``server``,
    which prefixes text with ``"echo: "``): it stops every server it started, whatever happened.
    """
    server = nbws.Server(**options)
    server.on("message", echo(prefix))
    return server


class StartEchoServer(Protocol):
    """The type of the ``start_echo_server`` fixture: ``await start_echo_server(prefix="", **options)``."""

    def __call__(self, prefix: str = "", **options: Any) -> Awaitable[nbws.Server]: ...


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
