"""
Small, composable transforms: plugins that edit or drop messages of one direction.

Each helper returns a :class:`Transform`, an ordinary plugin implementing
``nbws_message_send`` and ``nbws_message_receive`` with the core contract:
it edits ``message.data`` in place or calls ``message.drop()``. Register it
like any plugin::

    from nbws import transforms

    ws.plugins.register(transforms.map_text(str.upper, direction="send"))
    nbws.plugins.register(transforms.redact_keys(["password", "token"]))

Several transforms registered separately run in pluggy's order (the one
registered last runs first); :func:`chain` (or ``a | b``) makes one plugin
that applies them in the order written.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from ..events import Message
from ..hookspecs import hookimpl
from ..typing import Direction
from ._common import plugin_name

if TYPE_CHECKING:
    from ..codecs import Decoded

__all__ = [
    "Transform",
    "chain",
    "drop_if",
    "json_pretty",
    "keep_if",
    "map_binary",
    "map_decoded",
    "map_json",
    "map_text",
    "redact_keys",
    "transform",
]

Which = Direction | Literal["both"]


def _check_direction(direction: str) -> None:
    if direction not in ("send", "receive", "both"):
        raise ValueError(f"direction must be 'send', 'receive' or 'both', not {direction!r}")


class Transform:
    """
    A plugin that calls ``fn(message)`` on each message of ``direction``.

    ``fn`` edits the message in place (``message.data = ...``) or drops it
    (``message.drop()``); an ``async def`` one may also wait, which delays
    that connection's messages of that direction alone.

    Args:
        fn: The function to call with each :class:`nbws.Message`.
        direction: ``"send"``, ``"receive"`` or ``"both"``.
        name: The name it registers under (default: ``fn``'s name, made unique).
    """

    def __init__(self, fn: Callable[[Message], Any], direction: Which = "both", *, name: str | None = None) -> None:
        _check_direction(direction)
        if not callable(fn):
            raise TypeError(f"a transform needs a callable, not {type(fn).__name__}")
        self.fn = fn
        self.direction = direction
        self.__name__ = name or plugin_name(f"transform:{getattr(fn, '__name__', 'fn')}")

    def __repr__(self) -> str:
        return f"<Transform {self.__name__} {self.direction}>"

    def __call__(self, message: Message) -> Any:
        """Apply the transform to ``message`` if its direction matches (returns an awaitable for an async ``fn``)."""
        if self.direction != "both" and message.direction != self.direction:
            return None
        return self.fn(message)

    def __or__(self, other: Transform) -> Transform:
        """``a | b``: one transform applying ``a`` then ``b``."""
        return chain(self, other)

    @hookimpl
    def nbws_message_send(self, message: Message) -> Any:
        """Apply the transform to an outgoing message (hook)."""
        return self(message)

    @hookimpl
    def nbws_message_receive(self, message: Message) -> Any:
        """Apply the transform to an incoming message (hook)."""
        return self(message)


def transform(direction: Which = "both", *, name: str | None = None) -> Callable[[Callable[[Message], Any]], Transform]:
    """
    Make a :class:`Transform` of a function, as a decorator::

        @transforms.transform("receive")
        def tag(message):
            if not message.is_binary:
                message.data = "[server] " + message.data
    """

    def decorate(fn: Callable[[Message], Any]) -> Transform:
        return Transform(fn, direction, name=name)

    return decorate


def chain(*steps: Transform | Callable[[Message], Any], direction: Which = "both") -> Transform:
    """
    One transform applying ``steps`` in the order given, stopping once one drops the message.

    Each step is a :class:`Transform` (its own direction applies) or a plain
    ``fn(message)``; ``direction`` limits the whole chain.
    """
    _check_direction(direction)
    items = list(steps)
    for item in items:
        if not callable(item):
            raise TypeError(f"chain() takes transforms or functions, not {type(item).__name__}")

    def run(message: Message) -> Any:
        for index, item in enumerate(items):
            result = item(message)
            if inspect.isawaitable(result):
                return _finish(result, items[index + 1 :], message)
            if message.dropped:
                break
        return None

    names = "+".join(getattr(item, "__name__", "fn") for item in items)
    return Transform(run, direction, name=plugin_name(f"chain:{names}"))


async def _finish(pending: Awaitable[Any], rest: list[Any], message: Message) -> None:
    await pending
    for item in rest:
        if message.dropped:
            return
        result = item(message)
        if inspect.isawaitable(result):
            await result


def map_text(fn: Callable[[str], str | bytes], direction: Which = "both") -> Transform:
    """Replace the data of each text message by ``fn(data)``; binary messages pass unchanged."""

    def apply(message: Message) -> None:
        data = message.data
        if isinstance(data, str):
            message.data = fn(data)

    return Transform(apply, direction, name=plugin_name(f"map_text:{getattr(fn, '__name__', 'fn')}"))


def map_binary(fn: Callable[[bytes], str | bytes], direction: Which = "both") -> Transform:
    """Replace the data of each binary message by ``fn(data)``; text messages pass unchanged."""

    def apply(message: Message) -> None:
        data = message.data
        if isinstance(data, bytes):
            message.data = fn(data)

    return Transform(apply, direction, name=plugin_name(f"map_binary:{getattr(fn, '__name__', 'fn')}"))


def drop_if(predicate: Callable[[Message], bool], direction: Which = "both") -> Transform:
    """Drop each message for which ``predicate(message)`` is true."""

    def apply(message: Message) -> None:
        if predicate(message):
            message.drop()

    return Transform(apply, direction, name=plugin_name(f"drop_if:{getattr(predicate, '__name__', 'fn')}"))


def keep_if(predicate: Callable[[Message], bool], direction: Which = "both") -> Transform:
    """Drop each message for which ``predicate(message)`` is false."""

    def apply(message: Message) -> None:
        if not predicate(message):
            message.drop()

    return Transform(apply, direction, name=plugin_name(f"keep_if:{getattr(predicate, '__name__', 'fn')}"))


def _parse(message: Message) -> tuple[bool, Any]:
    data = message.data
    if not isinstance(data, str):
        return False, None
    try:
        return True, json.loads(data)
    except ValueError:
        return False, None


def map_json(fn: Callable[[Any], Any], direction: Which = "both", *, indent: int | None = None) -> Transform:
    """
    Replace each JSON text message by ``json.dumps(fn(value))``; other messages pass unchanged.

    ``fn`` gets the parsed value and returns the new one (it may change it in
    place and return it).
    """

    def apply(message: Message) -> None:
        ok, value = _parse(message)
        if ok:
            message.data = json.dumps(fn(value), ensure_ascii=False, indent=indent)

    return Transform(apply, direction, name=plugin_name(f"map_json:{getattr(fn, '__name__', 'fn')}"))


def json_pretty(direction: Which = "receive", *, indent: int = 2, sort_keys: bool = False) -> Transform:
    """Re-indent each JSON text message for reading; non-JSON messages pass unchanged."""

    def apply(message: Message) -> None:
        ok, value = _parse(message)
        if ok:
            message.data = json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys)

    return Transform(apply, direction, name=plugin_name("json_pretty"))


def redact_keys(
    keys: Iterable[str], direction: Which = "both", *, replacement: Any = "***", case_sensitive: bool = False
) -> Transform:
    """
    Replace the values of the given keys, at any depth, in each JSON text message.

    A message without those keys is left exactly as it was (not re-serialized);
    non-JSON and binary messages pass unchanged.
    """
    wanted = {key if case_sensitive else key.lower() for key in keys}
    if not wanted:
        raise ValueError("redact_keys() needs at least one key")

    def redact(value: Any) -> bool:
        found = False
        if isinstance(value, dict):
            for key in value:
                if (key if case_sensitive else key.lower()) in wanted:
                    value[key] = replacement
                    found = True
                elif redact(value[key]):
                    found = True
        elif isinstance(value, list):
            for item in value:
                found = redact(item) or found
        return found

    def apply(message: Message) -> None:
        ok, value = _parse(message)
        if ok and redact(value):
            message.data = json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    return Transform(apply, direction, name=plugin_name("redact_keys"))


def map_decoded(
    fn: Callable[[Decoded], Any],
    direction: Which = "both",
    *,
    protocol: str | None = None,
) -> Transform:
    """
    Edit messages through their decoded view (:mod:`nbws.codecs`) and re-encode them.

    ``fn(decoded)`` edits the view in place (``decoded.payload["qty"] = 2``,
    ``decoded.name = "sell"``) and returns None, or returns a new view.
    Only messages a codec decodes without error are given to it (of
    ``protocol`` only, if given: ``"socketio"``, ``"jsonrpc"``...); the others
    pass unchanged. The edited view is encoded back to the protocol's wire
    format; a view that cannot be encoded raises :class:`nbws.CodecError`,
    reported as this plugin's error, and the message goes on unchanged.
    """
    from ..codecs import Decoded

    def apply(message: Message) -> None:
        decoded = message.decoded
        if decoded is None or decoded.error is not None or (protocol is not None and decoded.protocol != protocol):
            return
        result = fn(decoded)
        view = result if isinstance(result, Decoded) else decoded
        data = view.encode()
        if data != message.data:
            message.data = data

    return Transform(apply, direction, name=plugin_name(f"map_decoded:{getattr(fn, '__name__', 'fn')}"))
