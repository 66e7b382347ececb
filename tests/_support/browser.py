"""
Headless Chromium for the browser tests: Debian's chromium driven by Playwright, never a downloaded browser.

Chromium's Local Network Access checks block a page that is not itself served
from a local address (about:blank, data: URLs) from opening a WebSocket to
127.0.0.1 (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS). Serve test pages
from 127.0.0.1, as JupyterLab is, and they connect like a real user's page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    """The system Chromium (CHROMIUM env var, else `chromium` on PATH); installed by scripts/system-deps."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Debian's chromium is not installed: run scripts/system-deps (make test does)")
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Launch headless Chromium; close it on exit."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
