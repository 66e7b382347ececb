"""
The dashboard in a real JupyterLab, in headless Chromium: a user opens a
notebook, runs it, clicks Start, Connect and Send, and reads the echo in the
rendered log. Screenshots go to test-artifacts/.

JupyterLab runs from this virtual environment on a free 127.0.0.1 port, with
no token and its configuration, settings and workspaces in a temporary
directory, so nothing from the machine's own Jupyter set-up leaks in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nbformat
import pytest
from _support import timeout
from _support.browser import ARTIFACTS, chromium
from playwright.async_api import Locator, Page, expect

pytestmark = pytest.mark.browser

JUPYTER = Path(sys.executable).with_name("jupyter")

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


@contextlib.asynccontextmanager
async def jupyter_lab(root: Path) -> AsyncIterator[str]:
    """Run JupyterLab serving ``root``; yield its base URL once it answers."""
    home = root.parent / "jupyter-home"
    (home / "config" / "labconfig").mkdir(parents=True)
    # The announcements plugin would pop a "get news?" toast over the page.
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # Never ask which kernel to start: the notebook names python3 (this environment's).
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"autoStartDefaultKernel": True}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "NBWS_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        str(JUPYTER),
        "lab",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--IdentityProvider.token=",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[str] = []

    async def until_url() -> str:
        assert proc.stderr is not None
        while line := (await proc.stderr.readline()).decode(errors="replace"):
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+)/lab", line)
            if found:
                return found.group(1)
        raise AssertionError("jupyter lab exited:\n" + "".join(lines))

    async def drain() -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            lines.append(line.decode(errors="replace"))

    drainer: asyncio.Task[None] | None = None
    try:
        url = await asyncio.wait_for(until_url(), timeout(30))
        drainer = asyncio.create_task(drain())  # keep reading so that the pipe never fills
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout(15))
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if drainer is not None:
            await drainer


def button(scope: Locator, name: str) -> Locator:
    """The button labelled ``name`` (an icon's glyph and a space may come first)."""
    return scope.get_by_role("button", name=re.compile(rf"(^|\s){re.escape(name)}$"))


async def run_all_cells(page: Page) -> None:
    """Wait for the kernel, then Run > Run All Cells."""
    await expect(page.get_by_text(re.compile(r"^Python 3 \(ipykernel\) \| Idle$"))).to_be_visible()
    await page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    await page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


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
