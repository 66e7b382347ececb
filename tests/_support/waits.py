"""Waiting in the tests: no sleeps as synchronisation, every wait bounded and scaled by one variable."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

# Every wait in the tests is a multiple of this, so a slow machine can stretch them all at once.
TIMEOUT_SCALE = float(os.environ.get("NBWS_TEST_TIMEOUT_SCALE", "1"))


def timeout(seconds: float = 5.0) -> float:
    """A timeout for one wait in a test, scaled by NBWS_TEST_TIMEOUT_SCALE."""
    return seconds * TIMEOUT_SCALE


async def until(predicate: Callable[[], object], seconds: float = 5.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` is true, yielding to the loop; fail after a scaled timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout(seconds)
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout(seconds):g} s")
        await asyncio.sleep(0.001)  # poll without spinning the CPU the peers need
