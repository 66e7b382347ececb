"""The dashboard: the server, client and plugin panels in tabs, plus the panels plugins contribute."""

from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as widgets

from .. import Server, WebSocket, redact
from .. import plugins as global_plugins
from ._client import ClientPanel
from ._common import StatusLine, badge, close_widgets, style, words
from ._plugins import PluginPanel
from ._server import ServerPanel

__all__ = ["Dashboard"]

logger = logging.getLogger("nbws")


class Dashboard(widgets.VBox):  # type: ignore[misc]
    """
    The panels together: a one-line summary, then tabs for the server, the
    client, the plugins (the global ones, the server's, the client's, and
    nbws's built-in ones from :data:`nbws.default_plugins`, marked so), and
    one tab per panel a plugin contributes through the ``nbws_panel`` hook
    (see :mod:`nbws.hookspecs`).

    Until you type a URL of your own, the client's URL follows the server's,
    so Start, then Connect, talks to your own server.

    Args:
        ws: A :class:`nbws.WebSocket` for the client tab, or a URL to fill in.
        server: A :class:`nbws.Server` for the server tab; a new one on a
            free loopback port if None (not started: click Start).
        max_rows, max_visible, interval: See :class:`MessageLog`.

    Attributes:
        server_panel, client_panel, plugin_panel: The three panels.
        server: The server shown.
        tabs: The :class:`ipywidgets.Tab`; :meth:`select` is the twin of clicking a tab.
        header: The summary line (both states at a glance).
        status: Errors of plugins' ``nbws_panel`` hooks, in words.
    """

    def __init__(
        self,
        ws: WebSocket | str | None = None,
        server: Server | None = None,
        *,
        max_rows: int = 1000,
        max_visible: int = 200,
        interval: float = 0.2,
    ) -> None:
        sizes: dict[str, Any] = {"max_rows": max_rows, "max_visible": max_visible, "interval": interval}
        self.server_panel = ServerPanel(server, **sizes)
        self.client_panel = ClientPanel(ws, **sizes)
        self.server = self.server_panel.server
        registries = {"global": global_plugins, "server": self.server.plugins}
        if self.client_panel.ws is not None:
            registries["client"] = self.client_panel.ws.plugins
        self.plugin_panel = PluginPanel(registries, interval=interval)
        self.status = StatusLine()
        self.header = widgets.HTML("")
        self.header.add_class("nbws-header")
        self._auto_url: str | None = None
        self._style = style()
        titles = ["Server", "Client", "Plugins"]
        children: list[widgets.Widget] = [self.server_panel, self.client_panel, self.plugin_panel]
        # Build the tabs before asking plugins, so that a plugin panel can look at the dashboard.
        self.tabs = widgets.Tab(children=children, titles=titles)
        super().__init__([self._style, self.header, self.tabs, self.status], layout=widgets.Layout(width="100%"))
        self.add_class("nbws-panel")
        self.add_class("nbws-dashboard")
        self._ready = True
        for title, widget in self._plugin_panels():
            titles.append(title)
            children.append(widget)
        if len(children) > 3:
            self.tabs.children = children
            self.tabs.titles = titles
        self.server_panel.refreshed.add(lambda _: self._changed())
        self.client_panel.refreshed.add(lambda _: self._changed())
        self._changed()

    def _plugin_panels(self) -> list[tuple[str, widgets.Widget]]:
        found: list[tuple[str, widgets.Widget]] = []
        # The core's one hook runner calls them: faults are counted against the plugin there.
        for result in global_plugins.collect("nbws_panel", dashboard=self):
            value, error = result.value, result.error
            if error is None and value is None:
                continue
            if error is None and not (
                isinstance(value, tuple)
                and len(value) == 2
                and isinstance(value[0], str)
                and isinstance(value[1], widgets.Widget)
            ):
                error = TypeError(f"nbws_panel must return (title, widget) or None, not {value!r:.80}")
                global_plugins.record_error(result.plugin, error)
            if error is not None:
                logger.warning("plugin %r failed in nbws_panel", result.plugin, exc_info=error)
                self.status.error(f"plugin {result.plugin!r} failed in nbws_panel: {words(error)}")
                continue
            found.append((value[0], value[1]))
        return found

    @property
    def panels(self) -> dict[str, widgets.Widget]:
        """Every tab's widget, by title."""
        return dict(zip(self.tabs.titles, self.tabs.children, strict=False))

    def select(self, title: str) -> widgets.Widget:
        """Show the tab named ``title`` and return its widget (a click on the tab)."""
        titles = list(self.tabs.titles)
        if title not in titles:
            raise ValueError(f"no tab named {title!r}: the tabs are {', '.join(titles)}")
        self.tabs.selected_index = titles.index(title)
        return self.tabs.children[titles.index(title)]

    def _changed(self) -> None:
        server = self.server
        client = self.client_panel
        # The client's URL follows the server's until someone types another one.
        if server.listening or self.server_panel.state == "starting":
            url = server.url
            if client.url.value in ("", self._auto_url) and client.url.value != url:
                client.url.value = url
            if client.url.value == url:
                self._auto_url = url
        ws = client.ws
        if ws is not None and self.plugin_panel.registries.get("client") is not ws.plugins:
            self.plugin_panel.add_registry("client", ws.plugins)
        state = self.server_panel.state
        where = html.escape(server.url) if server.port is not None and state != "stopped" else ""
        count = len(server.clients)
        clients = f" · {count} client{'s' if count != 1 else ''}" if state == "listening" else ""
        client_state = client.state
        client_label = "not connected" if client_state == "idle" else client_state
        client_where = html.escape(f"{ws.id} → {redact.url(ws.url)}") if ws is not None else ""
        self.header.value = (
            f'<span class="nbws-title">Server</span> {badge(state)} <code class="nbws-url">{where}</code>{clients}'
            f'&emsp;&emsp;<span class="nbws-title">Client</span> {badge(client_state, client_label)} '
            f'<code class="nbws-url">{client_where}</code>'
        )

    def close(self) -> None:
        """Close every panel (the server and client keep running)."""
        if not self.__dict__.pop("_ready", False):
            super().close()
            return
        # Plugins' panels belong to the plugins: only ours are closed.
        close_widgets(self.server_panel, self.client_panel, self.plugin_panel)
        close_widgets(self.status, self.header, self.tabs, self._style)
        super().close()

    def __repr__(self) -> str:
        return f"<Dashboard {self.server_panel.state} {self.client_panel.state} tabs={list(self.tabs.titles)}>"
