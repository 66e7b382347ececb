"""Waiting on a condition in the tests: no sleeps as synchronisation, every wait bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from conftest import timeout


async def until(predicate: Callable[[], object], seconds: float = 5.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` is true, yielding to the loop; fail after a scaled timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout(seconds)
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout(seconds):g} s")
        await asyncio.sleep(0.001)  # poll without spinning the CPU the peers need
