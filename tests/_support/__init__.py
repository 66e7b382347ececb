"""
What every test folder shares: ``from _support import echo_server, timeout, until``.

pytest puts ``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml), so this imports the
same from ``tests/core`` as from ``tests/system``. The fixtures built on it (``server``,
``start_echo_server``, ``front_end``) are in ``tests/conftest.py``. Helpers that import heavy or
optional packages stay in their own modules, imported only by the tests that use them:
``_support.raw`` (a WebSocket peer written with bare sockets), ``_support.node`` (Node's ``ws``
scripts in ``tests/interop``), ``_support.browser`` (Debian's Chromium through Playwright),
``_support.jupyter`` (a Jupyter server subprocess) and ``_support.jupyterlab`` (JupyterLab).
"""

from __future__ import annotations

from pathlib import Path

from .servers import StartEchoServer, echo, echo_server, free_port
from .waits import TIMEOUT_SCALE, timeout, until

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root folder."""

__all__ = ["ROOT", "TIMEOUT_SCALE", "StartEchoServer", "echo", "echo_server", "free_port", "timeout", "until"]
