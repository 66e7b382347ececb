"""Helpers shared by the built-in plugins (recorder, logger, intercept, transforms)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from .. import BaseConnection

_counters: dict[str, Iterator[int]] = {}


def plugin_name(base: str) -> str:
    """A registration name for a built-in plugin object: ``base``, then ``base-2``, ``base-3``..."""
    n = next(_counters.setdefault(base, itertools.count(1)))
    return base if n == 1 else f"{base}-{n}"


def url_of(conn: BaseConnection) -> str:
    """The URL of a connection: a client's own, or the one a server-side connection was opened with."""
    url = getattr(conn, "url", None)
    if isinstance(url, str):
        return url
    server = getattr(conn, "server", None)
    request = getattr(conn, "request", None)
    if server is None or request is None or server.port is None:
        return ""
    base: str = server.url
    root = base[: base.index("/", len("ws://"))]
    query = f"?{urlencode(request.query)}" if request.query else ""
    return f"{root}{request.path}{query}"
