"""
The first hour in JupyterLab, in headless Chromium: the message inspector (click a row,
JSON tree, hex, copy, edit and send, resend), a live log that stays where the user
scrolled, Export as a browser download, and panels that say their kernel is gone after
a restart. Screenshots go to test-artifacts/firsthour-*.png.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import nbformat
import pytest
from _support import timeout
from _support.browser import ARTIFACTS, chromium
from _support.jupyterlab import button, jupyter_lab, run_all_cells
from playwright.async_api import expect

pytestmark = pytest.mark.browser

ECHO_CELL = textwrap.dedent(
    """
    import asyncio, json, nbws

    server = nbws.Server()
    server.on("message", lambda conn, message: conn.send(message.data))
    server.start()
    ws = nbws.WebSocket(server.url)
    ws.panel()
    """
).strip()

FEED_CELL = textwrap.dedent(
    """
    feed = nbws.Server()

    @feed.on("connection")
    async def ticks(conn):
        n = 0
        while conn.ready_state == nbws.OPEN and n < 2000:
            n += 1
            conn.send(json.dumps({"tick": n}))
            await asyncio.sleep(0.04)

    feed.start()
    live = nbws.WebSocket(feed.url)
    live.panel()
    """
).strip()


@pytest.mark.timeout(timeout(240))  # JupyterLab, two kernels and a restart, on a shared 2-core machine
async def test_inspector_scroll_export_and_kernel_restart_in_jupyterlab(tmp_path: Path) -> None:
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(ECHO_CELL), nbformat.v4.new_code_cell(FEED_CELL)]
    nbformat.write(notebook, root / "first-hour.ipynb")
    ARTIFACTS.mkdir(exist_ok=True)
    wait = timeout(30) * 1000

    async with jupyter_lab(root) as base, chromium() as browser:
        context = await browser.new_context(
            viewport={"width": 1280, "height": 1400}, permissions=["clipboard-read", "clipboard-write"]
        )
        page = await context.new_page()
        page.set_default_timeout(wait)
        expect.set_options(timeout=wait)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/doc/tree/first-hour.ipynb?reset")
        await page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        await run_all_cells(page)

        echo = page.locator(".jp-Cell").nth(0).locator(".nbws-client")
        await expect(echo.locator(".nbws-badge")).to_have_text("open")

        # -- the inspector ------------------------------------------------------------------
        message = {"user": {"name": "ada", "roles": ["admin", "dev"]}, "n": 1, "note": "x" * 600 + " tail"}
        await echo.locator(".nbws-composer textarea").fill(json.dumps(message))
        await button(echo, "Send").click()
        received = echo.locator(".nbws-row.nbws-receive")
        await expect(received).to_have_count(1)
        await received.click()
        inspector = echo.locator(".nbws-inspector")
        await expect(inspector).to_be_visible()
        await expect(echo.locator(".nbws-row.nbws-selected")).to_have_count(1)
        await expect(inspector.locator(".nbws-tab-on")).to_have_text("JSON")
        tree = inspector.locator(".nbws-inspector-content")
        await expect(tree.locator(".nbws-json-key", has_text="roles")).to_be_visible()
        await expect(tree).to_contain_text('"admin"')
        await expect(tree).to_contain_text(" tail")  # the whole message, not the 400-character preview
        await expect(inspector.locator(".nbws-inspector-facts")).to_contain_text("size")
        await expect(inspector.locator(".nbws-inspector-facts")).to_contain_text("timestamp")
        # Fold the "user" object, as in developer tools.
        user = tree.locator("summary").filter(has_text=re.compile(r"^user: "))
        assert await user.evaluate("summary => summary.parentElement.open")
        await user.click()
        assert not await user.evaluate("summary => summary.parentElement.open")
        await echo.screenshot(path=str(ARTIFACTS / "firsthour-inspector-json.png"))

        await inspector.get_by_role("button", name="Text", exact=True).click()
        await inspector.get_by_role("button", name="Copy", exact=True).click()
        await expect(inspector.locator(".nbws-inspector-note")).to_have_text("copied Text")
        assert json.loads(await page.evaluate("navigator.clipboard.readText()")) == message

        await inspector.get_by_role("button", name="Edit and send", exact=True).click()
        await expect(echo.locator(".nbws-composer textarea")).to_have_value(json.dumps(message))
        await expect(echo.locator(".nbws-status")).to_contain_text("in the composer")
        await inspector.get_by_role("button", name="Resend", exact=True).click()
        await expect(received).to_have_count(2)

        # A binary message: hex and base64 views.
        await button(echo, "hex").click()
        await echo.locator(".nbws-composer textarea").fill("de ad be ef 00 41")
        await button(echo, "Send").click()
        await expect(received).to_have_count(3)
        await received.nth(2).click()
        await expect(inspector.locator(".nbws-tab-on")).to_have_text("Hex")
        await expect(inspector.locator(".nbws-inspector-content")).to_contain_text("00000000  de ad be ef 00 41")
        await inspector.get_by_role("button", name="Base64", exact=True).click()
        await expect(inspector.locator(".nbws-inspector-content")).to_have_text("3q2+7wBB")
        await echo.screenshot(path=str(ARTIFACTS / "firsthour-inspector-hex.png"))

        # -- Export: a download of what the filter shows ------------------------------------------
        await echo.locator(".nbws-log input[type=text]").fill("admin")
        await expect(echo.locator(".nbws-row")).to_have_count(4)  # 2 sent, 2 echoed
        async with page.expect_download() as download_info:
            await button(echo, "Export").click()
        download = await download_info.value
        assert re.fullmatch(r"nbws-log-\d{8}-\d{6}\.jsonl", download.suggested_filename)
        lines = Path(await download.path()).read_text().splitlines()
        assert [json.loads(line)["direction"] for line in lines] == ["send", "receive", "send", "receive"]
        await expect(echo.locator(".nbws-log")).to_contain_text("downloading 4 rows (the rows the filter shows)")
        assert not list(root.glob("*.jsonl")), "nothing written next to the notebook"

        # -- a live feed: scrolled up, the view stays put -------------------------------------------
        live = page.locator(".jp-Cell").nth(1).locator(".nbws-client")
        box = live.locator(".nbws-log-body")
        await expect(live.locator(".nbws-row.nbws-receive").nth(30)).to_be_attached()
        await box.evaluate("box => { box.scrollTop = 0; }")
        first = await live.locator(".nbws-row").first.get_attribute("data-row")
        jump = live.locator(".nbws-jump")
        await expect(jump).to_have_text(re.compile(r"^\d+ new · jump to latest ↓$"))
        await expect(jump).to_have_text(re.compile(r"^([2-9]\d|\d{3,}) new"))  # it counts on
        assert await live.locator(".nbws-row").first.get_attribute("data-row") == first
        assert await box.evaluate("box => box.scrollTop") == 0
        await live.screenshot(path=str(ARTIFACTS / "firsthour-live-scrolled-up.png"))
        newest_before = int(await live.locator(".nbws-row").last.get_attribute("data-row") or 0)
        await jump.click()
        await expect(jump).to_be_hidden()
        assert int(await live.locator(".nbws-row").last.get_attribute("data-row") or 0) > newest_before
        assert await box.evaluate("box => box.scrollHeight - box.scrollTop - box.clientHeight < 4")

        # -- kernel restart: the panels say their kernel is gone ---------------------------------
        await page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
        await page.get_by_role("menuitem", name=re.compile(r"^Restart Kernel…")).first.click()
        await page.screenshot(path=str(ARTIFACTS / "firsthour-restart-dialog.png"))
        await page.locator(".jp-Dialog .jp-mod-accept").click()
        panel = page.locator(".jp-Cell").nth(0).locator(".nbws-client")
        await expect(panel).to_have_class(re.compile(r"jupyter-widgets-disconnected"))
        banner = await panel.evaluate("node => getComputedStyle(node, '::before').content")
        assert "kernel gone" in banner
        await page.locator(".jp-Cell").nth(0).screenshot(path=str(ARTIFACTS / "firsthour-kernel-gone.png"))

        await expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        assert not errors, errors
        await context.close()


RUN_SAVED_SCRIPT = """
(code) => {
  window.opened = 0;
  window.WebSocket = class { constructor() { window.opened += 1; } };
  const element = document.getElementById("out");
  new Function("element", code)(element);
  return [window.opened, element.textContent];
}
"""


async def test_notebook_8s_saved_page_script_does_not_connect_when_the_notebook_is_reopened() -> None:
    notebook = nbformat.read(Path(__file__).parents[2] / "notebooks" / "08-talking-to-the-world.ipynb", 4)
    [script] = [
        "".join(output["data"]["application/javascript"])
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "application/javascript" in output.get("data", {})
    ]
    async with chromium() as browser:
        page = await browser.new_page()
        await page.set_content('<div id="out"></div>')
        opened, text = await page.evaluate(RUN_SAVED_SCRIPT, script)
        assert opened == 0 and "output saved with the notebook: run the cell to connect again" in text
        # The same script, fresh from a run, does connect.
        fresh = re.sub(r"const made = \d+;", "const made = Date.now();", script)
        await page.set_content('<div id="out"></div>')
        opened, text = await page.evaluate(RUN_SAVED_SCRIPT, fresh)
        assert opened == 1 and text == ""
