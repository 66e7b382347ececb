"""
A fake server from a recording: :class:`FakeServer` plays the server's side of a recorded session.

It is a real :class:`nbws.Server` on 127.0.0.1, so any client can talk to it:
nbws, ``websockets``, websocket-client, aiohttp, a browser page, Node. Each
recorded connection becomes a script, and the n-th client to connect gets the
n-th script::

    fake = nbws.FakeServer("feed.jsonl")
    await fake.start()
    client = MyClient(fake.url)           # the code under test
    ...
    await fake.stop()
    fake.check()                          # raises nbws.MismatchError with a side-by-side diff

How a script plays:

* server messages recorded before the client's first message are *pushes*:
  they are sent on their recorded schedule from the moment the client connects;
* each client message is matched against the recorded client messages
  (``match="reactive"``: any one not yet used, first match wins;
  ``match="order"``: only the next one); the server messages recorded after it,
  up to the next client message, are its replies, sent with their recorded
  delays divided by ``speed`` (``math.inf``: no delay);
* a client message that matches nothing is an *error*: the fake reports it to
  its ``"error"`` listeners and the ``nbws`` logger, closes that connection with
  1008 (so the client never hangs waiting) and :meth:`FakeServer.check` raises
  :class:`nbws.MismatchError` showing the expected and the received message;
* once the client sent everything and every reply went out, the connection
  closes as recorded (see ``close``).

Two messages are equal when they are the same text or bytes, or when both are
JSON and hold the same value (key order and spacing do not matter). A recorded
value ``"REDACTED"`` (what cassettes write in place of secrets) matches any
value. ``keys`` compares only some JSON fields (``["op", "params.channel"]``),
``ignore`` leaves some out (``["id", "ts"]``), and ``match`` may also be a
function ``match(expected, received) -> bool``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from ._connection import OPEN
from ._events import ErrorEvent, Message
from ._loop import Pending, get_loop
from ._plugins import hookimpl
from .exceptions import CassetteError, MismatchError
from .recording import PathLike, RecordedEvent, Recording
from .server import Connection, Request, Server

__all__ = ["REDACTED", "FakeServer", "MatchFunction", "Script", "messages_match", "mismatch_text", "scripts_of"]

logger = logging.getLogger("nbws")

REDACTED = "REDACTED"
"""What a cassette writes in place of a secret; in a recorded message it matches any value."""

MatchFunction = Callable[[str | bytes, str | bytes], bool]
"""A user matcher: ``match(expected, received)`` is true when ``received`` stands for the recorded ``expected``."""

CloseMode = Literal["auto", "recorded", "client"]

# Close codes a client sends itself (or that no one sends): the fake waits for the client instead.
_CLIENT_CODES = {1000, 1005, 1006}
_MISSING = object()


# -- matching ---------------------------------------------------------------------


def _json(data: str | bytes) -> Any:
    if not isinstance(data, str) or not data.lstrip().startswith(("{", "[")):
        return _MISSING
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _MISSING


def _path(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _without(value: Any, paths: Sequence[str]) -> Any:
    value = json.loads(json.dumps(value))
    for path in paths:
        *parents, last = path.split(".")
        holder = _path(value, ".".join(parents)) if parents else value
        if isinstance(holder, dict):
            holder.pop(last, None)
    return value


def _same(expected: Any, received: Any) -> bool:
    """Equal JSON values, where a recorded ``"REDACTED"`` stands for anything."""
    if expected == REDACTED:
        return True
    if isinstance(expected, dict) and isinstance(received, dict):
        return expected.keys() == received.keys() and all(_same(v, received[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(received, list):
        return len(expected) == len(received) and all(_same(a, b) for a, b in zip(expected, received, strict=True))
    return type(expected) is type(received) and bool(expected == received)


def _same_text(expected: str, received: str) -> bool:
    if REDACTED not in expected:
        return expected == received
    pattern = ".*?".join(re.escape(part) for part in expected.split(REDACTED))
    return re.fullmatch(pattern, received, re.S) is not None


def messages_match(
    expected: str | bytes,
    received: str | bytes,
    *,
    keys: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
) -> bool:
    """
    Whether a received message stands for a recorded one, as :class:`FakeServer` decides by default.

    Args:
        expected: The recorded message.
        received: The message a client sent.
        keys: Compare only these JSON fields (dotted paths such as
            ``"params.channel"`` or ``"args.0"``); a field missing on both
            sides is equal. Messages that are not JSON must be equal.
        ignore: Leave these JSON fields out of the comparison.
    """
    if expected == received:
        return True  # the common case, without parsing anything
    if isinstance(expected, bytes) or isinstance(received, bytes):
        return False
    want, got = _json(expected), _json(received)
    if want is _MISSING or got is _MISSING:
        return _same_text(expected, received)
    if ignore:
        want, got = _without(want, ignore), _without(got, ignore)
    if keys is not None:
        return all(_same(_path(want, k), _path(got, k)) for k in keys)
    return _same(want, got)


def _differences(expected: str | bytes, received: str | bytes) -> list[str]:
    """The JSON paths where two messages differ (empty when they are not both JSON)."""
    want, got = _json(expected), _json(received)
    if want is _MISSING or got is _MISSING:
        return []
    found: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(found) >= 8 or _same(a, b):
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(dict.fromkeys([*a, *b])):
                here = f"{where}.{key}" if where else str(key)
                if key not in b:
                    found.append(f"{here}: missing (recorded {json.dumps(a[key])})")
                elif key not in a:
                    found.append(f"{here}: not in the recording (received {json.dumps(b[key])})")
                else:
                    walk(a[key], b[key], here)
            return
        found.append(f"{where or '(the whole message)'}: recorded {json.dumps(a)}, received {json.dumps(b)}")

    walk(want, got, "")
    return found


def _show(data: str | bytes, limit: int = 300) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _masked(value: Any, recorded: Any, keys: frozenset[str]) -> Any:
    """``value`` with what must not be shown replaced: where the recording has REDACTED, and secret keys."""
    if recorded == REDACTED:
        return REDACTED
    if isinstance(value, dict):
        other = recorded if isinstance(recorded, dict) else {}
        return {
            k: REDACTED if k.lower() in keys and v is not None else _masked(v, other.get(k, _MISSING), keys)
            for k, v in value.items()
        }
    if isinstance(value, list):
        others = recorded if isinstance(recorded, list) else []
        return [_masked(v, others[i] if i < len(others) else _MISSING, keys) for i, v in enumerate(value)]
    return value


def _show_received(received: str | bytes, expected: str | bytes | None, keys: frozenset[str]) -> str:
    """The received message as a failure shows it: secrets the recording redacted stay hidden."""
    value = _json(received)
    if value is _MISSING:
        return _show(received)
    masked = _masked(value, _json(expected) if expected is not None else _MISSING, keys)
    if masked == value:
        return _show(received)
    return _show(json.dumps(masked, ensure_ascii=False)) + "  (secrets hidden)"


def mismatch_text(
    where: str,
    expected: RecordedEvent | None,
    received: str | bytes,
    note: str = "",
    secret_keys: Iterable[str] = (),
) -> str:
    """The side-by-side text of a message that matched nothing (values of ``secret_keys`` hidden)."""
    keys = frozenset(k.lower() for k in secret_keys)
    lines = [f"{where}: the client sent a message the recording does not have{note}"]
    if expected is None:
        lines.append("  expected: nothing more (every recorded client message was already sent)")
        lines.append(f"  received: {_show_received(received, None, keys)}")
        return "\n".join(lines)
    assert expected.data is not None
    lines.append(f"  expected: {_show(expected.data)}    (recorded client message #{expected.seq})")
    lines.append(f"  received: {_show_received(received, expected.data, keys)}")
    for difference in _differences(expected.data, received):
        if not any(part.lower() in keys for part in difference.split(":", 1)[0].split(".")):
            lines.append(f"    differs at {difference}")
    return "\n".join(lines)


# -- scripts ---------------------------------------------------------------------


@dataclass
class Script:
    """
    The server's part of one recorded connection, as :class:`FakeServer` plays it.

    Attributes:
        connection: The recorded connection id.
        url: The URL it was opened with.
        client: The recorded client messages, in order.
        replies: For each client message, the server messages that followed
            it, with their delays in seconds after it.
        pushes: Server messages before the first client message, with their
            delays after the open.
        close: The recorded close event, if any.
        end_gap: Seconds from the last message to the close.
    """

    connection: str
    url: str
    client: list[RecordedEvent] = field(default_factory=list)
    replies: list[list[tuple[float, RecordedEvent]]] = field(default_factory=list)
    pushes: list[tuple[float, RecordedEvent]] = field(default_factory=list)
    close: RecordedEvent | None = None
    end_gap: float = 0.0


def scripts_of(recording: Recording) -> list[Script]:
    """Split a recording into one :class:`Script` per connection, in the order they opened."""
    scripts = []
    for connection in recording.connections:
        events = recording.filter(connection=connection)
        opened = next((e for e in events if e.type == "open"), None)
        role = opened.role if opened is not None else events[0].role
        client_direction = "receive" if role == "server" else "send"
        script = Script(connection, opened.url if opened is not None else "")
        start = opened.time if opened is not None else events[0].time
        last = start
        for event in events:
            if event.type == "close":
                script.close = event
                script.end_gap = max(0.0, event.time - last)
            if event.type != "message" or event.dropped:
                continue
            if event.direction == client_direction:
                script.client.append(event)
                script.replies.append([])
            elif script.client:
                script.replies[-1].append((max(0.0, event.time - script.client[-1].time), event))
            else:
                script.pushes.append((max(0.0, event.time - start), event))
            last = event.time
        scripts.append(script)
    return scripts


# -- the server ---------------------------------------------------------------------


Extra = Callable[[Request], Awaitable[Callable[[Connection], None] | None]]


class _Handshake:
    """The fake's own plugin: gives each arriving client its script, or refuses it."""

    def __init__(self, fake: FakeServer) -> None:
        self.__name__ = f"nbws-fake-{id(fake):x}"
        self._fake = fake

    @hookimpl
    async def nbws_handshake(self, server: Server, request: Request) -> None:
        await self._fake._assign(request)


class FakeServer:
    """
    A real WebSocket server on 127.0.0.1 that plays the server's side of a recording.

    Args:
        recording: A :class:`nbws.Recording`, or the path of an nbws JSON-lines or HAR file.
        match: ``"reactive"`` (the default: a client message may match any
            recorded client message not yet used, first one wins), ``"order"``
            (it must match the next one), a list of JSON fields to compare
            (reactive, same as ``keys``), or a function
            ``match(expected, received) -> bool``.
        keys: Compare only these JSON fields of client messages (dotted
            paths such as ``"params.channel"``).
        ignore: Leave these JSON fields out (request ids, timestamps).
        speed: Divides the recorded delays; ``math.inf`` sends at once.
        close: ``"auto"`` (close with the recorded code once the script is
            played, unless it is one a client sends itself: 1000, 1005, 1006,
            then wait for the client), ``"recorded"`` (always close as
            recorded; 1005 and 1006 become 1000) or ``"client"`` (never close
            first).
        on_unmatched: ``"close"`` (close that connection with 1008 after
            reporting it) or ``"ignore"`` (report it and carry on).
        secret_keys: JSON keys whose values a mismatch report never shows
            (values the recording holds as ``REDACTED`` are hidden too).
        host: The interface to listen on.
        port: The port; 0 picks a free one.
        server_options: More keyword arguments for :class:`nbws.Server`
            (``close_timeout`` is 1 second unless given). Give ``protocols``
            for clients that offer subprotocols: a browser fails a
            connection whose server picks none of those it offered.

    Attributes:
        scripts: The :class:`Script` of each recorded connection, in order.
        server: The underlying :class:`nbws.Server`.
        received: Every message clients sent, in order.
        sent: Every message the fake sent.
        problems: The mismatches so far, as texts (see :meth:`check`).
        connections: How many clients connected.
    """

    def __init__(
        self,
        recording: Recording | PathLike,
        *,
        match: Literal["reactive", "order"] | Sequence[str] | MatchFunction = "reactive",
        keys: Sequence[str] | None = None,
        ignore: Sequence[str] = (),
        speed: float = 1.0,
        close: CloseMode = "auto",
        on_unmatched: Literal["close", "ignore"] = "close",
        secret_keys: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        _extra: Extra | None = None,
        **server_options: Any,
    ) -> None:
        if not isinstance(recording, Recording):
            recording = Recording.load(Path(recording))
        self.recording = recording
        self._ordered = match == "order"
        self._function: MatchFunction | None = None
        if callable(match):
            self._function = match
        elif isinstance(match, str):
            if match not in ("reactive", "order"):
                raise CassetteError(
                    f"match must be 'reactive', 'order', a list of JSON keys or a function, not {match!r}"
                )
        elif isinstance(match, Iterable) and all(isinstance(k, str) for k in match):
            keys = list(match)
        else:
            raise CassetteError(f"match must be 'reactive', 'order', a list of JSON keys or a function, not {match!r}")
        if isinstance(keys, str) or isinstance(ignore, str):
            raise CassetteError("keys and ignore take a list of JSON fields, not one string")
        self.keys = list(keys) if keys is not None else None
        self.ignore = list(ignore)
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not speed > 0:
            raise CassetteError(f"speed must be a positive number (math.inf: no delays), not {speed!r}")
        self.speed = float(speed)
        if close not in ("auto", "recorded", "client"):
            raise CassetteError(f"close must be 'auto', 'recorded' or 'client', not {close!r}")
        self.close_mode: CloseMode = close
        if on_unmatched not in ("close", "ignore"):
            raise CassetteError(f"on_unmatched must be 'close' or 'ignore', not {on_unmatched!r}")
        self.on_unmatched = on_unmatched
        if isinstance(secret_keys, str):
            raise CassetteError("secret_keys takes a list of JSON keys, not one string")
        self.secret_keys = list(secret_keys)
        self.scripts = scripts_of(recording)
        self._extra = _extra
        self._loop = get_loop()  # the loop the server binds to, made just below
        # A test should not wait websockets' 10 s for a client that keeps its TCP connection after the close.
        server_options.setdefault("close_timeout", 1.0)
        self.server = Server(host, port, plugins=[_Handshake(self)], **server_options)
        self.received: list[Message] = []
        self.sent: list[Message] = []
        self.problems: list[str] = []
        self.connections = 0
        self._next = 0
        self._assigned: dict[int, Callable[[Connection], None]] = {}
        self._sessions: list[_Session] = []
        self._error_listeners: list[Callable[[Connection | None, ErrorEvent], Any]] = []
        self._changed = asyncio.Event()
        self.server.on("connection", self._on_connection)

    def __repr__(self) -> str:
        where = f" {self.server.url}" if self.server.port is not None else ""
        return (
            f"<FakeServer{where} {len(self.scripts)} recorded connection(s), "
            f"{self.connections} served, {len(self.problems)} problem(s)>"
        )

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """
        The URL to give a client: this server, with the path of the first recorded connection.

        The recorded query is left out: a client adds its own parameters
        (often secrets, which a cassette holds only as ``REDACTED``).
        """
        base = self.server.url.rstrip("/")
        recorded = urlsplit(self.scripts[0].url) if self.scripts and self.scripts[0].url else None
        return base + (recorded.path if recorded is not None and recorded.path else "/")

    @property
    def port(self) -> int | None:
        """The port it listens on, once started."""
        return self.server.port

    def start(self) -> Pending[FakeServer]:
        """Bind the port now and start serving; await the result to know it accepts connections."""
        serving = self.server.start()

        async def started() -> FakeServer:
            await serving
            return self

        return Pending(self._loop, started(), "starting fake server")

    def stop(self) -> Pending[None]:
        """Stop replaying, close every client (1001) and free the port; await the result to know it is done."""

        async def stopping() -> None:
            for session in self._sessions:
                session.cancel()
            await self.server.stop()

        return Pending(self._loop, stopping(), "stopping fake server")

    async def __aenter__(self) -> FakeServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __enter__(self) -> FakeServer:
        return self.start().wait()

    def __exit__(self, *exc_info: object) -> None:
        self.stop().wait()

    # -- results ------------------------------------------------------------------------

    def on(self, name: Literal["error"], fn: Callable[[Connection | None, ErrorEvent], Any]) -> None:
        """Call ``fn(conn, error_event)`` for each mismatch (``conn`` is None for a client it refused)."""
        if name != "error":
            raise ValueError(f"a FakeServer has one event, 'error', not {name!r} (see fake.server for the others)")
        self._error_listeners.append(fn)

    @property
    def unplayed(self) -> list[str]:
        """What the clients never did: recorded client messages not sent, recorded connections never opened."""
        missing = []
        for number, script in enumerate(self.scripts):
            session = next((s for s in self._sessions if s.number == number), None)
            if session is None:
                missing.append(
                    f"recorded connection {script.connection} ({script.url or 'no URL'}): no client opened it"
                )
                continue
            for index in session.waiting:
                event = script.client[index]
                assert event.data is not None
                missing.append(
                    f"connection {number + 1} (recorded {script.connection}): the client never sent "
                    f"recorded message #{event.seq}: {_show(event.data)}"
                )
        return missing

    def check(self, *, all_played: bool = True) -> None:
        """
        Fail if a client sent a message the recording does not have, or (``all_played``) left one out.

        Raises:
            nbws.MismatchError: (an AssertionError) listing every problem,
                expected and received side by side.
        """
        problems = list(self.problems)
        if all_played:
            problems += self.unplayed
        if problems:
            raise MismatchError(problems)

    def wait_played(self, timeout: float | None = None) -> Pending[FakeServer]:
        """Wait until every recorded connection was opened and every recorded client message came."""

        async def played() -> FakeServer:
            while self.unplayed and not self.problems:
                await self._wait_change(3600)
            return self

        return Pending(
            self._loop, _bounded(played(), timeout, "the recording was not played to the end"), "wait_played"
        )

    def _changed_now(self) -> None:
        self._changed.set()

    async def _wait_change(self, timeout: float) -> None:
        """Wait (on the fake's loop) until a message comes or goes, or ``timeout`` seconds pass."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    # -- serving ---------------------------------------------------------------------------

    async def _assign(self, request: Request) -> None:
        if self._next < len(self.scripts):
            number = self._next
            self._next += 1
            self._assigned[id(request)] = lambda conn: self._play(conn, number)
            return
        if self._extra is not None:
            handler = await self._extra(request)
            if handler is not None:
                self._assigned[id(request)] = handler
                return
            if request.rejected is not None:
                return
        text = (
            f"client {self._next + 1} connected to {request.path}, but the recording has only "
            f"{len(self.scripts)} connection(s)"
        )
        self._next += 1
        request.reject(503, "no more recorded connections")
        self._problem(None, text)

    def _on_connection(self, conn: Connection) -> None:
        self.connections += 1
        handler = self._assigned.pop(id(conn.request), None)
        if handler is None:  # pragma: no cover - the handshake hook always assigns one
            conn.close(1011, "no script")
            return
        handler(conn)

    def _play(self, conn: Connection, number: int) -> None:
        session = _Session(self, conn, self.scripts[number], number)
        self._sessions.append(session)
        session.start()
        self._changed_now()

    def _problem(self, conn: Connection | None, text: str) -> None:
        self.problems.append(text)
        # Unheard, it is a warning; a listener (a cassette, which raises it at the end) handles it.
        logger.log(logging.DEBUG if self._error_listeners else logging.WARNING, "fake server: %s", text)
        event = ErrorEvent(conn if conn is not None else self.server, MismatchError([text]), "replay", text)
        for fn in list(self._error_listeners):
            try:
                result = fn(conn, event)
                if asyncio.iscoroutine(result):
                    self._loop.create_task(result)
            except Exception:
                logger.exception("fake server error listener %r raised", fn)
        self._changed_now()

    def _matches(self, expected: RecordedEvent, received: str | bytes) -> bool:
        assert expected.data is not None
        if self._function is not None:
            return bool(self._function(expected.data, received))
        return messages_match(expected.data, received, keys=self.keys, ignore=self.ignore)


async def _bounded(coro: Awaitable[Any], timeout: float | None, what: str) -> Any:
    if timeout is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout)
    except asyncio.TimeoutError:
        from .exceptions import TimeoutError

        raise TimeoutError(f"{what} within {timeout:g} seconds") from None


class _Session:
    """One client playing one script."""

    def __init__(self, fake: FakeServer, conn: Connection, script: Script, number: int) -> None:
        self.fake = fake
        self.conn = conn
        self.script = script
        self.number = number
        self.waiting = list(range(len(script.client)))  # recorded client messages not matched yet
        self.tasks: set[asyncio.Task[None]] = set()
        self.done = False  # stopped: the client closed, or it sent something unexpected
        self.closing = False  # the script is played and the recorded close is on its way
        self.where = f"connection {number + 1} (recorded {script.connection})"
        conn.on("message", self.on_message)
        conn.on("close", lambda event: self.cancel())

    def start(self) -> None:
        self.schedule(self.script.pushes)
        self.maybe_finish()

    def cancel(self) -> None:
        self.done = True
        for task in self.tasks:
            task.cancel()

    def schedule(self, items: list[tuple[float, RecordedEvent]]) -> None:
        if not items:
            return
        if math.isinf(self.fake.speed):  # no delays: send now, in order, without a task
            for _, event in items:
                self.send(event)
            return
        task = self.fake._loop.create_task(self.send_all(items, self.fake._loop.time()))
        self.tasks.add(task)
        task.add_done_callback(self.task_done)

    def task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("fake server %s: replying failed: %s", self.where, task.exception())
        self.maybe_finish()

    async def send_all(self, items: list[tuple[float, RecordedEvent]], start: float) -> None:
        loop = self.fake._loop
        for delay, event in items:
            wait = start + delay / self.fake.speed - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.conn.ready_state is not OPEN:
                return
            self.send(event)

    def send(self, event: RecordedEvent) -> None:
        if self.conn.ready_state is not OPEN:
            return
        assert event.data is not None
        self.conn.send(event.data)
        self.fake.sent.append(Message(event.data, "send", connection=self.conn.id, replayed=True))

    def on_message(self, message: Message) -> None:
        fake = self.fake
        fake.received.append(message)
        fake._changed_now()
        if self.done:
            return
        data = message.data
        candidates = self.waiting[:1] if fake._ordered else self.waiting
        try:
            found = next((i for i in candidates if fake._matches(self.script.client[i], data)), None)
        except Exception as exc:  # a user's match function: its fault must not leave the client hanging
            fake._problem(self.conn, f"{self.where}: the match function raised {type(exc).__name__}: {exc}")
            self.cancel()
            self.conn.close(1011, "nbws fake server: the match function raised")
            return
        if found is None:
            expected = self.script.client[self.waiting[0]] if self.waiting else None
            fake._problem(self.conn, mismatch_text(self.where, expected, data, secret_keys=fake.secret_keys))
            if fake.on_unmatched == "close":
                self.cancel()
                self.conn.close(1008, "nbws fake server: unexpected message (see FakeServer.problems)")
            return
        self.waiting.remove(found)
        self.schedule(self.script.replies[found])
        self.maybe_finish()

    def maybe_finish(self) -> None:
        if self.done or self.closing or self.waiting or self.tasks:
            return
        close = self.script.close
        mode = self.fake.close_mode
        if close is None or close.code is None or mode == "client":
            return
        if mode == "auto" and close.code in _CLIENT_CODES:
            return
        self.closing = True  # a message the client sends meanwhile is still checked: nothing more is expected
        code = 1000 if close.code in (1005, 1006) else close.code
        delay = self.script.end_gap / self.fake.speed
        if math.isinf(delay) or delay <= 0:
            delay = 0.0

        def close_now() -> None:
            if self.conn.ready_state is OPEN and not self.done:
                self.conn.close(code, close.reason)

        self.fake._loop.call_later(delay, close_now)
