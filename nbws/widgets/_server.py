"""The server panel: start and stop a :class:`nbws.Server`, see its clients, talk to them, watch its log."""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as widgets

from .. import OPEN, Connection, Observers, Server, hookimpl
from ..exceptions import InvalidStateError, describe
from ._common import (
    Composer,
    StatusLine,
    badge,
    close_widgets,
    describe_payload,
    forget,
    on_click,
    parse_payload,
    show,
    shows_errors,
    style,
)
from ._log import MessageLog

__all__ = ["ServerPanel"]

_MAX_TABLE_ROWS = 100


class _ServerHooks:
    """The panel's own plugin on its server: lifecycle changes and errors."""

    _nbws_internal = True

    def __init__(self, panel: ServerPanel) -> None:
        self._panel = panel

    @hookimpl
    def nbws_server_start(self, server: Server) -> None:
        self._panel._transition = None
        self._panel.status.post("info", f"listening on {server.url}")
        self._panel.message_log.refresh_soon()

    @hookimpl
    def nbws_server_stop(self) -> None:
        self._panel._transition = None
        self._panel.status.post("info", "stopped")
        self._panel.message_log.refresh_soon()

    @hookimpl
    def nbws_error(self, conn: Any, error: BaseException, phase: str, plugin: str | None) -> None:
        if plugin:
            text = f"plugin {plugin!r} raised {describe(error)}"
        elif conn is None:
            text = f"server {phase} error: {describe(error)}"
        else:
            text = f"{conn.id} {phase} error: {describe(error)}"
        self._panel.status.post("error", text)
        self._panel.message_log.refresh_soon()


class ServerPanel(widgets.VBox):  # type: ignore[misc]
    """
    A panel for one WebSocket server: host and port, Start and Stop, the URL
    clients connect to, a table of connected clients, sending to one client,
    closing one, broadcasting, and the log.

    All state lives in the :class:`nbws.Server` (``panel.server``): its
    listeners and plugins keep working while the panel shows it.

    Args:
        server: The server to show; a new ``nbws.Server()`` on a free
            loopback port if None. Not started: click Start.
        max_rows, max_visible, interval: See :class:`MessageLog`.

    Buttons and their twins: Start → :meth:`start`, Stop → :meth:`stop`,
    Send → :meth:`send`, Broadcast → :meth:`broadcast`, Close client →
    :meth:`close_client`. Errors are shown in :attr:`status` in words; the
    twins also raise them.

    Attributes:
        host, port: Where to listen (editable while stopped; port 0 picks a free one).
        start_button, stop_button, send_button, broadcast_button, close_client_button: The buttons.
        badge: The state badge; :attr:`state` says it in a word.
        url: The ``ws://`` URL clients connect to.
        clients_table: The connected clients (HTML table).
        target: The client Send and Close client act on.
        code, reason: The close code and reason for Close client.
        composer: The :class:`Composer`.
        status: The :class:`StatusLine`.
        message_log: The :class:`MessageLog`.
    """

    def __init__(
        self,
        server: Server | None = None,
        *,
        max_rows: int = 1000,
        max_visible: int = 200,
        interval: float = 0.2,
    ) -> None:
        if server is not None and not isinstance(server, Server):
            raise TypeError(f"ServerPanel takes an nbws.Server, not {type(server).__name__}")
        self.server = server if server is not None else Server()
        """The server shown."""
        self._transition: str | None = None
        self.refreshed = Observers("server panel refreshed callback")
        """Called with the panel after every refresh (the dashboard follows the server's state)."""
        self._hooks = _ServerHooks(self)
        self.message_log = MessageLog(max_rows=max_rows, max_visible=max_visible, interval=interval)
        self.status = StatusLine()
        self.badge = widgets.HTML(badge("stopped"))
        self.host = widgets.Text(
            value=self.server.host,
            description="host",
            layout=widgets.Layout(width="200px"),
            style={"description_width": "34px"},
        )
        self.port = widgets.IntText(
            value=self.server.port if self.server.port is not None else self.server.requested_port,
            description="port",
            tooltip="0 picks a free port",
            layout=widgets.Layout(width="130px"),
            style={"description_width": "34px"},
        )
        self.start_button = widgets.Button(
            description="Start", button_style="success", icon="play", layout=widgets.Layout(width="96px")
        )
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", layout=widgets.Layout(width="96px"), disabled=True
        )
        self.url = widgets.HTML("")
        self.url.add_class("nbws-url")
        self.clients_table = widgets.HTML("")
        self.clients_table.layout = widgets.Layout(width="auto", max_height="180px", overflow="auto")
        self.target = widgets.Dropdown(
            options=[],
            value=None,
            description="client",
            layout=widgets.Layout(width="270px"),
            style={"description_width": "40px"},
        )
        self.composer = Composer("message to send to the client, or to every client with Broadcast")
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="paper-plane", layout=widgets.Layout(width="96px")
        )
        self.broadcast_button = widgets.Button(
            description="Broadcast", button_style="info", icon="bullhorn", layout=widgets.Layout(width="110px")
        )
        self.close_client_button = widgets.Button(
            description="Close client", icon="times", layout=widgets.Layout(width="120px")
        )
        self.code = widgets.IntText(
            value=1000,
            description="close code",
            layout=widgets.Layout(width="170px"),
            style={"description_width": "70px"},
        )
        self.reason = widgets.Text(placeholder="close reason (optional)", layout=widgets.Layout(width="220px"))

        title = widgets.HTML('<span class="nbws-title">Server</span>')
        spacers = [widgets.HTML(layout=widgets.Layout(flex="1")) for _ in range(2)]
        header = widgets.HBox(
            [title, self.badge, self.host, self.port, self.start_button, self.stop_button, self.url],
            layout=widgets.Layout(align_items="center", width="100%", flex_flow="row wrap"),
        )
        target_row = widgets.HBox(
            [self.target, self.close_client_button, self.code, self.reason],
            layout=widgets.Layout(align_items="center", width="100%", flex_flow="row wrap"),
        )
        composer_row = widgets.HBox(
            [self.composer.mode, spacers[0], self.send_button, self.broadcast_button],
            layout=widgets.Layout(align_items="center", width="100%"),
        )
        self._style = style()
        self._layout_widgets = [title, header, target_row, composer_row, *spacers]
        super().__init__(
            [
                self._style,
                header,
                self.clients_table,
                target_row,
                composer_row,
                self.composer,
                self.status,
                self.message_log,
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("nbws-panel")
        self.add_class("nbws-server")

        self.start_button.on_click(on_click(self.start))
        self.stop_button.on_click(on_click(self.stop))
        self.send_button.on_click(on_click(self.send))
        self.broadcast_button.on_click(on_click(self.broadcast))
        self.close_client_button.on_click(on_click(self.close_client))
        self.message_log.attach(self.server)
        self.server.plugins.register(self._hooks, name=f"nbws.widgets.server-{id(self)}")
        show(self.server, self)  # server.panel() returns this panel from now on
        self.message_log.after_flush.add(self.refresh)
        self.message_log.on_resend = self._resend
        self.message_log.on_edit = self._edit
        self._ready = True
        if self.server.listening:
            self.message_log.note(f"showing the server listening on {self.server.url}", "server")
        self.refresh()

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"listening"``, ``"starting"``, ``"stopping"`` or ``"stopped"``."""
        if self._transition is not None:
            return self._transition
        return "listening" if self.server.listening else "stopped"

    def refresh(self) -> None:
        """Show the server's current state and clients (called after every batch of events and every action)."""
        server = self.server
        state = self.state
        self.badge.value = badge(state)
        running = state != "stopped"
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        self.host.disabled = running
        self.port.disabled = running
        if running and server.port is not None:
            # Show the port it really listens on (port 0 picked one): Stop then Start binds it again.
            if self.port.value != server.port:
                self.port.value = server.port
            self.url.value = f'<code class="nbws-url">{html.escape(server.url)}</code>'
        else:
            self.url.value = '<span class="nbws-muted">not listening</span>'
        clients = server.clients
        self.clients_table.value = _clients_html(clients)
        options = [(f"{c.id}  {_address(c)}", c.id) for c in clients[:_MAX_TABLE_ROWS]]
        if list(self.target.options) != options:
            current = self.target.value
            self.target.options = options
            ids = [value for _, value in options]
            self.target.value = current if current in ids else (ids[-1] if ids else None)
        self.status.flush()  # what happened since the last refresh
        self.refreshed.notify(self)

    # -- actions (the buttons' twins) -----------------------------------------------------

    @shows_errors
    def start(self, host: str | None = None, port: int | None = None) -> Server:
        """
        Start listening on ``host`` and ``port`` (default: the fields); return the server (Start).

        The port is bound before this returns, so ``server.url`` is known.

        Raises:
            nbws.ServerError: if the port is in use or the host cannot be bound.
            nbws.InvalidStateError: if it is already running.
            ValueError: for an empty host or a port outside 0-65535.
        """
        server = self.server
        if self.state != "stopped":
            raise InvalidStateError(f"the server is {self.state} already: click Stop first")
        host = (self.host.value if host is None else host).strip()
        port = self.port.value if port is None else port
        if not host:
            raise ValueError("enter a host to listen on, such as 127.0.0.1")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be from 0 to 65535 (0 picks a free one), not {port!r}")
        self.host.value, self.port.value = host, port
        self._transition = "starting"
        try:
            server.start(host=host, port=port)  # while stopped, host and port can change for the next start
        except Exception:
            self._transition = None
            self.refresh()
            raise
        if server.listening:
            self._transition = None
        self.status.info(f"starting on {server.url}")
        self.refresh()
        return server

    @shows_errors
    def stop(self) -> None:
        """Close every client with 1001 (going away) and free the port (Stop)."""
        if self.state == "stopped":
            raise InvalidStateError("the server is not running")
        self._transition = "stopping"
        self.server.stop()
        self.status.info("stopping: closing every client")
        self.refresh()

    def _connection(self, client: Connection | str | None) -> Connection:
        if isinstance(client, Connection):
            return client
        chosen = self.target.value if client is None else client
        if chosen is None:
            raise InvalidStateError("no client is connected" if not self.server.clients else "choose a client first")
        for conn in self.server.clients:
            if conn.id == chosen:
                return conn
        raise InvalidStateError(f"client {chosen!r} is not connected")

    def _resend(self, row: Any) -> None:
        """The inspector's Resend: to the row's client if it is still connected, else to the one chosen."""
        ids = {conn.id for conn in self.server.clients}
        self.send(row.connection if row.connection in ids else None, row.data)

    def _edit(self, row: Any) -> None:
        """The inspector's "Edit and send": the message goes into the composer, its client is chosen."""
        self.composer.load(row.data)
        if row.connection in {conn.id for conn in self.server.clients}:
            self.target.value = row.connection
        self.status.info(f"{row.kind} message is in the composer: edit it, then Send or Broadcast")

    def _payload(self, data: str | bytes | None, mode: str | None) -> str | bytes:
        if data is None:
            return self.composer.payload(mode)
        if isinstance(data, str) and mode is not None:
            return parse_payload(data, mode)
        return data

    @shows_errors
    def send(
        self, client: Connection | str | None = None, data: str | bytes | None = None, *, mode: str | None = None
    ) -> str | bytes:
        """
        Send ``data`` (default: the composer's) to one client (default: the
        one chosen in :attr:`target`), given as a :class:`nbws.Connection` or
        its id; return what was sent (Send).

        Raises:
            ValueError: for invalid JSON, hex or base64.
            nbws.InvalidStateError: if that client is not connected.
        """
        payload = self._payload(data, mode)
        conn = self._connection(client)
        conn.send(payload)
        self.status.info(f"sent {describe_payload(payload)} to {conn.id}")
        return payload

    @shows_errors
    def broadcast(self, data: str | bytes | None = None, *, mode: str | None = None) -> int:
        """Send ``data`` (default: the composer's) to every open client; return how many got it (Broadcast)."""
        payload = self._payload(data, mode)
        if not self.server.listening:
            raise InvalidStateError("the server is not running: click Start first")
        count = self.server.broadcast(payload)
        self.status.info(f"broadcast {describe_payload(payload)} to {count} client{'s' if count != 1 else ''}")
        return count

    @shows_errors
    def close_client(
        self, client: Connection | str | None = None, code: int | None = None, reason: str | None = None
    ) -> None:
        """
        Close one client (default: the one chosen) with ``code`` and ``reason``
        (default: the fields) (Close client).

        Raises:
            nbws.InvalidStateError: if that client is not connected.
            ValueError: for a close code a server may not send, or a reason over 123 bytes.
        """
        conn = self._connection(client)
        code = self.code.value if code is None else code
        reason = self.reason.value if reason is None else reason
        assert code is not None and reason is not None
        conn.close(code, reason)
        self.status.info(f"closing {conn.id} with code {code}" + (f" ({reason})" if reason else ""))
        self.refresh()

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop following the server (it keeps running) and close the widgets."""
        if not self.__dict__.pop("_ready", False):
            super().close()
            return
        server = self.server
        if self._hooks in server.plugins:
            server.plugins.unregister(self._hooks)
        forget(server, self)
        self.refreshed.clear()
        self.message_log.close()
        close_widgets(
            self.status,
            self.badge,
            self.host,
            self.port,
            self.start_button,
            self.stop_button,
            self.url,
            self.clients_table,
            self.target,
            self.composer.mode,
            self.composer.text,
            self.composer.hint,
            self.composer,
            self.send_button,
            self.broadcast_button,
            self.close_client_button,
            self.code,
            self.reason,
            self._style,
            *self._layout_widgets,
        )
        super().close()

    def __repr__(self) -> str:
        return f"<ServerPanel {self.server!r} {self.state}>"


def _address(conn: Connection) -> str:
    address = conn.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"


def _clients_html(clients: list[Connection]) -> str:
    if not clients:
        return '<div class="nbws-muted" style="padding: 4px 0">No client connected.</div>'
    rows = []
    for conn in clients[:_MAX_TABLE_ROWS]:
        since = time.strftime("%H:%M:%S", time.localtime(conn.opened_at)) if conn.opened_at else "-"
        state = conn.ready_state.name.lower()
        state_html = state if conn.ready_state is OPEN else f'<span style="color:#ea580c">{state}</span>'
        rows.append(
            f"<tr><td>{html.escape(conn.id)}</td><td>{html.escape(_address(conn))}</td><td>{since}</td>"
            f'<td class="nbws-num">{conn.messages_received:,}</td><td class="nbws-num">{conn.messages_sent:,}</td>'
            f"<td>{state_html}</td></tr>"
        )
    more = len(clients) - _MAX_TABLE_ROWS
    if more > 0:
        rows.append(f'<tr><td colspan="6" class="nbws-muted">… and {more} more</td></tr>')
    return (
        '<table class="nbws-table"><thead><tr><th>client</th><th>address</th><th>connected since</th>'
        '<th class="nbws-num">in</th><th class="nbws-num">out</th><th>state</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
