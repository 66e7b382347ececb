"""
The event loop endpoints run on, and operations under way on it, under public names.

:func:`get_loop` is the loop an endpoint made here binds to (the one running in
this thread, else nbws's background loop); :class:`Pending` is what an
operation that takes time returns (await it, or ``.wait()`` it). Both are
defined in a private module and re-exported here so that code built on the
core, the built-in plugins included, imports public names only.
"""

from __future__ import annotations

from ._loop import Pending, get_loop

__all__ = ["Pending", "get_loop"]
