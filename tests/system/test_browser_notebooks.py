"""
The tutorial notebooks in a real JupyterLab, in headless Chromium, as a reader runs them.

nbval (``pytest notebooks/``) checks every notebook's outputs in a kernel
without a browser. This adds what only a browser can show: notebook 8's page
opens its own ``WebSocket`` to the in-kernel server (the server's listener
then updates a widget, which the test reads), and every notebook runs top to
bottom in JupyterLab with no error, its widgets rendered. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from _support import timeout
from _support.browser import ARTIFACTS, chromium
from _support.jupyterlab import jupyter_lab, run_all_cells
from playwright.async_api import Browser, Page, expect

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

# Every code cell shows an execution count: Run All has finished (a running cell shows [*]).
ALL_CELLS_RAN = """() => {
  const prompts = [...document.querySelectorAll(".jp-CodeCell .jp-InputArea-prompt")]
    .map((e) => e.textContent.trim());
  return prompts.length > 0 && prompts.every((p) => /^\\[\\d+\\]:$/.test(p));
}"""


def copy_notebooks(root: Path) -> list[str]:
    """Copy the tutorials into ``root`` (JupyterLab may save what it opens); return their names."""
    root.mkdir()
    names = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")):
        shutil.copy(path, root / path.name)
        names.append(path.name)
    assert names, f"no tutorial notebooks in {NOTEBOOKS}"
    return names


async def open_and_run(browser: Browser, base: str, name: str) -> Page:
    """Open notebook ``name`` in JupyterLab, Run All Cells, and wait until every cell has run."""
    wait = timeout(60) * 1000  # Playwright counts in milliseconds
    page = await browser.new_page(viewport={"width": 1200, "height": 1400})
    page.set_default_timeout(wait)
    expect.set_options(timeout=wait)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{base}/doc/tree/{name}?reset")
    await page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    await run_all_cells(page)
    await page.wait_for_function(ALL_CELLS_RAN, timeout=wait)
    assert errors == [], f"{name}: JavaScript errors in the page: {errors}"
    return page


async def assert_no_error_output(page: Page, name: str) -> None:
    """No cell raised, and nothing was written to stderr."""
    for mime in ("application/vnd.jupyter.error", "application/vnd.jupyter.stderr"):
        found = page.locator(f'.jp-OutputArea-output[data-mime-type="{mime}"]')
        texts = await found.all_inner_texts()
        assert texts == [], f"{name}: unexpected {mime} output: {texts}"


async def test_the_page_talks_to_the_in_kernel_server(tmp_path: Path) -> None:
    root = tmp_path / "notebooks"
    copy_notebooks(root)
    name = "08-talking-to-the-world.ipynb"
    ARTIFACTS.mkdir(exist_ok=True)
    async with jupyter_lab(root) as base, chromium() as browser:
        page = await open_and_run(browser, base, name)
        # The in-kernel server's listener wrote what it received from the page into a widget.
        heard = page.locator(".jp-OutputArea-output").filter(has_text="in-kernel server:")
        await expect(heard).to_contain_text(
            re.compile(
                r"the page \(Origin http://127\.0\.0\.1:\d+\) said hello from the notebook page, "
                r"then closed with code 1000"
            )
        )
        # The page's own log, written by the browser's WebSocket handlers.
        page_log = page.locator(".jp-OutputArea-output").filter(has_text="page: open")
        await expect(page_log).to_contain_text("page received: Welcome, page!")
        await expect(page_log).to_contain_text("page received: Server says: hello from the notebook page")
        await expect(page_log).to_contain_text("page: close 1000 clean=true")
        await expect(page.get_by_text("listening: False")).to_be_visible()
        await assert_no_error_output(page, name)
        await page.screenshot(path=str(ARTIFACTS / "notebook-08-browser.png"), full_page=True)


# One budget per tutorial (about 15 s each on an idle machine), scaled like every wait, instead of the
# suite's 120 s for all of them: the list grows with each tutorial.
@pytest.mark.timeout(60 + timeout(30) * len(list(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))))
async def test_every_tutorial_runs_in_jupyterlab(tmp_path: Path) -> None:
    root = tmp_path / "notebooks"
    names = copy_notebooks(root)
    ARTIFACTS.mkdir(exist_ok=True)
    async with jupyter_lab(root) as base, chromium() as browser:
        for name in names:
            page = await open_and_run(browser, base, name)
            await assert_no_error_output(page, name)
            if name.startswith("07-"):
                # The dashboard rendered, and shows how the notebook left things.
                header = page.locator(".nbws-dashboard .nbws-header")
                await expect(header).to_contain_text("stopped")
                await expect(header).to_contain_text("closed")
                await expect(page.locator(".nbws-dashboard").get_by_role("tab", name="Recorder")).to_be_visible()
            await page.screenshot(path=str(ARTIFACTS / f"notebook-{name[:2]}.png"), full_page=True)
            await page.close()
