"""Old name of ``_support.browser``, kept while branches written before ``tests/_support`` merge: import from ``_support.browser``."""

from _support.browser import *  # noqa: F403
