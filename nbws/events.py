"""
What endpoints hand to handlers and hooks, under public names: messages, events and observer lists.

They are defined in a private module and re-exported here (and by ``nbws``
itself) so that code built on the core imports public names only, including
the modules ``nbws`` imports while it is still loading, such as the built-in
plugins::

    from nbws.events import ErrorEvent, Message

They are the very classes of ``nbws.Message``, ``nbws.ErrorEvent``...
"""

from __future__ import annotations

from ._connection import BaseConnection
from ._events import CloseEvent, ErrorEvent, Message, Observers, OpenEvent

__all__ = ["BaseConnection", "CloseEvent", "ErrorEvent", "Message", "Observers", "OpenEvent"]
