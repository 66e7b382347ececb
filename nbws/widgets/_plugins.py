"""The plugin panel: every registered plugin (nbws's built-in ones too), its hooks, an on/off switch, and its errors."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

import ipywidgets as widgets

from .. import PluginInfo, PluginRegistry, default_plugins
from .. import plugins as global_plugins
from ..exceptions import PluginError
from ._common import StatusLine, Throttle, close_widgets, on_change, shows_errors, style, words

__all__ = ["PluginPanel"]

# The label under which a PluginPanel lists nbws.default_plugins.
_BUILTIN_LABEL = "built-in"


def _summary(plugin: object) -> str:
    """The first line of a plugin's docstring (its class's, or its module's), as HTML (``code`` kept as code)."""
    doc = getattr(plugin, "__doc__", None)
    doc = doc.strip() if isinstance(doc, str) else ""
    line = html.escape(doc.splitlines()[0]) if doc else ""
    return re.sub(r"``(.+?)``", r"<code>\1</code>", line)


class _PluginRow(widgets.HBox):  # type: ignore[misc]
    """One plugin: its switch, then its name, hooks, errors and last traceback."""

    def __init__(self, panel: PluginPanel, label: str, name: str) -> None:
        self.label = label
        self.name = name
        self.switch = widgets.ToggleButton(value=True, description="on", layout=widgets.Layout(width="64px"))
        self.details = widgets.HTML("")
        self.details.layout = widgets.Layout(flex="1 1 auto", width="auto")
        super().__init__([self.switch, self.details], layout=widgets.Layout(align_items="flex-start", width="100%"))
        self.add_class("nbws-plugin-row")
        self.switch.observe(on_change(self._switched), "value")
        self._panel = panel
        self.builtin = False
        """True for one of nbws's built-in plugins (:data:`nbws.default_plugins`)."""

    def _switched(self, value: bool) -> None:
        try:
            registry = self._panel._registry(self.label, self.name)
            if registry.info(self.name).enabled == value:
                return  # the switch was set to show the registry, not by a person
            self._panel.set_enabled(self.name, value, registry=self.label)
        except Exception as exc:
            # Say why, and put the switch back to what the registry says.
            self._panel.status.error(exc)
            self._panel._throttle.request()

    def show(self, info: PluginInfo, many_registries: bool, builtin: bool = False) -> None:
        self.builtin = builtin
        switch = self.switch
        if switch.value != info.enabled:
            switch.value = info.enabled
        switch.description = "on" if info.enabled else "off"
        switch.button_style = "success" if info.enabled else ""
        every = " for every endpoint" if builtin else ""
        switch.tooltip = f"switch {info.name} {'off' if info.enabled else 'on'}{every}"
        where = f' <span class="nbws-muted">({html.escape(self.label)})</span>' if many_registries else ""
        if builtin:
            # nbws's own behaviour, written as a plugin: say so, and what it does.
            where = (
                ' <span class="nbws-chip nbws-builtin" title="registered by nbws in nbws.default_plugins, '
                'for every endpoint">built-in</span>'
            )
            summary = _summary(info.plugin)
            if summary:
                where += f' <span class="nbws-muted">{summary}</span>'
        hooks = "".join(f'<span class="nbws-chip">{html.escape(hook)}</span>' for hook in info.hooks) or (
            '<span class="nbws-muted">implements no hook</span>'
        )
        if info.errors:
            errors = f'<span class="nbws-errors">{info.errors:,} error{"s" if info.errors != 1 else ""}</span>'
        else:
            errors = '<span class="nbws-errors-0">no errors</span>'
        traceback = ""
        if info.last_error:
            traceback = f"<details><summary>last traceback</summary><pre>{html.escape(info.last_error)}</pre></details>"
        self.details.value = (
            f'<div><span class="nbws-plugin-name">{html.escape(info.name)}</span>{where} · {errors}</div>'
            f"<div>{hooks}</div>{traceback}"
        )

    def close(self) -> None:
        close_widgets(self.switch, self.details)
        super().close()


class PluginPanel(widgets.VBox):  # type: ignore[misc]
    """
    Every registered plugin, with the hooks it implements, an on/off switch
    that takes effect at once, and the count of errors it raised (the last
    traceback can be unfolded).

    It watches the registries, so plugins registered, removed, switched or
    failing in code show up here too (at most once per ``interval`` seconds).
    The widgets' own internal plugins are not listed. nbws's built-in plugins
    (:data:`nbws.default_plugins`: the handshake guard ``"nbws.handshake"``,
    the error log ``"nbws.errors"``, or what replaced them under those names)
    are listed last, marked "built-in", with the same switch: they apply to
    every endpoint, and so does switching one off.

    Args:
        registries: A :class:`nbws.PluginRegistry`, or a dict of them by
            label (``{"global": nbws.plugins, "server": server.plugins}``).
            Default: the global registry ``nbws.plugins``.
        interval: Seconds between two refreshes at most.
        builtins: List :data:`nbws.default_plugins` too, labelled
            ``"built-in"`` (unless ``registries`` holds it already).

    Twins of the switches: :meth:`set_enabled`; of the traceback view:
    :meth:`traceback`.

    Attributes:
        rows: The row widget of each plugin, by ``(registry label, name)``;
            ``rows[key].switch`` is its on/off switch.
        status: The :class:`StatusLine`.
    """

    def __init__(
        self,
        registries: PluginRegistry | Mapping[str, PluginRegistry] | None = None,
        *,
        interval: float = 0.2,
        builtins: bool = True,
    ) -> None:
        if registries is None:
            registries = {"global": global_plugins}
        elif isinstance(registries, PluginRegistry):
            registries = {"global" if registries is global_plugins else "plugins": registries}
        self._registries: dict[str, PluginRegistry] = {}
        self.rows: dict[tuple[str, str], _PluginRow] = {}
        self._throttle = Throttle(self.refresh, interval)
        self.status = StatusLine()
        self._title = widgets.HTML('<span class="nbws-title">Plugins</span>')
        self._empty = widgets.HTML("")
        self._list = widgets.VBox([], layout=widgets.Layout(width="100%"))
        self._style = style()
        super().__init__(
            [self._style, self._title, self._list, self._empty, self.status], layout=widgets.Layout(width="100%")
        )
        self.add_class("nbws-panel")
        self.add_class("nbws-plugins")
        self._ready = True
        for label, registry in registries.items():
            self.add_registry(label, registry)
        if builtins and all(registry is not default_plugins for registry in self._registries.values()):
            label = _BUILTIN_LABEL
            while label in self._registries:  # a registry of the caller's under that label stays listed
                label = f"nbws {label}"
            self.add_registry(label, default_plugins)
        self.refresh()

    # -- registries ------------------------------------------------------------------------

    @property
    def registries(self) -> dict[str, PluginRegistry]:
        """The registries listed, by label."""
        return dict(self._registries)

    def add_registry(self, label: str, registry: PluginRegistry) -> None:
        """List the plugins of ``registry`` too, under ``label`` (replacing a registry of that label)."""
        if not isinstance(registry, PluginRegistry):
            raise TypeError(f"expected an nbws.PluginRegistry, not {type(registry).__name__}")
        old = self._registries.get(label)
        if old is registry:
            return
        if old is not None:
            old.unwatch(self._throttle.request)
        self._registries[label] = registry
        registry.watch(self._throttle.request)
        self._throttle.request()

    def remove_registry(self, label: str) -> None:
        """Stop listing the registry labelled ``label``."""
        registry = self._registries.pop(label, None)
        if registry is not None:
            registry.unwatch(self._throttle.request)
            self._throttle.request()

    def _registry(self, label: str | None, name: str) -> PluginRegistry:
        if label is not None:
            try:
                return self._registries[label]
            except KeyError:
                raise PluginError(f"no registry labelled {label!r} (listed: {', '.join(self._registries)})") from None
        for registry in self._registries.values():
            if name in registry:
                return registry
        raise PluginError(f"no plugin named {name!r} in {', '.join(self._registries) or 'no registry'}")

    # -- actions (the switches' twins) ---------------------------------------------------------

    @shows_errors
    def set_enabled(self, name: str, enabled: bool, *, registry: str | None = None) -> None:
        """
        Switch plugin ``name`` on or off (its switch); it takes effect for the next hook call.

        ``registry`` is the label of the registry holding it, if several hold that name.

        Raises:
            nbws.PluginError: if no listed registry holds such a plugin.
        """
        reg = self._registry(registry, name)
        if enabled:
            reg.enable(name)
        else:
            reg.disable(name)
        every = " for every endpoint (a built-in)" if reg is default_plugins else ""
        self.status.info(f"{name} switched {'on' if enabled else 'off'}{every}")
        self.refresh()

    def traceback(self, name: str, *, registry: str | None = None) -> str | None:
        """The traceback of the last error plugin ``name`` raised, or None (the "last traceback" view)."""
        return self._registry(registry, name).info(name).last_error

    # -- showing ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Show the registries as they are now."""
        # The built-in plugins last: they run after the others, and are there whatever the user did.
        ordered = sorted(self._registries.items(), key=lambda item: item[1] is default_plugins)
        try:
            infos = [
                (label, registry is default_plugins, info)
                for label, registry in ordered
                for info in registry
                if not info.internal
            ]
        except Exception as exc:
            self.status.error(f"cannot list plugins: {words(exc)}")
            return
        many = sum(registry is not default_plugins for registry in self._registries.values()) > 1
        keys = []
        for label, builtin, info in infos:
            key = (label, info.name)
            keys.append(key)
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = _PluginRow(self, label, info.name)
            row.show(info, many, builtin)
        for key in list(self.rows):
            if key not in keys:
                self.rows.pop(key).close()
        children = tuple(self.rows[key] for key in keys)
        if tuple(self._list.children) != children:
            self._list.children = children
        self._empty.value = (
            ""
            if any(not self.rows[key].builtin for key in keys)
            else '<div class="nbws-muted">No plugin registered. Register one with '
            "<code>nbws.plugins.register(plugin)</code>.</div>"
        )
        load_errors = [
            f"{name}: {words(error)}"
            for registry in self._registries.values()
            for name, error in registry.load_errors.items()
        ]
        if load_errors and self.status.kind != "error":
            self.status.error("plugins that failed to load: " + "; ".join(load_errors))

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop watching the registries and close the widgets."""
        if not self.__dict__.pop("_ready", False):
            super().close()
            return
        self._throttle.cancel()
        for registry in self._registries.values():
            registry.unwatch(self._throttle.request)
        for row in self.rows.values():
            row.close()
        self.rows.clear()
        close_widgets(self.status, self._title, self._list, self._empty, self._style)
        super().close()

    def __repr__(self) -> str:
        return f"<PluginPanel {', '.join(self._registries)}: {len(self.rows)} plugins>"
