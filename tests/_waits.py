"""Old name of ``_support.waits``, kept while branches written before ``tests/_support`` merge: import from ``_support``."""

from _support.waits import TIMEOUT_SCALE, timeout, until

__all__ = ["TIMEOUT_SCALE", "timeout", "until"]
