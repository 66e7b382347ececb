"""The public surface is pinned: adding or removing a name from nbws is a decision, not an accident."""

from __future__ import annotations

import nbws

PUBLIC = {
    # Endpoints and their parts
    "WebSocket", "Server", "Connection", "BaseConnection", "Request", "Reconnect", "Pending",
    "ReadyState", "CONNECTING", "OPEN", "CLOSING", "CLOSED",
    # Every endpoint of the process (re-run cells, kernel restarts)
    "endpoints", "close_all",
    # What handlers and plugins receive
    "Message", "OpenEvent", "CloseEvent", "ErrorEvent",
    # In-process notifications (listeners, watchers, panels' callbacks)
    "Observers",
    # Plugins
    "hookimpl", "plugins", "default_plugins", "PluginRegistry", "PluginInfo", "ENTRY_POINT_GROUP",
    # Built-in plugins
    "Logger", "transforms", "Recorder", "Recording", "RecordedEvent", "RecordingWarning",
    "replay", "Replayer", "Intercept", "Held",
    # The relay
    "Relay", "Pair", "RelayPanel",
    # Protocol codecs
    "codecs", "CodecError",
    # Widgets
    "ClientPanel", "ServerPanel", "MessageLog", "PluginPanel", "Dashboard",
    # Errors
    "NbwsError", "InvalidStateError", "BufferFullError", "InvalidURLError", "ConnectError",
    "ConnectionClosed", "ServerError", "TimeoutError", "PluginError", "RecordingError",
    # Cassettes and fake servers
    "FakeServer", "Cassette", "cassette", "CassetteError", "MismatchError",
    # Which build runs: pure Python or compiled by mypyc
    "COMPILED", "__version__",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(nbws.__all__) == PUBLIC
    assert len(nbws.__all__) == len(PUBLIC), "a name is listed twice in nbws.__all__"


def test_every_public_name_resolves() -> None:
    for name in nbws.__all__:
        assert getattr(nbws, name) is not None, name


def test_errors_form_one_tree() -> None:
    errors = [getattr(nbws, name) for name in PUBLIC if name.endswith("Error") or name == "ConnectionClosed"]
    assert all(issubclass(error, nbws.NbwsError) for error in errors)
    assert issubclass(nbws.InvalidURLError, ValueError)
    assert issubclass(nbws.RecordingError, ValueError)
    assert issubclass(nbws.CodecError, ValueError)
    assert issubclass(nbws.TimeoutError, TimeoutError)
    assert issubclass(nbws.BufferFullError, nbws.InvalidStateError)
