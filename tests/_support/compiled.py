"""The compiled build of this checkout (README, "Compiled build"), as the system tests get it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Build:
    site: Path
    """Where the compiled wheel is unpacked: ``PYTHONPATH=site``."""
    wheel: Path
