"""
nbws-codec-socketio: Socket.IO v5 over Engine.IO v4 (WebSocket transport), as an nbws codec.

A third-party codec, shipped as its own distribution: it publishes a plugin
under the ``nbws`` entry-point group whose ``nbws_codecs`` hook returns
:class:`SocketIO` (in :mod:`nbws_codec_socketio.codec`).

Loading the plugin costs nothing: python-socketio (whose import takes a good
fraction of a second) is imported only when nbws first needs the codecs, on
the first ``message.decoded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nbws

if TYPE_CHECKING:
    from .codec import SocketIO

__all__ = ["SocketIO", "SocketIOCodecs", "plugin"]


class SocketIOCodecs:
    """The plugin this distribution publishes: it offers the :class:`SocketIO` codec."""

    @nbws.hookimpl
    def nbws_codecs(self) -> list[nbws.codecs.Codec]:
        from .codec import SocketIO

        return [SocketIO()]


plugin = SocketIOCodecs()
"""The object published under the ``nbws`` entry-point group."""


def __getattr__(name: str) -> Any:
    if name in ("SocketIO", "_Packet"):
        from . import codec

        return getattr(codec, name)
    raise AttributeError(f"module 'nbws_codec_socketio' has no attribute {name!r}")
