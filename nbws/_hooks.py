"""
The one hook runner: every hook nbws calls goes through here.

An endpoint's :class:`Hooks` merges the plugins of several registries, most
specific first (a connection's own, its server's, the global ones), into one
call list per hook, in the documented order: ``tryfirst`` implementations,
then the others, then ``trylast`` ones; within each group the registries in
that order and, in each registry, the plugin registered last first (pluggy's
rule). The lists are cached and thrown away when one of *those* registries
changes (each registry tells the hook sets that use it).

Each entry of a call list is ``(plugin name, registry, call)`` where ``call``
takes the hook's arguments positionally, in the order of the hook's
specification, and passes the implementation the ones it names. Calling
positionally through a closure made once is what keeps a hook call cheap on
the message path (no keyword dict, no look-up per call).

:func:`run` calls the implementations of one hook in order with no coroutine
while they return plainly; once one returns an awaitable it hands back a
:class:`Rest` that the caller must await to finish the others. An exception
(any :class:`BaseException` but ``KeyboardInterrupt`` and ``SystemExit``,
``CancelledError`` included) raised by an implementation, sync or async, is
a fault of that plugin: it is counted against the plugin, reported by the
``fail`` callback of the caller, and the other implementations still run.
An awaited implementation runs as a task of its own, so that it can be
abandoned: when the ``stop`` future given by the caller is done (a connection
that closed, a close that waited long enough) or after ``timeout`` seconds,
it is cancelled and reported by name, and nothing waits for it any more.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mypy_extensions import mypyc_attr

from ._events import describe
from .exceptions import HookTimeoutError

if TYPE_CHECKING:
    from ._events import Message
    from ._plugins import PluginRegistry

__all__ = ["Call", "CallList", "HookResult", "Hooks", "Rest", "StuckHook", "collect", "run", "run_all"]

logger = logging.getLogger("nbws")

Call = tuple[str, "PluginRegistry", Callable[..., Any]]
"""One implementation ready to call: (plugin name, its registry, a call taking the hook's arguments positionally)."""

Fail = Callable[[str, str, BaseException], None]
"""How a caller reports a plugin's fault: ``fail(hook, plugin name, error)``."""

# How long a hook may still take to finish by itself once its stop future is done.
_GRACE = 0.05

# Not plugin faults: they are the user's or the interpreter's, and must go up.
_FATAL = (KeyboardInterrupt, SystemExit)

_isawaitable = inspect.isawaitable


StuckHook = HookTimeoutError
"""An awaited hook implementation was abandoned: it outlived its connection or the time it was given."""


def make_call(function: Callable[..., Any], argnames: Sequence[str], spec: Sequence[str]) -> Callable[..., Any]:
    """A function taking the hook's arguments (``spec``) positionally and calling ``function`` with ``argnames``."""
    argnames = tuple(argnames)
    spec = tuple(spec)
    if argnames == spec:
        return function
    if not all(name.isidentifier() and name in spec for name in argnames) or not all(n.isidentifier() for n in spec):
        index = tuple(spec.index(name) for name in argnames)  # raises for a name the hook does not have
        return lambda *args: function(*[args[i] for i in index])
    # A function of exactly the hook's arguments passing on those the implementation takes: one plain
    # call, no argument tuple to unpack (this runs for every message and every observing plugin).
    # The names are the hook specification's own identifiers, checked above.
    source = f"lambda {', '.join(spec)}: function({', '.join(argnames)})"
    call: Callable[..., Any] = eval(source, {"function": function})
    _wrapped[call] = (function, argnames)  # an observer runner calls ``function`` itself (see _observer)
    return call


# What each call made by make_call wraps: (function, its argument names), for the observer runners.
_wrapped: weakref.WeakKeyDictionary[Callable[..., Any], tuple[Callable[..., Any], tuple[str, ...]]] = (
    weakref.WeakKeyDictionary()
)

# Compiled observer runner factories, by (hook's argument names, each implementation's argument names).
_factories: dict[tuple[tuple[str, ...], tuple[tuple[bool, tuple[str, ...] | None], ...]], Callable[..., Any]] = {}


def _observer(hook: str, calls: CallList, spec: tuple[str, ...]) -> Callable[..., Rest | None] | None:
    """
    ``run(hook, calls, args, fail)`` for observers, as one generated function of ``(fail, *args)``.

    It calls each implementation directly with the arguments it names (no
    wrapper call, no loop), with the same fault isolation and hand-over to
    a :class:`Rest` as :func:`run`. The code depends only on the argument
    names, so it is compiled once per pattern, then made for each call list
    by calling the compiled factory with its implementations. None if the
    hook's argument names are not plain identifiers.
    """
    if not spec or not all(name.isidentifier() and not name.startswith("_") for name in spec):
        return None
    functions: list[Callable[..., Any]] = []
    selves: list[object] = []
    patterns: list[tuple[bool, tuple[str, ...] | None]] = []
    for _, _, call in calls:
        target = _wrapped.get(call)
        # The implementation itself, or a wrapper taking the hook's arguments.
        function, argnames = (call, None) if target is None else target
        if inspect.ismethod(function):
            # A plugin's method: its function with the plugin as first argument, which is what
            # calling the bound method does, without going through the bound method object.
            functions.append(function.__func__)
            selves.append(function.__self__)
            patterns.append((True, argnames))
        else:
            functions.append(function)
            selves.append(None)
            patterns.append((False, argnames))
    key = (spec, tuple(patterns))
    factory = _factories.get(key)
    if factory is None:
        factory = _factories[key] = _compile_observer(spec, patterns)
    regs = tuple(registry for _, registry, _ in calls)
    names = tuple(name for name, _, _ in calls)
    # A plain tuple of the calls for a Rest to go on with, not the CallList that will hold this runner (a cycle).
    observe: Callable[..., Rest | None] = factory(
        hook, tuple(calls), tuple(functions), tuple(selves), regs, names, Rest, _FATAL, _isawaitable
    )
    return observe


def _compile_observer(spec: tuple[str, ...], patterns: list[tuple[bool, tuple[str, ...] | None]]) -> Callable[..., Any]:
    params = ", ".join(spec)
    count = len(patterns)
    lines = [
        "def factory(_hook, _calls, _fs, _selves, _regs, _names, _Rest, _FATAL, _isawaitable):",
        "    " + "".join(f"_f{i}, " for i in range(count)) + "= _fs",
        "    " + "".join(f"_s{i}, " for i in range(count)) + "= _selves",
        "    " + "".join(f"_r{i}, " for i in range(count)) + "= _regs",
        "    " + "".join(f"_n{i}, " for i in range(count)) + "= _names",
        f"    def observe(_fail, {params}):",
    ]
    for i, (method, argnames) in enumerate(patterns):
        args = ", ".join(([f"_s{i}"] if method else []) + list(spec if argnames is None else argnames))
        lines += [
            "        try:",
            f"            _result = _f{i}({args})",
            "        except _FATAL:",
            "            raise",
            "        except BaseException as _exc:",
            f"            _r{i}.record_error(_n{i}, _exc)",
            f"            _fail(_hook, _n{i}, _exc)",
            "        else:",
            "            if _result is not None and _isawaitable(_result):",
            f"                return _Rest(_hook, _calls, ({params},), _fail, None, None, {i}, _result)",
        ]
    lines += ["        return None", "    return observe"]
    namespace: dict[str, Any] = {}
    # The names are the hook specification's own identifiers (checked by the caller) and numbered locals.
    exec("\n".join(lines), namespace)
    factory: Callable[..., Any] = namespace["factory"]
    return factory


@mypyc_attr(native_class=False)  # mypyc: native classes cannot inherit from tuple
class CallList(tuple[Call, ...]):
    """
    A hook's call list (a tuple of :data:`Call`) with, for observer hooks, its generated runner.

    ``observe(fail, *args)`` does what :func:`run` does with these calls when
    no message can be dropped and nothing stops them early; None elsewhere.
    """

    observe: Callable[..., Rest | None] | None = None


_NO_CALLS = CallList()

# Observer hooks: run() with no message and no stop condition, for every message.
OBSERVER_HOOKS = frozenset({"nbws_message_sent", "nbws_message_received"})


_specs: dict[str, tuple[str, ...]] = {}


def _spec(hook: str) -> tuple[str, ...]:
    """The argument names of ``hook``'s specification, in order."""
    found = _specs.get(hook)
    if found is None:
        from . import hookspecs

        found = _specs[hook] = tuple(inspect.signature(getattr(hookspecs, hook)).parameters)
    return found


@mypyc_attr(native_class=False)  # mypyc: native classes cannot inherit from dict
class _CallTable(dict[str, CallList]):
    """A hook's call list by hook name: looked up with one subscript, built on the first miss."""

    __slots__ = ("registries",)

    def __init__(self, registries: tuple[PluginRegistry, ...]) -> None:
        super().__init__()
        self.registries = registries  # not the Hooks: no reference cycle to wait for the garbage collector

    def __missing__(self, hook: str) -> CallList:
        result = self[hook] = _build(self.registries, hook)
        return result


def _build(registries: tuple[PluginRegistry, ...], hook: str) -> CallList:
    """The call list of ``hook`` over ``registries``: tryfirst, then the others, then trylast, each in registry order."""
    found: list[tuple[bool, bool, Call]] = []
    for registry in registries:
        found.extend(registry._calls(hook))
    if not found:
        return _NO_CALLS
    merged = [call for first, _, call in found if first]
    merged += [call for first, last, call in found if not first and not last]
    merged += [call for first, last, call in found if last and not first]
    result = CallList(merged)
    if hook in OBSERVER_HOOKS:
        result.observe = _observer(hook, result, _spec(hook))
    return result


@mypyc_attr(native_class=False)  # mypyc: native classes cannot be weakly referenced (registry._hook_sets is a WeakSet)
class Hooks:
    """
    The hooks of one endpoint: the plugins of several registries, most specific first, merged in call order.

    :meth:`calls` returns the cached call list of a hook; it is rebuilt after
    any change to one of this endpoint's registries (a plugin registered,
    removed, switched on or off), and to no other. On the message path the
    same lists are read as ``hooks._cache[hook]``: one subscript of a dict
    that stays the same object for the endpoint's life (cleared, not replaced).
    """

    __slots__ = ("__weakref__", "_cache", "registries")

    def __init__(self, *registries: PluginRegistry) -> None:
        self.registries = registries
        self._cache = _CallTable(registries)
        for registry in registries:
            registry._hook_sets.add(self)

    def invalidate(self) -> None:
        """Forget the cached call lists (a registry of this endpoint changed)."""
        self._cache.clear()

    def calls(self, hook: str) -> CallList:
        """The enabled implementations of ``hook``, in call order."""
        return self._cache[hook]

    def record_error(self, name: str, error: BaseException) -> None:
        """Count an error against the plugin ``name`` in the registry that holds it."""
        for registry in self.registries:
            if name in registry:
                registry.record_error(name, error)
                return


def run(
    hook: str,
    calls: tuple[Call, ...],
    args: tuple[Any, ...],
    fail: Fail,
    message: Message | None = None,
    *,
    until: Callable[[], bool] | None = None,
) -> Rest | None:
    """
    Call ``calls`` with ``args`` in order; return None when all ran, or the :class:`Rest` to await.

    With ``message``, stop once it is dropped; with ``until``, once it returns
    true. A fault is counted against its plugin, given to ``fail`` and does
    not stop the others.
    """
    if message is None and until is None:
        # Observers (the common case, for every message): nothing to check between two calls.
        observe = calls.observe if type(calls) is CallList else None
        if observe is not None:
            return observe(fail, *args)
        for index, entry in enumerate(calls):
            try:
                result = entry[2](*args)
            except _FATAL:
                raise
            except BaseException as exc:
                entry[1].record_error(entry[0], exc)
                fail(hook, entry[0], exc)
            else:
                if result is not None and _isawaitable(result):
                    return Rest(hook, calls, args, fail, None, None, index, result)
        return None
    for index, (name, registry, call) in enumerate(calls):
        try:
            result = call(*args)
        except _FATAL:
            raise
        except BaseException as exc:
            registry.record_error(name, exc)
            fail(hook, name, exc)
        else:
            if result is not None and _isawaitable(result):
                return Rest(hook, calls, args, fail, message, until, index, result)
        if (message is not None and message._dropped) or (until is not None and until()):
            break
    return None


class Rest:
    """
    What is left of a hook call once an implementation returned an awaitable: await :meth:`finish`.

    Awaiting the Rest itself finishes it with no stop future and no timeout.
    """

    __slots__ = ("args", "calls", "fail", "hook", "index", "message", "pending", "until")

    def __init__(
        self,
        hook: str,
        calls: tuple[Call, ...],
        args: tuple[Any, ...],
        fail: Fail,
        message: Message | None,
        until: Callable[[], bool] | None,
        index: int,
        pending: Awaitable[Any],
    ) -> None:
        self.hook = hook
        self.calls = calls
        self.args = args
        self.fail = fail
        self.message = message
        self.until = until
        self.index = index
        self.pending = pending

    def __await__(self) -> Generator[Any, None, None]:
        return self.finish().__await__()

    async def finish(
        self,
        stop: asyncio.Future[Any] | None = None,
        timeout: float | None = None,
        why: str = "",
        on_wait: Callable[[str | None], None] | None = None,
    ) -> None:
        """
        Await the pending implementation, then run the others (awaiting those that need it).

        ``stop``: once done, an implementation still running is cancelled and
        reported as stuck (``why`` says why, e.g. "the connection closed").
        ``timeout``: the seconds each awaited implementation may take.
        ``on_wait(name)`` is told which plugin is being awaited (None after).
        """
        hook, calls, args, fail, message, until = self.hook, self.calls, self.args, self.fail, self.message, self.until
        index = self.index
        pending: Awaitable[Any] | None = self.pending
        while True:
            name, registry, _ = calls[index]
            if pending is not None:
                if on_wait is not None:
                    on_wait(name)
                try:
                    await await_hook(pending, stop, timeout, why)
                except _FATAL:
                    raise
                except StuckHook as exc:
                    # A transform that never finished did not approve its message: it goes no further.
                    if message is not None:
                        message._dropped = True
                    registry.record_error(name, exc)
                    fail(hook, name, exc)
                except asyncio.CancelledError:
                    if _cancelling():
                        raise  # our own task is cancelled: not the plugin's doing
                    registry.record_error(name, asyncio.CancelledError())
                    fail(hook, name, asyncio.CancelledError(f"{hook} was cancelled"))
                except BaseException as exc:
                    registry.record_error(name, exc)
                    fail(hook, name, exc)
                finally:
                    if on_wait is not None:
                        on_wait(None)
                pending = None
            if (message is not None and message._dropped) or (until is not None and until()):
                return
            index += 1
            if index >= len(calls):
                return
            name, registry, call = calls[index]
            try:
                result = call(*args)
            except _FATAL:
                raise
            except BaseException as exc:
                registry.record_error(name, exc)
                fail(hook, name, exc)
            else:
                if result is not None and inspect.isawaitable(result):
                    pending = result


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (Python 3.11+; assume so on 3.10)."""
    task = asyncio.current_task()
    if task is None:
        return False
    cancelling = getattr(task, "cancelling", None)
    return True if cancelling is None else bool(cancelling())


async def await_hook(
    pending: Awaitable[Any], stop: asyncio.Future[Any] | None, timeout: float | None, why: str = ""
) -> Any:
    """
    Await one implementation's awaitable, abandoning it when ``stop`` is done or after ``timeout``.

    Raises :class:`StuckHook` when it was abandoned (it is cancelled, and
    nothing waits for it any more even if it ignores the cancellation).
    """
    if stop is None and timeout is None:
        return await pending
    future = asyncio.ensure_future(pending)
    if stop is not None and stop.done():
        waiters: set[asyncio.Future[Any]] = {future}
        timeout = 0
    else:
        waiters = {future} if stop is None else {future, stop}
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        future.cancel()
        raise
    if not future.done() and stop is not None and stop.done():
        # A hook that watches the same close (Intercept releasing what it holds) gets a moment to finish itself.
        await asyncio.wait({future}, timeout=_GRACE)
    if future.done():
        return future.result()
    future.cancel()
    future.add_done_callback(_retrieve)
    if stop is not None and stop.done():
        reason = stop.result() if not stop.cancelled() and isinstance(stop.result(), str) else why
        raise StuckHook(f"still running when {reason or 'it was stopped'}: cancelled")
    raise StuckHook(f"did not finish within {timeout:g} s: cancelled")


def run_all(hook: str, calls: tuple[Call, ...], args: tuple[Any, ...]) -> None:
    """
    Call every implementation of a notification hook and wait for none (``nbws_error``).

    Faults are counted and logged, never reported again (that could loop);
    an awaitable result runs as a task of its own, whose failure is logged too.
    """
    for name, registry, call in calls:
        try:
            result = call(*args)
        except _FATAL:
            raise
        except BaseException as exc:
            registry.record_error(name, exc)
            logger.error("%s hook of plugin %r raised", hook, name, exc_info=exc)
            continue
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
            task.add_done_callback(_Logged(hook, name, registry))


class _Logged:
    __slots__ = ("hook", "name", "registry")

    def __init__(self, hook: str, name: str, registry: PluginRegistry) -> None:
        self.hook = hook
        self.name = name
        self.registry = registry

    def __call__(self, task: asyncio.Future[Any]) -> None:
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        if error is not None:
            self.registry.record_error(self.name, error)
            logger.error("async %s hook of plugin %r raised", self.hook, self.name, exc_info=error)


# Keep notification tasks referenced until they finish (asyncio holds only weak references).
_tasks: set[asyncio.Future[Any]] = set()


@mypyc_attr(allow_interpreted_subclasses=True)  # public: a user may subclass it, compiled or not
@dataclass(frozen=True)
class HookResult:
    """What one implementation of a hook returned (``value``), or the error it raised (``error``)."""

    plugin: str
    value: Any = None
    error: BaseException | None = None


def collect(hook: str, calls: tuple[Call, ...], args: tuple[Any, ...]) -> list[HookResult]:
    """
    Call every implementation synchronously and return what each gave, in order.

    For hooks whose results the caller uses at once (``nbws_panel``). An
    implementation that raises, or returns an awaitable (which is closed, not
    awaited), is counted against its plugin and returned with its ``error``.
    """
    results = []
    for name, registry, call in calls:
        try:
            value = call(*args)
            if value is not None and inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError(f"{hook} must return its result at once, not an awaitable")
        except _FATAL:
            raise
        except BaseException as exc:
            registry.record_error(name, exc)
            results.append(HookResult(name, None, exc))
        else:
            results.append(HookResult(name, value))
    return results


def fault_message(hook: str, name: str, error: BaseException) -> str:
    """Say in words how plugin ``name`` failed in ``hook``."""
    if isinstance(error, StuckHook):
        return f"plugin {name!r} {hook} hook {error}"
    return f"plugin {name!r} failed in {hook}: {describe(error)}"


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
