"""
Security: a server listens on loopback unless told otherwise, ``origins=`` and
``token=`` refuse a client at the handshake before any plugin or listener sees
it, loading a recording only parses data, and plugins come only from the
``nbws`` entry-point group or an explicit ``register()``.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
from _support import StartEchoServer, timeout
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import nbws

# -- where a server listens ------------------------------------------------------------


async def test_default_bind_is_loopback_only() -> None:
    assert inspect.signature(nbws.Server).parameters["host"].default == "127.0.0.1"
    server = nbws.Server()
    await server.start()
    try:
        listening = [
            conn.laddr
            for conn in psutil.Process().net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == server.port
        ]
        assert [address.ip for address in listening] == ["127.0.0.1"]
        assert server.url.startswith("ws://127.0.0.1:")
    finally:
        await server.stop()


# -- origins and tokens -----------------------------------------------------------------


async def handshake_status(url: str, headers: list[tuple[str, str]]) -> int:
    """Open a connection with a library we did not write; return 101 or the HTTP status refusing it."""
    try:
        async with connect(url, additional_headers=headers, open_timeout=timeout()):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_origins_and_token_refuse_at_the_handshake_before_plugins_and_listeners_see_it() -> None:
    seen: list[str] = []

    class Spy:
        @nbws.hookimpl
        def nbws_handshake(self, request: nbws.Request) -> None:
            seen.append(f"handshake {request.origin} {request.query.get('token')}")

        @nbws.hookimpl
        def nbws_open(self, conn: nbws.BaseConnection) -> None:
            seen.append("open")

    server = nbws.Server(origins=["http://good.test"], token="s3cret-tøken", plugins=[Spy()])
    connections: list[nbws.Connection] = []
    server.on("connection", connections.append)
    await server.start()
    good = ("Origin", "http://good.test")
    try:
        token = f"{server.url}?token=s3cret-tøken"
        refused = {
            "evil origin, right token": (token, [("Origin", "http://evil.test")], 403),
            "no origin": (token, [], 403),
            "two origins": (token, [good, ("Origin", "http://evil.test")], 403),
            "origin with a trailing slash": (token, [("Origin", "http://good.test/")], 403),
            "no token": (server.url, [good], 401),
            "wrong token": (f"{server.url}?token=wrong", [good], 401),
            "token prefix": (f"{server.url}?token=s3cret", [good], 401),
            "token in another parameter": (f"{server.url}?t=s3cret-tøken", [good], 401),
            "wrong bearer": (server.url, [good, ("Authorization", "Bearer wrong")], 401),
            "token as basic auth": (server.url, [good, ("Authorization", "Basic s3cret-tøken")], 401),
        }
        statuses = {name: await handshake_status(url, headers) for name, (url, headers, _) in refused.items()}
        assert statuses == {name: status for name, (_, _, status) in refused.items()}
        assert seen == [] and connections == []

        assert await handshake_status(token, [good]) == 101
        assert await handshake_status(server.url, [good, ("Authorization", "Bearer s3cret-tøken")]) == 101
        assert seen == ["handshake http://good.test s3cret-tøken", "open", "handshake http://good.test None", "open"]
        assert len(connections) == 2
    finally:
        await server.stop()


async def test_path_is_matched_against_the_whole_request_target() -> None:
    server = nbws.Server(path="/ws")
    await server.start()
    base = f"ws://127.0.0.1:{server.port}"
    try:
        # "//host/ws" is a path, not a host: it must not pass for "/ws".
        assert await handshake_status(f"{base}//evil.test/ws", []) == 404
        assert await handshake_status(f"{base}//", []) == 404
        assert await handshake_status(f"{base}/ws/", []) == 404
        assert await handshake_status(f"{base}/ws?x=//evil.test/ws", []) == 101
    finally:
        await server.stop()


# -- recordings are data ------------------------------------------------------------------

# Loads each file given on the command line with an audit hook watching for code
# execution, imports, processes and file access; prints one JSON result per file.
LOADER = textwrap.dedent(
    """
    import json, sys, warnings
    import nbws

    WATCHED = ("exec", "compile", "import", "pickle.", "marshal.", "subprocess.", "os.system", "os.exec",
               "os.posix_spawn", "os.spawn", "os.fork", "ctypes.", "socket.", "open", "os.remove", "shutil.")
    events = []
    watching = False

    def audit(event, args):
        if watching and event.startswith(WATCHED):
            events.append([event, repr(args)[:200]])

    sys.addaudithook(audit)
    warnings.simplefilter("ignore")
    nbws.Recording.load(sys.argv[1])  # a benign one first: lazy imports (codecs) happen outside the watch
    for path in sys.argv[2:]:
        events.clear()
        watching = True
        try:
            recording = nbws.Recording.load(path)
            outcome = {"loaded": [e.data if isinstance(e.data, str) else repr(e.data) for e in recording]}
        except nbws.RecordingError as exc:
            outcome = {"error": str(exc)}
        except BaseException as exc:
            outcome = {"unexpected": f"{type(exc).__name__}: {exc}"}
        watching = False
        print(json.dumps({"path": path, "events": events, **outcome}))
    """
)

HEADER = '{"format": "nbws-recording", "version": 1, "created": 1700000000.0, "nbws": "0.1.0"}\n'


def hostile_recordings(folder: Path, marker: Path) -> dict[str, str]:
    """Files that would do something (create ``marker``) if anything in them were ever run."""
    touch = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    pickle = f"cposix\nsystem\n(Vtouch {marker}\ntR."  # a pickle that runs os.system("touch ...")

    def message(**fields: Any) -> str:
        event = {"type": "message", "time": 1.0, "connection": "c1", "role": "client", "direction": "send"}
        return json.dumps({**event, "seq": 1, "opcode": 1, "data": "x", **fields}) + "\n"

    har_message = {"type": "send", "time": 1.0, "opcode": 1, "data": touch}
    har = {"log": {"entries": [{"request": {"url": "ws://127.0.0.1:1/"}, "_webSocketMessages": [har_message]}]}}
    return {
        "code as data": HEADER + message(data=touch),
        "pickle as binary data": HEADER + message(opcode=2, data=base64.b64encode(pickle.encode()).decode()),
        "object hooks": HEADER + message(**{"__class__": "os.system", "py/object": "os.system", "__reduce__": touch}),
        "yaml tag": HEADER + message(data=f"!!python/object/apply:os.system ['touch {marker}']"),
        "code as a type": HEADER + message(type=touch),
        "code as the version": HEADER.replace('"version": 1', f'"version": "{touch}"'),
        "python source": f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n",
        "pickle file": pickle,
        "har with code": json.dumps(har),
        "har pointing at a file": json.dumps({"log": {"entries": [{"_file": str(marker), "$ref": str(marker)}]}}),
    }


def test_loading_a_recording_never_executes_anything(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    paths = []
    hostile = hostile_recordings(tmp_path, marker)
    for i, text in enumerate(hostile.values()):
        path = tmp_path / f"hostile-{i}.jsonl"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    benign = nbws.Recording().save(tmp_path / "benign.jsonl")
    run = subprocess.run(
        [sys.executable, "-c", LOADER, str(benign), *paths],
        capture_output=True,
        text=True,
        timeout=timeout(60),
        check=True,
    )
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["path"] for r in results] == paths
    for result in results:
        # Opening the file itself is all it may do.
        assert [e for e in result["events"] if not (e[0] == "open" and result["path"] in e[1])] == [], result
        assert "unexpected" not in result, result
    outcomes = {name: r.get("loaded", "error") for name, r in zip(hostile, results, strict=True)}
    touch = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    # What is data stays data, byte for byte; what is not a recording is refused.
    assert outcomes == {
        "code as data": [touch],
        "pickle as binary data": [repr(f"cposix\nsystem\n(Vtouch {marker}\ntR.".encode())],
        "object hooks": ["x"],
        "yaml tag": [f"!!python/object/apply:os.system ['touch {marker}']"],
        "code as a type": "error",
        "code as the version": "error",
        "python source": "error",
        "pickle file": "error",
        "har with code": ["None", touch],  # the open event, then the message
        "har pointing at a file": [],
    }
    assert not marker.exists()


# -- where plugins come from --------------------------------------------------------------


NEVER_IMPORTED = {"nbws_fake_evil", "nbws_plugin_fake", "nbws_plugins", "nbws_autoload"}


def fake_distribution(folder: Path, marker: Path) -> None:
    """An installed distribution with a plugin in the nbws group, and modules nbws must never import."""
    dist = folder / "nbws_fake-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nbws-fake\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[nbws]\nfake_good = nbws_fake_good:Plugin\n\n"
        "[nbws_plugins]\nfake_wrong_group = nbws_fake_evil\n\n"
        "[nbws.plugins]\nfake_dotted_group = nbws_fake_evil\n\n"
        "[pytest11]\nfake_pytest = nbws_fake_evil\n"
    )
    (folder / "nbws_fake_good.py").write_text(
        "import nbws\n\nclass Plugin:\n    @nbws.hookimpl\n    def nbws_open(self, conn):\n        pass\n"
    )
    evil = f"import pathlib\npathlib.Path({str(marker)!r}).write_text(__name__)\n"
    evil += "import nbws\n\n@nbws.hookimpl\ndef nbws_open(conn):\n    pass\n"
    for name in NEVER_IMPORTED:
        (folder / f"{name}.py").write_text(evil)


PLUGIN_REPORT = textwrap.dedent(
    """
    import asyncio, json, sys
    from importlib.metadata import entry_points
    import nbws

    async def main():
        server = nbws.Server()
        await server.start()
        ws = nbws.WebSocket(server.url)
        await ws.opened()
        ws.close()
        await ws.closed()
        await server.stop()

    asyncio.run(main())
    print(json.dumps({
        "loaded": sorted(info.name for info in nbws.plugins),
        "group": sorted(ep.name for ep in entry_points(group="nbws")),
        "imported": sorted(m for m in sys.modules if m.startswith("nbws_")),
    }))
    """
)


def plugin_report(folder: Path, **env: str) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if k != "NBWS_DISABLE_PLUGIN_AUTOLOAD"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    environment.update(env)
    run = subprocess.run(
        [sys.executable, "-c", PLUGIN_REPORT],
        capture_output=True,
        text=True,
        timeout=timeout(60),
        env=environment,
        cwd=folder,
        check=True,
    )
    report: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return report


def test_plugins_load_only_from_the_nbws_entry_point_group(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    fake_distribution(tmp_path, marker)
    report = plugin_report(tmp_path)
    assert "fake_good" in report["loaded"]
    # Whatever else is installed, everything loaded was published under the nbws group.
    assert set(report["loaded"]) <= set(report["group"])
    assert "nbws_fake_good" in report["imported"]
    assert NEVER_IMPORTED.isdisjoint(report["imported"])
    assert not marker.exists()


def test_autoload_switch_loads_nothing_by_itself(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    fake_distribution(tmp_path, marker)
    report = plugin_report(tmp_path, NBWS_DISABLE_PLUGIN_AUTOLOAD="1")
    assert report["loaded"] == []
    assert "nbws_fake_good" not in report["imported"] and NEVER_IMPORTED.isdisjoint(report["imported"])
    assert "fake_good" in report["group"]
    assert not marker.exists()


async def test_a_plugin_applies_only_once_registered(start_echo_server: StartEchoServer) -> None:
    calls: list[str] = []

    class Watcher:
        @nbws.hookimpl
        def nbws_message_received(self, message: nbws.Message) -> None:
            calls.append(str(message.data))

    watcher = Watcher()  # made, but not registered: it sees nothing
    server = await start_echo_server()
    async with nbws.WebSocket(server.url) as ws:
        ws.send("before")
        assert (await ws.recv(timeout=timeout())).data == "before"
        ws.plugins.register(watcher)
        ws.send("after")
        assert (await ws.recv(timeout=timeout())).data == "after"
    await server.stop()
    assert calls == ["after"]
