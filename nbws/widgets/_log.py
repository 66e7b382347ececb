"""
The message log shared by the client and server panels.

Rows are kept in a bounded deque in the kernel; the view is an HTML widget
re-rendered from them on a timer on the kernel's loop (at most once per
``interval``, and only when something changed), so a flood of messages costs
a few widget updates per second, not one per message.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import ipywidgets as widgets

from .. import Message, Observers, PluginRegistry, codecs, hookimpl, redact
from .. import plugins as global_plugins
from ..codecs import Decoded
from ..exceptions import TimeoutError, describe
from ._common import Throttle, close_widgets, close_words, format_size, format_time, on_change, on_click, style
from ._log_view import LogView

__all__ = ["LogRow", "MessageLog"]

logger = logging.getLogger("nbws")

RowDirection = Literal["send", "receive", "event"]

_ARROWS = {"send": "↑", "receive": "↓"}
_EVENT_MARKS = {"error": "✖", "reconnect": "↻", "open": "●", "listening": "●"}
_PREVIEW_CHARS = 400
_PREVIEW_LINES = 8
_HEX_BYTES = 48
_log_ids = iter(range(1, 1 << 62))


class LogRow:
    """
    One event in a :class:`MessageLog`.

    Attributes:
        time: When it happened, in seconds since the epoch.
        direction: ``"send"`` (↑), ``"receive"`` (↓) or ``"event"`` (open,
            close, error and the like).
        connection: The connection id (``"c1"``, ``"s2"``) or ``"server"``.
        kind: ``"text"`` or ``"binary"`` for a message; ``"open"``,
            ``"close"``, ``"error"``, ``"reconnect"``, ``"listening"``,
            ``"stopped"`` or ``"note"`` for an event.
        size: A message's payload size in bytes (None for an event).
        data: A message's payload, cut to the log's ``keep_bytes`` (None for an event).
        detail: What an event was, in words (the close code, the error, ...).
        dropped: True for a message a plugin dropped.
        code: A close event's code (None otherwise).
        id: The row's number in its log, from 1 (what the page sends back when a row is clicked).
        seq: A message's number among those of its connection and direction (0 for an event).
        marks: What happened to a message on its way: ``"edited"`` (a plugin
            changed it; ``original`` holds what it was), ``"dropped"``,
            ``"replayed"``, ``"injected"`` (a message a relay injected, ``message.injected``).
        original: A message's data before a plugin edited it (None if not edited).
        decoded: A message's decoded view (:class:`nbws.codecs.Decoded`), or
            None if no codec recognises it: the protocol columns and the detail.
    """

    __slots__ = (
        "_preview",
        "code",
        "connection",
        "data",
        "decoded",
        "detail",
        "direction",
        "dropped",
        "id",
        "kind",
        "marks",
        "original",
        "seq",
        "size",
        "time",
    )

    def __init__(
        self,
        direction: RowDirection,
        connection: str,
        kind: str,
        *,
        time: float | None = None,
        size: int | None = None,
        data: str | bytes | None = None,
        detail: str = "",
        dropped: bool = False,
        code: int | None = None,
        seq: int = 0,
        marks: tuple[str, ...] = (),
        original: str | bytes | None = None,
        decoded: Decoded | None = None,
    ) -> None:
        self.id = 0
        self.seq = seq
        self.marks = marks
        self.original = original
        self.decoded = decoded
        self.time = _now() if time is None else time
        self.direction = direction
        self.connection = connection
        self.kind = kind
        self.size = size
        self.data = data
        self.detail = detail
        self.dropped = dropped
        self.code = code
        self._preview: str | None = None

    @property
    def truncated(self) -> bool:
        """True if the log kept only the start of a large message."""
        data = self.data
        if data is None or self.size is None:
            return False
        kept = len(data) if isinstance(data, bytes) else len(data.encode())
        return kept < self.size

    @property
    def label(self) -> str:
        """The kind column: ``text 12 B``, ``binary 1.5 kB``, ``close 1000``, ``open``."""
        if self.size is not None:
            return f"{self.kind} {format_size(self.size)}"
        if self.code is not None:
            return f"{self.kind} {self.code}"
        return self.kind

    @property
    def preview(self) -> str:
        """A readable rendering: JSON pretty-printed, binary as hex, events in words (cut to a few lines)."""
        if self._preview is None:
            self._preview = _preview(self)
        return self._preview

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the row (binary data in base64)."""
        record: dict[str, Any] = {
            "time": self.time,
            "direction": self.direction,
            "connection": self.connection,
            "kind": self.kind,
        }
        if self.size is not None:
            record["size"] = self.size
        data = self.data
        if isinstance(data, bytes):
            record["base64"] = base64.b64encode(data).decode()
        elif data is not None:
            record["text"] = data
        if self.truncated:
            record["truncated"] = True
        if self.dropped:
            record["dropped"] = True
        if self.seq:
            record["seq"] = self.seq
        if self.marks:
            record["marks"] = list(self.marks)
        if isinstance(self.original, bytes):
            record["original_base64"] = base64.b64encode(self.original).decode()
        elif self.original is not None:
            record["original_text"] = self.original
        if self.code is not None:
            record["code"] = self.code
        if self.detail:
            record["detail"] = self.detail
        if self.decoded is not None:
            record["decoded"] = self.decoded.to_dict()
        return record

    def __repr__(self) -> str:
        return f"<LogRow {self.direction} {self.connection} {self.label}: {self.preview[:40]!r}>"


def _now() -> float:
    return time.time()


def _is_json(text: str) -> bool:
    if text[:1] not in ("{", "[") and text.strip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _preview(row: LogRow) -> str:
    data = row.data
    if data is None:
        return row.detail
    if isinstance(data, bytes):
        shown = data[:_HEX_BYTES].hex(" ")
        if row.size is not None and row.size > _HEX_BYTES:
            shown += f" … ({row.size} bytes)"
        return shown
    text = data
    if text[:1] in ("{", "[") and not row.truncated:
        try:
            value = json.loads(text)
        except ValueError:
            pass
        else:
            # Short values read best on one line; longer ones indented.
            text = json.dumps(value, ensure_ascii=False)
            if len(text) > 80:
                text = json.dumps(value, indent=2, ensure_ascii=False)
    lines = text.split("\n")
    if len(lines) > _PREVIEW_LINES:
        text = "\n".join(lines[:_PREVIEW_LINES]) + f"\n… {len(lines) - _PREVIEW_LINES} more lines"
    if len(text) > _PREVIEW_CHARS:
        text = text[:_PREVIEW_CHARS] + "…"
    elif row.truncated:
        text += "…"
    return text


def _row_html(row: LogRow) -> str:
    """One row: arrow, time, connection, kind and size, then the marks and the preview (in that column, so nothing overlaps)."""
    direction = row.direction
    arrow = _ARROWS.get(direction) or _EVENT_MARKS.get(row.kind, "•")
    classes = f"nbws-row nbws-{direction} nbws-kind-{row.kind}"
    if row.dropped:
        classes += " nbws-dropped"
    marks = "".join(f'<span class="nbws-mark nbws-mark-{mark}">{mark}</span>' for mark in row.marks)
    return (
        f'<div class="{classes}" data-row="{row.id}" title="click to inspect"><span class="nbws-arrow">{arrow}</span>'
        f'<span class="nbws-time">{format_time(row.time)}</span>'
        f'<span class="nbws-conn">{html.escape(row.connection)}</span>'
        f'<span class="nbws-kind">{html.escape(row.label)}</span>'
        f'<div class="nbws-cell">{marks}{_decoded_html(row)}<pre>{html.escape(row.preview)}</pre></div></div>'
    )


def _decoded_html(row: LogRow) -> str:
    # The protocol summary: in the last grid cell, above the payload, so the row keeps its five columns.
    decoded = row.decoded
    if decoded is None:
        return ""
    colour = "#dc2626" if decoded.error is not None else "#7c3aed"
    return f'<div class="nbws-decoded" style="font-weight:600;color:{colour}">{html.escape(decoded.summary())}</div>'


def _hex_dump(data: bytes) -> str:
    """Offset, 16 bytes in hex and their printable ASCII, a line each, as hex editors and developer tools show them."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)


def _search_text(row: LogRow) -> str:
    """What the filter searches besides the preview: the whole message kept, and an event's words."""
    data = row.data
    if isinstance(data, bytes):
        return data.hex(" ")
    return data if data is not None else row.detail


class _LogHooks:
    """The plugin a log registers on each endpoint it follows: every event becomes a row."""

    _nbws_internal = True  # hidden from the plugin panel

    def __init__(self, log: MessageLog) -> None:
        self._log = log

    @hookimpl
    def nbws_open(self, conn: Any) -> None:
        if conn.role == "client":
            detail = f"connected to {redact.url(conn.url)}"
        else:
            address = conn.remote_address
            detail = f"client {address[0]}:{address[1]} connected" if address else "client connected"
        if conn.protocol:
            detail += f" (subprotocol {conn.protocol})"
        if self._log.decode:
            codecs.track(conn)  # a new protocol session at each opening (a client that reconnects)
        self._log.add(LogRow("event", conn.id, "open", detail=detail))

    @hookimpl
    def nbws_close(self, conn: Any, code: int, reason: str, was_clean: bool) -> None:
        self._log.add(LogRow("event", conn.id, "close", detail=close_words(code, reason, was_clean), code=code))

    @hookimpl
    def nbws_error(self, conn: Any, error: BaseException, phase: str, plugin: str | None) -> None:
        where = f"plugin {plugin!r}" if plugin else phase
        self._log.add(
            LogRow(
                "event",
                conn.id if conn is not None else "server",
                "error",
                detail=f"{where}: {redact.text(describe(error))}",
            )
        )

    @hookimpl
    def nbws_reconnect(self, conn: Any, attempt: int, delay: float) -> None:
        self._log.add(LogRow("event", conn.id, "reconnect", detail=f"attempt {attempt} in {delay:.1f} s"))

    @hookimpl
    def nbws_message_sent(self, conn: Any, message: Message) -> None:
        self._log.add_message(message, conn)

    @hookimpl
    def nbws_message_received(self, conn: Any, message: Message) -> None:
        self._log.add_message(message, conn)

    @hookimpl
    def nbws_server_start(self, server: Any) -> None:
        self._log.add(LogRow("event", "server", "listening", detail=f"listening on {redact.url(server.url)}"))

    @hookimpl
    def nbws_server_stop(self, server: Any) -> None:
        self._log.add(LogRow("event", "server", "stopped", detail="stopped: every client closed, port freed"))


class MessageLog(widgets.VBox):  # type: ignore[misc]
    """
    A live log of every event of one or more endpoints: a row per message,
    open, close and error, newest at the bottom.

    It follows an endpoint through the same hooks plugins use: :meth:`attach`
    registers a small plugin on ``ws.plugins`` or ``server.plugins``.

    Args:
        max_rows: Rows kept in the kernel; older ones are forgotten.
        max_visible: Rows rendered in the page (the newest that pass the filter).
        interval: Seconds between two renderings at most; a flood of messages
            is shown in batches at this pace.
        keep_bytes: Bytes of each message kept for preview and export.

    Attributes:
        direction: The direction filter (``"all"``, ``"send"``, ``"receive"``, ``"event"``).
        search: The text filter; with ``regex`` ticked, a regular expression.
            A query on decoded fields (``event == "price"``,
            ``method:eth_subscribe``, ``latency > 0.1``; see
            :func:`nbws.codecs.parse_query`) filters on the protocol instead.
        regex: Whether ``search`` is a regular expression.
        pause_button, clear_button, export_button: The toolbar buttons; their
            twins are :meth:`pause`/:meth:`resume`, :meth:`clear` and
            :meth:`download` (Export offers the rows the filter shows as a
            browser download; :meth:`export` writes a file in the kernel).
        body: The rendered rows and the inspector (a :class:`LogView`): click
            a row to see the whole message (:meth:`select` is the twin).
        on_resend, on_edit: What the inspector's Resend and "Edit and send"
            do with a row (the panels set them: send it again, or put it in
            their composer); None hides those buttons.
        info: The footer: rows held, events seen, what is shown.
        seen: Events logged since the log was created.
        renders: How many times the rows were rendered for the page.
    """

    def __init__(
        self,
        *,
        max_rows: int = 1000,
        max_visible: int = 200,
        interval: float = 0.2,
        keep_bytes: int = 16384,
    ) -> None:
        for name, value in (("max_rows", max_rows), ("max_visible", max_visible), ("keep_bytes", keep_bytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        self.max_rows = max_rows
        self.max_visible = max_visible
        self.keep_bytes = keep_bytes
        self._rows: deque[LogRow] = deque(maxlen=max_rows)
        self.seen = 0
        self.renders = 0
        self._paused = False
        self._dirty = True
        self._new_while_paused = 0
        self._direction = "all"
        self._search = ""
        self._regex = False
        self._pattern: re.Pattern[str] | None = None
        self._filter_error = ""
        self._query: Callable[[Decoded | None], bool] | None = None
        self.decode = True
        """Whether message rows are decoded by protocol (:mod:`nbws.codecs`)."""
        self._export_note = ""
        self._waiters: list[tuple[Callable[[LogRow], bool], asyncio.Future[LogRow]]] = []
        self.after_flush = Observers("message log after_flush callback")
        """Called without arguments after every render (the panels refresh their state then)."""
        self._attached: list[tuple[PluginRegistry, str]] = []
        self._hooks = _LogHooks(self)
        self._id = next(_log_ids)
        self._throttle = Throttle(self._flush, interval)
        self._syncing = False
        self._shown = 0
        self._next_id = 1
        self._generation = 0
        self.on_resend: Callable[[LogRow], Any] | None = None
        self.on_edit: Callable[[LogRow], Any] | None = None
        self._views: list[Callable[[LogRow], tuple[str, str] | None]] = []

        self.direction = widgets.Dropdown(
            options=[("all", "all"), ("↑ sent", "send"), ("↓ received", "receive"), ("● events", "event")],
            value="all",
            layout=widgets.Layout(width="120px"),
        )
        self.search = widgets.Text(
            placeholder="filter rows (text, or a regular expression)", layout=widgets.Layout(flex="1 1 auto")
        )
        self.regex = widgets.Checkbox(
            value=False, description="regex", indent=False, layout=widgets.Layout(width="70px")
        )
        self.pause_button = widgets.ToggleButton(
            value=False, description="Pause", icon="pause", tooltip="freeze the view (rows are still kept)"
        )
        self.clear_button = widgets.Button(description="Clear", icon="trash", tooltip="forget every row")
        self.export_button = widgets.Button(
            description="Export", icon="download", tooltip="download the rows the filter shows as a JSON Lines file"
        )
        for button in (self.pause_button, self.clear_button, self.export_button):
            button.layout = widgets.Layout(width="88px")
        self.body = LogView()
        self.body.layout = widgets.Layout(width="auto")
        self.info = widgets.HTML("")
        self.info.add_class("nbws-muted")
        toolbar = widgets.HBox(
            [self.direction, self.search, self.regex, self.pause_button, self.clear_button, self.export_button],
            layout=widgets.Layout(align_items="center", width="100%"),
        )
        self._style = style()
        self._toolbar = toolbar
        super().__init__([self._style, toolbar, self.body, self.info], layout=widgets.Layout(width="100%"))
        self.add_class("nbws-log")
        self.add_class("nbws-panel")

        self.direction.observe(on_change(lambda value: self._from_widgets(direction=value)), "value")
        self.search.observe(on_change(lambda value: self._from_widgets(text=value)), "value")
        self.regex.observe(on_change(lambda value: self._from_widgets(regex=value)), "value")
        self.pause_button.observe(on_change(lambda value: self.pause() if value else self.resume()), "value")
        self.clear_button.on_click(on_click(self.clear))
        self.export_button.on_click(on_click(self.download))
        self.body.observe(on_change(self._selected), "selected")
        self.body.on_msg(self._page_action)
        self._ready = True
        self._flush()

    # -- following endpoints ------------------------------------------------------

    def attach(self, endpoint: Any, *, history: bool = True) -> None:
        """
        Log every event of ``endpoint`` (a :class:`nbws.WebSocket`, :class:`nbws.Server` or connection).

        With ``history`` (the default), a log attached late first shows the
        endpoint's earlier events that a :class:`nbws.Recorder` kept (one
        registered on the endpoint or globally), up to ``max_rows``.
        """
        registry: PluginRegistry = endpoint.plugins
        if any(r is registry for r, _ in self._attached):
            return
        if history:
            self.show_history(endpoint)
        name = registry.register(self._hooks, name=f"nbws.widgets.log-{self._id}")
        self._attached.append((registry, name))

    def show_history(self, endpoint: Any) -> int:
        """Add rows for the earlier events of ``endpoint`` that recorders kept; return how many."""
        from ..recording import Recorder

        found: dict[int, Any] = {}
        own = [info.plugin for info in endpoint.plugins if isinstance(info.plugin, Recorder)]
        shared = [info.plugin for info in global_plugins if isinstance(info.plugin, Recorder)]
        server_side = isinstance(getattr(endpoint, "clients", None), list)
        ids = {conn.id for conn in endpoint.clients} if server_side else {endpoint.id}
        for recorder in own + shared:
            mine = recorder in own and server_side  # a server's own recorder saw only its connections
            for event in recorder.recording:
                if mine or event.connection in ids:
                    found.setdefault(id(event), event)
        events = sorted(found.values(), key=lambda event: event.time)[-self.max_rows :]
        for event in events:
            self.add(self._history_row(event))
        if events:
            self.note(f"the {len(events)} events above happened before this log was shown (kept by a recorder)")
        return len(events)

    def _history_row(self, event: Any) -> LogRow:
        connection = event.connection or "server"
        if event.type == "message":
            data = event.data
            size = len(data) if isinstance(data, bytes) else len(data.encode())
            marks = tuple(
                mark
                for mark, on in (
                    ("edited", event.original is not None),
                    ("dropped", event.dropped),
                    ("replayed", event.replayed),
                )
                if on
            )
            kept = (
                data[: self.keep_bytes]
                if isinstance(data, bytes)
                else data.encode()[: self.keep_bytes].decode(errors="ignore")
            )
            direction: RowDirection = "send" if event.direction == "send" else "receive"
            return LogRow(
                direction,
                connection,
                "binary" if isinstance(data, bytes) else "text",
                time=event.time,
                size=size,
                data=kept,
                dropped=event.dropped,
                seq=event.seq,
                marks=marks,
                original=event.original,
            )
        if event.type == "open":
            detail = f"connected to {event.url}" if event.role == "client" and event.url else "client connected"
            return LogRow("event", connection, "open", time=event.time, detail=detail)
        if event.type == "close":
            words = close_words(event.code or 1006, event.reason, event.was_clean)
            return LogRow("event", connection, "close", time=event.time, detail=words, code=event.code)
        return LogRow("event", connection, event.type, time=event.time, detail=f"{event.phase}: {event.error}")

    def detach(self, endpoint: Any) -> None:
        """Stop logging the events of ``endpoint``."""
        registry: PluginRegistry = endpoint.plugins
        for item in list(self._attached):
            if item[0] is registry:
                self._attached.remove(item)
                if item[1] in registry:
                    registry.unregister(item[1])

    # -- rows ------------------------------------------------------------------------

    @property
    def rows(self) -> list[LogRow]:
        """The rows held, oldest first (at most ``max_rows``)."""
        return list(self._rows)

    def add(self, row: LogRow) -> None:
        """Append a row; the page shows it at the next rendering."""
        row.id = self._next_id
        self._next_id += 1
        self._rows.append(row)
        self.seen += 1
        self._dirty = True
        if self._paused:
            self._new_while_paused += 1
        if self._waiters:
            self._wake(row)
        self._throttle.request()

    def add_message(self, message: Message, conn: Any = None) -> None:
        """Append a row for a message sent or received, decoded by its protocol's codec if one knows it."""
        data = message.data
        if isinstance(data, bytes):
            size = len(data)
            kind = "binary"
            if size > self.keep_bytes:
                data = data[: self.keep_bytes]
        else:
            size = len(data) if data.isascii() else len(data.encode())
            kind = "text"
            if size > self.keep_bytes:
                data = data.encode()[: self.keep_bytes].decode(errors="ignore")
        direction: RowDirection = "send" if message.direction == "send" else "receive"
        marks = []
        original: str | bytes | None = None
        if message.changed:
            marks.append("edited")
            original = message.original
            if len(original) > self.keep_bytes:
                original = original[: self.keep_bytes]
        if message.dropped:
            marks.append("dropped")
        if message.replayed:
            marks.append("replayed")
        if message.injected:
            marks.append("injected")
        self.add(
            LogRow(
                direction,
                message.connection,
                kind,
                time=message.time,
                size=size,
                data=data,
                dropped=message.dropped,
                seq=message.seq,
                marks=tuple(marks),
                original=original,
                decoded=codecs.decode(message, conn) if self.decode else None,
            )
        )

    def note(self, text: str, connection: str = "") -> None:
        """Append a row of your own (kind ``"note"``)."""
        self.add(LogRow("event", connection, "note", detail=text))

    def clear(self) -> None:
        """Forget every row held (the Clear button)."""
        self._rows.clear()
        self._new_while_paused = 0
        self._export_note = ""
        self._generation += 1
        self.body.selected = -1
        self._dirty = True
        self._throttle.request()

    # -- filtering -----------------------------------------------------------------

    def set_filter(self, *, direction: str | None = None, text: str | None = None, regex: bool | None = None) -> None:
        """
        Show only some rows (the filter fields): by ``direction`` (``"all"``,
        ``"send"``, ``"receive"``, ``"event"``) and by ``text``, a
        case-insensitive substring, or a regular expression if ``regex``.

        Raises:
            ValueError: for an unknown direction or an invalid regular
                expression (the log then shows every row and says why).
        """
        if direction is not None and direction not in ("all", "send", "receive", "event"):
            raise ValueError(f"direction must be 'all', 'send', 'receive' or 'event', not {direction!r}")
        self._syncing = True
        try:
            if direction is not None:
                self.direction.value = direction
            if text is not None:
                self.search.value = text
            if regex is not None:
                self.regex.value = bool(regex)
        finally:
            self._syncing = False
        self._from_widgets()
        if self._filter_error:
            raise ValueError(self._filter_error)

    def _from_widgets(self, **_: Any) -> None:
        if self._syncing:
            return
        self._direction = self.direction.value
        self._search = self.search.value
        self._regex = self.regex.value
        self._pattern = None
        self._filter_error = ""
        self._query = None
        if self._search and not self._regex:
            try:
                self._query = codecs.parse_query(self._search)
            except ValueError as exc:
                self._filter_error = str(exc)
        if self._search and self._regex:
            try:
                self._pattern = re.compile(self._search, re.IGNORECASE)
            except re.error as exc:
                self._filter_error = f"invalid regular expression {self._search!r}: {exc}"
        self._generation += 1
        self._dirty = True
        self._throttle.request()

    def _matches(self, row: LogRow) -> bool:
        if self._direction != "all" and row.direction != self._direction:
            return False
        if not self._search or self._filter_error:
            return True
        if self._query is not None:
            return self._query(row.decoded)
        # The whole message (as kept), the preview, the connection id, the kind and the marks are
        # searched apart, so that ^ and $ mean what they say.
        fields = (_search_text(row), row.preview, row.connection, row.label, *row.marks)
        pattern = self._pattern
        if pattern is not None:
            return any(pattern.search(field) for field in fields)
        needle = self._search.lower()
        return any(needle in field.lower() for field in fields)

    def filtered(self, limit: int | None = None) -> list[LogRow]:
        """The rows that pass the filter, oldest first; with ``limit``, only the newest ``limit`` of them."""
        found: list[LogRow] = []
        for row in reversed(self._rows):
            if self._matches(row):
                found.append(row)
                if limit is not None and len(found) >= limit:
                    break
        found.reverse()
        return found

    # -- pausing and rendering ---------------------------------------------------------

    @property
    def paused(self) -> bool:
        """True while the view is frozen; rows are still kept."""
        return self._paused

    def pause(self) -> None:
        """Freeze the view so that it can be read; rows are still kept (the Pause button)."""
        self._paused = True
        self._new_while_paused = 0
        self._sync_pause_button()
        self._throttle.request()

    def resume(self) -> None:
        """Unfreeze the view and show what arrived meanwhile."""
        self._paused = False
        self._dirty = True
        self._sync_pause_button()
        self._throttle.request()

    def _sync_pause_button(self) -> None:
        button = self.pause_button
        if button.value != self._paused:
            button.value = self._paused
        button.description = "Resume" if self._paused else "Pause"
        button.icon = "play" if self._paused else "pause"
        button.button_style = "warning" if self._paused else ""

    def flush(self) -> None:
        """Render now instead of at the next tick of the timer."""
        self._throttle.run()

    def refresh_soon(self) -> None:
        """Render at the next tick of the timer (requests in between are merged into one render)."""
        self._throttle.request()

    def _flush(self) -> None:
        if self._dirty and not self._paused:
            self._dirty = False
            self._render()
        self._render_info()
        self.after_flush.notify()

    def _render(self) -> None:
        self.renders += 1
        shown = self.filtered(self.max_visible)
        if shown:
            inner = "".join(_row_html(row) for row in shown)
        elif self._rows:
            inner = '<div class="nbws-empty">No row matches the filter.</div>'
        else:
            inner = '<div class="nbws-empty">No events yet.</div>'
        self._shown = len(shown)
        # The page keeps a scrolled-up view still while the generation (filter, clear) stays the same.
        self.body.value = (
            f'<div class="nbws-log-rows" data-newest="{self._next_id - 1}" data-gen="{self._generation}">{inner}</div>'
        )

    def _render_info(self) -> None:
        held = len(self._rows)
        parts = [f"{held:,} rows held (max {self.max_rows:,})", f"{self.seen:,} events seen"]
        shown = self._shown
        if held:
            parts.append(f"showing the last {shown:,}" if shown < held else f"showing {shown:,}")
        if self._paused:
            parts.append(f"<b>paused</b>, {self._new_while_paused:,} new")
        if self._filter_error:
            parts.append(f'<span class="nbws-hint-bad">{html.escape(self._filter_error)}</span>')
        if self._export_note:
            parts.append(html.escape(self._export_note))
        self.info.value = " · ".join(parts)

    # -- waiting ---------------------------------------------------------------------

    async def wait_for(self, match: Callable[[LogRow], bool] | str, timeout: float | None = None) -> LogRow:
        """
        Wait until the log holds a row that matches, and return it.

        ``match`` is a function of a :class:`LogRow`, or a string to find in
        a row's preview. Rows already held count.

        Raises:
            nbws.TimeoutError: after ``timeout`` seconds.
        """
        predicate: Callable[[LogRow], bool]
        if isinstance(match, str):
            needle = match

            def predicate(row: LogRow) -> bool:
                return needle in row.preview

        else:
            predicate = match
        for row in self._rows:
            if predicate(row):
                return row
        future: asyncio.Future[LogRow] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._waiters.append(waiter)
        try:
            if timeout is None:
                return await future
            try:
                return await asyncio.wait_for(future, timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no matching log row after {timeout:g} seconds") from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake(self, row: LogRow) -> None:
        for predicate, future in list(self._waiters):
            if future.done():
                continue
            try:
                if predicate(row):
                    future.set_result(row)
            except Exception as exc:
                future.set_exception(exc)

    # -- the inspector ---------------------------------------------------------------

    def row(self, row_id: int) -> LogRow | None:
        """The row held with this id, or None if it was forgotten."""
        for row in reversed(self._rows):
            if row.id == row_id:
                return row
        return None

    def select(self, row: LogRow | int | None) -> dict[str, Any]:
        """Show ``row`` (or the row with that id) in the inspector, as a click on it does; None closes it. Returns :meth:`inspect`'s dict."""
        row_id = -1 if row is None else (row if isinstance(row, int) else row.id)
        self.body.selected = row_id
        self._selected(row_id)
        return dict(self.body.detail)

    def _selected(self, row_id: int) -> None:
        found = self.row(row_id) if row_id >= 0 else None
        self.body.detail = self.inspect(found) if found is not None else {}

    def add_view(self, view: Callable[[LogRow], tuple[str, str] | None]) -> None:
        """
        Add a tab to the inspector: ``view(row)`` returns ``(title, text)``
        for the rows it can show (a decoded form of the message, say), or None.
        A view that raises shows its error in its tab instead.
        """
        self._views.append(view)

    def inspect(self, row: LogRow) -> dict[str, Any]:
        """
        The whole of ``row`` as the inspector shows it: its text (and whether
        it is JSON), or its hex dump and base64; size, times, marks, the
        original before an edit. JSON-ready.
        """
        detail: dict[str, Any] = {
            "id": row.id,
            "direction": row.direction,
            "connection": row.connection,
            "label": row.label,
            "marks": list(row.marks),
            "can_send": row.data is not None and self.on_resend is not None,
        }
        facts = [
            ("time", datetime.fromtimestamp(row.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]),
            ("timestamp", f"{row.time:.6f} ({datetime.fromtimestamp(row.time, timezone.utc).isoformat()})"),
        ]
        if row.size is not None:
            facts.insert(0, ("size", f"{row.size:,} bytes ({format_size(row.size)})"))
        if row.seq:
            facts.append(
                ("number", f"#{row.seq} {'sent' if row.direction == 'send' else 'received'} on {row.connection}")
            )
        data = row.data
        if row.truncated and data is not None:
            kept = len(data) if isinstance(data, bytes) else len(data.encode())
            facts.append(("kept", f"the first {kept:,} bytes (keep_bytes): the rest was not kept"))
            detail["note"] = "only the start of this message was kept"
        detail["facts"] = facts
        if isinstance(data, bytes):
            detail["base64"] = base64.b64encode(data).decode()
            detail["hex"] = _hex_dump(data)
        elif data is not None:
            detail["text"] = data
            detail["json"] = _is_json(data)
        else:
            detail["detail"] = row.detail
        original = row.original
        if isinstance(original, bytes):
            detail["original"] = original.hex(" ")
        elif original is not None:
            detail["original"] = original
        extra = []
        if row.decoded is not None:
            # The protocol inside the frame (issue 14): the whole decoded view, as its codec gives it.
            extra.append([f"decoded ({row.decoded.protocol})", row.decoded.pretty()])
        for view in self._views:
            try:
                shown = view(row)
            except Exception as exc:
                shown = (getattr(view, "__name__", "view"), f"this view failed: {describe(exc)}")
            if shown is not None:
                extra.append([str(shown[0]), str(shown[1])])
        detail["views"] = extra
        return detail

    def _page_action(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Resend and "Edit and send" from the inspector."""
        if not isinstance(content, dict):
            return
        row = self.row(int(content.get("id", -1)))
        action = content.get("action")
        try:
            if row is None:
                raise ValueError("that row is no longer held")
            if action == "resend":
                self.resend(row)
            elif action == "edit":
                self.edit(row)
        except Exception as exc:
            self._export_note = f"{action} failed: {exc}"
            self._render_info()

    def resend(self, row: LogRow) -> None:
        """Send ``row``'s message again (the inspector's Resend), through :attr:`on_resend`."""
        self._check_sendable(row)
        assert self.on_resend is not None
        self.on_resend(row)

    def edit(self, row: LogRow) -> None:
        """Put ``row``'s message in the composer to be edited and sent (the inspector's "Edit and send")."""
        self._check_sendable(row)
        if self.on_edit is None:
            raise ValueError("this log has no composer to edit in")
        self.on_edit(row)

    def _check_sendable(self, row: LogRow) -> None:
        if row.data is None:
            raise ValueError("an event row has no message to send")
        if self.on_resend is None:
            raise ValueError("this log is not in a panel that can send")
        if row.truncated:
            raise ValueError(f"only the first {self.keep_bytes:,} bytes of this message were kept (keep_bytes)")

    # -- export ----------------------------------------------------------------------

    def download(self, *, filtered: bool = True) -> str:
        """
        Offer the rows the filter shows (or every row held, with
        ``filtered=False``) to the page as a JSON Lines download (the Export
        button); nothing is written in the kernel. Returns the file name.
        """
        rows = self.filtered() if filtered else self.rows
        name = f"nbws-log-{datetime.now().strftime('%Y%m%d-%H%M%S')}.jsonl"
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in self.records(rows))
        self.body.offer_download(name, text)
        which = "the rows the filter shows" if filtered and len(rows) < len(self._rows) else "every row held"
        self._export_note = f"downloading {len(rows):,} rows ({which}) as {name}"
        self._render_info()
        return name

    def records(self, rows: Iterable[LogRow] | None = None) -> list[dict[str, Any]]:
        """The rows held (or ``rows``) as JSON-ready dicts."""
        return [row.to_dict() for row in (self._rows if rows is None else rows)]

    def export(self, path: str | Path | None = None, *, filtered: bool = False) -> Path:
        """
        Write the rows held to a JSON Lines file in the kernel and return its path.

        With ``filtered=True`` only the rows the filter shows. Without
        ``path`` the file is ``nbws-log-<date>-<time>.jsonl`` in the current
        directory (the notebook's, in Jupyter). The Export button offers a
        browser download instead (:meth:`download`).
        """
        if path is None:
            path = f"nbws-log-{datetime.now().strftime('%Y%m%d-%H%M%S')}.jsonl"
        target = Path(path)
        records = self.records(self.filtered() if filtered else None)
        with target.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._export_note = f"exported {len(records):,} rows to {target}"
        self._render_info()
        return target

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop following every endpoint and close the widgets."""
        if not self.__dict__.pop("_ready", False):  # not built, or closed already
            super().close()
            return
        self._throttle.cancel()
        for registry, name in self._attached:
            if name in registry:
                registry.unregister(name)
        self._attached.clear()
        self.after_flush.clear()
        close_widgets(
            self.direction,
            self.search,
            self.regex,
            self.pause_button,
            self.clear_button,
            self.export_button,
            self.body,
            self.info,
            self._toolbar,
            self._style,
        )
        super().close()

    def __repr__(self) -> str:
        return f"<MessageLog {len(self._rows)} rows, {self.seen} seen>"
