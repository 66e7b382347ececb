"""
Views of core objects, found through a registry: the core never imports a widget.

``ws.panel()``, ``server.panel()``, ``relay.panel()`` and the rich display of
a cell ending with one of them ask this registry for a view. The widgets
layer (``nbws.widgets``) registers one factory per core class when it is
imported, and keeps the views it made in a ``weakref.WeakKeyDictionary``:
nothing is stored on the core objects (anywidget keeps its views the same
way). The core only knows the *names* of the modules that register views,
in :data:`VIEW_MODULES`, and imports them on the first request.

A package with its own views registers them the same way::

    import nbws.views

    nbws.views.register(MyEndpoint, MyPanel.of)   # MyPanel.of(obj) returns the view of obj

and adds its module to ``nbws.views.VIEW_MODULES`` if it should load on
first use rather than on import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .exceptions import NbwsError

__all__ = ["VIEW_MODULES", "ViewFactory", "factory_for", "mimebundle", "register", "unregister", "view"]

ViewFactory = Callable[..., Any]
"""Return the view (a widget) of a core object: the one it already has, or a new one (``factory(obj, *args, **options)``)."""

VIEW_MODULES: list[str] = ["nbws.widgets"]
"""Modules imported on the first request for a view: importing them registers their factories."""

_factories: dict[type, ViewFactory] = {}
_loaded: set[str] = set()


def register(cls: type, factory: ViewFactory) -> None:
    """
    Make ``factory(obj)`` the view of every instance of ``cls`` (and of its subclasses without a factory of their own).

    Registering again for the same class replaces the factory (a re-run cell,
    a reloaded module).
    """
    if not isinstance(cls, type):
        raise TypeError(f"views are registered for a class, not {type(cls).__name__}")
    if not callable(factory):
        raise TypeError(f"a view factory must be callable, not {type(factory).__name__}")
    _factories[cls] = factory


def unregister(cls: type) -> None:
    """Forget the view factory of ``cls`` (nothing happens if it has none)."""
    _factories.pop(cls, None)


def factory_for(cls: type) -> ViewFactory | None:
    """The factory registered for ``cls`` or its nearest base class, or None; loads :data:`VIEW_MODULES` first."""
    for name in VIEW_MODULES:
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)
    for base in cls.__mro__:
        factory = _factories.get(base)
        if factory is not None:
            return factory
    return None


def view(obj: object, *args: Any, **options: Any) -> Any:
    """
    The view of ``obj``: its existing widget, or a new one made by the factory registered for its class.

    ``args`` and ``options`` go to the factory, for a view that takes more
    than its object (a recording's replay panel takes the connections it
    may replay to).

    Raises:
        nbws.NbwsError: if no view is registered for its class (with the
            widgets' dependencies missing, importing them raises ImportError).
    """
    factory = factory_for(type(obj))
    if factory is None:
        raise NbwsError(f"no view is registered for {type(obj).__name__}: see nbws.views.register")
    return factory(obj, *args, **options)


def mimebundle(obj: object) -> dict[str, Any]:
    """The rich display of ``obj`` in a notebook: its view's, with ``repr(obj)`` as the plain text."""
    bundle: dict[str, Any] = view(obj)._repr_mimebundle_()
    bundle["text/plain"] = repr(obj)
    return bundle
