"""The client panel: connect a :class:`nbws.WebSocket`, compose and send messages, watch its log."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from .. import CLOSED, CLOSING, CONNECTING, OPEN, Observers, WebSocket, hookimpl, redact
from ..exceptions import InvalidStateError, InvalidURLError, describe
from ._common import (
    Composer,
    StatusLine,
    badge,
    close_widgets,
    close_words,
    describe_payload,
    forget,
    format_size,
    on_change,
    on_click,
    parse_payload,
    show,
    shows_errors,
    style,
)
from ._log import MessageLog

__all__ = ["ClientPanel"]


class _ClientHooks:
    """The panel's own plugin on its client: errors go to the status line, state changes refresh it."""

    _nbws_internal = True

    def __init__(self, panel: ClientPanel) -> None:
        self._panel = panel

    @hookimpl
    def nbws_error(self, conn: Any, error: BaseException, phase: str, plugin: str | None) -> None:
        if plugin:
            text = f"plugin {plugin!r} raised {describe(error)}"
        elif phase in ("connect", "handshake"):
            text = f"could not connect to {redact.url(conn.url)}: {describe(error)}"
        else:
            text = f"{conn.id} {phase} error: {describe(error)}"
        self._panel.status.post("error", redact.text(text))
        self._panel.message_log.refresh_soon()

    @hookimpl
    def nbws_open(self, conn: Any) -> None:
        url = redact.url(conn.url)
        self._panel.status.post("info", f"connected to {url}" + (f" ({conn.protocol})" if conn.protocol else ""))

    @hookimpl
    def nbws_close(self, code: int, reason: str, was_clean: bool) -> None:
        if was_clean:
            self._panel.status.post("info", f"closed: {close_words(code, reason)}")


class ClientPanel(widgets.VBox):  # type: ignore[misc]
    """
    A panel for one WebSocket client: URL, Connect and Disconnect, a state
    badge, a reconnect toggle, a composer, close code and reason, and the log.

    All state lives in the :class:`nbws.WebSocket` (``panel.ws``); the panel
    shows it and forwards clicks. A WebSocket cannot be reopened once closed,
    as in the browser, so Connect makes a new one with the options, plugins
    and handlers of the previous one; ``panel.ws`` is always the current one.

    Args:
        ws_or_url: A :class:`nbws.WebSocket` to show, or a URL to fill in.
        connect: With a URL, connect at once.
        reconnect: The reconnect toggle's initial value (default: the
            client's own policy, or off).
        max_rows, max_visible, interval: See :class:`MessageLog`.
        **options: Options for the :class:`nbws.WebSocket` that Connect makes
            (``protocols``, ``headers``, ...) when no client is given.

    Buttons and their twins: Connect → :meth:`connect`, Disconnect →
    :meth:`disconnect`, Send → :meth:`send`. Errors are shown in
    :attr:`status` in words; the twins also raise them.

    Attributes:
        url, reconnect_toggle, code, reason: The fields.
        connect_button, disconnect_button, send_button: The buttons.
        badge: The state badge (HTML); :attr:`state` says it in a word.
        composer: The :class:`Composer` (mode and text).
        status: The :class:`StatusLine`: the last error or action.
        stats: Messages and bytes sent and received.
        message_log: The :class:`MessageLog`.
    """

    def __init__(
        self,
        ws_or_url: WebSocket | str | None = None,
        *,
        connect: bool = False,
        reconnect: bool | None = None,
        max_rows: int = 1000,
        max_visible: int = 200,
        interval: float = 0.2,
        **options: Any,
    ) -> None:
        if ws_or_url is not None and not isinstance(ws_or_url, (WebSocket, str)):
            raise TypeError(f"ClientPanel takes an nbws.WebSocket or a URL, not {type(ws_or_url).__name__}")
        self._ws: WebSocket | None = None
        self._options = options
        self.refreshed = Observers("client panel refreshed callback")
        """Called with the panel after every refresh (the dashboard follows the client shown)."""
        self._hooks = _ClientHooks(self)
        if reconnect is None:
            if isinstance(ws_or_url, WebSocket):
                reconnect = ws_or_url.reconnect is not None
            else:
                reconnect = bool(options.get("reconnect"))
        self.message_log = MessageLog(max_rows=max_rows, max_visible=max_visible, interval=interval)
        self.status = StatusLine()
        self.badge = widgets.HTML(badge("idle", "not connected"))
        self.url = widgets.Text(
            placeholder="ws://127.0.0.1:8765/", layout=widgets.Layout(flex="1 1 auto", min_width="200px")
        )
        self.url.add_class("nbws-url")
        self.connect_button = widgets.Button(
            description="Connect", button_style="primary", icon="plug", layout=widgets.Layout(width="110px")
        )
        self.disconnect_button = widgets.Button(
            description="Disconnect", icon="times", layout=widgets.Layout(width="110px"), disabled=True
        )
        self.reconnect_toggle = widgets.Checkbox(
            value=bool(reconnect), description="reconnect", indent=False, layout=widgets.Layout(width="100px")
        )
        self.code = widgets.IntText(
            value=1000,
            description="close code",
            layout=widgets.Layout(width="170px"),
            style={"description_width": "70px"},
        )
        self.reason = widgets.Text(
            placeholder="close reason (optional)", layout=widgets.Layout(flex="1 1 auto", max_width="320px")
        )
        self.composer = Composer()
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="paper-plane", layout=widgets.Layout(width="110px")
        )
        self.stats = widgets.HTML("")
        self.stats.add_class("nbws-stats")

        title = widgets.HTML('<span class="nbws-title">Client</span>')
        header = widgets.HBox(
            [title, self.badge, self.url, self.connect_button, self.disconnect_button],
            layout=widgets.Layout(align_items="center", width="100%"),
        )
        spacers = [widgets.HTML(layout=widgets.Layout(flex="1")) for _ in range(2)]
        options_row = widgets.HBox(
            [self.reconnect_toggle, self.code, self.reason, spacers[0], self.stats],
            layout=widgets.Layout(align_items="center", width="100%"),
        )
        composer_row = widgets.HBox(
            [self.composer.mode, spacers[1], self.send_button],
            layout=widgets.Layout(align_items="center", width="100%"),
        )
        self._style = style()
        self._layout_widgets = [title, header, options_row, composer_row, *spacers]
        super().__init__(
            [self._style, header, options_row, composer_row, self.composer, self.status, self.message_log],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("nbws-panel")
        self.add_class("nbws-client")

        self.connect_button.on_click(on_click(self.connect))
        self.disconnect_button.on_click(on_click(self.disconnect))
        self.send_button.on_click(on_click(self.send))
        self.reconnect_toggle.observe(on_change(self._reconnect_changed), "value")
        self.message_log.after_flush.add(self.refresh)
        self.message_log.on_resend = lambda row: self.send(row.data)
        self.message_log.on_edit = self._edit
        self._ready = True

        if isinstance(ws_or_url, WebSocket):
            self._bind(ws_or_url)
        elif isinstance(ws_or_url, str):
            self.url.value = ws_or_url
            if connect:
                self.connect()
        self.refresh()

    # -- state -----------------------------------------------------------------------

    @property
    def ws(self) -> WebSocket | None:
        """The client shown: the one given, or the last one Connect made (None before that)."""
        return self._ws

    @property
    def state(self) -> str:
        """``"connecting"``, ``"reconnecting"``, ``"open"``, ``"closing"``, ``"closed"``, or ``"idle"`` without a client."""
        ws = self._ws
        if ws is None:
            return "idle"
        state = ws.ready_state
        if state is CONNECTING and ws.reconnect_attempt:
            return "reconnecting"
        return state.name.lower()

    def refresh(self) -> None:
        """Show the client's current state (called after every batch of events and every action)."""
        ws = self._ws
        state = self.state
        label = {"idle": "not connected", "reconnecting": "reconnecting"}.get(state, state)
        if ws is not None and state == "reconnecting":
            label = f"reconnecting #{ws.reconnect_attempt}"
        self.badge.value = badge(state, label)
        live = ws is not None and ws.ready_state in (CONNECTING, OPEN)
        self.connect_button.disabled = live
        self.disconnect_button.disabled = not (ws is not None and ws.ready_state in (CONNECTING, OPEN))
        if ws is not None:
            self.stats.value = (
                f"↑ {ws.messages_sent:,} msgs {format_size(ws.bytes_sent)} · "
                f"↓ {ws.messages_received:,} msgs {format_size(ws.bytes_received)}"
            )
        self.status.flush()  # what happened since the last refresh
        self.refreshed.notify(self)

    # -- actions (the buttons' twins) ---------------------------------------------------

    @shows_errors
    def connect(self, url: str | None = None) -> WebSocket:
        """
        Open a new connection to ``url`` (default: the URL field) and return the client (Connect).

        Raises:
            nbws.InvalidURLError: if the URL is empty or not a ws:// or wss:// URL.
            nbws.InvalidStateError: if the current client is still connecting or open.
        """
        if url is not None:
            self.url.value = url
        url = self.url.value.strip()
        if not url:
            raise InvalidURLError("enter a ws:// or wss:// URL to connect to")
        old = self._ws
        if old is not None and old.ready_state in (CONNECTING, OPEN, CLOSING):
            what = {CONNECTING: "still connecting to", OPEN: "already connected to", CLOSING: "still closing"}
            raise InvalidStateError(
                f"{old.id} is {what[old.ready_state]} {redact.url(old.url)}: click Disconnect first"
            )
        if old is not None and url == redact.url(old.url):
            url = old.url  # the field shows the URL redacted: connect again with its secrets
        ws = self._new_ws(url, old)
        self._bind(ws)
        self.status.info(f"connecting to {redact.url(url)}")
        self.refresh()
        return ws

    def _new_ws(self, url: str, old: WebSocket | None) -> WebSocket:
        reconnect = self.reconnect_toggle.value
        if old is None:
            options = dict(self._options)
            policy = options.pop("reconnect", None)
            return WebSocket(url, reconnect=(policy or True) if reconnect else None, **options)
        # A closed WebSocket cannot be reopened: make a new one like it.
        return old.clone(url, reconnect=(old.reconnect or True) if reconnect else None)

    def _bind(self, ws: WebSocket) -> None:
        old = self._ws
        if old is not None:
            self.message_log.detach(old)
            if self._hooks in old.plugins:
                old.plugins.unregister(self._hooks)
            forget(old, self)
        self._ws = ws
        self.url.value = redact.url(ws.url)  # widget state is saved with the notebook
        self.message_log.attach(ws)
        ws.plugins.register(self._hooks, name=f"nbws.widgets.client-{id(self)}")
        show(ws, self)  # ws.panel() returns this panel from now on
        if ws.ready_state is not CONNECTING or ws.messages_sent or ws.messages_received:
            self.message_log.note(f"showing {ws.id} ({ws.ready_state.name.lower()})", ws.id)

    @shows_errors
    def disconnect(self, code: int | None = None, reason: str | None = None) -> None:
        """
        Close the connection with ``code`` and ``reason`` (default: the fields); stop reconnecting (Disconnect).

        Raises:
            nbws.InvalidStateError: without a client, or if it is closed already.
            ValueError: for a close code a client may not send (it must be
                1000 or 3000-4999) or a reason over 123 bytes.
        """
        ws = self._ws
        if ws is None:
            raise InvalidStateError("not connected: there is nothing to disconnect")
        code = self.code.value if code is None else code
        reason = self.reason.value if reason is None else reason
        assert code is not None and reason is not None
        if ws.ready_state is CLOSED or ws.ready_state is CLOSING:
            raise InvalidStateError(f"{ws.id} is {ws.ready_state.name.lower()} already")
        ws.close(code, reason)
        self.status.info(f"closing {ws.id} with code {code}" + (f" ({reason})" if reason else ""))
        self.refresh()

    @shows_errors
    def send(self, data: str | bytes | None = None, *, mode: str | None = None) -> str | bytes:
        """
        Send ``data``, or what the composer holds, and return what was sent (Send).

        With ``mode`` (``"text"``, ``"json"``, ``"hex"``, ``"base64"``) a str
        is read as the composer would read it in that mode.

        Raises:
            ValueError: for invalid JSON, hex or base64.
            nbws.InvalidStateError: if not connected, or the connection is not open.
        """
        if data is None:
            payload = self.composer.payload(mode)
        elif isinstance(data, str) and mode is not None:
            payload = parse_payload(data, mode)
        else:
            payload = data
        ws = self._ws
        if ws is None:
            raise InvalidStateError("not connected: click Connect first")
        ws.send(payload)
        self.status.info(f"sent {describe_payload(payload)}")
        return payload

    def _edit(self, row: Any) -> None:
        """The inspector's "Edit and send": the message goes into the composer."""
        self.composer.load(row.data)
        self.status.info(f"{row.kind} message #{row.seq or row.id} is in the composer: edit it, then Send")

    def _reconnect_changed(self, value: bool) -> None:
        ws = self._ws
        if ws is not None:
            ws.reconnect = (ws.reconnect or True) if value else None
        self.status.info("reconnect on" if value else "reconnect off")

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop following the client (it stays connected) and close the widgets."""
        if not self.__dict__.pop("_ready", False):
            super().close()
            return
        ws = self._ws
        if ws is not None:
            if self._hooks in ws.plugins:
                ws.plugins.unregister(self._hooks)
            forget(ws, self)
        self.refreshed.clear()
        self.message_log.close()
        close_widgets(
            self.status,
            self.badge,
            self.url,
            self.connect_button,
            self.disconnect_button,
            self.reconnect_toggle,
            self.code,
            self.reason,
            self.composer.mode,
            self.composer.text,
            self.composer.hint,
            self.composer,
            self.send_button,
            self.stats,
            self._style,
            *self._layout_widgets,
        )
        super().close()

    def __repr__(self) -> str:
        ws = self._ws
        shown = f"{ws.id} {redact.url(ws.url)}" if ws is not None else (redact.url(self.url.value) or "no client")
        return f"<ClientPanel {shown} {self.state}>"
