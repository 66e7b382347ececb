"""
The default plugin ``"nbws.errors"``: errors nobody handled are logged, as Node logs an ``error`` event nobody listens to.

An error an endpoint reports (a refused connection, a handler or plugin
that raised, a message too big...) goes to the ``nbws_error`` hooks and the
``error`` event handlers; then this plugin logs it on the ``nbws`` logger: as
a warning if no handler took it, as a debug line if one did. For the phases
``"handler"`` and ``"plugin"`` the traceback goes with it.

To log differently, replace it::

    nbws.default_plugins.unregister("nbws.errors")
    nbws.default_plugins.register(MyErrorLog(), "nbws.errors")

or silence it with ``nbws.default_plugins.disable("nbws.errors")``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..hookspecs import hookimpl
from ..server import Server

if TYPE_CHECKING:
    from ..events import ErrorEvent

__all__ = ["NAME", "ErrorLog"]

NAME = "nbws.errors"
"""The name it is registered under in :data:`nbws.default_plugins`."""


class ErrorLog:
    """
    Log every reported error on ``logger``: unhandled ones at WARNING, handled ones at DEBUG.

    Args:
        logger: Where to log (the ``nbws`` logger by default).
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger("nbws")

    @hookimpl
    def nbws_error_reported(self, event: ErrorEvent, handled: bool) -> None:
        """Log ``event``: a warning if nobody saw it, else a debug line."""
        level = logging.DEBUG if handled else logging.WARNING
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        tb = event.error if event.phase in ("handler", "plugin") else None
        target = event.target
        if isinstance(target, Server):
            where = target.url if target.port else target.host
            logger.log(level, "server %s %s error: %s", where, event.phase, event.message, exc_info=tb)
        else:
            logger.log(level, "%s %s error: %s", target.id, event.phase, event.message, exc_info=tb)

    def __repr__(self) -> str:
        return f"<ErrorLog to logger {self.logger.name!r}>"
