"""
The relay's panel: its pairs with per-direction counts, an inject box, and the intercept of relayed messages.

A :class:`RelayPanel` only reflects a :class:`nbws.Relay` and forwards
gestures to its public API; every button has a programmatic twin
(:meth:`RelayPanel.select`, :meth:`RelayPanel.inject`,
:meth:`RelayPanel.intercept`, :meth:`RelayPanel.refresh`). A running relay
adds it to every :class:`nbws.Dashboard` as a tab through ``nbws_panel``.
"""

from __future__ import annotations

import asyncio
import html
from typing import TYPE_CHECKING, Literal

import ipywidgets as widgets

from ..intercept import Intercept
from ._common import (
    Composer,
    StatusLine,
    Throttle,
    badge,
    close_widgets,
    forget,
    on_change,
    on_click,
    shows_errors,
    style,
)

if TYPE_CHECKING:
    from ..relay import Pair, Relay

__all__ = ["RelayPanel"]


class RelayPanel(widgets.VBox):  # type: ignore[misc]
    """
    A relay at a glance: where it listens and relays to, each pair with the
    messages each way, an inject box, and a switch to intercept relayed messages.

    Args:
        relay: The :class:`nbws.Relay`.
        interval: Seconds between refreshes of the counts while pairs are open.

    Attributes:
        header: The summary line.
        table: The pairs (open ones first, then the last closed ones).
        pair_choice: The pair to inject into.
        to: ``"upstream"`` or ``"client"``: the side that receives an injected message.
        composer: The message to inject (text, JSON, hex or base64).
        inject_button, intercept_button: The buttons.
        intercept_box: Where the intercept's own panel appears once switched on.
        status: What the last action did, or what went wrong, in words.
    """

    def __init__(self, relay: Relay, *, interval: float = 0.5) -> None:
        self.relay = relay
        self.interval = interval
        self._style = style()
        self.header = widgets.HTML("")
        self.table = widgets.HTML("")
        self.pair_choice = widgets.Dropdown(options=[], description="Pair", layout=widgets.Layout(width="220px"))
        self.to = widgets.ToggleButtons(
            options=[("to upstream", "upstream"), ("to client", "client")],
            value="upstream",
            tooltips=["as if the client had sent it", "as if the upstream had sent it"],
            style={"button_width": "100px"},
        )
        self.composer = Composer("message to inject")
        self.inject_button = widgets.Button(description="Inject", icon="syringe", button_style="primary")
        self.inject_button.on_click(on_click(self.inject))
        self.intercept_button = widgets.ToggleButton(
            value=False, description="Intercept", icon="hand-paper-o", tooltip="hold relayed messages both ways"
        )
        self.intercept_button.observe(on_change(self._intercept_toggled), "value")
        self.intercept_box = widgets.VBox([])
        self.status = StatusLine()
        self._intercept: Intercept | None = None
        self._refresh_soon = Throttle(self.refresh, 0.1)
        self._tick: asyncio.TimerHandle | None = None
        relay.watch(self._refresh_soon.request)
        super().__init__(
            [
                self._style,
                self.header,
                self.table,
                widgets.HBox([self.pair_choice, self.to, self.composer.mode]),
                self.composer,
                widgets.HBox([self.inject_button, self.intercept_button]),
                self.intercept_box,
                self.status,
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("nbws-panel")
        self.add_class("nbws-relay-panel")
        self.refresh()

    def __repr__(self) -> str:
        return f"<RelayPanel {self.relay!r}>"

    # -- the twins of the buttons ----------------------------------------------------

    def select(self, pair: Pair | str) -> None:
        """Choose the pair to inject into (a :class:`~nbws.relay.Pair` or its id)."""
        pair_id = pair if isinstance(pair, str) else pair.id
        ids = [value for _, value in self.pair_choice.options]
        if pair_id not in ids:
            raise ValueError(f"no open pair {pair_id!r} (open: {', '.join(ids) or 'none'})")
        self.pair_choice.value = pair_id

    @shows_errors
    def inject(self, data: str | bytes | None = None, to: Literal["client", "upstream"] | None = None) -> None:
        """Inject ``data`` (default: the composer's message) into the chosen pair, towards ``to`` (default: the toggle)."""
        if self.pair_choice.value is None:
            raise ValueError("no pair to inject into: connect a client to the relay first")
        payload = self.composer.payload() if data is None else data
        side: Literal["client", "upstream"] = to or self.to.value
        message = self.relay.inject(self.pair_choice.value, payload, to=side)
        self.status.info(f"injected {message.size} bytes into {self.pair_choice.value}, to the {side}")
        self.refresh()

    def intercept(self, on: bool = True) -> Intercept | None:
        """Switch intercepting relayed messages (both ways) on or off; return the intercept while on."""
        self.intercept_button.value = on
        return self._intercept

    # -- updating --------------------------------------------------------------------

    @shows_errors
    def _intercept_toggled(self, on: bool) -> None:
        plugins = self.relay.plugins
        if on and self._intercept is None:
            self._intercept = Intercept("receive")
            plugins.register(self._intercept, "relay-intercept")
            self.intercept_box.children = [self._intercept.panel()]
            self.status.info("holding relayed messages both ways: decide each one below")
        elif not on and self._intercept is not None:
            intercept, self._intercept = self._intercept, None
            intercept.stop()  # forwards whatever is held
            if plugins.name_of(intercept) is not None:
                plugins.unregister(intercept)
            close_widgets(*self.intercept_box.children)
            self.intercept_box.children = []
            self.status.info("intercept off: held messages were forwarded")

    def refresh(self) -> None:
        """Bring the header, the table and the pair list up to date."""
        relay = self.relay
        listening = relay.server.listening
        state = "listening" if listening else "stopped"
        where = html.escape(relay.url) if relay.port is not None and listening else ""
        upstream = relay.upstream if isinstance(relay.upstream, str) else getattr(relay.upstream, "__name__", "route")
        pairs = relay.pairs
        self.header.value = (
            f'<span class="nbws-title">Relay</span> {badge(state)} <code class="nbws-url">{where}</code>'
            f' → <code class="nbws-url">{html.escape(str(upstream))}</code>'
            f" · {len(pairs)} open pair{'s' if len(pairs) != 1 else ''}"
        )
        rows = []
        for pair in pairs + list(relay.closed_pairs)[::-1][:10]:
            c2u, u2c = pair.counts["client->upstream"], pair.counts["upstream->client"]
            i2u, i2c = pair.injected["client->upstream"], pair.injected["upstream->client"]
            injected = f" ({i2u}/{i2c} injected)" if i2u or i2c else ""
            rows.append(
                "<tr>"
                f"<td>{html.escape(pair.id)}</td><td>{'closed' if pair.closed else 'open'}</td>"
                f"<td><code>{html.escape(pair.request.target)}</code></td>"
                f"<td><code>{html.escape(pair.upstream_url)}</code></td>"
                f"<td>↑ {c2u}</td><td>↓ {u2c}{injected}</td>"
                "</tr>"
            )
        head = (
            "<tr><th>pair</th><th></th><th>client path</th><th>upstream</th><th>to upstream</th><th>to client</th></tr>"
        )
        self.table.value = (
            f'<table class="nbws-relay-pairs">{head}{"".join(rows)}</table>'
            if rows
            else '<div class="nbws-empty">no client yet: connect one to the relay URL</div>'
        )
        options = [(f"{p.id} {p.request.target}", p.id) for p in pairs]
        if options != list(self.pair_choice.options):
            chosen = self.pair_choice.value
            self.pair_choice.options = options
            ids = [value for _, value in options]
            self.pair_choice.value = chosen if chosen in ids else (ids[-1] if ids else None)
        self._schedule()

    def _schedule(self) -> None:
        """While pairs are open, refresh the counts every ``interval`` seconds (messages do not notify)."""
        if self._tick is not None or not self.relay.pairs:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._tick = loop.call_later(self.interval, self._ticked)

    def _ticked(self) -> None:
        self._tick = None
        self._refresh_soon.request()

    def close(self) -> None:
        """Close the panel's widgets (the relay goes on); an intercept it switched on is switched off."""
        if getattr(self, "_intercept", None) is not None:
            self._intercept_toggled(False)
        if getattr(self, "_tick", None) is not None:
            assert self._tick is not None
            self._tick.cancel()
        if hasattr(self, "_refresh_soon"):
            self._refresh_soon.cancel()
            self.relay.unwatch(self._refresh_soon.request)
        if hasattr(self, "relay"):
            forget(self.relay, self)  # relay.panel() makes a new one from now on
        close_widgets(self._style, self.header, self.table, self.pair_choice, self.to, self.composer)
        close_widgets(self.inject_button, self.intercept_button, self.intercept_box, self.status)
        super().close()
