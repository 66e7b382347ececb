"""
The plugin panel lists nbws's built-in plugins (``nbws.default_plugins``: the handshake guard and the
error log) after the others, marked built-in, with the same switch, and follows them when code
switches or replaces them; driven through the real widgets, as a user would without a browser.
"""

from __future__ import annotations

from typing import Any

from _support import timeout, until

import nbws

BUILTINS = [("built-in", "nbws.handshake"), ("built-in", "nbws.errors")]


class Mine:
    @nbws.hookimpl
    def nbws_open(self, conn: nbws.BaseConnection) -> None:
        pass


class QuietLog:
    """Log nothing: errors are the notebook's business."""

    @nbws.hookimpl
    def nbws_error_reported(self, event: nbws.ErrorEvent, handled: bool) -> None:
        pass


def listed(panel: nbws.PluginPanel) -> list[tuple[str, str]]:
    """The rows in the order the panel shows them: (registry label, plugin name)."""
    return [(row.label, row.name) for row in panel._list.children]


async def refused(url: str) -> str:
    """Connect to ``url`` and return the error message of the refused handshake."""
    ws = nbws.WebSocket(url)
    errors: list[nbws.ErrorEvent] = []
    ws.onerror = errors.append
    await ws.closed(timeout=timeout())
    assert errors, "the handshake was accepted"
    return errors[0].message


async def test_the_dashboard_lists_the_built_in_plugins_last_marked_with_their_switch(
    defaults: nbws.PluginRegistry,
) -> None:
    nbws.plugins.register(Mine(), "mine")
    server = nbws.Server(token="s3cret")
    await server.start()
    dashboard = nbws.Dashboard()
    try:
        panel = dashboard.plugin_panel
        assert panel.registries["built-in"] is nbws.default_plugins
        assert listed(panel)[0] == ("global", "mine") and listed(panel)[-2:] == BUILTINS
        assert not panel.rows[("global", "mine")].builtin
        guard = panel.rows[("built-in", "nbws.handshake")]
        assert guard.builtin and guard.switch.value is True and guard.switch.description == "on"
        assert ">built-in</span>" in guard.details.value and "nbws_handshake" in guard.details.value
        assert "Refuse handshakes for another path (404)" in guard.details.value
        assert "(global)" not in guard.details.value
        assert "<code>logger</code>" in panel.rows[("built-in", "nbws.errors")].details.value

        # The click in the page switches nbws's own guard off, for every server: it fails closed.
        guard.switch.value = False
        assert not nbws.default_plugins.info("nbws.handshake").enabled
        assert panel.status.text == "nbws.handshake switched off for every endpoint (a built-in)"
        assert guard.switch.description == "off" and guard.switch.tooltip.endswith("on for every endpoint")
        assert "HTTP 500" in await refused(server.url + "?token=s3cret")
        panel.set_enabled("nbws.handshake", True, registry="built-in")  # the switch's twin
        assert guard.switch.value is True
        ws = nbws.WebSocket(server.url + "?token=s3cret")
        await ws.opened(timeout=timeout())
        ws.close()
        await ws.closed(timeout=timeout())
        assert "HTTP 401" in await refused(server.url)

        # Code switches and replaces a built-in: the panel follows.
        nbws.default_plugins.disable("nbws.errors")
        errors = panel.rows[("built-in", "nbws.errors")]
        await until(lambda: errors.switch.value is False, what="the switch to follow the registry")
        nbws.default_plugins.unregister("nbws.errors")
        nbws.default_plugins.register(QuietLog(), "nbws.errors")
        await until(lambda: "Log nothing" in panel.rows[("built-in", "nbws.errors")].details.value)
        replaced = panel.rows[("built-in", "nbws.errors")]
        assert replaced.builtin and replaced.switch.value is True and listed(panel)[-2:] == BUILTINS
    finally:
        dashboard.close()
        await server.stop()


async def test_the_built_ins_come_last_whatever_registries_are_added_later(defaults: nbws.PluginRegistry) -> None:
    nbws.plugins.register(Mine(), "mine")
    client = nbws.WebSocket("ws://127.0.0.1:9/", reconnect=None)
    client.onerror = lambda event: None  # nothing listens there: it only lends its registry
    client.plugins.register(Mine(), "own")
    panel = nbws.PluginPanel()
    try:
        assert "No plugin registered" not in panel._empty.value
        panel.add_registry("client", client.plugins)  # as the dashboard does once a client connects
        panel.refresh()
        assert listed(panel) == [("global", "mine"), ("client", "own"), *BUILTINS]
        assert "(client)" in panel.rows[("client", "own")].details.value
    finally:
        panel.close()
        await client.closed(timeout=timeout())


def test_only_the_built_ins_leave_the_hint_to_register_a_plugin_and_they_can_be_left_out() -> None:
    alone = nbws.PluginPanel()
    given = nbws.PluginPanel({"defaults": nbws.default_plugins})
    without = nbws.PluginPanel(builtins=False)
    mine = nbws.PluginRegistry()
    mine.register(Mine(), "mine")
    same_label = nbws.PluginPanel({"built-in": mine})
    panels: list[Any] = [alone, given, without, same_label]
    try:
        assert same_label.registries["built-in"] is mine, "the caller's registry keeps its label"
        assert listed(same_label)[0] == ("built-in", "mine") and len(listed(same_label)) == 1 + len(BUILTINS)
        assert listed(alone) == BUILTINS and "No plugin registered" in alone._empty.value
        assert listed(given) == [("defaults", name) for _, name in BUILTINS], "not listed twice"
        assert all(row.builtin for row in given.rows.values())
        assert listed(without) == [] and "built-in" not in without.registries
    finally:
        for panel in panels:
            panel.close()
