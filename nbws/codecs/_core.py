"""
The codec machinery: the decoded view, the codec base class, per-connection
sessions that pick a codec and keep its state, and request/response correlation.

Nothing here runs on the message path. A message is decoded the first time
something asks for ``message.decoded`` (the log, a filter, a recording export,
a plugin); its connection's :class:`Session` is made then, picks a codec, and
keeps the state that protocol needs (attachments still to come, bytes of a
packet split across frames, requests waiting for their response).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from .._plugins import hookimpl
from ..exceptions import CodecError

if TYPE_CHECKING:
    from .._connection import BaseConnection
    from .._events import Message
    from .._plugins import PluginRegistry

__all__ = [
    "Codec",
    "Decoded",
    "Decoder",
    "Session",
    "available",
    "decode",
    "encode",
    "forget",
    "get",
    "session_for",
]

logger = logging.getLogger("nbws")

Data = str | bytes

# The common fields every decoded view has: the MessageLog's columns, the DataFrame's columns,
# the names a filter may use besides a protocol's own fields.
COMMON_FIELDS = ("protocol", "kind", "name", "id", "latency", "error")
"""The fields every decoded view has, whatever its protocol: filters and tables may always name them."""

# What a filter or a column may call the name: Socket.IO says event, JSON-RPC method, MQTT topic...
# Shown masked: a decoded view is displayed and exported, and must not spread credentials further.
_SECRET_FIELDS = frozenset({"password", "passcode", "authorization", "token"})

NAME_ALIASES = frozenset({"name", "event", "method", "topic", "destination", "type", "msg_type", "operation"})


class Decoded:
    """
    One message as its protocol sees it: the structured view behind ``message.decoded``.

    Fields whose name starts with ``_`` are the codec's bookkeeping (key
    order, correlation scope): kept for re-encoding, hidden from display.
    Credentials (``password``, ``passcode``) are masked in :meth:`to_dict`.

    Attributes:
        protocol: The codec that decoded it (``"socketio"``, ``"jsonrpc"``,
            ``"graphql-transport-ws"``, ``"mqtt"``...).
        kind: What the message is in that protocol: ``"request"``,
            ``"response"``, ``"event"``, ``"ack"``, ``"subscribe"``,
            ``"PUBLISH"``, ``"execute_request"``...
        name: The event, method, topic, destination or message type, or None.
            ``event``, ``method``, ``topic`` and ``destination`` are aliases.
        id: The correlation id (a JSON-RPC id, an ack id, a subscription id,
            a packet id, a parent ``msg_id``), or None.
        payload: The message's content as Python objects: params, event
            arguments, a GraphQL payload, an MQTT payload (``bytes``, or the
            parsed JSON/text when it is one), a kernel message's content.
        fields: Every other field the protocol defines (namespace, headers,
            QoS, flags, the Engine.IO packet type...), by name.
        role: ``"request"``, ``"response"`` or None: how it takes part in
            correlation. A response has ``latency`` and ``request`` once its
            request was decoded on the same connection.
        final: For a response, False when more responses to the same id may
            follow (GraphQL ``next``), True otherwise.
        latency: For a response, seconds since its request.
        request: For a response, the decoded request it answers.
        response: For a request, its first decoded response.
        error: Why the message could not be decoded, or None. A message that
            failed to decode still has ``protocol`` (the codec that tried) and
            ``kind == "invalid"``; nothing is raised.
        parts: Several messages carried in one frame (a JSON-RPC batch, MQTT
            packets merged in one WebSocket frame), each decoded.
        time: When the message was sent or received.
        direction: ``"send"`` or ``"receive"``.
    """

    __slots__ = (
        "codec",
        "direction",
        "error",
        "fields",
        "final",
        "id",
        "kind",
        "latency",
        "name",
        "parts",
        "payload",
        "protocol",
        "request",
        "response",
        "role",
        "time",
    )

    def __init__(
        self,
        protocol: str,
        kind: str,
        *,
        name: str | None = None,
        id: Any = None,
        payload: Any = None,
        fields: dict[str, Any] | None = None,
        role: str | None = None,
        final: bool = True,
        error: str | None = None,
        parts: list[Decoded] | None = None,
        codec: Codec | None = None,
    ) -> None:
        self.protocol = protocol
        self.kind = kind
        self.name = name
        self.id = id
        self.payload = payload
        self.fields: dict[str, Any] = fields if fields is not None else {}
        self.role = role
        self.final = final
        self.error = error
        self.parts: list[Decoded] = parts if parts is not None else []
        self.codec = codec
        self.latency: float | None = None
        self.request: Decoded | None = None
        self.response: Decoded | None = None
        self.time = 0.0
        self.direction = ""

    # The names people use for `name` in each protocol, so that `decoded.event` reads naturally.
    @property
    def event(self) -> str | None:
        """Alias of :attr:`name` (Socket.IO events)."""
        return self.name

    @property
    def method(self) -> str | None:
        """Alias of :attr:`name` (JSON-RPC methods)."""
        return self.name

    @property
    def topic(self) -> str | None:
        """Alias of :attr:`name` (MQTT topics)."""
        return self.name

    @property
    def destination(self) -> str | None:
        """Alias of :attr:`name` (STOMP destinations)."""
        return self.name

    @property
    def ok(self) -> bool:
        """True if the message decoded without error."""
        return self.error is None

    def get(self, field: str, default: Any = None) -> Any:
        """
        Return a field by name: a common one (``protocol``, ``kind``, ``id``...),
        an alias of the name (``event``, ``method``, ``topic``...), or one of
        :attr:`fields`; ``payload.x.y`` looks inside the payload.
        """
        if field in NAME_ALIASES:
            return self.name
        if field in ("protocol", "kind", "id", "latency", "error", "role", "payload"):
            return getattr(self, field)
        if field.startswith("payload."):
            value: Any = self.payload
            for key in field.split(".")[1:]:
                if isinstance(value, dict):
                    value = value.get(key, default)
                elif isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
                    value = value[int(key)]
                else:
                    return default
            return value
        return self.fields.get(field, default)

    def encode(self) -> Data:
        """
        Encode this view back to the data of one WebSocket message, in the
        protocol's exact wire format; edit the view first to change the message.

        Raises:
            CodecError: if the view cannot be encoded (it failed to decode, or
                an edit made it invalid for the protocol).
        """
        if self.error is not None:
            raise CodecError(f"cannot encode a message that failed to decode: {self.error}")
        if self.codec is None:
            raise CodecError(f"no codec to encode this {self.protocol} message")
        try:
            return self.codec.encode(self)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(f"cannot encode this {self.protocol} {self.kind}: {exc}") from exc

    def summary(self) -> str:
        """One line for a log: kind, name and id, plus latency or error."""
        if self.error is not None:
            return f"{self.protocol} invalid: {self.error}"
        text = f"{self.protocol} {self.kind}"
        if self.name is not None and self.name != self.kind:
            text += f" {self.name}"
        if self.id is not None:
            text += f" #{self.id}"
        if self.latency is not None:
            text += f" ({self.latency * 1000:.1f} ms)"
        if self.parts:
            text += f" [{len(self.parts)} parts]"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the view (no links to other views; bytes as ``{"base64": ...}``), for display and export."""
        record: dict[str, Any] = {"protocol": self.protocol, "kind": self.kind}
        for key in ("name", "id", "role", "latency", "error"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        if self.payload is not None:
            record["payload"] = jsonable(self.payload)
        fields = {k: ("…" if k in _SECRET_FIELDS else v) for k, v in self.fields.items() if not k.startswith("_")}
        if fields:
            record["fields"] = jsonable(fields)
        if self.parts:
            record["parts"] = [part.to_dict() for part in self.parts]
        return record

    def pretty(self) -> str:
        """The whole view as indented JSON, for a message's detail view."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=repr)

    def same(self, other: Decoded) -> bool:
        """True if ``other`` says the same thing: every field compared, links and timing ignored."""
        return (
            self.protocol == other.protocol
            and self.kind == other.kind
            and self.name == other.name
            and self.id == other.id
            and self.payload == other.payload
            and self.fields == other.fields
            and self.error == other.error
            and len(self.parts) == len(other.parts)
            and all(a.same(b) for a, b in zip(self.parts, other.parts, strict=True))
        )

    def __repr__(self) -> str:
        return f"<Decoded {self.summary()}>"


class Codec:
    """
    A protocol carried in WebSocket messages: recognise it, decode it, encode it.

    Subclass it and return an instance from the ``nbws_codecs`` hook. A codec
    is recognised on a connection by a label *and* the data: the subprotocol
    or URL only orders the candidates, and the first message that a
    candidate's :meth:`sniff` accepts picks it for that connection.

    Attributes:
        name: The protocol's name, as ``Decoded.protocol`` shows it.
        subprotocols: ``Sec-WebSocket-Protocol`` values that suggest it.
        url_hints: Substrings of a URL that suggest it (``"/socket.io/"``).
        priority: Among unlabelled candidates, higher sniffs first.
    """

    name: ClassVar[str] = ""
    subprotocols: ClassVar[tuple[str, ...]] = ()
    url_hints: ClassVar[tuple[str, ...]] = ()
    priority: ClassVar[int] = 0

    def sniff(self, data: Data) -> bool:
        """Return True if ``data`` looks like a message of this protocol (cheap: no full parse)."""
        raise NotImplementedError

    def new_state(self) -> Any:
        """Return a fresh state for one connection (None if the protocol needs none)."""
        return None

    def decode(self, data: Data, state: Any, direction: str = "send") -> Decoded:
        """
        Decode one message's data into a :class:`Decoded` view.

        ``state`` is what :meth:`new_state` returned for this connection, and
        ``direction`` (``"send"`` or ``"receive"``) says which way the message went.

        Raise :class:`nbws.CodecError` (or any exception) for data that is
        not valid in this protocol: the session turns it into a view with
        ``error`` set, never into an exception on the connection.
        """
        raise NotImplementedError

    def encode(self, decoded: Decoded) -> Data:
        """Encode a (possibly edited) view back to one message's data."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class _Pending:
    __slots__ = ("decoded", "time")

    def __init__(self, decoded: Decoded, time: float) -> None:
        self.decoded = decoded
        self.time = time


class Session:
    """
    The codec state of one connection: which codec, its state for each
    direction, and the requests still waiting for a response.

    Messages are decoded in the order they are asked for; everything that
    decodes for you (the log, recordings, filters) asks in arrival order.
    If a message fails to decode with the connection's codec but another codec
    recognises and decodes it, that codec takes over (unless :attr:`pinned`).
    """

    max_pending = 10_000

    def __init__(self, connection: str, *, subprotocol: str = "", url: str = "", codecs: list[Codec]) -> None:
        self.connection = connection
        self.subprotocol = subprotocol
        self.url = url
        self.codec: Codec | None = None
        self.pinned = False
        """True when the codec was set by hand (``session_for(..., codec=...)``): the data cannot change it."""
        self._candidates = _order(codecs, subprotocol, url)
        self._state: Any = None
        self._has_state = False
        self._pending: OrderedDict[tuple[str, Any], _Pending] = OrderedDict()

    def __repr__(self) -> str:
        return f"<Session {self.connection} {self.codec.name if self.codec else 'unrecognised'}>"

    def choose(self, data: Data) -> Codec | None:
        """Pick this connection's codec from ``data`` if none is picked yet; return it."""
        if self.codec is None:
            for codec in self._candidates:
                try:
                    if codec.sniff(data):
                        self.codec = codec
                        break
                except Exception:
                    logger.debug("codec %r raised in sniff", codec, exc_info=True)
        return self.codec

    def decode(self, data: Data, direction: str, time: float, *, previous: Decoded | None = None) -> Decoded | None:
        """
        Decode one message of this connection; None if no codec recognises the connection.

        With ``previous`` (the view of the same message before its data was
        edited), the new data is decoded on a copy of the state, so that the
        connection's state sees each message once, and keeps the previous
        view's correlation.
        """
        codec = self.choose(data)
        if codec is None:
            return None
        if not self._has_state:
            self._state, self._has_state = codec.new_state(), True
        state = self._state if previous is None else copy.deepcopy(self._state)
        try:
            decoded = codec.decode(data, state, direction)
        except Exception as exc:
            decoded = Decoded(codec.name, "invalid", error=_words(exc), codec=codec)
            if previous is None and not self.pinned:
                decoded, codec = self._switch(data, direction, decoded, codec)
        decoded.codec = codec
        decoded.time = time
        decoded.direction = direction
        for part in decoded.parts:
            part.codec = part.codec or codec
        if previous is None:
            self._correlate(decoded, direction, time)
        else:
            decoded.latency, decoded.request, decoded.response = previous.latency, previous.request, previous.response
            # An edited request still waiting for its response: the response will point at the edited view.
            for old, new in zip(previous.parts or (previous,), decoded.parts or (decoded,), strict=False):
                if old.role == "request" and new.role == "request":
                    pending = self._pending.get((direction, _key(old)))
                    if pending is not None and pending.decoded is old:
                        del self._pending[(direction, _key(old))]
                        self._pending[(direction, _key(new))] = _Pending(new, pending.time)
        return decoded

    def _switch(self, data: Data, direction: str, failed: Decoded, codec: Codec) -> tuple[Decoded, Codec]:
        # The data says the first guess was wrong (both GraphQL protocols open with connection_init, and a
        # recording keeps no subprotocol): another codec that recognises and decodes it takes over.
        for other in self._candidates:
            if other is codec:
                continue
            try:
                if not other.sniff(data):
                    continue
                state = other.new_state()
                decoded = other.decode(data, state, direction)
            except Exception:
                continue
            if decoded.error is None:
                self.codec, self._state = other, state
                return decoded, other
        return failed, codec

    def _correlate(self, decoded: Decoded, direction: str, time: float) -> None:
        for item in decoded.parts or (decoded,):
            item.time, item.direction = time, direction
            if item.role is None or (item.id is None and "_corr" not in item.fields):
                continue
            if item.role == "request":
                self._pending[(direction, _key(item))] = _Pending(item, time)
                while len(self._pending) > self.max_pending:
                    self._pending.popitem(last=False)
            elif item.role == "response":
                other = "receive" if direction == "send" else "send"
                key = (other, _key(item))
                pending = self._pending.get(key)
                if pending is None:
                    continue
                if item.final:
                    del self._pending[key]
                item.latency = time - pending.time
                item.request = pending.decoded
                if pending.decoded.response is None:
                    pending.decoded.response = item
        if decoded.parts and decoded.latency is None:
            latencies = [p.latency for p in decoded.parts if p.latency is not None]
            if latencies:
                decoded.latency = max(latencies)

    @property
    def pending(self) -> list[Decoded]:
        """Requests decoded on this connection that have no (final) response yet, oldest first."""
        return [p.decoded for p in self._pending.values()]


def jsonable(value: Any) -> Any:
    """``value`` with bytes as ``{"base64": ...}`` and tuples as lists, so that ``json.dumps`` takes it."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _key(decoded: Decoded) -> Any:
    # Correlation is within one protocol's id space; a codec may scope it (a Socket.IO namespace).
    # A message with no id of its own (a connect, a ping) is paired by a key the codec sets in _corr.
    scope = decoded.fields.get("_scope")
    return (scope, str(decoded.fields.get("_corr", decoded.id)))


def _words(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, CodecError) else f"{type(exc).__name__}: {text}"


def _url_hint(conn: Any) -> str:
    """What of a connection's URL a codec's ``url_hints`` look at: a client's URL, a server-side connection's path."""
    url = getattr(conn, "url", None)
    if isinstance(url, str):
        return url
    request = getattr(conn, "request", None)
    return str(getattr(request, "path", "") or "")


def _order(codecs: Iterable[Codec], subprotocol: str, url: str) -> list[Codec]:
    # Labels order the candidates, they never decide alone: every candidate must still sniff the data.
    def rank(codec: Codec) -> tuple[int, int]:
        label = 0
        if subprotocol and subprotocol in codec.subprotocols:
            label = 2
        elif url and any(hint in url for hint in codec.url_hints):
            label = 1
        return (-label, -codec.priority)

    return sorted(codecs, key=rank)


# -- the registry of codecs ---------------------------------------------------------------------

_builtin: list[Codec] | None = None
_cache: tuple[int, list[Codec]] | None = None


def _builtins() -> list[Codec]:
    global _builtin
    if _builtin is None:
        from . import builtin

        _builtin = builtin.codecs()
    return _builtin


def available(registry: PluginRegistry | None = None) -> list[Codec]:
    """
    The codecs in use: those returned by the ``nbws_codecs`` hook of the
    plugins in ``registry`` (default: ``nbws.plugins``), then nbws's built-in ones.

    A plugin's codec with the same name as a built-in one replaces it.
    """
    global _cache
    from .._plugins import plugins as global_plugins

    registry = registry if registry is not None else global_plugins
    if registry is global_plugins and _cache is not None and _cache[0] == registry.version:
        return _cache[1]
    found: list[Codec] = []
    for impl in registry.impls("nbws_codecs"):
        try:
            result = impl.call({})
        except Exception as exc:
            registry.record_error(impl.plugin_name, exc)
            logger.warning("plugin %r raised in nbws_codecs: %s", impl.plugin_name, exc)
            continue
        if result is None:
            continue
        items = [result] if isinstance(result, Codec) else list(result)
        for item in items:
            if not isinstance(item, Codec):
                logger.warning("plugin %r returned %r from nbws_codecs, not a Codec", impl.plugin_name, item)
                continue
            found.append(item)
    names = {codec.name for codec in found}
    found += [codec for codec in _builtins() if codec.name not in names]
    if registry is global_plugins:
        _cache = (registry.version, found)
    return found


def get(name: str) -> Codec:
    """Return the codec in use named ``name``."""
    for codec in available():
        if codec.name == name:
            return codec
    known = ", ".join(codec.name for codec in available())
    raise CodecError(f"no codec named {name!r} (codecs: {known})")


# -- sessions, by connection id -----------------------------------------------------------------

_MAX_SESSIONS = 4096
_sessions: OrderedDict[str, Session] = OrderedDict()
_connections: weakref.WeakValueDictionary[str, BaseConnection] = weakref.WeakValueDictionary()


def track(conn: BaseConnection) -> None:
    """Remember a live connection so that its messages are decoded with its subprotocol and URL."""
    _connections[conn.id] = conn
    _sessions.pop(conn.id, None)  # a client that reconnects starts a new protocol session


def session_for(
    connection: str | BaseConnection,
    *,
    subprotocol: str | None = None,
    url: str | None = None,
    codec: str | Codec | None = None,
) -> Session:
    """
    Return the codec session of a connection (by object or id), making it on first use.

    Args:
        connection: A connection or its id (a recording's connection ids work too).
        subprotocol, url: Labels that suggest a codec, when the connection
            object is not at hand (read from it otherwise).
        codec: Force this codec (by name or object) instead of recognising one.
    """
    conn_id = connection if isinstance(connection, str) else connection.id
    session = _sessions.get(conn_id)
    if session is None or codec is not None:
        conn = _connections.get(conn_id) if isinstance(connection, str) else connection
        if conn is not None:
            subprotocol = subprotocol if subprotocol is not None else conn.protocol
            url = url if url is not None else _url_hint(conn)
        session = Session(conn_id, subprotocol=subprotocol or "", url=url or "", codecs=available())
        if codec is not None:
            session.codec = get(codec) if isinstance(codec, str) else codec
            session.pinned = True
        _sessions[conn_id] = session
        while len(_sessions) > _MAX_SESSIONS:
            _sessions.popitem(last=False)
    else:
        _sessions.move_to_end(conn_id)
    return session


def forget(connection: str | BaseConnection | None = None) -> None:
    """Forget the codec session of one connection (all of them with no argument): its state starts afresh."""
    if connection is None:
        _sessions.clear()
    else:
        _sessions.pop(connection if isinstance(connection, str) else connection.id, None)


def decode(message: Message, conn: BaseConnection | None = None) -> Decoded | None:
    """
    Decode ``message`` with its connection's codec; None if no codec recognises it.

    The result is kept on the message (``message.decoded`` returns it) until
    its data changes. Never raises for bad data: the view's ``error`` says
    what was wrong.
    """
    cached = message._decoded
    if cached is not None and cached[0] is message.data:
        return cached[1]
    if conn is not None and _connections.get(conn.id) is not conn:
        track(conn)
    session = session_for(conn if conn is not None else message.connection)
    previous = cached[1] if cached is not None else None
    if cached is not None and previous is None:  # edited, but no codec knew it before: still none
        message._decoded = (message.data, None)
        return None
    try:
        decoded = session.decode(message.data, message.direction, message.time, previous=previous)
    except Exception as exc:  # a faulty codec must not break whoever asked
        logger.warning("codec session %r raised: %s", session, exc, exc_info=True)
        decoded = None
    message._decoded = (message.data, decoded)
    return decoded


def encode(decoded: Decoded) -> Data:
    """Encode a (possibly edited) decoded view to message data: ``decoded.encode()``."""
    return decoded.encode()


def walk(decoded: Decoded) -> Iterator[Decoded]:
    """The view itself, then each of its parts."""
    yield decoded
    yield from decoded.parts


class Decoder:
    """
    A plugin that decodes every message of its endpoint as it passes, in order.

    ``message.decoded`` is lazy: a message nobody asks about is never decoded.
    Correlation (a response's ``latency`` and ``request``) and protocols with
    state (Socket.IO attachments, MQTT packets split across messages) need the
    messages decoded in the order they went; a :class:`nbws.MessageLog` does
    that for the endpoints it follows, and so does this plugin::

        ws.plugins.register(nbws.codecs.Decoder())

    It observes (``nbws_message_sent`` and ``nbws_message_received``, first
    among observers), so it decodes each message once, as it finally went,
    after any transform or intercept edited it, and it keeps nbws's fast send
    path. Handlers that read ``message.decoded`` earlier simply decode it
    first; the result is kept either way. It uses the connection's
    subprotocol and URL to pick the codec, and costs one decode per message.
    """

    @hookimpl(tryfirst=True)
    def nbws_open(self, conn: BaseConnection) -> None:
        track(conn)

    @hookimpl(tryfirst=True)
    def nbws_message_sent(self, conn: BaseConnection, message: Message) -> None:
        if not message.dropped:
            decode(message, conn)

    @hookimpl(tryfirst=True)
    def nbws_message_received(self, conn: BaseConnection, message: Message) -> None:
        if not message.dropped:
            decode(message, conn)
