"""
Which event loop an endpoint lives on, and how to wait for it from anywhere.

An endpoint binds to the loop that is running where it is created: the
kernel's loop in a notebook cell, the loop of ``asyncio.run()`` in a program.
Created where no loop runs (a plain script or REPL), it binds to one
background loop that nbws starts in a daemon thread, so a server keeps serving
while the REPL waits for input.

Operations that take time return a :class:`Pending`: already under way, it can
be awaited where a loop runs, or waited for with :meth:`Pending.wait` from
synchronous code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

from .exceptions import TimeoutError

__all__ = ["Pending", "detached", "get_loop"]

T = TypeVar("T")

_background: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _background
    with _background_lock:
        if _background is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=run, name="nbws-loop", daemon=True).start()
            ready.wait()
            _background = loop
        return _background


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the loop running in this thread, or nbws's background loop if none runs."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return _background_loop()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, or None (without raising: it is called at every send)."""
    return asyncio.events._get_running_loop()


def detached(fn: Callable[..., T], *args: Any) -> T:
    """
    Call ``fn(*args)`` in a fresh, empty context, so that tasks it creates do not inherit the caller's.

    An endpoint's tasks run its handlers for as long as it lives. ipykernel
    keeps, in a context variable, the cell that output belongs to: a task
    created in a cell would send every later ``print`` of a handler to that
    cell, long finished (and lost by nbconvert and nbval). In an empty context
    ipykernel falls back to the cell running now, or the last one run, which
    is where a user looks.
    """
    return contextvars.Context().run(fn, *args)


def call_in_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn`` now if this thread runs ``loop``, else schedule it there thread-safely."""
    if running_loop() is loop:
        fn(*args)
    else:
        loop.call_soon_threadsafe(fn, *args)


async def _with_timeout(aw: Any, timeout: float | None) -> Any:
    if timeout is None:
        return await aw
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError as exc:
        raise TimeoutError(f"no result after {timeout:g} seconds") from exc


class Pending(Generic[T]):
    """
    An operation already under way on an endpoint's loop.

    Await it where a loop runs (a notebook cell, a coroutine); call
    :meth:`wait` from synchronous code (a script, a REPL, a widget callback).
    Not awaiting it is fine: the operation goes on, and a failure is reported
    through the endpoint's error event rather than lost.
    """

    __slots__ = ("_future", "_hint", "_loop", "_used", "_what")

    _future: asyncio.Future[T] | concurrent.futures.Future[T]

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, T],
        what: str,
        hint: str | None = None,
    ) -> None:
        self._loop = loop
        self._what = what
        self._hint = hint
        self._used = False
        fut: asyncio.Future[T] | concurrent.futures.Future[T]
        if running_loop() is loop:
            fut = loop.create_task(coro)
        else:
            fut = asyncio.run_coroutine_threadsafe(coro, loop)
        # A failure nobody awaits must not print "exception was never retrieved":
        # endpoints report it through their error event already.
        fut.add_done_callback(_retrieve)
        self._future = fut

    @classmethod
    def of_future(cls, loop: asyncio.AbstractEventLoop, future: asyncio.Future[T], what: str) -> Pending[T]:
        """A Pending for an operation already represented by a future of ``loop`` (made on that loop)."""
        self = cls.__new__(cls)
        self._loop = loop
        self._what = what
        self._hint = None
        self._used = False
        future.add_done_callback(_retrieve)
        self._future = future
        return self

    def __repr__(self) -> str:
        state = "done" if self._future.done() else "pending"
        return f"<Pending {self._what} {state}>"

    def __getattr__(self, name: str) -> Any:
        # Only for names a Pending does not have: most often the result's, used without 'await'.
        if name.startswith("_"):
            raise AttributeError(name)
        example = _EXAMPLES.get(self._what, "await it (result = await ...)")
        raise AttributeError(
            f"'Pending' object has no attribute {name!r}: did you forget 'await'? "
            f"{self._what} is still under way; {example}, or .wait() it in a script"
        )

    def __del__(self) -> None:
        if self._hint is not None and not self._used:
            import warnings

            warnings.warn(f"{self._what} was never awaited: {self._hint}", RuntimeWarning, stacklevel=2)

    def __await__(self) -> Generator[Any, None, T]:
        self._used = True
        running = running_loop()
        fut = self._future
        if isinstance(fut, concurrent.futures.Future):
            return asyncio.wrap_future(fut).__await__()
        if running is self._loop:
            return fut.__await__()
        # Awaited from another loop than the endpoint's: bridge through a thread-safe future.
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_await(fut), self._loop)).__await__()

    def done(self) -> bool:
        """Return whether the operation has finished, successfully or not."""
        self._used = True
        return self._future.done()

    def result(self) -> T:
        """Return the result of a finished operation, or raise its error."""
        self._used = True
        if not self._future.done():
            raise asyncio.InvalidStateError(f"{self._what} has not finished yet")
        return self._future.result()

    def wait(self, timeout: float | None = None) -> T:
        """
        Block until the operation finishes and return its result, or raise its error.

        From a thread where no loop runs this simply blocks. Called inside the
        endpoint's own running loop (a notebook cell) it runs the loop nested,
        through nest-asyncio2, until the operation is done.

        Raises:
            nbws.TimeoutError: if ``timeout`` seconds pass first.
        """
        self._used = True
        running = running_loop()
        fut = self._future
        if running is None:
            if isinstance(fut, concurrent.futures.Future):
                try:
                    return fut.result(timeout)
                except concurrent.futures.TimeoutError as exc:
                    raise TimeoutError(f"{self._what}: no result after {timeout:g} seconds") from exc
            if not self._loop.is_running():
                return self._loop.run_until_complete(_with_timeout(fut, timeout))  # type: ignore[no-any-return]
            bridge = asyncio.run_coroutine_threadsafe(_with_timeout(fut, timeout), self._loop)
            return bridge.result()  # type: ignore[no-any-return]
        if running is not self._loop:
            raise RuntimeError(f"cannot block on {self._what} inside another event loop: await it instead")
        import nest_asyncio2

        nest_asyncio2.apply(running)
        return running.run_until_complete(_with_timeout(_await(fut), timeout))  # type: ignore[no-any-return]


# What to write instead, by operation, for the "did you forget 'await'?" error.
_EXAMPLES = {
    "recv": "write 'message = await ws.recv()'",
    "opening": "write 'await ws.opened()'",
    "closing": "write 'await ws.closed()'",
}


async def _await(fut: Any) -> Any:
    return await fut


def _retrieve(fut: Any) -> None:
    if not fut.cancelled():
        fut.exception()
