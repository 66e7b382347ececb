"""The former place of :mod:`nbws.builtins._common` (helpers of the built-in plugins), kept for imports."""

from .builtins._common import plugin_name, url_of

__all__ = ["plugin_name", "url_of"]
