"""
Widgets for nbws: thin views over the core objects, for JupyterLab and Jupyter Notebook.

* :class:`ClientPanel` shows a :class:`nbws.WebSocket`: connect, compose and
  send messages, close, watch its log.
* :class:`ServerPanel` shows a :class:`nbws.Server`: start, stop, its
  clients, send to one, close one, broadcast, watch its log.
* :class:`MessageLog` is the live log both use: bounded in the kernel,
  rendered in batches.
* :class:`PluginPanel` lists the plugins, switches them on and off, and
  counts their errors.
* :class:`Dashboard` puts them in tabs, with the panels plugins contribute
  through the ``nbws_panel`` hook.
* :class:`RecorderPanel`, :class:`ReplayPanel` and :class:`InterceptPanel`
  show a :class:`nbws.Recorder`, a recording to replay (or a
  :class:`nbws.Replayer`) and an :class:`nbws.Intercept`.

All state lives in the core objects: the widgets learn about events through
the same hooks plugins use, and every button has a method that does what a
click does (``panel.connect()``, ``panel.send()``, ...). Errors are shown in
the panel in words; nothing a widget does raises into the kernel's loop.
"""

from .. import Intercept, Recorder, Recording, Relay, Replayer, Server, WebSocket, views
from ._client import ClientPanel
from ._common import Composer, StatusLine, parse_payload, view_factory
from ._dashboard import Dashboard
from ._log import LogRow, MessageLog
from ._plugins import PluginPanel
from ._recording import InterceptPanel, RecorderPanel, ReplayPanel
from ._relay import RelayPanel
from ._server import ServerPanel

# How ws.panel(), server.panel(), relay.panel(), recorder/intercept/replayer/recording.panel() and rich display find their panels (see nbws.views).
views.register(WebSocket, view_factory(ClientPanel))
views.register(Server, view_factory(ServerPanel))
views.register(Relay, view_factory(RelayPanel))
views.register(Recorder, view_factory(RecorderPanel))
views.register(Intercept, view_factory(InterceptPanel))
views.register(Replayer, view_factory(ReplayPanel.of_replayer))
views.register(Recording, ReplayPanel)  # a new panel each time: recording.panel(targets)

__all__ = [
    "ClientPanel",
    "Composer",
    "Dashboard",
    "InterceptPanel",
    "LogRow",
    "MessageLog",
    "PluginPanel",
    "RecorderPanel",
    "RelayPanel",
    "ReplayPanel",
    "ServerPanel",
    "StatusLine",
    "parse_payload",
]
