"""
The default plugin ``"nbws.handshake"``: a server's own checks of each opening handshake.

For a :class:`nbws.Server` made with ``path=``, ``origins=`` or ``token=``,
it refuses, in this order:

* a request for another path, with HTTP 404 ("no WebSocket endpoint at ...");
* an ``Origin`` header not in ``server.origins`` (or sent twice), with 403;
* a request without the token as ``?token=`` or ``Authorization: Bearer``,
  with 401 (compared in constant time by :meth:`nbws.Server.check_token`).

It implements ``nbws_handshake`` with ``tryfirst``, so it runs before every
other handshake hook except ``tryfirst`` ones of your own, and a request it
refuses reaches no other plugin. As for any hook that decides access, an
exception in it refuses the request (HTTP 500).

To check differently, replace it (for every server of the process)::

    nbws.default_plugins.unregister("nbws.handshake")
    nbws.default_plugins.register(MyGuard(), "nbws.handshake")

It fails closed: while it is disabled or unregistered with no replacement
under its name, a server made with ``path=``, ``origins=`` or ``token=``
refuses every handshake (HTTP 500, with an error event naming it).
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..server import Request, Server

__all__ = ["NAME", "HandshakeGuard", "origin_allowed", "presented_token"]

NAME = "nbws.handshake"
"""The name it is registered under in :data:`nbws.default_plugins`."""


def origin_allowed(server: Server, request: Request) -> bool:
    """Whether the request's ``Origin`` is one of ``server.origins`` (None there accepts a request without one)."""
    origins = server.origins
    if origins is None:
        return True
    values = request.headers.get_all("Origin")
    if len(values) > 1:
        return False
    return (values[0] if values else None) in origins


def presented_token(request: Request) -> str | None:
    """The token a request presents: ``?token=`` in the URL, else an ``Authorization: Bearer`` header; or None."""
    given = request.query.get("token")
    if given is None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":  # auth schemes are case-insensitive (RFC 9110 section 11.1)
            given = credentials.strip()
    return given


class HandshakeGuard:
    """Refuse handshakes for another path (404), from another origin (403) or without the token (401)."""

    @hookimpl(tryfirst=True)
    def nbws_handshake(self, server: Server, request: Request) -> None:
        """Check ``request`` against the server's ``path``, ``origins`` and token; reject it if it fails one."""
        if server.path is not None and request.path != server.path:
            request.reject(404, f"no WebSocket endpoint at {request.path}")
        elif not origin_allowed(server, request):
            request.reject(403, "origin not allowed")
        elif server.requires_token and not server.check_token(presented_token(request)):
            request.reject(401, "missing or wrong token")

    def __repr__(self) -> str:
        return "<HandshakeGuard path, origins, token>"
