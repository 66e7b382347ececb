"""
nbws: WebSocket clients and servers inside a Jupyter kernel, with plugin hooks.

The client mirrors the browser's ``WebSocket``::

    ws = nbws.WebSocket("ws://127.0.0.1:8765/")
    ws.onopen = lambda event: ws.send("Hello, server!")
    ws.onmessage = lambda message: print("received", message.data)

The server mirrors Node's ``ws``::

    server = nbws.Server(port=8765)

    @server.on("connection")
    def greet(conn):
        conn.send("Welcome!")

    server.start()

Plugins implement the hooks of :mod:`nbws.hookspecs` and are registered with
``nbws.plugins.register(plugin)``.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import codecs, transforms
from ._connection import CLOSED, CLOSING, CONNECTING, OPEN, BaseConnection, ReadyState
from ._events import COMPILED as _events_compiled
from ._events import CloseEvent, ErrorEvent, Message, Observers, OpenEvent
from ._live import close_all, endpoints
from ._loop import Pending
from ._plugins import ENTRY_POINT_GROUP, PluginInfo, PluginRegistry, default_plugins, plugins
from .builtins import errors as _errors
from .builtins import handshake as _handshake
from .cassette import Cassette, cassette
from .client import Reconnect, WebSocket
from .exceptions import (
    BufferFullError,
    CassetteError,
    CodecError,
    ConnectError,
    ConnectionClosed,
    InvalidStateError,
    InvalidURLError,
    MismatchError,
    NbwsError,
    PluginError,
    RecordingError,
    ServerError,
    TimeoutError,
)
from .fake import FakeServer
from .hookspecs import hookimpl
from .intercept import Held, Intercept
from .logger import Logger
from .recording import RecordedEvent, Recorder, Recording, RecordingWarning
from .recording.replay import Replayer, replay
from .relay import Pair, Relay
from .server import Connection, Request, Server

if _TYPE_CHECKING:
    from .widgets import ClientPanel, Dashboard, MessageLog, PluginPanel, ServerPanel
    from .widgets._relay import RelayPanel

__version__ = "0.1.0"

COMPILED: bool = _events_compiled
"""Whether nbws's engine runs compiled by mypyc: True in a wheel built with the switch
(``HATCH_BUILD_HOOKS_ENABLE=1``; README, "Compiled build"), False in the pure build. ``nbws --version`` says it too."""

# `nbws.replay` is the function (nbws.recording.replay.replay); the module that had that path is
# nbws.recording.replay. Its old path still imports (deprecated): it is loaded here, and the name
# bound to the function again, because importing a submodule sets it as an attribute of its
# package: a later `from nbws.replay import ...` would otherwise replace the function.
_importlib.import_module(".replay", __name__)
replay = _importlib.import_module(".recording.replay", __name__).replay  # noqa: F811

# nbws's own behaviour as default plugins (datasette's DEFAULT_PLUGINS): replaceable by name.
default_plugins.register(_handshake.HandshakeGuard(), _handshake.NAME)
default_plugins.register(_errors.ErrorLog(), _errors.NAME)

# The widgets import ipywidgets: load them on first use so that `import nbws` stays fast.
_WIDGETS = frozenset({"ClientPanel", "Dashboard", "MessageLog", "PluginPanel", "ServerPanel"})
_RELAY_WIDGETS = frozenset({"RelayPanel"})


def __getattr__(name: str) -> object:
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    if name in _RELAY_WIDGETS:
        from .widgets import _relay

        return getattr(_relay, name)
    raise AttributeError(f"module 'nbws' has no attribute {name!r}")


__all__ = [
    "CLOSED",
    "CLOSING",
    "COMPILED",
    "CONNECTING",
    "ENTRY_POINT_GROUP",
    "OPEN",
    "BaseConnection",
    "BufferFullError",
    "Cassette",
    "CassetteError",
    "ClientPanel",
    "CloseEvent",
    "CodecError",
    "ConnectError",
    "Connection",
    "ConnectionClosed",
    "Dashboard",
    "ErrorEvent",
    "FakeServer",
    "Held",
    "Intercept",
    "InvalidStateError",
    "InvalidURLError",
    "Logger",
    "Message",
    "MessageLog",
    "MismatchError",
    "NbwsError",
    "Observers",
    "OpenEvent",
    "Pair",
    "Pending",
    "PluginError",
    "PluginInfo",
    "PluginPanel",
    "PluginRegistry",
    "ReadyState",
    "Reconnect",
    "RecordedEvent",
    "Recorder",
    "Recording",
    "RecordingError",
    "RecordingWarning",
    "Relay",
    "RelayPanel",
    "Replayer",
    "Request",
    "Server",
    "ServerError",
    "ServerPanel",
    "TimeoutError",
    "WebSocket",
    "__version__",
    "cassette",
    "close_all",
    "codecs",
    "default_plugins",
    "endpoints",
    "hookimpl",
    "plugins",
    "replay",
    "transforms",
]
