"""
Deprecated module path: the recorder, replay and intercept panels live in :mod:`nbws.widgets`.

``from nbws.recording_panels import RecorderPanel`` still works, with a
DeprecationWarning; import them from ``nbws.widgets`` instead (or call
``recorder.panel()``, ``replayer.panel()``, ``intercept.panel()``).
"""

import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .widgets._recording import InterceptPanel, RecorderPanel, ReplayPanel

__all__ = ["InterceptPanel", "RecorderPanel", "ReplayPanel"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'nbws.recording_panels' has no attribute {name!r}")
    warnings.warn(
        f"nbws.recording_panels is deprecated: import {name} from nbws.widgets",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module("nbws.widgets"), name)
