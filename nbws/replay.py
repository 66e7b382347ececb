"""
Deprecated module path: the replay module is :mod:`nbws.recording.replay`.

``nbws.replay`` is the *function* :func:`nbws.recording.replay.replay` (``await
nbws.replay(recording, target)``), as it always was; this module only keeps
``from nbws.replay import Replayer`` (and the other names) working, with a
DeprecationWarning that names the new place. Import the module as
``nbws.recording.replay`` (``import nbws.recording.replay``), or take the names
from ``nbws`` (``nbws.Replayer``, ``nbws.replay``).
"""

import warnings
from typing import TYPE_CHECKING, Any

from .recording import replay as _module

if TYPE_CHECKING:
    from .recording.replay import Mode, Replayer, ReplayState, replay

__all__ = ["Mode", "ReplayState", "Replayer", "replay"]


def __getattr__(name: str) -> Any:
    value = getattr(_module, name)  # AttributeError for a name the module never had
    warnings.warn(
        f"nbws.replay.{name}: the module nbws.replay moved to nbws.recording.replay "
        f"(nbws.replay is the function); import {name} from nbws.recording.replay",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
