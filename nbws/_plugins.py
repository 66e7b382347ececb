"""
Plugin registries: the global one (``nbws.plugins``) and one per endpoint.

Each registry wraps a pluggy ``PluginManager`` for registration and
validation, but nbws calls the implementations itself (see
:mod:`nbws.hookspecs`) so that one faulty plugin cannot stop the others, an
``async def`` implementation is awaited, and a plugin can be switched off and
on without unregistering it.
"""

from __future__ import annotations

import inspect
import logging
import operator
import os
import re
import sys
import traceback
import types
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from ._events import Watchers, same_value
from ._hooks import Call, HookResult, Hooks, collect, make_call
from .exceptions import PluginError

__all__ = ["ENTRY_POINT_GROUP", "HookImpl", "PluginInfo", "PluginRegistry", "default_plugins", "hookimpl", "plugins"]

logger = logging.getLogger("nbws")

hookimpl = hookspecs.hookimpl
"""Mark a function or method as the implementation of an nbws hook (the one marker, :data:`nbws.hookspecs.hookimpl`)."""

_PROJECT = hookimpl.project_name

ENTRY_POINT_GROUP = "nbws"
"""The entry-point group plugins are published under."""

DISABLE_AUTOLOAD_ENV = "NBWS_DISABLE_PLUGIN_AUTOLOAD"

HOOK_NAMES = frozenset(name for name in hookspecs.__all__ if name.startswith("nbws_"))


def _same_state(a: object, b: object) -> bool:
    """Whether two plugin objects hold the same settings (their names aside): the same plugin made again."""
    state_a = {k: v for k, v in getattr(a, "__dict__", {}).items() if k != "__name__"}
    state_b = {k: v for k, v in getattr(b, "__dict__", {}).items() if k != "__name__"}
    return state_a.keys() == state_b.keys() and all(same_value(state_a[k], state_b[k]) for k in state_a)


Site = tuple[str, int, object]
"""Where a plugin was registered: the file and line of the calling code, and the IPython execution count (None outside IPython)."""


def _call_site() -> Site | None:
    """The first frame outside nbws that led to this registration, with the cell execution it belongs to."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "nbws":
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    execution: object = None
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        shell = ipython.get_ipython()
        execution = getattr(shell, "execution_count", None)
    return (frame.f_code.co_filename, frame.f_lineno, execution)


def _family(name: str) -> str:
    """A plugin name without the ``-2``, ``-3`` that makes a second instance's name unique."""
    return re.sub(r"-\d+$", "", name)


class _Face:
    """
    What pluggy registers for a plugin object: its hook methods, bound to it, and nothing else.

    pluggy finds hooks with ``dir()`` and ``inspect.getattr_static``, which
    read the object's ``__dict__``; on CPython 3.11 and 3.12 that turns the
    instance's inline attribute values into a dict for good, and every
    ``self.x`` in its hooks is slower from then on (by about a third, for
    the hooks that run for every message). So nbws reads a plugin object's
    hooks from its class, and hands pluggy this stand-in instead.
    """

    def __init__(self, plugin: object, methods: dict[str, Callable[..., Any]]) -> None:
        self.__dict__.update(methods)
        self.__dict__["_nbws_plugin"] = plugin

    def __repr__(self) -> str:
        return repr(self.__dict__["_nbws_plugin"])


def _class_hooks(plugin: object) -> dict[str, Callable[..., Any]] | None:
    """
    ``plugin``'s hook implementations, read from its class and bound to it, without touching its ``__dict__``.

    None when pluggy should look at the plugin itself, as it always did: a
    module, a class, an object whose class marks no method as a hook or marks
    a static or class method, one whose class answers unknown attributes
    (``__getattr__``), and one with a hook set on the instance (marked, or
    hiding a method of its class) under a hook's name. Reading an attribute
    by name does not make the ``__dict__``; listing them, as ``dir()`` does,
    would.
    """
    cls = type(plugin)
    if isinstance(plugin, (type, types.ModuleType)) or cls.__dictoffset__ == 0:
        return None
    marker = _PROJECT + "_impl"
    methods: dict[str, Callable[..., Any]] = {}
    functions: dict[str, Callable[..., Any]] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            # Only what pluggy would take as a hook is asked for a marker (no foreign __getattr__ runs).
            if isinstance(value, (staticmethod, classmethod)):
                if getattr(value, marker, None) is not None or getattr(value.__func__, marker, None) is not None:
                    return None
            elif inspect.isfunction(value) and getattr(value, marker, None) is not None:
                functions[name] = value
                methods[name] = value.__get__(plugin, cls)
    if not methods or getattr(cls, "__getattr__", None) is not None:
        return None
    for name in HOOK_NAMES.union(methods):
        if inspect.getattr_static(cls, name, None) is not None and name not in methods:
            continue  # a class attribute that is no hook (a property runs no code here)
        found = getattr(plugin, name, None)
        if name in methods:
            if getattr(found, "__func__", None) is not functions[name]:
                return None  # the instance hides its class's hook
        elif (inspect.isfunction(found) or inspect.ismethod(found)) and getattr(found, marker, None) is not None:
            return None  # a hook set on the instance
    return methods


@dataclass(frozen=True)
class HookImpl:
    """One implementation of one hook, ready to call."""

    plugin_name: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]
    tryfirst: bool
    trylast: bool

    def __post_init__(self) -> None:
        # call() runs for every message and every observing plugin: this instance's call is a
        # closure made once for its argument names, which does what the method below says.
        object.__setattr__(self, "call", _caller(self.function, self.argnames))

    def call(self, kwargs: dict[str, Any]) -> Any:
        """Call the implementation with the arguments it names, taken from ``kwargs``."""
        return self.function(*[kwargs[name] for name in self.argnames])


def _caller(function: Callable[..., Any], argnames: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    if not argnames:
        return lambda kwargs: function()
    if len(argnames) == 1:
        (name,) = argnames
        return lambda kwargs: function(kwargs[name])
    pick = operator.itemgetter(*argnames)
    return lambda kwargs: function(*pick(kwargs))


@dataclass
class PluginInfo:
    """What a registry knows about one plugin: for listing and for the plugin panel."""

    name: str
    plugin: object
    hooks: tuple[str, ...]
    enabled: bool = True
    errors: int = 0
    last_error: str | None = field(default=None, repr=False)

    @property
    def internal(self) -> bool:
        """True for a plugin nbws adds itself (a panel's own hooks): the plugin panel hides it, ``WebSocket.clone()`` skips it."""
        return bool(getattr(self.plugin, "_nbws_internal", False))


class PluginRegistry:
    """
    A set of plugins, in registration order, each of which can be switched off.

    ``nbws.plugins`` is the global registry: its plugins apply to every
    endpoint, and it loads the plugins published under the ``nbws``
    entry-point group the first time it is used (unless the environment
    variable ``NBWS_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value).
    Each endpoint has a registry of its own as ``.plugins``, for plugins that
    apply to it alone.
    """

    def __init__(self, *, autoload: bool = False) -> None:
        self._pm = pluggy.PluginManager(_PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._sites: dict[str, Site] = {}
        # What pluggy holds for each plugin object registered through a _Face, by id(plugin).
        self._faces: dict[int, _Face] = {}
        self._autoload = autoload
        self._loaded = False
        self._watchers = Watchers("plugin registry")
        self._hook_sets: weakref.WeakSet[Hooks] = weakref.WeakSet()
        # Each hook's call entries, made once per change of this registry rather than once per endpoint
        # (a server's thousand connections share them: building them costs pluggy look-ups and an eval).
        self._calls_cache: dict[str, tuple[tuple[bool, bool, Call], ...]] = {}
        self.version = 0
        """Increases at every change to this registry."""
        self.load_errors: dict[str, BaseException] = {}
        """Entry points that failed to load, by name, with the error."""

    # -- registration -----------------------------------------------------

    def register(self, plugin: object, name: str | None = None, *, enabled: bool = True) -> str:
        """
        Register ``plugin`` and return the name it is registered under.

        With ``enabled=False`` it is registered switched off, as by
        :meth:`disable`, until :meth:`enable`. The same object again returns
        the name it has (a re-run cell); an object that merely equals a
        registered one is another plugin. Hooks are read from the object's
        class when it can be done without making its ``__dict__`` (see
        :func:`_class_hooks`), else from the object, as pluggy does.

        Raises:
            PluginError: if ``name`` is taken, it implements a hook that does
                not exist, has the wrong arguments for a hook, or uses a hook
                wrapper.
        """
        self._ensure_loaded()
        if self._pm.is_registered(self._held(plugin)):
            # The same object again (a re-run cell that registers a plugin made in another cell): nothing to do.
            registered = self._pm.get_name(self._held(plugin))
            assert registered is not None
            return registered
        site = _call_site()
        earlier = self._same_kind(plugin, name, site)
        if earlier is not None:
            # A re-run cell registers a new instance of the same plugin: replace it rather than run both.
            self.unregister(earlier)
            logger.warning(
                "nbws: replaced plugin %r registered earlier with a new one of the same class %s; "
                "to run both, register the new one with name=...",
                earlier,
                type(plugin).__qualname__,
            )
        # The new version takes the earlier one's name, so that it reads the same in lists and panels.
        registered = self._register(plugin, name if name is not None or earlier is None else earlier, enabled)
        if site is not None:
            self._sites[registered] = site
        return registered

    def _same_kind(self, plugin: object, name: str | None, site: Site | None) -> str | None:
        """
        The name of the registered plugin that ``plugin`` is a new version of, made by a re-run cell, if any.

        That is one of the same class (by module and name) under the same name
        (``-2``, ``-3`` aside) that was made by a class defined again (the
        cell that defines it ran again), or that an earlier IPython execution
        registered either from the same line of the same cell or with the same
        settings. Several plugins registered by one execution, or by a script,
        are all kept.
        """
        kind = (type(plugin).__module__, type(plugin).__qualname__)
        wanted = _family(name if name is not None else getattr(plugin, "__name__", None) or type(plugin).__name__)
        for info in self._infos.values():
            other = info.plugin
            if _family(info.name) != wanted or (type(other).__module__, type(other).__qualname__) != kind:
                continue
            if type(plugin) is type:
                if plugin is not other:  # a class registered as the plugin, defined again
                    return info.name
                continue
            if type(other) is not type(plugin):  # its class was defined again
                return info.name
            earlier = self._sites.get(info.name)
            if site is None or earlier is None or site[2] is None or earlier[2] == site[2]:
                continue  # one execution (or a script) registering several: all are meant
            if earlier[:2] == site[:2] or _same_state(plugin, other):
                return info.name  # the same line run again, or the same plugin made again
        return None

    def _register(self, plugin: object, name: str | None, enabled: bool = True) -> str:
        if plugin is None or isinstance(plugin, (str, bytes, int, float)):
            raise PluginError(f"a plugin must be a module or an object with hook methods, not {plugin!r}")
        if self._pm.is_registered(self._held(plugin)):
            raise PluginError(f"plugin {plugin!r} is already registered as {self._pm.get_name(self._held(plugin))!r}")
        methods = _class_hooks(plugin)
        self._check_hook_names(plugin, methods)
        face = None if methods is None else _Face(plugin, methods)
        held = plugin if face is None else face
        if name is None:
            name = self._default_name(plugin)
        try:
            registered = self._pm.register(held, name)
        except ValueError as exc:
            if name is not None and name in self._infos:
                raise PluginError(
                    f"a plugin named {name!r} is already registered: remove it first with "
                    f"plugins.unregister({name!r}), or choose another name"
                ) from None
            raise PluginError(f"cannot register plugin: {exc}") from None
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"invalid plugin {exc.plugin!r}: {exc}") from None
        assert registered is not None
        impls = [impl for hook in self._pm.get_hookcallers(held) or () for impl in hook.get_hookimpls()]
        if any(impl.hookwrapper or impl.wrapper for impl in impls if impl.plugin is held):
            self._pm.unregister(held)
            raise PluginError(
                f"plugin {registered!r} uses a hook wrapper, which nbws does not support: use tryfirst or trylast"
            )
        hooks = tuple(sorted({hook.name for hook in self._pm.get_hookcallers(held) or ()}))
        if face is not None:
            self._faces[id(plugin)] = face
        self._infos[registered] = PluginInfo(registered, plugin, hooks, enabled=enabled)
        self._changed()
        return registered

    def _default_name(self, plugin: object) -> str:
        """A readable name: a module's or class's own name, an instance's class name, made unique."""
        base = getattr(plugin, "__name__", None) or type(plugin).__name__
        name, n = base, 1
        while name in self._infos or self._pm.is_blocked(name):
            n += 1
            name = f"{base}-{n}"
        return name

    def _held(self, plugin: object) -> object:
        """What pluggy holds for ``plugin``: its :class:`_Face` or the plugin itself."""
        return self._faces.get(id(plugin), plugin)

    def _check_hook_names(self, plugin: object, methods: dict[str, Callable[..., Any]] | None) -> None:
        if methods is not None:
            unknown = [attr for attr in methods if attr.startswith("nbws_") and attr not in HOOK_NAMES]
            if unknown:
                known = ", ".join(sorted(HOOK_NAMES))
                raise PluginError(f"unknown hook {unknown[0]!r} in plugin {plugin!r}: hooks are {known}")
            return
        for attr in dir(plugin):
            if attr.startswith("nbws_") and attr not in HOOK_NAMES:
                value = getattr(plugin, attr, None)
                if callable(value) and self._pm.parse_hookimpl_opts(plugin, attr) is not None:
                    known = ", ".join(sorted(HOOK_NAMES))
                    raise PluginError(f"unknown hook {attr!r} in plugin {plugin!r}: hooks are {known}")

    def unregister(self, plugin: object | str) -> None:
        """Unregister a plugin, given the plugin or the name it was registered under."""
        name = plugin if isinstance(plugin, str) else self._pm.get_name(self._held(plugin))
        if name is None or name not in self._infos:
            raise PluginError(f"plugin {plugin!r} is not registered")
        self._pm.unregister(name=name)
        self._faces.pop(id(self._infos.pop(name).plugin), None)
        self._sites.pop(name, None)
        self._changed()

    def enable(self, name: str) -> None:
        """Switch a registered plugin back on."""
        self._info(name).enabled = True
        self._changed()

    def disable(self, name: str) -> None:
        """Switch a registered plugin off: its hooks are skipped until :meth:`enable`."""
        self._info(name).enabled = False
        self._changed()

    def _info(self, name: str) -> PluginInfo:
        self._ensure_loaded()
        try:
            return self._infos[name]
        except KeyError:
            known = ", ".join(self._infos) or "none"
            raise PluginError(f"no plugin named {name!r} (registered: {known})") from None

    def name_of(self, plugin: object) -> str | None:
        """Return the name ``plugin`` is registered under here, or None if it is not registered here."""
        name = self._pm.get_name(self._held(plugin))
        return name if name in self._infos else None

    def get(self, name: str) -> object:
        """Return the plugin registered under ``name``."""
        return self._info(name).plugin

    def info(self, name: str) -> PluginInfo:
        """Return what the registry knows of the plugin registered under ``name``."""
        return self._info(name)

    def __iter__(self) -> Iterator[PluginInfo]:
        self._ensure_loaded()
        return iter(list(self._infos.values()))

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._infos)

    def __contains__(self, plugin: object) -> bool:
        self._ensure_loaded()
        if isinstance(plugin, str):
            return plugin in self._infos
        return self._pm.is_registered(self._held(plugin))

    def __repr__(self) -> str:
        return f"<PluginRegistry {list(self._infos)}>"

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change: a plugin registered, removed, switched, or an error counted."""
        self._watchers.add(callback)

    def unwatch(self, callback: Callable[[], None]) -> None:
        """Stop calling a callback given to :meth:`watch`."""
        self._watchers.remove(callback)

    def _changed(self) -> None:
        self.version += 1
        self._calls_cache.clear()
        # Only the endpoints using this registry rebuild their call lists.
        for hooks in list(self._hook_sets):
            hooks.invalidate()
        self._watchers.notify()

    # -- entry points -----------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded or not self._autoload:
            return
        self._loaded = True
        if os.environ.get(DISABLE_AUTOLOAD_ENV):
            return
        self.load_entrypoints()

    def load_entrypoints(self) -> list[str]:
        """
        Register the plugins published under the ``nbws`` entry-point group.

        An entry point may name a module, an object, or a class (instantiated
        without arguments). An object whose ``nbws_autoload_enabled``
        attribute is False loads switched off, for a plugin that must not act
        (or cost anything) until its user sets it up. One that fails to load
        is logged and kept in :attr:`load_errors`; the others still load.
        Returns the names loaded.
        """
        self._loaded = True
        loaded = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._infos or self._pm.is_blocked(ep.name):
                continue
            try:
                obj = ep.load()
                if inspect.isclass(obj):
                    obj = obj()
                self._register(obj, ep.name, getattr(obj, "nbws_autoload_enabled", True) is not False)
            except Exception as exc:
                self.load_errors[ep.name] = exc
                logger.warning("nbws plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
            else:
                loaded.append(ep.name)
        return loaded

    # -- calling ----------------------------------------------------------

    def impls(self, hook: str) -> list[HookImpl]:
        """The enabled implementations of ``hook``, in the order nbws calls them."""
        self._ensure_loaded()
        caller = getattr(self._pm.hook, hook)
        result = []
        for impl in reversed(caller.get_hookimpls()):
            info = self._infos.get(impl.plugin_name)
            if info is None or not info.enabled:
                continue
            result.append(HookImpl(impl.plugin_name, impl.function, tuple(impl.argnames), impl.tryfirst, impl.trylast))
        return result

    def _calls(self, hook: str) -> tuple[tuple[bool, bool, Call], ...]:
        """The enabled implementations of ``hook`` as ``(tryfirst, trylast, call)``, in pluggy's order."""
        cached = self._calls_cache.get(hook)
        if cached is not None:
            return cached
        self._ensure_loaded()
        result = self._calls_cache[hook] = self._make_calls(hook)
        return result

    def _make_calls(self, hook: str) -> tuple[tuple[bool, bool, Call], ...]:
        caller = getattr(self._pm.hook, hook)
        spec = caller.spec.argnames if caller.spec is not None else ()
        result = []
        for impl in reversed(caller.get_hookimpls()):
            info = self._infos.get(impl.plugin_name)
            if info is None or not info.enabled:
                continue
            call = make_call(impl.function, impl.argnames, spec)
            result.append((impl.tryfirst, impl.trylast, (impl.plugin_name, self, call)))
        return tuple(result)

    def collect(self, hook: str, /, **kwargs: Any) -> list[HookResult]:
        """
        Call every enabled implementation of ``hook`` here at once and return what each gave.

        For hooks whose results are used at once, such as ``nbws_panel``: a
        :class:`~nbws._hooks.HookResult` per implementation, in call order,
        with ``value`` or, if it raised or returned an awaitable, ``error``
        (already counted against the plugin).
        """
        hooks = Hooks(self)
        spec = getattr(self._pm.hook, hook).spec.argnames
        return collect(hook, hooks.calls(hook), tuple(kwargs.get(name) for name in spec))

    def record_error(self, name: str, error: BaseException) -> None:
        """Count an error raised by plugin ``name`` and keep its traceback."""
        info = self._infos.get(name)
        if info is None:
            return
        info.errors += 1
        info.last_error = "".join(traceback.format_exception(error))
        self._watchers.notify()


plugins = PluginRegistry(autoload=True)
"""The global plugin registry: plugins registered here apply to every endpoint."""

default_plugins = PluginRegistry()
"""
nbws's own behaviour written as plugins, registered by default: ``"nbws.handshake"``
(a server's path, origins and token checks) and ``"nbws.errors"`` (logging errors no
handler took). They apply to every endpoint, after its own, its server's and the
global plugins (the handshake guard is ``tryfirst``). ``default_plugins.disable(name)``
turns one off; ``unregister(name)`` and ``register(other, name)`` replace it.
"""
