"""
JupyterLab for the browser tests: this virtual environment's ``jupyter lab`` on a free 127.0.0.1 port,
with no token and its configuration, settings and workspaces in a temporary directory, so nothing of
the machine's own Jupyter set-up leaks in; and the gestures the tests make in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from .waits import timeout

JUPYTER = Path(sys.executable).with_name("jupyter")


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
