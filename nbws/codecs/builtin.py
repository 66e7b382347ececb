"""
nbws's own codecs, offered through the same ``nbws_codecs`` hook as any plugin's.

They cost nothing until a message is decoded: this module is imported on the
first decode, and a connection nobody decodes never meets them.
"""

from __future__ import annotations

from .._plugins import hookimpl
from ._core import Codec
from .graphql import GraphQLTransportWS, SubscriptionsTransportWS
from .jsonrpc import JsonRpc
from .jupyter import JupyterKernel
from .mqtt import Mqtt
from .stomp import Stomp

__all__ = ["BuiltinCodecs", "codecs"]


class BuiltinCodecs:
    """The plugin that offers nbws's own codecs."""

    @hookimpl
    def nbws_codecs(self) -> list[Codec]:
        return [JupyterKernel(), JsonRpc(), GraphQLTransportWS(), SubscriptionsTransportWS(), Stomp(), Mqtt()]


def codecs() -> list[Codec]:
    """The built-in codecs: Jupyter kernel, JSON-RPC 2.0, both GraphQL protocols, STOMP 1.2, MQTT 3.1.1/5."""
    return BuiltinCodecs().nbws_codecs()
