"""The module path of :mod:`nbws.builtins.logger`, kept so that existing imports work."""

from .builtins.logger import Logger, preview

__all__ = ["Logger", "preview"]
