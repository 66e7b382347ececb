"""Old name of ``_support.raw``, kept while branches written before ``tests/_support`` merge: import from ``_support.raw``."""

from _support.raw import *  # noqa: F403
