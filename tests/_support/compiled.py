"""The compiled build of this checkout (README, "Compiled build"), as the system tests get it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

# The modules mypyc compiles in the compiled build (pyproject.toml, the mypyc hook's include).
COMPILED_MODULES = ("_events", "_hooks", "_protocol", "_connection")


def compiled_modules() -> dict[str, bool]:
    """Whether each of them, as this process imports it, is an extension module: ``{"nbws._events": True, ...}``."""
    names = [f"nbws.{module}" for module in COMPILED_MODULES]
    return {name: str(importlib.import_module(name).__file__).endswith(tuple(EXTENSION_SUFFIXES)) for name in names}


@dataclass
class Build:
    site: Path
    """Where the compiled wheel is unpacked: ``PYTHONPATH=site``."""
    wheel: Path
