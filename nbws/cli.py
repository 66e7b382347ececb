"""
The command line: ``nbws connect``, ``serve``, ``relay``, ``replay`` and ``fake`` (``python -m nbws`` too).

Messages go to standard output, one a line, marked with their direction as
wscat does (``<`` received, ``>`` sent; on a relay ``>`` travels to the
upstream, ``<`` back to the client); everything else (listening, connected,
closed, errors) goes to standard error prefixed with ``nbws:``, so the
messages can be piped. Exit status: 0 when done, 1 when something failed
(an unreachable URL, a refused handshake, a malformed recording), 2 for
bad arguments (argparse's convention), 130 after Ctrl-C.

Plugins published under the ``nbws`` entry-point group load as in the kernel
(``NBWS_DISABLE_PLUGIN_AUTOLOAD=1`` or ``--no-plugins`` turns that off);
``--plugin NAME`` switches one on (for plugins that load switched off) and
fails if there is no such plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import COMPILED, __version__
from ._connection import BaseConnection
from ._events import Message
from ._plugins import DISABLE_AUTOLOAD_ENV, hookimpl, plugins
from .client import WebSocket
from .exceptions import ConnectError, NbwsError, RecordingError
from .recording import Recorder, Recording
from .relay import Relay, leg_of
from .server import Connection, Server

__all__ = ["main"]


class _Failed(Exception):
    """An operational failure: print the message and exit with status 1."""


def _say(text: str) -> None:
    print(f"nbws: {text}", file=sys.stderr, flush=True)


# -- formatting -----------------------------------------------------------------------


def _show(data: str | bytes, *, pretty: bool) -> str:
    """A message as one printable line (or an indented JSON block with ``pretty``)."""
    if isinstance(data, bytes):
        return f"[binary {len(data)} bytes] {data.hex()}"
    if pretty:
        try:
            return json.dumps(json.loads(data), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return data


def _emit(mark: str, data: str | bytes, pretty: bool, prefix: str = "") -> None:
    print(f"{prefix}{mark} {_show(data, pretty=pretty)}", flush=True)


# -- argument types -------------------------------------------------------------------------


def _url(value: str) -> str:
    if not value.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError(f"{value!r} is not a WebSocket URL: use ws://host:port/path or wss://...")
    return value


def _header(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not a header: use 'Name: value'")
    return name.strip(), rest.strip()


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not from 0 to 65535 (0 picks a free one)")
    return port


def _speed(value: str) -> float:
    try:
        speed = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not speed > 0:
        raise argparse.ArgumentTypeError("speed must be more than 0 (2 is twice as fast)")
    return speed


# -- plugins ------------------------------------------------------------------------------


def _setup_plugins(args: argparse.Namespace) -> list[object]:
    """Load the entry-point plugins as the kernel would; switch on the ones named; return extra plugins."""
    if args.no_plugins:
        os.environ[DISABLE_AUTOLOAD_ENV] = "1"
    autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    if args.plugin and not autoload:
        # Autoloading is off: load the entry points, and keep on only the plugins named.
        before = {info.name for info in plugins}
        for name in plugins.load_entrypoints():
            if name not in args.plugin and name not in before:
                plugins.disable(name)
    for name in args.plugin:
        if name not in plugins:
            known = ", ".join(info.name for info in plugins) or "none installed"
            raise _Usage(f"no plugin named {name!r} in the nbws entry-point group ({known})")
        plugins.enable(name)
    extra: list[object] = []
    if getattr(args, "record", None):
        try:
            extra.append(Recorder(args.record))
        except (OSError, ValueError, RecordingError) as exc:
            raise _Failed(f"cannot record to {args.record}: {exc}") from None
    return extra


class _Usage(Exception):
    """A bad argument found after parsing: exit with status 2, as argparse does."""


# -- reading standard input without blocking the loop -------------------------------------------


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Lines of standard input, read by a daemon thread (None at the end): works for pipes and terminals alike."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\r\n"))
        except (OSError, ValueError, RuntimeError):
            pass
        try:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:
            pass  # the loop is already closed

    threading.Thread(target=read, name="nbws-stdin", daemon=True).start()
    return queue


def _stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass


def _parse_line(line: str, binary: bool) -> str | bytes:
    if not binary:
        return line
    try:
        return bytes.fromhex(line)
    except ValueError:
        raise _Failed(f"--binary: {line!r} is not hex (such as 00ff10)") from None


# -- commands -----------------------------------------------------------------------------


async def _connect(args: argparse.Namespace) -> int:
    extra = _setup_plugins(args)
    try:
        ws = WebSocket(
            args.url,
            args.subprotocol or None,
            headers=args.header,
            origin=args.origin,
            open_timeout=args.timeout,
            plugins=extra,
        )
    except (ValueError, TypeError) as exc:
        raise _Usage(str(exc)) from None
    errors: list[str] = []
    ws.onerror = lambda event: errors.append(event.message)
    ws.onmessage = lambda message: _emit("<", message.data, args.json)
    try:
        await ws.opened()
    except ConnectError as exc:
        raise _Failed(str(exc)) from None
    _say(f"connected to {args.url}" + (f" (subprotocol {ws.protocol})" if ws.protocol else ""))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _stop_on_signals(loop, stop)
    closed = asyncio.ensure_future(ws.closed())
    try:
        for text in args.execute:
            ws.send(_parse_line(text, args.binary))
        if args.execute:
            waiting = [closed, asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiting, timeout=args.wait, return_when=asyncio.FIRST_COMPLETED)
        else:
            lines = _stdin_lines(loop)
            while not closed.done() and not stop.is_set():
                getter = asyncio.ensure_future(lines.get())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait([getter, closed, stopper], return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if not getter.done():
                    getter.cancel()
                    break
                line = getter.result()
                if line is None:
                    # End of input: like websocat, wait for what is on its way, up to --wait.
                    await asyncio.wait([closed], timeout=args.wait)
                    break
                if line:
                    ws.send(_parse_line(line, args.binary))
    finally:
        ws.close()
        event = await ws.closed()
    _say(f"disconnected (code {event.code}{', ' + repr(event.reason) if event.reason else ''})")
    if event.code not in (1000, 1001, 1005) and not event.was_clean:
        raise _Failed(errors[-1] if errors else f"the connection closed with {event.code}")
    return 0


async def _serve(args: argparse.Namespace) -> int:
    extra = _setup_plugins(args)
    try:
        server = Server(args.host, args.port, protocols=args.subprotocol or None, plugins=extra)
    except (ValueError, TypeError) as exc:
        raise _Usage(str(exc)) from None

    def connected(conn: Connection) -> None:
        _say(f"{conn.id} connected from {conn.remote_address[0] if conn.remote_address else '?'}")

    def received(conn: Connection, message: Message) -> None:
        _emit("<", message.data, args.json, f"{conn.id} ")
        if args.echo:
            conn.send(message.data)

    def closed(conn: Connection, event: Any) -> None:
        _say(f"{conn.id} disconnected (code {event.code})")

    server.on("connection", connected)
    server.on("message", received)
    server.on("close", closed)

    try:
        await server.start()
    except NbwsError as exc:
        raise _Failed(str(exc)) from None
    _say(f"listening on {server.url}" + (" (echo)" if args.echo else ""))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _stop_on_signals(loop, stop)
    lines = _stdin_lines(loop)

    async def broadcast() -> None:
        while True:
            line = await lines.get()
            if line is None:
                return  # no more input: keep serving
            if line:
                try:
                    server.broadcast(_parse_line(line, args.binary))
                except _Failed as exc:
                    _say(str(exc))

    task = asyncio.ensure_future(broadcast())
    await stop.wait()
    task.cancel()
    await server.stop()
    _say("stopped")
    return 0


async def _relay(args: argparse.Namespace) -> int:
    extra = _setup_plugins(args)
    try:
        relay = Relay(
            args.upstream,
            host=args.host,
            port=args.port,
            plugins=extra,
            ssl=_ssl_context(args),
        )
    except (ValueError, TypeError) as exc:
        raise _Usage(str(exc)) from None

    if not args.quiet:
        relay.plugins.register(_Printer(args.json), "cli-output")
    relay.on("pair", lambda pair: _say(f"{pair.id} {pair.request.target} -> {pair.upstream_url}"))
    relay.on("close", lambda pair: _say(f"{pair.id} closed ({_close_text(pair)})"))
    relay.on("error", lambda pair, event: _say(f"{pair.id + ' ' if pair else ''}{event.message}"))
    try:
        await relay.start()
    except NbwsError as exc:
        raise _Failed(str(exc)) from None
    upstream = args.upstream
    _say(f"relaying {relay.url} -> {upstream}")
    stop = asyncio.Event()
    _stop_on_signals(asyncio.get_running_loop(), stop)
    await stop.wait()
    await relay.stop()
    _say("stopped")
    return 0


class _Printer:
    """Print each relayed message as it leaves the relay, marked with the way it travels (``*``: injected)."""

    def __init__(self, pretty: bool) -> None:
        self.pretty = pretty

    @hookimpl
    def nbws_message_sent(self, conn: BaseConnection, message: Message) -> None:
        found = leg_of(conn)
        if found is None or message.dropped:
            return
        mark = ">" if message.flow == "client->upstream" else "<"
        _emit(mark + ("*" if message.injected else ""), message.data, self.pretty, f"{found[0].id} ")


def _close_text(pair: Any) -> str:
    client = pair.client_side.close_event if pair.client_side else None
    up = pair.upstream_side.close_event
    parts = []
    if client is not None:
        parts.append(f"client {client.code}")
    if up is not None:
        parts.append(f"upstream {up.code}")
    return ", ".join(parts)


def _ssl_context(args: argparse.Namespace) -> Any:
    if not args.upstream.startswith("wss:") or not (args.cafile or args.insecure):
        return None
    import ssl

    context = ssl.create_default_context(cafile=args.cafile)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def _replay(args: argparse.Namespace) -> int:
    from .recording.replay import replay

    try:
        recording = Recording.load(args.file)
    except FileNotFoundError:
        raise _Failed(f"no such recording: {args.file}") from None
    except (OSError, RecordingError) as exc:
        raise _Failed(str(exc)) from None
    if not recording.messages(direction=args.direction):
        raise _Failed(f"{args.file} has no messages in direction {args.direction!r} to replay")
    extra = _setup_plugins(args)
    ws = WebSocket(args.url, args.subprotocol or None, plugins=extra, open_timeout=args.timeout)
    ws.onmessage = lambda message: _emit("<", message.data, args.json)
    try:
        await ws.opened()
    except ConnectError as exc:
        raise _Failed(str(exc)) from None
    _say(f"replaying {args.file} to {args.url} at {args.speed:g}x")
    try:
        replayer = await replay(
            recording,
            ws,
            direction=args.direction,
            speed=args.speed,
            mode=args.mode,
            connection=args.connection,
        )
    except ValueError as exc:
        ws.close()
        await ws.closed()
        raise _Usage(str(exc)) from None
    except NbwsError as exc:
        raise _Failed(str(exc)) from None
    for message in replayer.sent:
        _emit(">", message.data, args.json)
    if args.wait:
        await asyncio.wait([asyncio.ensure_future(ws.closed())], timeout=args.wait)
    ws.close()
    await ws.closed()
    _say(f"replayed {len(replayer.sent)} messages")
    return 0


async def _fake(args: argparse.Namespace) -> int:
    from .fake import FakeServer

    try:
        fake = FakeServer(args.file, host=args.host, port=args.port)
    except FileNotFoundError:
        raise _Failed(f"no such recording: {args.file}") from None
    except (OSError, RecordingError) as exc:
        raise _Failed(str(exc)) from None
    await fake.start()
    _say(f"serving {args.file} on {fake.url}")
    stop = asyncio.Event()
    _stop_on_signals(asyncio.get_running_loop(), stop)
    await stop.wait()
    await fake.stop()
    return 0


# -- the parser ------------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, record: bool = True) -> None:
    if record:
        parser.add_argument("--record", metavar="FILE", help="record every event to FILE (JSON lines, nbws format)")
    parser.add_argument(
        "--plugin",
        metavar="NAME",
        action="append",
        default=[],
        help="switch on the installed plugin NAME (from the nbws entry-point group); repeatable",
    )
    parser.add_argument("--no-plugins", action="store_true", help="do not load installed plugins")
    parser.add_argument("--json", action="store_true", help="pretty-print JSON messages")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``nbws`` command."""
    parser = argparse.ArgumentParser(
        prog="nbws",
        description="WebSocket client, server, relay and replay from the command line (nbws).",
        epilog="Received messages print as '< data', sent ones as '> data'; status lines go to stderr.",
    )
    parser.add_argument(
        "--version", action="version", version=f"nbws {__version__} (compiled: {'yes' if COMPILED else 'no'})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    connect = commands.add_parser("connect", help="an interactive client: send lines, print what arrives")
    connect.add_argument("url", type=_url, help="ws:// or wss:// URL")
    connect.add_argument("-H", "--header", type=_header, action="append", default=[], help="'Name: value'")
    connect.add_argument("-s", "--subprotocol", action="append", default=[], help="offer this subprotocol")
    connect.add_argument("-o", "--origin", help="the Origin header to send")
    connect.add_argument("--binary", action="store_true", help="send each line as a binary message, written in hex")
    connect.add_argument("-x", "--execute", action="append", default=[], metavar="MESSAGE", help="send MESSAGE")
    connect.add_argument(
        "-w", "--wait", type=float, default=2.0, metavar="SECONDS", help="after -x or end of input, wait (2)"
    )
    connect.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="to connect (10)")
    _common(connect)
    connect.set_defaults(run=_connect, parser=connect)

    serve = commands.add_parser("serve", help="a server: print what arrives, broadcast lines typed")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    serve.add_argument("-p", "--port", type=_port, default=8765, help="port (8765; 0 picks a free one)")
    serve.add_argument("--echo", action="store_true", help="send every message back to its sender")
    serve.add_argument("-s", "--subprotocol", action="append", default=[], help="a subprotocol to accept")
    serve.add_argument("--binary", action="store_true", help="broadcast lines as binary messages, written in hex")
    _common(serve)
    serve.set_defaults(run=_serve, parser=serve)

    relay = commands.add_parser("relay", help="relay clients to UPSTREAM and print every message both ways")
    relay.add_argument("upstream", type=_url, help="the upstream ws:// or wss:// URL")
    relay.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    relay.add_argument("-p", "--port", type=_port, default=8080, help="port (8080; 0 picks a free one)")
    relay.add_argument("--cafile", help="trust the certificates in this file for a wss:// upstream")
    relay.add_argument("--insecure", action="store_true", help="do not verify the upstream's certificate")
    relay.add_argument("-q", "--quiet", action="store_true", help="do not print the messages")
    _common(relay)
    relay.set_defaults(run=_relay, parser=relay)

    replay = commands.add_parser("replay", help="re-send the messages of a recording to URL")
    replay.add_argument("file", help="a recording (nbws JSON lines, or HAR from browser developer tools)")
    replay.add_argument("url", type=_url, help="ws:// or wss:// URL")
    replay.add_argument("--speed", type=_speed, default=1.0, help="2 replays twice as fast (1)")
    replay.add_argument("--mode", choices=("timed", "reactive"), default="timed", help="timed (default) or reactive")
    replay.add_argument("--direction", choices=("send", "receive"), default="send", help="which messages (send)")
    replay.add_argument("--connection", help="the connection id to replay, when the recording has several")
    replay.add_argument("-s", "--subprotocol", action="append", default=[], help="offer this subprotocol")
    replay.add_argument("-w", "--wait", type=float, default=0.0, metavar="SECONDS", help="wait for replies after")
    replay.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="to connect (10)")
    _common(replay, record=False)
    replay.set_defaults(run=_replay, parser=replay)

    fake = commands.add_parser("fake", help="serve a recording as a fake server")
    fake.add_argument("file", help="a recording")
    fake.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    fake.add_argument("-p", "--port", type=_port, default=8765, help="port (8765; 0 picks a free one)")
    fake.set_defaults(run=_fake, parser=fake)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nbws`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], Any] = args.run
    try:
        return int(asyncio.run(run(args)))
    except _Usage as exc:
        _usage_error(parser, args, str(exc))
    except _Failed as exc:
        _say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


def _usage_error(parser: argparse.ArgumentParser, args: argparse.Namespace, message: str) -> NoReturn:
    command: argparse.ArgumentParser = args.parser
    command.error(message)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
