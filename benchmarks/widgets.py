"""Placeholder: the widget-log flood benchmark is written last (see benchmarks/__main__.py)."""

from __future__ import annotations

from typing import Any


async def run(seconds: float = 3.0) -> dict[str, Any]:
    return {}
