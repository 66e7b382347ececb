"""The module path of :mod:`nbws.builtins.intercept`, kept so that existing imports work."""

from .builtins.intercept import Decision, Held, Intercept

__all__ = ["Decision", "Held", "Intercept"]
