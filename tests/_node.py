"""Old name of ``_support.node``, kept while branches written before ``tests/_support`` merge: import from ``_support.node``."""

from _support.node import *  # noqa: F403
