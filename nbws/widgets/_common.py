"""
What the panels share: the stylesheet, a throttle that batches updates on the
kernel's loop, a status line that shows errors in words, the message composer
and the formatting of sizes, times and payloads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import html
import json
import logging
import re
import time
import weakref
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import ipywidgets as widgets

from ..exceptions import NbwsError, describe

logger = logging.getLogger("nbws")

P = ParamSpec("P")
R = TypeVar("R")

MODES = ("text", "json", "hex", "base64")
"""The composer's modes: a text frame, a text frame checked as JSON, or a binary frame entered as hex or base64."""

CLOSE_CODES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status",
    1006: "dropped",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension required",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS failure",
}

# One stylesheet for every panel; class names are prefixed so nothing else in the page is touched.
# Colours use JupyterLab's theme variables where they exist, so dark themes stay readable.
CSS = """
<style>
.nbws-panel { font-family: var(--jp-ui-font-family, system-ui, sans-serif); }
.nbws-panel .widget-button { border-radius: 4px; }
.nbws-title { font-weight: 600; font-size: 13px; color: var(--jp-ui-font-color1, #222); margin-right: 6px; }
.nbws-badge { display: inline-block; min-width: 72px; text-align: center; padding: 0 10px; border-radius: 11px;
  font-size: 12px; font-weight: 600; line-height: 22px; color: #fff; white-space: nowrap; }
.nbws-badge.nbws-state-connecting, .nbws-badge.nbws-state-starting, .nbws-badge.nbws-state-reconnecting { background: #d97706; }
.nbws-badge.nbws-state-open, .nbws-badge.nbws-state-listening { background: #16a34a; }
.nbws-badge.nbws-state-closing, .nbws-badge.nbws-state-stopping { background: #ea580c; }
.nbws-badge.nbws-state-closed, .nbws-badge.nbws-state-stopped, .nbws-badge.nbws-state-idle { background: #6b7280; }
.nbws-muted { color: var(--jp-ui-font-color2, #666); font-size: 12px; }
.nbws-stats { color: var(--jp-ui-font-color2, #666); font-size: 12px; white-space: nowrap; }
.nbws-url { font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.nbws-status { font-size: 12px; min-height: 18px; line-height: 18px; }
.nbws-status .nbws-error-text { color: #dc2626; font-weight: 600; }
.nbws-status .nbws-info-text { color: var(--jp-ui-font-color2, #555); }
.nbws-hint-ok { color: #16a34a; font-size: 12px; }
.nbws-hint-bad { color: #dc2626; font-size: 12px; }
.nbws-composer textarea { font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
/* The page keeps the newest row in view at the bottom, as a terminal does, unless the user scrolled up. */
.nbws-log-view { position: relative; width: 100%; }
.nbws-log-body { font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 1.45;
  box-sizing: border-box; width: 100%; min-height: 48px; max-height: 280px; overflow-y: auto;
  border: 1px solid var(--jp-border-color1, #bbb); border-radius: 4px; background: var(--jp-layout-color1, #fff); }
.nbws-jump { position: absolute; right: 18px; top: 246px; font-size: 12px; padding: 2px 10px; border-radius: 11px;
  border: none; background: #2563eb; color: #fff; cursor: pointer; box-shadow: 0 1px 4px rgba(0,0,0,0.3); }
.nbws-row { cursor: pointer; }
.nbws-row.nbws-selected { background: rgba(37, 99, 235, 0.14); outline: 1px solid rgba(37, 99, 235, 0.5); }
.nbws-cell { min-width: 0; display: flex; align-items: baseline; gap: 4px; }
.nbws-cell pre { flex: 1 1 auto; min-width: 0; }
.nbws-mark { font-size: 10px; padding: 0 5px; border-radius: 7px; white-space: nowrap; flex: none;
  background: var(--jp-layout-color3, #eee); color: var(--jp-ui-font-color1, #333); }
.nbws-mark-edited { background: #fef3c7; color: #92400e; }
.nbws-mark-dropped { background: #fee2e2; color: #991b1b; }
.nbws-mark-replayed { background: #e0e7ff; color: #3730a3; }
.nbws-mark-injected { background: #dcfce7; color: #166534; }
.nbws-inspector { margin-top: 6px; border: 1px solid var(--jp-border-color1, #bbb); border-radius: 4px;
  padding: 6px 8px; font-size: 12px; background: var(--jp-layout-color1, #fff); }
.nbws-inspector-head { display: flex; gap: 6px; align-items: baseline; }
.nbws-inspector-close { margin-left: auto; border: none; background: none; font-size: 16px; cursor: pointer;
  color: var(--jp-ui-font-color2, #666); }
.nbws-inspector-facts { display: grid; grid-template-columns: max-content 1fr; column-gap: 10px; margin: 4px 0;
  color: var(--jp-ui-font-color2, #666); }
.nbws-fact-value { font-family: var(--jp-code-font-family, monospace); }
.nbws-inspector-tabs { display: flex; gap: 2px; border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.nbws-tab, .nbws-action { font-size: 12px; padding: 2px 10px; border: 1px solid var(--jp-border-color2, #ccc);
  background: var(--jp-layout-color2, #f3f3f3); color: var(--jp-ui-font-color1, #222); cursor: pointer;
  border-radius: 4px 4px 0 0; }
.nbws-action { border-radius: 4px; margin-right: 4px; }
.nbws-tab.nbws-tab-on { background: var(--jp-layout-color1, #fff); font-weight: 600; border-bottom-color: transparent; }
.nbws-inspector-content { max-height: 300px; overflow: auto; padding: 4px 0;
  font-family: var(--jp-code-font-family, monospace); }
.nbws-inspector-content pre { margin: 0; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
.nbws-inspector-actions { display: flex; align-items: center; padding-top: 4px; }
.nbws-inspector-note { color: var(--jp-ui-font-color2, #666); margin-left: 6px; }
.nbws-json-node { padding-left: 14px; }
.nbws-json-node > summary { margin-left: -14px; cursor: pointer; }
.nbws-json-line { padding-left: 14px; }
.nbws-json-key { color: #7c3aed; }
.nbws-json-string { color: #b91c1c; }
.nbws-json-number, .nbws-json-bool { color: #1d4ed8; }
.nbws-json-null, .nbws-json-count { color: var(--jp-ui-font-color2, #777); }
/* After a kernel restart the page keeps the panels; ipywidgets marks their views disconnected. */
.nbws-panel.jupyter-widgets-disconnected { opacity: 0.75; }
.nbws-panel.jupyter-widgets-disconnected::before { content: "⚠ kernel gone: this panel shows the state before the kernel stopped; run the cell again";
  display: block; color: #dc2626; font-weight: 600; font-size: 12px; padding: 2px 0 4px 0; }
.nbws-panel .jupyter-widgets-disconnected::before { content: none !important; display: none !important; }
.nbws-panel.jupyter-widgets-disconnected .nbws-badge { background: #6b7280 !important; text-decoration: line-through; }
.nbws-empty { color: var(--jp-ui-font-color3, #999); padding: 12px; font-style: italic; }
.nbws-row { display: grid; grid-template-columns: 1.3em 7.4em 3.4em 7.5em minmax(0, 1fr); column-gap: 8px;
  padding: 2px 8px; border-bottom: 1px solid var(--jp-border-color3, #f0f0f0); align-items: baseline; }
.nbws-row:hover { background: var(--jp-layout-color2, #f6f6f6); }
.nbws-row pre { margin: 0; padding: 0; white-space: pre-wrap; word-break: break-all; font-family: inherit;
  font-size: inherit; line-height: inherit; background: none; color: var(--jp-content-font-color1, #222); }
.nbws-arrow { font-weight: 700; font-size: 14px; text-align: center; }
.nbws-send { background: rgba(22, 163, 74, 0.05); }
.nbws-send .nbws-arrow { color: #16a34a; }
.nbws-receive .nbws-arrow { color: #2563eb; }
.nbws-event .nbws-arrow { color: #6b7280; }
.nbws-kind-open .nbws-arrow, .nbws-kind-listening .nbws-arrow { color: #16a34a; }
.nbws-kind-reconnect .nbws-arrow { color: #d97706; }
.nbws-time, .nbws-conn { color: var(--jp-ui-font-color2, #777); }
.nbws-kind { color: var(--jp-ui-font-color1, #333); white-space: nowrap; }
.nbws-kind-error { background: rgba(220, 38, 38, 0.07); }
.nbws-kind-error .nbws-arrow, .nbws-kind-error .nbws-kind, .nbws-kind-error pre { color: #dc2626; }
.nbws-dropped pre { text-decoration: line-through; opacity: 0.6; }
.nbws-table { border-collapse: collapse; font-size: 12px; width: 100%; }
.nbws-table th { text-align: left; font-weight: 600; color: var(--jp-ui-font-color2, #666);
  border-bottom: 1px solid var(--jp-border-color2, #ddd); padding: 3px 10px 3px 0; }
.nbws-table td { padding: 3px 10px 3px 0; border-bottom: 1px solid var(--jp-border-color3, #f0f0f0);
  font-family: var(--jp-code-font-family, monospace); }
.nbws-table td.nbws-num, .nbws-table th.nbws-num { text-align: right; }
.nbws-chip { display: inline-block; font-family: var(--jp-code-font-family, monospace); font-size: 11px;
  padding: 0 6px; margin: 1px 3px 1px 0; border-radius: 8px; background: var(--jp-layout-color3, #eee);
  color: var(--jp-ui-font-color1, #333); }
.nbws-plugin-name { font-weight: 600; font-size: 13px; }
.nbws-chip.nbws-builtin { font-family: inherit; background: var(--jp-brand-color3, #dbeafe);
  color: var(--jp-brand-color0, #1e3a8a); }
.nbws-errors-0 { color: var(--jp-ui-font-color2, #777); font-size: 12px; }
.nbws-errors { color: #dc2626; font-weight: 600; font-size: 12px; }
.nbws-panel details pre { font-size: 11px; max-height: 220px; overflow: auto; background: var(--jp-layout-color2, #f6f6f6);
  padding: 6px; border-radius: 4px; }
.nbws-header { font-size: 12px; padding: 2px 0 6px 0; }
</style>
"""


def style() -> widgets.HTML:
    """A hidden widget that carries the panels' stylesheet."""
    return widgets.HTML(CSS, layout=widgets.Layout(display="none"))


# -- words -------------------------------------------------------------------


def words(error: BaseException) -> str:
    """Say what went wrong for a person: nbws's own messages as they are, others with their type."""
    if isinstance(error, (NbwsError, ValueError, TypeError)) and str(error):
        return str(error)
    return describe(error)


def format_size(size: int) -> str:
    """``12 B``, ``1.5 kB``, ``3.2 MB``: sizes as browser developer tools show them."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def format_time(timestamp: float) -> str:
    """Local wall-clock time with milliseconds, ``14:03:27.512``."""
    local = time.localtime(timestamp)
    return time.strftime("%H:%M:%S", local) + f".{int(timestamp % 1 * 1000):03d}"


def close_words(code: int, reason: str = "", was_clean: bool | None = None) -> str:
    """``1000 normal closure, reason 'bye'``."""
    text = f"{code} {CLOSE_CODES.get(code, 'application code' if 3000 <= code <= 4999 else '')}".rstrip()
    if reason:
        text += f", reason {reason!r}"
    if was_clean is False and code != 1006:
        text += ", not clean"
    return text


# -- payloads ------------------------------------------------------------------


def parse_payload(text: str, mode: str) -> str | bytes:
    """
    Turn what was typed in the composer into a message.

    ``"text"`` sends ``text`` as is; ``"json"`` checks it is JSON and sends it
    as typed; ``"hex"`` and ``"base64"`` decode it into a binary message.

    Raises:
        ValueError: with what is wrong and where, for invalid JSON, hex or base64.
    """
    if mode == "text":
        return text
    if mode == "json":
        if not text.strip():
            raise ValueError("invalid JSON: the message is empty")
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
        return text
    if mode == "hex":
        digits = re.sub(r"\b0[xX]", "", text)
        digits = re.sub(r"[\s:,-]", "", digits)
        if len(digits) % 2:
            raise ValueError(f"invalid hex: {len(digits)} digits is an odd number; use pairs such as '48 65 6c 6c 6f'")
        bad = re.search(r"[^0-9a-fA-F]", digits)
        if bad:
            raise ValueError(f"invalid hex: {bad.group()!r} is not a hex digit; use pairs such as '48 65 6c 6c 6f'")
        return bytes.fromhex(digits)
    if mode == "base64":
        compact = re.sub(r"\s", "", text)
        decode = base64.urlsafe_b64decode if re.search(r"[-_]", compact) else base64.b64decode
        try:
            if decode is base64.b64decode:
                return base64.b64decode(compact, validate=True)
            return decode(compact)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"invalid base64: {exc}") from None
    raise ValueError(f"unknown composer mode {mode!r}: use one of {', '.join(MODES)}")


def describe_payload(data: str | bytes) -> str:
    """``text 12 B`` or ``binary 4 B``."""
    if isinstance(data, bytes):
        return f"binary {format_size(len(data))}"
    return f"text {format_size(len(data.encode()))}"


# -- errors in callbacks ----------------------------------------------------------


class HasStatus(Protocol):
    status: StatusLine


S = TypeVar("S", bound=HasStatus)


def shows_errors(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Show an error raised by a panel method in the panel's status line, then re-raise it for code."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self.status.error(exc)
            raise

    return wrapper


def on_click(action: Callable[[], Any]) -> Callable[[Any], None]:
    """A button handler that runs ``action`` and never lets an error reach the kernel (it is shown already)."""

    def handler(_button: Any) -> None:
        try:
            action()
        except Exception as exc:
            logger.debug("nbws widget action failed: %s", exc)

    return handler


def on_change(action: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    """A trait observer that calls ``action(new_value)`` and never raises."""

    def observer(change: dict[str, Any]) -> None:
        try:
            action(change["new"])
        except Exception as exc:
            logger.debug("nbws widget observer failed: %s", exc)

    return observer


# -- batching ------------------------------------------------------------------------


class Throttle:
    """
    Run a function at most once per ``interval`` seconds on the running loop, and only when asked.

    The first request after a quiet spell runs at the next turn of the loop;
    requests that come while one is pending are merged into it. Where no loop
    runs the function is called at once.
    """

    __slots__ = ("_fn", "_handle", "_last", "interval", "runs")

    def __init__(self, fn: Callable[[], None], interval: float) -> None:
        self._fn = fn
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None
        self._last = float("-inf")
        self.runs = 0

    def request(self) -> None:
        if self._handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.run()
            return
        delay = max(0.0, self._last + self.interval - time.monotonic())
        self._handle = loop.call_later(delay, self.run)

    def run(self) -> None:
        """Run now, cancelling a pending run."""
        self.cancel()
        self._last = time.monotonic()
        self.runs += 1
        try:
            self._fn()
        except Exception:
            logger.exception("nbws widget update failed")

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


# -- small widgets ---------------------------------------------------------------------


class StatusLine(widgets.HTML):  # type: ignore[misc]
    """One line under a panel's controls: the last error in red words, or what the last action did."""

    def __init__(self) -> None:
        super().__init__("")
        self.add_class("nbws-status")
        self.text = ""
        """The message shown, as plain text ("" when empty)."""
        self.kind = ""
        """``"error"``, ``"info"`` or ``""``."""
        self._news: dict[str, str] = {}

    def post(self, kind: str, text: str) -> None:
        """Keep news from a hook (``"info"`` or ``"error"``) to show at the next :meth:`flush`."""
        self._news[kind] = text

    def flush(self) -> None:
        """Show the news posted since the last flush; an error wins over news of the same batch."""
        news, self._news = self._news, {}
        if "info" in news:
            self.info(news["info"])
        if "error" in news:
            self.error(news["error"])

    def error(self, error: BaseException | str) -> None:
        """Show an error: an exception is put in words."""
        self._show("error", error if isinstance(error, str) else words(error))

    def info(self, text: str) -> None:
        """Show what happened."""
        self._show("info", text)

    def clear(self) -> None:
        """Show nothing."""
        self.text = self.kind = ""
        self.value = ""

    def _show(self, kind: str, text: str) -> None:
        self.text = text
        self.kind = kind
        mark = "✖ " if kind == "error" else ""
        self.value = f'<span class="nbws-{kind}-text">{mark}{html.escape(text)}</span>'


class Composer(widgets.VBox):  # type: ignore[misc]
    """
    Where a message is written before it is sent: text, JSON (checked as you
    type), or binary entered as hex or base64.

    Attributes:
        mode: The mode switch (``"text"``, ``"json"``, ``"hex"``, ``"base64"``).
        text: The text area.
        hint: Whether the text is valid for the mode, updated as you type.
    """

    def __init__(self, placeholder: str = "message to send") -> None:
        self.mode = widgets.ToggleButtons(
            options=[("text", "text"), ("JSON", "json"), ("hex", "hex"), ("base64", "base64")],
            value="text",
            tooltips=["a text frame", "a text frame, checked as JSON", "a binary frame, as hex", "a binary frame"],
            style={"button_width": "70px"},
        )
        self.text = widgets.Textarea(placeholder=placeholder, rows=3, layout=widgets.Layout(width="auto"))
        self.hint = widgets.HTML("")
        super().__init__([self.text, self.hint], layout=widgets.Layout(width="100%"))
        self.add_class("nbws-composer")
        self.mode.observe(on_change(lambda _: self._validate()), "value")
        self.text.observe(on_change(lambda _: self._validate()), "value")

    def load(self, data: str | bytes) -> None:
        """Put a message in the composer to be edited: JSON or text as it is, binary as hex (base64 when large)."""
        if isinstance(data, bytes):
            if len(data) <= 4096:
                self.mode.value, self.text.value = "hex", data.hex(" ")
            else:
                self.mode.value, self.text.value = "base64", base64.b64encode(data).decode()
            return
        try:
            json.loads(data)
        except ValueError:
            self.mode.value = "text"
        else:
            self.mode.value = "json"
        self.text.value = data

    def payload(self, mode: str | None = None) -> str | bytes:
        """The message as it would be sent: see :func:`parse_payload` for the errors."""
        return parse_payload(self.text.value, mode or self.mode.value)

    def _validate(self) -> None:
        mode = self.mode.value
        text = self.text.value
        if mode == "text" or not text.strip():
            self.hint.value = ""
            return
        try:
            data = parse_payload(text, mode)
        except ValueError as exc:
            self.hint.value = f'<span class="nbws-hint-bad">✖ {html.escape(str(exc))}</span>'
        else:
            what = "valid JSON" if mode == "json" else f"{format_size(len(data))} binary"
            self.hint.value = f'<span class="nbws-hint-ok">✓ {what}</span>'


def badge(state: str, label: str | None = None) -> str:
    """The HTML of a coloured state badge."""
    return f'<span class="nbws-badge nbws-state-{state}">{html.escape(label or state)}</span>'


def close_widgets(*items: Any) -> None:
    """Close widgets (and their comms), ignoring those already closed."""
    for item in items:
        try:
            item.close()
        except Exception:
            logger.debug("closing widget %r failed", item, exc_info=True)


# -- the views of core objects ----------------------------------------------------------------
# The core finds a panel through nbws.views; the panels are kept here, weakly by the object they
# show (as anywidget keeps its views), never as an attribute of a core object. A panel refers to
# its object, so an entry lives until the panel is closed (ipywidgets keeps open widgets anyway).

_shown: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def shown(obj: Any) -> Any:
    """The open panel showing ``obj``, or None."""
    return _shown.get(obj)


def show(obj: Any, panel: Any) -> None:
    """Make ``panel`` the panel of ``obj``: ``obj.panel()`` and rich display return it from now on."""
    _shown[obj] = panel


def forget(obj: Any, panel: Any) -> None:
    """``panel`` no longer shows ``obj`` (it was closed, or shows another object now)."""
    if _shown.get(obj) is panel:
        del _shown[obj]


def view_factory(make: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A factory for :func:`nbws.views.register`: the panel already showing an object, else ``make(obj)``, kept."""

    def factory(obj: Any) -> Any:
        panel = _shown.get(obj)
        if panel is None or getattr(panel, "comm", True) is None:  # none yet, or closed: a new one
            panel = make(obj)
            _shown[obj] = panel
        return panel

    return factory
