"""
JupyterLab for the browser tests: this virtual environment's ``jupyter lab`` on a free 127.0.0.1 port,
with no token and its configuration, settings and workspaces in a temporary directory, so nothing of
the machine's own Jupyter set-up leaks in; and the gestures the tests make in it.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from .jupyter import jupyter_server

JUPYTER = Path(sys.executable).with_name("jupyter")


@contextlib.asynccontextmanager
async def jupyter_lab(root: Path) -> AsyncIterator[str]:
    """Run JupyterLab serving ``root``; yield its base URL once it answers (see :func:`.jupyter.jupyter_server`)."""
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
    options = [
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    env = {"JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    async with jupyter_server([JUPYTER, "lab"], root, home, options=options, env=env) as url:
        yield url


def button(scope: Locator, name: str) -> Locator:
    """The button labelled ``name`` (an icon's glyph and a space may come first)."""
    return scope.get_by_role("button", name=re.compile(rf"(^|\s){re.escape(name)}$"))


async def run_all_cells(page: Page) -> None:
    """Wait for the kernel, then Run > Run All Cells."""
    await expect(page.get_by_text(re.compile(r"^Python 3 \(ipykernel\) \| Idle$"))).to_be_visible()
    await page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    await page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
