"""
Protocol codecs: the protocol inside the frames, decoded on demand.

``message.decoded`` is the message as its protocol sees it (a
:class:`Decoded`: protocol, kind, event/method/topic, correlation id, payload,
the protocol's own fields, and for a response its latency). Nothing is
decoded until something asks, so a connection nobody decodes costs nothing.

Built in: JSON-RPC 2.0, graphql-transport-ws and the legacy
subscriptions-transport-ws, the Jupyter kernel protocol (JSON and v1 binary
framing), STOMP 1.2 and MQTT 3.1.1/5. Socket.IO ships as the separate
``nbws-codec-socketio`` distribution. Plugins add codecs through the
``nbws_codecs`` hook::

    class MyCodec(nbws.codecs.Codec):
        name = "mine"
        def sniff(self, data): return data.startswith("MINE ")
        def decode(self, data, state, direction): ...
        def encode(self, decoded): ...

    class MyPlugin:
        @nbws.hookimpl
        def nbws_codecs(self):
            return [MyCodec()]

Edit a decoded view and put it back on the wire with ``message.data =
message.decoded.encode()``, or :func:`nbws.transforms.map_decoded`.
"""

from __future__ import annotations

from ..exceptions import CodecError
from ._core import (
    COMMON_FIELDS,
    Codec,
    Decoded,
    Decoder,
    Session,
    available,
    decode,
    encode,
    forget,
    get,
    jsonable,
    session_for,
    track,
)
from ._query import parse_query
from ._tables import decode_events

__all__ = [
    "COMMON_FIELDS",
    "Codec",
    "CodecError",
    "Decoded",
    "Decoder",
    "Session",
    "available",
    "decode",
    "decode_events",
    "encode",
    "forget",
    "get",
    "jsonable",
    "parse_query",
    "session_for",
    "track",
]
