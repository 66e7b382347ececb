"""
What endpoints hand to handlers and hooks, under public names: messages, events and observer lists.

They are defined in a private module and re-exported here (and by ``nbws``
itself) so that code built on the core imports public names only, including
the modules ``nbws`` imports while it is still loading, such as the built-in
plugins::

    from nbws.events import ErrorEvent, Message

They are the very classes of ``nbws.Message``, ``nbws.ErrorEvent``...
:class:`nbws.BaseConnection`, which hooks are given as ``conn``, is not an
event: a plugin annotates with it from ``nbws`` itself, under
``if TYPE_CHECKING:`` when it is one of the modules ``nbws`` imports.
"""

from __future__ import annotations

import warnings
from typing import Any

from ._events import CloseEvent, ErrorEvent, Message, Observers, OpenEvent

__all__ = ["CloseEvent", "ErrorEvent", "Message", "Observers", "OpenEvent"]


def __getattr__(name: str) -> Any:
    if name == "BaseConnection":  # exported here by mistake for a while: still found, with a warning
        warnings.warn(
            "nbws.events.BaseConnection: BaseConnection is not an event; import it from nbws",
            DeprecationWarning,
            stacklevel=2,
        )
        from ._connection import BaseConnection

        return BaseConnection
    raise AttributeError(f"module 'nbws.events' has no attribute {name!r}")
