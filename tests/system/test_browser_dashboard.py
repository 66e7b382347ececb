"""
The dashboard in a real JupyterLab, in headless Chromium: a user opens a
notebook, runs it, clicks Start, Connect and Send, and reads the echo in the
rendered log. Screenshots go to test-artifacts/.

JupyterLab runs from this virtual environment on a free 127.0.0.1 port, with
no token and its configuration, settings and workspaces in a temporary
directory, so nothing from the machine's own Jupyter set-up leaks in.
"""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from _support import timeout
from _support.browser import ARTIFACTS, chromium
from _support.jupyterlab import button, jupyter_lab, run_all_cells
from playwright.async_api import expect

pytestmark = pytest.mark.browser

NOTEBOOK_CELL = textwrap.dedent(
    """
    import ipywidgets as widgets
    import nbws

    server = nbws.Server()

    @server.on("message")
    def echo(conn, message):
        conn.send("echo: " + message.data if isinstance(message.data, str) else message.data)

    class HelloPanel:
        \"\"\"A plugin that adds a tab of its own to the dashboard.\"\"\"

        @nbws.hookimpl
        def nbws_panel(self, dashboard):
            return ("Hello", widgets.HTML("<b>Hello from a plugin panel</b>"))

    nbws.plugins.register(HelloPanel(), "hello")
    nbws.Dashboard(server=server)
    """
).strip()


async def test_dashboard_round_trip_in_jupyterlab(tmp_path: Path) -> None:
    started = time.monotonic()
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # A cell that ends with a server shows its panel: the dashboard's, a second view of one model.
    notebook.cells = [nbformat.v4.new_code_cell(NOTEBOOK_CELL), nbformat.v4.new_code_cell("server")]
    nbformat.write(notebook, root / "dashboard.ipynb")
    ARTIFACTS.mkdir(exist_ok=True)
    wait = timeout(30) * 1000  # Playwright counts in milliseconds

    async with jupyter_lab(root) as base, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 1100})
        page.set_default_timeout(wait)
        expect.set_options(timeout=wait)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # The single-document view: the notebook without the side panels.
        await page.goto(f"{base}/doc/tree/dashboard.ipynb?reset")
        await page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        await run_all_cells(page)

        dashboard = page.locator(".nbws-dashboard")
        await expect(dashboard).to_be_visible()
        server_panel = dashboard.locator(".nbws-server")
        client_panel = dashboard.locator(".nbws-client")

        await button(server_panel, "Start").click()
        await expect(server_panel.locator(".nbws-badge")).to_have_text("listening")
        await expect(server_panel.locator("code.nbws-url")).to_have_text(re.compile(r"ws://127\.0\.0\.1:\d+/"))
        server_url = await server_panel.locator("code.nbws-url").inner_text()

        await dashboard.get_by_role("tab", name="Client").click()
        await expect(client_panel.locator(".nbws-url input")).to_have_value(server_url)
        await button(client_panel, "Connect").click()
        await expect(client_panel.locator(".nbws-badge")).to_have_text("open")

        await client_panel.locator(".nbws-composer textarea").fill('{"greeting": "hello from JupyterLab"}')
        await button(client_panel, "JSON").click()
        await expect(client_panel.locator(".nbws-hint-ok")).to_have_text("✓ valid JSON")
        await button(client_panel, "Send").click()
        echo = client_panel.locator(".nbws-row.nbws-receive")
        await expect(echo).to_contain_text('echo: {"greeting": "hello from JupyterLab"}')
        await expect(client_panel.locator(".nbws-row.nbws-send")).to_contain_text(
            '{"greeting": "hello from JupyterLab"}'
        )
        await expect(dashboard.locator(".nbws-header")).to_contain_text("1 client")
        standalone = page.locator(".jp-Cell").nth(1).locator(".nbws-server")
        await expect(standalone.locator(".nbws-table")).to_contain_text("127.0.0.1:")

        # Invalid input is explained in the panel; then a binary message.
        await button(client_panel, "hex").click()
        await client_panel.locator(".nbws-composer textarea").fill("not hex")
        await expect(client_panel.locator(".nbws-hint-bad")).to_contain_text("invalid hex")
        await button(client_panel, "Send").click()
        await expect(client_panel.locator(".nbws-status")).to_have_text(
            "✖ invalid hex: 'n' is not a hex digit; use pairs such as '48 65 6c 6c 6f'"
        )
        await client_panel.locator(".nbws-composer textarea").fill("ca fe ba be")
        await button(client_panel, "Send").click()
        await expect(echo.filter(has_text="ca fe ba be")).to_have_count(1)
        await expect(client_panel.locator(".nbws-status")).to_have_text("sent binary 4 B")

        await dashboard.get_by_role("tab", name="Hello").click()
        await expect(dashboard.get_by_text("Hello from a plugin panel")).to_be_visible()
        await dashboard.get_by_role("tab", name="Plugins").click()
        plugin = dashboard.locator(".nbws-plugin-row").filter(has_text="hello")
        await expect(plugin).to_contain_text("nbws_panel")
        await expect(plugin).to_contain_text("no errors")
        # The switch goes through the kernel's registry and back: "off" is the registry's answer.
        await button(plugin, "on").click()
        await expect(button(plugin, "off")).to_be_visible()
        await button(plugin, "off").click()
        await expect(button(plugin, "on")).to_be_visible()
        await dashboard.screenshot(path=str(ARTIFACTS / "dashboard-plugins.png"))
        await dashboard.get_by_role("tab", name="Server").click()
        await expect(server_panel.locator(".nbws-table")).to_contain_text("127.0.0.1:")
        await expect(server_panel.locator(".nbws-row.nbws-send").filter(has_text="ca fe ba be")).to_have_count(1)
        await dashboard.screenshot(path=str(ARTIFACTS / "dashboard-server.png"))
        await dashboard.get_by_role("tab", name="Client").click()
        await dashboard.screenshot(path=str(ARTIFACTS / "dashboard-client.png"))
        await page.screenshot(path=str(ARTIFACTS / "jupyterlab-dashboard.png"), full_page=True)

        await expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        assert not errors, errors
        await page.close()
    elapsed = time.monotonic() - started
    print(f"\nbrowser round trip in {elapsed:.1f} s")
    assert elapsed < timeout(90)
