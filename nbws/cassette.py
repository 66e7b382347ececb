"""
Cassettes: record a WebSocket session once, replay it in every test after.

``nbws.cassette(path, mode=...)`` is a context manager (``with`` or ``async
with``) around a local server on 127.0.0.1:

* **replay**: a :class:`nbws.FakeServer` plays the server's side of the
  recorded session to the code under test;
* **record**: the same server is a proxy, through nbws, to the real upstream:
  everything both ways is recorded and written to ``path`` when the cassette
  ends, with secrets redacted first.

Record modes, as in vcrpy and pytest-recording:

``"once"`` (the default)
    replay if the cassette exists, else record it.
``"none"``
    replay only; a missing cassette is a :class:`nbws.CassetteError`.
``"new_episodes"``
    replay the recorded connections; further connections go to the upstream
    and are recorded and appended.
``"all"``
    always record, replacing the cassette.

The code under test reaches the cassette through :attr:`Cassette.url`, or,
when its URL is baked in, through ``route=["api.example.com"]``: while the
cassette is active, ``websockets``' ``connect`` (every way of calling it:
``websockets.connect``, ``from websockets.asyncio.client import connect``),
websocket-client's ``create_connection`` / ``WebSocket.connect`` /
``WebSocketApp`` and :class:`nbws.WebSocket` connecting to those hosts are sent
to the cassette's server instead (TLS options dropped: it is plain ``ws://`` on
loopback). Nothing else is touched, and all of it is undone when the cassette
ends.

Redaction happens before anything is written. Handshake headers are never
written; the values of ``redact_headers`` (``Authorization``, ``Cookie``,
``Proxy-Authorization`` by default) and ``redact_query`` parameters (``token``,
``access_token``, ``api_key`` by default) are replaced with ``REDACTED``
wherever they appear (URLs, messages, close reasons, errors), and so are the
values of the JSON keys in ``redact_keys`` in every message. A ``REDACTED``
value in a recorded client message matches any value at replay time.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import importlib.util
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ._connection import OPEN
from ._events import Message
from ._loop import Pending, running_loop
from .exceptions import CassetteError, MismatchError
from .fake import REDACTED, CloseMode, FakeServer, MatchFunction, messages_match
from .recording import PathLike, Recorder, Recording
from .server import Connection, Request

__all__ = [
    "DEFAULT_REDACT_HEADERS",
    "DEFAULT_REDACT_QUERY",
    "RECORD_MODES",
    "Cassette",
    "RecordMode",
    "cassette",
    "redact_recording",
]

logger = logging.getLogger("nbws")

RecordMode = Literal["once", "none", "new_episodes", "all"]
"""When a cassette records and when it replays (vcrpy's record modes; see :class:`Cassette`)."""
RECORD_MODES: tuple[RecordMode, ...] = ("once", "none", "new_episodes", "all")
"""The record modes, as vcrpy names them."""

DEFAULT_REDACT_HEADERS: tuple[str, ...] = ("Authorization", "Cookie", "Proxy-Authorization")
"""Handshake headers whose values never reach a cassette."""

DEFAULT_REDACT_QUERY: tuple[str, ...] = ("token", "access_token", "api_key")
"""Query parameters whose values never reach a cassette."""

# The handshake headers websockets writes itself: never forwarded upstream.
_HOP_HEADERS = {
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "origin",
    "content-length",
    "user-agent",
}
_ROUTE_PREFIX = "/__nbws_route__/"
_MIN_SECRET = 4  # shorter values would blank out ordinary text

# Set while a cassette's proxy opens its upstream connection: the route must not send it back to the proxy.
_BYPASS: contextvars.ContextVar[bool] = contextvars.ContextVar("nbws_cassette_bypass", default=False)


# -- redaction ---------------------------------------------------------------------


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_url(url: str, query_names: set[str], secrets: Sequence[str]) -> str:
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if k.lower() in query_names else v) for k, v in pairs], safe=REDACTED)
    return _scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), secrets)


def _redact_json(value: Any, keys: set[str], found: list[str]) -> Any:
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key.lower() in keys and item is not None:
                if isinstance(item, str):
                    found.append(item)
                result[key] = REDACTED
            else:
                result[key] = _redact_json(item, keys, found)
        return result
    if isinstance(value, list):
        return [_redact_json(item, keys, found) for item in value]
    return value


def _redact_data(data: str | bytes, keys: set[str], secrets: Sequence[str], found: list[str]) -> str | bytes:
    if isinstance(data, bytes):
        for secret in secrets:
            data = data.replace(secret.encode(), REDACTED.encode())
        return data
    if keys and data.lstrip().startswith(("{", "[")):
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            value = None
        if value is not None:
            before = len(found)
            redacted = _redact_json(value, keys, found)
            if len(found) > before or redacted != value:
                compact = '": ' not in data and '", ' not in data
                data = json.dumps(redacted, ensure_ascii=False, separators=(",", ":") if compact else None)
    return _scrub(data, secrets)


def redact_recording(
    recording: Recording,
    *,
    secrets: Sequence[str] = (),
    query: Sequence[str] = DEFAULT_REDACT_QUERY,
    keys: Sequence[str] = (),
) -> Recording:
    """
    Return a copy of ``recording`` with its secrets replaced by ``"REDACTED"``.

    Args:
        recording: What to redact.
        secrets: Values to replace wherever they appear (header values, tokens).
        query: Query parameters of URLs whose values are replaced.
        keys: JSON keys (any depth, case-insensitive) whose values are
            replaced in every message; their string values are then also
            replaced wherever else they appear.
    """
    key_set = {k.lower() for k in keys}
    query_set = {q.lower() for q in query}
    found: list[str] = []
    # First pass: the values of secret JSON keys join the secrets to scrub everywhere.
    for event in recording:
        if event.type == "message" and event.data is not None:
            _redact_data(event.data, key_set, (), found)
        if event.url:
            found += [v for k, v in parse_qsl(urlsplit(event.url).query) if k.lower() in query_set]
    every = sorted({s for s in [*secrets, *found] if len(s) >= _MIN_SECRET and s != REDACTED}, key=len, reverse=True)
    events = []
    for event in recording:
        changes: dict[str, Any] = {}
        if event.type == "message" and event.data is not None:
            changes["data"] = _redact_data(event.data, key_set, every, [])
            if event.original is not None:
                changes["original"] = _redact_data(event.original, key_set, every, [])
        if event.url:
            changes["url"] = _redact_url(event.url, query_set, every)
        if event.reason:
            changes["reason"] = _scrub(event.reason, every)
        if event.error:
            changes["error"] = _scrub(event.error, every)
        events.append(dataclasses.replace(event, **changes) if changes else event)
    return Recording(events)


def _header_secrets(request: Request, names: set[str]) -> list[str]:
    secrets = []
    for name, value in request.headers.raw_items():
        if name.lower() in names and value:
            secrets.append(value)
            scheme, _, credentials = value.partition(" ")
            if credentials and scheme.isalpha():
                secrets.append(credentials.strip())  # "Bearer abc": abc alone may show up elsewhere
    return secrets


# -- routing -----------------------------------------------------------------------


def _route_matches(host: str | None, port: int | None, route: Sequence[str]) -> bool:
    if host is None:
        return False
    for entry in route:
        if entry == "*":
            return True
        want_host, _, want_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if want_host.lower() == host.lower() and (not want_port or (port is not None and str(port) == want_port)):
            return True
    return False


@contextmanager
def _routing(route: Sequence[str], target: Callable[[], str]) -> Iterator[None]:
    """Send connections to ``route`` hosts to ``target()`` (a ws://127.0.0.1:PORT base) while active."""
    from websockets.asyncio.client import connect as ws_connect

    from .client import WebSocket

    def rewrite(url: str) -> str:
        if _BYPASS.get() or not isinstance(url, str):
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not _route_matches(parts.hostname, parts.port, route):
            return url
        origin = quote(f"{parts.scheme}/{parts.netloc}", safe="")
        return f"{target()}{_ROUTE_PREFIX}{origin}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")

    undo: list[Callable[[], None]] = []

    def patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name]
        setattr(owner, name, make(original))
        undo.append(lambda: setattr(owner, name, original))

    def websockets_init(original: Any) -> Any:
        def __init__(self: Any, uri: str, *args: Any, **kwargs: Any) -> None:
            routed = rewrite(uri)
            if routed != uri:
                kwargs.pop("ssl", None)
                kwargs.pop("server_hostname", None)
            original(self, routed, *args, **kwargs)

        return __init__

    def nbws_init(original: Any) -> Any:
        def __init__(self: Any, url: str, *args: Any, **kwargs: Any) -> None:
            original(self, rewrite(url), *args, **kwargs)

        return __init__

    patch(ws_connect, "__init__", websockets_init)
    patch(WebSocket, "__init__", nbws_init)
    if importlib.util.find_spec("websocket") is not None:
        import websocket  # websocket-client: create_connection and WebSocketApp both call WebSocket.connect

        def client_connect(original: Any) -> Any:
            def connect(self: Any, url: str, **options: Any) -> Any:
                routed = rewrite(url)
                if routed != url:
                    options.pop("sslopt", None)
                    self.sock_opt.sslopt = {}
                return original(self, routed, **options)

            return connect

        patch(websocket.WebSocket, "connect", client_connect)
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


def _unroute(path: str) -> tuple[str | None, str]:
    """Split a routed request path into the original ``scheme://netloc`` and the path."""
    if not path.startswith(_ROUTE_PREFIX):
        return None, path
    origin, _, rest = path[len(_ROUTE_PREFIX) :].partition("/")
    scheme, _, netloc = unquote(origin).partition("/")
    return f"{scheme}://{netloc}", "/" + rest


# -- the cassette ------------------------------------------------------------------


class Cassette:
    """
    A recorded WebSocket session the code under test talks to: replayed, or recorded on first use.

    Use :func:`nbws.cassette` (a context manager) or, in pytest, the
    ``nbws_cassette`` fixture. See the module docstring for the modes, routing
    and redaction.

    Args:
        path: The cassette file: nbws JSON lines (``.jsonl``) or HAR (``.har``).
        mode: ``"once"``, ``"none"``, ``"new_episodes"`` or ``"all"``.
        upstream: The real server's URL to record from. Needed to record,
            unless ``route`` sends clients with their own URLs.
        route: Hosts (``"api.example.com"``, ``"host:port"``, ``"*"`` for
            all) whose connections are sent to the cassette while it is active.
        match, keys, ignore, speed, close, on_unmatched: How the fake server
            replays (see :class:`nbws.FakeServer`).
        redact_headers: Handshake headers whose values are secrets.
        redact_query: Query parameters whose values are secrets.
        redact_keys: JSON keys whose values are secrets, in every message.
        all_played: :meth:`check` also fails when a recorded client message
            was never sent.
        protocols: Subprotocols the cassette's server accepts (browsers
            fail a connection whose server picks none of those they offer).

    Attributes:
        path: The cassette file.
        mode: The record mode asked for.
        recording: The recording being replayed (empty when recording from scratch).
        recorded: What was recorded this time, redacted (empty when replaying).
        fake: The :class:`nbws.FakeServer` serving the clients.
        errors: Problems of the recording side (an unreachable upstream).
    """

    def __init__(
        self,
        path: PathLike,
        *,
        mode: RecordMode = "once",
        upstream: str | None = None,
        route: Sequence[str] = (),
        match: Literal["reactive", "order"] | Sequence[str] | MatchFunction = "reactive",
        keys: Sequence[str] | None = None,
        ignore: Sequence[str] = (),
        speed: float = 1.0,
        close: CloseMode = "auto",
        on_unmatched: Literal["close", "ignore"] = "close",
        redact_headers: Sequence[str] = DEFAULT_REDACT_HEADERS,
        redact_query: Sequence[str] = DEFAULT_REDACT_QUERY,
        redact_keys: Sequence[str] = (),
        all_played: bool = True,
        protocols: Sequence[str] | None = None,
    ) -> None:
        if mode not in RECORD_MODES:
            raise CassetteError(f"record mode must be one of {', '.join(RECORD_MODES)}, not {mode!r}")
        for name, value in (("route", route), ("redact_headers", redact_headers), ("redact_query", redact_query)):
            if isinstance(value, str):
                raise CassetteError(f"{name} takes a list of names, not one string: [{value!r}]")
        if isinstance(redact_keys, str):
            raise CassetteError(f"redact_keys takes a list of names, not one string: [{redact_keys!r}]")
        if upstream is not None:
            parts = urlsplit(upstream)
            if parts.scheme not in ("ws", "wss") or not parts.netloc:
                raise CassetteError(f"upstream must be a ws:// or wss:// URL, not {upstream!r}")
        self.path = Path(path)
        self.mode: RecordMode = mode
        self.upstream = upstream
        self.route = list(route)
        self.redact_headers = [h.lower() for h in redact_headers]
        self.redact_query = list(redact_query)
        self.redact_keys = list(redact_keys)
        self.all_played = all_played
        self.errors: list[str] = []
        exists = self.path.exists()
        if mode == "none" and not exists:
            raise CassetteError(
                f"cassette {self.path} does not exist and the record mode is 'none': "
                "record it first (mode 'once', or --nbws-record-mode=once in pytest)"
            )
        replaying = exists and mode in ("once", "none", "new_episodes")
        self.recording = Recording.load(self.path) if replaying else Recording()
        self._records = not replaying or mode == "new_episodes"
        self.recorded = Recording()
        self._recorder = Recorder()
        self._proxied: dict[str, str] = {}  # server connection id -> upstream URL
        self._secrets: list[str] = []
        self._upstreams: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.fake = FakeServer(
            self.recording,
            match=match,
            keys=keys,
            ignore=ignore,
            speed=speed,
            close=close,
            on_unmatched=on_unmatched,
            secret_keys=self.redact_keys,
            _extra=self._proxy if self._records else None,
            protocols=protocols,
        )
        self._loop = self.fake._loop
        self.fake.on("error", lambda conn, event: None)  # reported by check() at the end, not logged as unheard
        if self._records:
            self.fake.server.plugins.register(self._recorder)
        self._route_context: Any = None
        self._cursors = {"sent": 0, "received": 0}
        self._started = False
        self._stopped = False

    def __repr__(self) -> str:
        what = "recording" if self.recording_now else "replaying"
        return f"<Cassette {self.path} mode={self.mode} {what}>"

    # -- what tests use ------------------------------------------------------------

    @property
    def recording_now(self) -> bool:
        """True when new connections are recorded from the upstream (not replayed)."""
        return self._records and not len(self.recording)

    @property
    def url(self) -> str:
        """
        The URL to give the code under test.

        Replaying: the fake server with the recorded path (see
        :attr:`nbws.FakeServer.url`). Recording: the proxy with ``upstream``'s
        path and query.
        """
        if self.recording_now or (self._records and self.upstream and not self.fake.scripts):
            if self.upstream is None:
                return self.fake.server.url
            parts = urlsplit(self.upstream)
            return self.fake.server.url.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self.fake.url

    @property
    def sent(self) -> list[Message]:
        """The messages the code under test sent, in order (received by the cassette's server)."""
        return self.fake.received

    @property
    def received(self) -> list[Message]:
        """The messages the code under test was sent, in order."""
        return self.fake.sent

    def expect_message(
        self,
        match: str | bytes | dict[str, Any] | Callable[[Message], bool],
        *,
        timeout: float = 5.0,
        direction: Literal["sent", "received"] = "sent",
    ) -> Pending[Message]:
        """
        Wait for the next message the code under test sends (or, ``direction="received"``, is sent) matching ``match``.

        ``match`` is the message itself (JSON compared by value), a dict of
        JSON fields it must have (nested dicts compare as subsets), or a
        function of the :class:`nbws.Message`. Each call looks after the
        message the previous call found, so calls in a row check an order.
        Await the result, or ``.wait()`` on it in a synchronous test.

        Raises:
            nbws.MismatchError: after ``timeout`` seconds, listing what came instead.
        """
        test = _matcher(match)
        pool = self.sent if direction == "sent" else self.received
        cursors = self._cursors

        async def wait() -> Message:
            deadline = self._loop.time() + timeout
            while True:
                for index in range(cursors[direction], len(pool)):
                    if test(pool[index]):
                        cursors[direction] = index + 1
                        return pool[index]
                left = deadline - self._loop.time()
                if left <= 0:
                    seen = pool[cursors[direction] :]
                    shown = "\n".join(f"    {m.data!r}" for m in seen[-10:]) or "    (nothing)"
                    raise MismatchError(
                        [
                            f"no message {'sent by' if direction == 'sent' else 'sent to'} the client matched "
                            f"{match!r} within {timeout:g} seconds\n  expected: {match!r}\n  received:\n{shown}"
                        ]
                    )
                await self.fake._wait_change(left)

        return Pending(self._loop, wait(), "expect_message")

    def assert_no_message(
        self, within: float = 0.5, *, direction: Literal["sent", "received"] = "sent"
    ) -> Pending[None]:
        """
        Fail if the code under test sends (or is sent) any message in the next ``within`` seconds.

        Raises:
            nbws.MismatchError: naming the message that came.
        """
        pool = self.sent if direction == "sent" else self.received
        start = len(pool)

        async def wait() -> None:
            await asyncio.sleep(within)
            if len(pool) > start:
                raise MismatchError(
                    [
                        f"expected no message within {within:g} seconds\n  expected: nothing\n  received: {pool[start].data!r}"
                    ]
                )

        return Pending(self._loop, wait(), "assert_no_message")

    def check(self) -> None:
        """
        Fail with every problem: unexpected messages, recorded ones never sent (``all_played``), upstream errors.

        Raises:
            nbws.MismatchError: (an AssertionError) with expected and received side by side.
        """
        problems = list(self.errors) + list(self.fake.problems)
        if self.all_played and len(self.recording):
            problems += self.fake.unplayed
        if problems:
            raise MismatchError(problems)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Cassette:
        """Start serving (and routing); called by ``with``. The URL is known when it returns."""
        if self._started:
            return self
        self._started = True
        starting = self.fake.start()
        if running_loop() is None:
            starting.wait()
        if self.route:
            self._route_context = _routing(self.route, lambda: self.fake.server.url.rstrip("/"))
            self._route_context.__enter__()
        return self

    def stop(self) -> Recording:
        """
        Stop serving, undo the routing, and write what was recorded (redacted); return that.

        Called by ``with`` on exit; a second call does nothing.
        """
        if self._stopped or not self._started:
            return self.recorded
        self._stopped = True
        try:
            if self._route_context is not None:
                self._route_context.__exit__(None, None, None)
        finally:
            Pending(self._loop, self._shutdown(), "stopping cassette").wait()
            self._write()
        return self.recorded

    async def _shutdown(self) -> None:
        for upstream in list(self._upstreams):
            await upstream.close()
        await self.fake.stop()
        for task in list(self._tasks):
            task.cancel()

    def _write(self) -> None:
        if not self._records or not self._proxied:
            return
        recorded = self._recorder.recording.filter(connection=list(self._proxied))
        taken = set(self.recording.connections)
        names: dict[str, str] = {}
        for connection in recorded.connections:
            number = len(taken) + 1
            while f"c{number}" in taken:
                number += 1
            names[connection] = f"c{number}"
            taken.add(f"c{number}")
        events = []
        for event in recorded:
            # Written as the client saw it (as browsers' HAR files are): "send" is what the client sent.
            changes: dict[str, Any] = {"connection": names[event.connection], "role": "client"}
            if event.type == "open":
                changes["url"] = self._proxied[event.connection]
            if event.direction is not None:
                changes["direction"] = "send" if event.direction == "receive" else "receive"
            events.append(dataclasses.replace(event, **changes))
        self.recorded = redact_recording(
            Recording(events), secrets=self._secrets, query=self.redact_query, keys=self.redact_keys
        )
        everything = Recording([*self.recording, *self.recorded]) if self.mode == "new_episodes" else self.recorded
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        if self.path.suffix.lower() == ".har":
            everything.to_har(tmp)
        else:
            everything.save(tmp)
        os.replace(tmp, self.path)

    def __enter__(self) -> Cassette:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    async def __aenter__(self) -> Cassette:
        self.start()
        await self.fake.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if self._route_context is not None:
            self._route_context.__exit__(None, None, None)
            self._route_context = None
        if not self._stopped:
            self._stopped = True
            await Pending(self._loop, self._shutdown(), "stopping cassette")
            self._write()
        if exc_type is None:
            self.check()

    # -- recording through the proxy --------------------------------------------------

    async def _proxy(self, request: Request) -> Callable[[Connection], None] | None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        origin, path = _unroute(request.path)
        if self.upstream is not None:
            parts = urlsplit(self.upstream)
            origin = f"{parts.scheme}://{parts.netloc}"
        if origin is None:
            self.errors.append(
                f"a client connected to record cassette {self.path}, but there is no upstream to record from: "
                "give upstream='ws://...' (or route=[...] for clients with their own URL)"
            )
            request.reject(502, "no upstream to record from")
            return None
        query = urlencode(request.query)
        target = f"{origin}{path}" + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in request.headers.raw_items() if k.lower() not in _HOP_HEADERS]
        self._secrets += _header_secrets(request, set(self.redact_headers))
        token = _BYPASS.set(True)
        try:
            opening = connect(
                target,
                additional_headers=headers or None,
                origin=request.origin,  # type: ignore[arg-type]
                subprotocols=request.subprotocols or None,  # type: ignore[arg-type]
                open_timeout=10,
                max_size=None,
            )
        finally:
            _BYPASS.reset(token)
        try:
            upstream = await opening
        except InvalidStatus as exc:
            status = exc.response.status_code
            request.reject(status if 400 <= status <= 599 else 502, f"upstream answered HTTP {status}")
            return None
        except Exception as exc:
            self.errors.append(f"recording cassette {self.path}: cannot connect to the upstream {target}: {exc}")
            request.reject(502, "cannot reach the upstream")
            return None
        self._upstreams.append(upstream)

        def attach(conn: Connection) -> None:
            self._proxied[conn.id] = target
            self._pump(conn, upstream)

        return attach

    def _pump(self, conn: Connection, upstream: Any) -> None:
        """Forward messages both ways, in order, and each side's close to the other."""
        queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()

        def from_client(message: Message) -> None:
            self.fake.received.append(message)
            self.fake._changed_now()
            queue.put_nowait(message.data)

        def client_closed(event: Any) -> None:
            queue.put_nowait(None)

        conn.on("message", from_client)
        conn.on("close", client_closed)

        async def to_upstream() -> None:
            while (data := await queue.get()) is not None:
                try:
                    await upstream.send(data)
                except Exception:
                    break
            close = conn.close_event
            code, reason = (close.code, close.reason) if close is not None else (1000, "")
            if code not in (1000, 1001) and not 3000 <= code <= 4999:
                code = 1000  # 1005, 1006 and the like cannot be sent
            await upstream.close(code, reason)

        async def from_upstream() -> None:
            try:
                async for data in upstream:
                    if conn.ready_state is not OPEN:
                        break
                    conn.send(data)
                    self.fake.sent.append(Message(data, "send", connection=conn.id))
                    self.fake._changed_now()
            except Exception:
                pass
            code, reason = upstream.close_code or 1006, upstream.close_reason or ""
            try:
                conn.close(code, reason)
            except (ValueError, TypeError):
                conn.close(1011 if code == 1006 else 1000, reason)

        for coro in (to_upstream(), from_upstream()):
            task = self._loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def _matcher(match: str | bytes | dict[str, Any] | Callable[[Message], bool]) -> Callable[[Message], bool]:
    if callable(match):
        return lambda message: bool(match(message))
    if isinstance(match, dict):
        want = match

        def subset(message: Message) -> bool:
            data = message.data
            if not isinstance(data, str):
                return False
            try:
                value = json.loads(data)
            except (ValueError, RecursionError):
                return False
            return _subset(want, value)

        return subset
    if isinstance(match, (str, bytes)):
        text = match
        return lambda message: messages_match(text, message.data)
    raise TypeError(f"match must be a message, a dict of JSON fields or a function, not {type(match).__name__}")


def _subset(want: Any, value: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(value, dict) and all(k in value and _subset(v, value[k]) for k, v in want.items())
    return bool(want == value) and type(want) is type(value)


def cassette(path: PathLike, *, mode: RecordMode = "once", **options: Any) -> Cassette:
    """
    A cassette for ``with`` or ``async with``: replay ``path``, or record it on first use.

    ::

        with nbws.cassette("feed.jsonl", mode="once", upstream="wss://feed.example.com/v1") as c:
            client = MyClient(c.url)
            ...

    On exit it stops its server, writes what it recorded (redacted) and, if
    the block raised nothing, :meth:`Cassette.check` fails on any mismatch.
    Works in a notebook cell, in ``asyncio.run`` and in a plain script. See
    :class:`Cassette` for the options.

    Raises:
        nbws.CassetteError: for a missing cassette in mode ``"none"`` or a bad option.
    """
    return Cassette(path, mode=mode, **options)
