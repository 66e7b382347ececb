"""
The endpoints alive in this process, and closing them all: ``nbws.endpoints()``,
``nbws.close_all()``, and the 1001 "going away" sent to every peer when the
process or the Jupyter kernel ends, as a browser does when a page closes.

A notebook is re-run, restarted and left open: a server started by a cell
whose variable was since rebound still holds its port, and a client still
talks. This module keeps a weak list of every client and server made, so
that they can be found (``endpoints()``), closed (``close_all()``), replaced
(a server re-created on the same explicit port), and closed at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import logging
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ._loop import Pending, get_loop, running_loop

if TYPE_CHECKING:
    from .client import WebSocket
    from .server import Server

__all__ = ["close_all", "endpoints", "from_a_cell", "listening_on", "track"]

logger = logging.getLogger("nbws")

# Seconds the exit handler waits for the closing handshakes: the close frames are written at
# once, so peers see 1001 even when their answer comes later than this.
EXIT_TIMEOUT = 2.0

_order = itertools.count()
_endpoints: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
_lock = threading.Lock()


def track(endpoint: WebSocket | Server) -> None:
    """Remember ``endpoint`` (weakly) for :func:`endpoints`, :func:`close_all` and the exit handler."""
    endpoint._made_by = _maker()  # type: ignore[union-attr]
    with _lock:
        _endpoints[next(_order)] = endpoint


def _maker() -> str:
    """The module of the code that made an endpoint (``"__main__"`` for a notebook cell), past nbws's own frames."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name == "nbws" or name.startswith("nbws.")):
            return str(name)
        frame = frame.f_back  # type: ignore[assignment]
    return ""


def from_a_cell(endpoint: Any) -> bool:
    """Whether ``endpoint`` was made by interactive code (a notebook cell, a REPL line), not by a library or a panel."""
    return getattr(endpoint, "_made_by", "") == "__main__"


def _alive(endpoint: Any) -> bool:
    from .server import Server

    if isinstance(endpoint, Server):
        return endpoint._stopping is None and bool(endpoint.listening or endpoint._sock is not None)
    return not endpoint._finished


def endpoints() -> list[WebSocket | Server]:
    """
    The servers listening and the clients not closed for good in this process, oldest first.

    In a notebook this finds what earlier cells left running, even if no
    variable names it any more: ``nbws.endpoints()`` lists them,
    :func:`close_all` closes them.
    """
    with _lock:
        found = list(_endpoints.values())
    return [endpoint for endpoint in found if _alive(endpoint)]


def _close_one(endpoint: Any, code: int) -> Pending[Any]:
    from .server import Server

    if isinstance(endpoint, Server):
        stopping: Pending[Any] = endpoint.stop(code)
        return stopping
    # 1001 is what a browser sends when its page goes away; close() keeps the browser's
    # rule for users (1000 or 3000-4999), so the check is skipped here.
    endpoint._loop.call_soon_threadsafe(endpoint._close, code, "")
    closing: Pending[Any] = endpoint.closed()
    return closing


async def _wait_all(pendings: list[Pending[Any]]) -> None:
    for pending in pendings:
        try:
            await pending
        except Exception as exc:  # one that fails must not keep the others open
            logger.debug("closing an endpoint failed: %s", exc)


def close_all(code: int = 1001) -> Pending[list[WebSocket | Server]]:
    """
    Close every endpoint of this process: stop the servers and close the clients, with ``code``.

    Returns at once; await the result (or ``.wait()`` it) to know that every
    one of them is closed. Its value is the list of endpoints closed.
    ``code`` defaults to 1001, "going away", what a browser sends when a page
    closes.
    """
    found = endpoints()
    pendings = [_close_one(endpoint, code) for endpoint in found]

    async def run() -> list[WebSocket | Server]:
        await _wait_all(pendings)
        return found

    return Pending(get_loop(), run(), "closing every endpoint")


def listening_on(host: str, port: int) -> Server | None:
    """The server of this process that listens on ``host:port``, if any."""
    from .server import Server

    for endpoint in endpoints():
        if isinstance(endpoint, Server) and endpoint.port == port and endpoint.host == host:
            return endpoint
    return None


def _close_at_exit() -> None:
    """At exit, send 1001 to every peer still connected instead of letting the OS drop them (1006)."""
    found = endpoints()
    if not found:
        return
    by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for endpoint in found:
        by_loop.setdefault(endpoint._loop, []).append(endpoint)
    for loop, group in by_loop.items():
        try:
            _close_group(loop, group)
        except Exception as exc:
            logger.debug("closing endpoints at exit failed: %s", exc)


def _close_group(loop: asyncio.AbstractEventLoop, group: list[Any]) -> None:
    if loop.is_closed():
        return

    async def close() -> None:
        pendings = [_close_one(endpoint, 1001) for endpoint in group]
        try:
            await asyncio.wait_for(_wait_all(pendings), EXIT_TIMEOUT)
        except asyncio.TimeoutError:
            pass

    if loop.is_running():
        if running_loop() is loop:
            return  # cannot block the loop we run on; nothing calls atexit from inside it
        asyncio.run_coroutine_threadsafe(close(), loop).result(EXIT_TIMEOUT + 1)
    else:
        # The kernel's loop has stopped (shutdown or restart) but is not closed: run it once more.
        loop.run_until_complete(close())


atexit.register(_close_at_exit)
