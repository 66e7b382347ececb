"""
Codecs against real protocol servers nbws did not write: rpc-websockets (JSON-RPC 2.0),
graphql-ws, subscriptions-transport-ws, stomp-broker-js (STOMP), aedes (MQTT over WebSocket), a python-socketio
server, and the Jupyter server's kernel channels.

For each: both directions decoded, requests correlated with their responses, a
message edited through its decoded view in an Intercept and re-encoded with the
peer accepting it (the peer's own report or answer proves it), and the session's
recording round-tripping through HAR with the decoded columns in its DataFrame.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _support import timeout, until
from _support.jupyter import jupyter_server

import nbws
from nbws.codecs import Decoded, get

pytestmark = pytest.mark.interop

PEERS = Path(__file__).resolve().parents[1] / "peers"


class Peer:
    """One protocol server from tests/peers/servers.js; it reports what it received, one JSON line each."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, kind: str) -> tuple[Peer, str]:
        node = shutil.which("node")
        if node is None or not (PEERS / "node_modules" / "subscriptions-transport-ws").is_dir():
            raise RuntimeError("the protocol servers are not installed: run scripts/system-deps (make test does)")
        process = await asyncio.create_subprocess_exec(
            node, str(PEERS / "servers.js"), kind, cwd=PEERS,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        peer = cls(process)
        ready = await peer.event()
        assert ready["event"] == "listening", ready
        return peer, f"ws://127.0.0.1:{ready['port']}{ready['path']}"

    async def event(self, seconds: float = 10.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout(seconds))
        if not line:
            assert self.process.stderr is not None
            raise AssertionError(f"peer exited: {(await self.process.stderr.read()).decode()}")
        event: dict[str, Any] = json.loads(line)
        return event

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout(5))
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()


async def peer(kind: str) -> AsyncIterator[tuple[Peer, str]]:
    server, url = await Peer.start(kind)
    try:
        yield server, url
    finally:
        await server.stop()


class Session:
    """A client with a recorder, an intercept on what it sends, and everything it receives kept."""

    def __init__(self, url: str, protocols: list[str] | None = None, headers: dict[str, str] | None = None) -> None:
        self.ws = nbws.WebSocket(url, protocols, headers=headers)
        self.recorder = nbws.Recorder()
        self.intercept = nbws.Intercept(direction="send", match=lambda m: False)
        self.ws.plugins.register(nbws.codecs.Decoder())  # decode as they go, so responses meet their requests
        self.ws.plugins.register(self.recorder)
        self.ws.plugins.register(self.intercept)
        self.received: list[nbws.Message] = []
        self.ws.on("message", self.received.append)

    async def __aenter__(self) -> Session:
        await self.ws.opened(timeout=timeout(10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.ws.close()
        await self.ws.closed(timeout=timeout(5))

    async def reply(self, test: Any, seconds: float = 10.0) -> Decoded:
        """The first received message whose decoded view passes ``test``."""
        found: list[Decoded] = []

        def check() -> bool:
            for message in self.received:
                decoded = nbws.codecs.decode(message, self.ws)
                # Several messages may share a frame (MQTT packets merged by the peer): look at each.
                for item in [decoded, *decoded.parts] if decoded is not None else []:
                    if test(item):
                        found.append(item)
                        return True
            return False

        await until(check, seconds, "the expected reply")
        return found[0]

    async def edit_next(self, edit: Any, data: str | bytes) -> Decoded:
        """Send ``data`` held by the intercept, edit its decoded view with ``edit(view)``, re-encode it and let it go."""
        self.intercept.match = lambda m: m.data == data
        self.ws.send(data)
        held = await self.intercept.next(timeout=timeout(5))
        view = nbws.codecs.decode(held.message, self.ws)
        assert view is not None and view.error is None
        edit(view)
        held.edit(view)
        edited = held.message.decoded
        assert edited is not None
        return edited

    def har_frame(self, tmp_path: Path) -> Any:
        """The recording, saved as HAR and loaded again, as a DataFrame with its decoded columns."""
        recording = self.recorder.recording
        before = recording.to_dataframe()
        again = nbws.Recording.load(recording.to_har(tmp_path / "session.har"))
        after = again.to_dataframe()
        columns = ["direction", "protocol", "kind", "name", "msg_id"]
        left = before[before["type"] == "message"][columns].reset_index(drop=True)
        right = after[after["type"] == "message"][columns].reset_index(drop=True)
        assert left.equals(right), (left, right)
        return after


@pytest.fixture
async def rpc() -> AsyncIterator[tuple[Peer, str]]:
    async for item in peer("jsonrpc"):
        yield item


@pytest.fixture
async def graphql() -> AsyncIterator[tuple[Peer, str]]:
    async for item in peer("graphql"):
        yield item


@pytest.fixture
async def stomp() -> AsyncIterator[tuple[Peer, str]]:
    async for item in peer("stomp"):
        yield item


@pytest.fixture
async def mqtt() -> AsyncIterator[tuple[Peer, str]]:
    async for item in peer("mqtt"):
        yield item


async def test_jsonrpc_with_rpc_websockets(rpc: tuple[Peer, str], tmp_path: Path) -> None:
    server, url = rpc
    async with Session(url) as s:
        s.ws.send('{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}')
        first = await s.reply(lambda d: d.kind == "response" and d.id == 1)
        assert first.payload == 3 and first.latency is not None and first.latency >= 0
        assert first.request is not None and first.request.method == "sum" and first.request.direction == "send"
        assert (await server.event())["params"] == [1, 2]

        def double(view: Decoded) -> None:
            view.payload = [20, 22]

        edited = await s.edit_next(double, '{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":2}')
        assert edited.payload == [20, 22]
        assert (await server.event())["params"] == [20, 22]  # the peer accepted the re-encoded request
        assert (await s.reply(lambda d: d.id == 2 and d.kind == "response")).payload == 42

        s.ws.send('{"jsonrpc":"2.0","method":"fail","id":3}')
        error = await s.reply(lambda d: d.id == 3)
        assert error.kind == "error" and isinstance(error.fields["code"], int) and error.latency is not None

        s.ws.send('{"jsonrpc":"2.0", "method": broken')  # malformed: an error on the view, the connection goes on
        s.ws.send('{"jsonrpc":"2.0","method":"sum","params":[2,2],"id":4}')
        assert (await s.reply(lambda d: d.id == 4)).payload == 4
    frame = s.har_frame(tmp_path)
    sent = frame[(frame["type"] == "message") & (frame["direction"] == "send")]
    assert list(sent["name"].fillna("-")) == ["sum", "sum", "fail", "-", "sum"]
    assert sent["decode_error"].iloc[3].startswith("not JSON")
    received = frame[(frame["type"] == "message") & (frame["direction"] == "receive")]
    assert received["latency"].notna().sum() >= 4


async def test_graphql_ws_subscription(graphql: tuple[Peer, str], tmp_path: Path) -> None:
    server, url = graphql
    async with Session(url, ["graphql-transport-ws"]) as s:
        assert s.ws.protocol == "graphql-transport-ws"
        s.ws.send('{"type":"connection_init","payload":{}}')
        ack = await s.reply(lambda d: d.kind == "connection_ack")
        assert ack.protocol == "graphql-transport-ws" and ack.latency is not None

        def retarget(view: Decoded) -> None:
            view.payload["variables"]["to"] = "nbws"

        query = "subscription Greet($to: String!) { greetings(to: $to) }"
        subscribe = json.dumps(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"to": "you"}}}
        )
        edited = await s.edit_next(retarget, subscribe)
        assert edited.name == "Greet" and edited.payload["variables"] == {"to": "nbws"}
        report = await server.event()
        assert report["event"] == "subscribe" and report["payload"]["variables"] == {"to": "nbws"}
        done = await s.reply(lambda d: d.kind == "complete" and d.id == "1")
        assert done.latency is not None
        nexts = [d for m in s.received if (d := m.decoded) is not None and d.kind == "next"]
        assert [d.payload["data"]["greetings"] for d in nexts] == ["Hi nbws", "Bonjour nbws", "Hola nbws"]
        assert all(d.request is not None and d.request.kind == "subscribe" for d in nexts)
    frame = s.har_frame(tmp_path)
    assert set(frame["protocol"].dropna()) == {"graphql-transport-ws"}
    assert list(frame[frame["kind"] == "next"]["msg_id"]) == ["1", "1", "1"]


@pytest.fixture
async def graphql_legacy() -> AsyncIterator[tuple[Peer, str]]:
    async for item in peer("graphql-legacy"):
        yield item


async def test_subscriptions_transport_ws_legacy_server(graphql_legacy: tuple[Peer, str], tmp_path: Path) -> None:
    server, url = graphql_legacy
    async with Session(url, ["graphql-ws"]) as s:
        assert s.ws.protocol == "graphql-ws"
        s.ws.send('{"type":"connection_init","payload":{}}')
        ack = await s.reply(lambda d: d.kind == "connection_ack")
        assert ack.protocol == "subscriptions-transport-ws" and ack.latency is not None

        def retarget(view: Decoded) -> None:
            view.payload["variables"]["to"] = "nbws"

        query = "subscription Greet($to: String!) { greetings(to: $to) }"
        start = json.dumps({"id": "1", "type": "start", "payload": {"query": query, "variables": {"to": "you"}}})
        edited = await s.edit_next(retarget, start)
        assert edited.kind == "start" and edited.name == "Greet"
        report = await server.event()
        assert report["event"] == "start" and report["payload"]["variables"] == {"to": "nbws"}
        done = await s.reply(lambda d: d.kind == "complete" and d.id == "1")
        assert done.latency is not None and done.request is not None and done.request.kind == "start"
        data = [d for m in s.received if (d := m.decoded) is not None and d.kind == "data"]
        assert [d.payload["data"]["greetings"] for d in data] == ["Hi nbws", "Bonjour nbws", "Hola nbws"]
    frame = s.har_frame(tmp_path)
    # The HAR file keeps no subprotocol: the legacy types (start, data, ka) still tell the protocol apart.
    assert "subscriptions-transport-ws" in set(frame["protocol"].dropna())


def stomp_frame(command: str, headers: dict[str, str], body: str = "") -> str:
    return get("stomp").encode(Decoded("stomp", command, payload=body, fields={"headers": list(headers.items())}))


async def test_stomp_broker(stomp: tuple[Peer, str], tmp_path: Path) -> None:
    server, url = stomp
    connect = stomp_frame("CONNECT", {"accept-version": "1.1,1.2", "host": "localhost"})
    # The broker does not send a message back to its sender: one client subscribes, the other sends.
    async with Session(url, ["v12.stomp", "v11.stomp"]) as reader, Session(url, ["v12.stomp"]) as s:
        for client in (reader, s):
            client.ws.send(connect)
            connected = await client.reply(lambda d: d.kind == "CONNECTED")
            assert connected.protocol == "stomp" and connected.latency is not None
        reader.ws.send(stomp_frame("SUBSCRIBE", {"id": "sub-0", "destination": "/queue/prices"}))
        assert await server.event() == {"event": "subscribe", "topic": "/queue/prices"}

        def reprice(view: Decoded) -> None:
            view.payload = '{"sym":"ACME","price":99}'

        send = stomp_frame(
            "SEND", {"destination": "/queue/prices", "content-type": "application/json"}, '{"sym":"ACME","price":1}'
        )
        edited = await s.edit_next(reprice, send)
        assert edited.kind == "SEND" and edited.destination == "/queue/prices"
        report = await server.event()
        assert report == {"event": "send", "dest": "/queue/prices", "body": '{"sym":"ACME","price":99}'}
        message = await reader.reply(lambda d: d.kind == "MESSAGE")
        assert json.loads(message.payload) == {"sym": "ACME", "price": 99} and message.destination == "/queue/prices"
        assert message.fields["headers"][0] == ["destination", "/queue/prices"] or ("subscription", "sub-0") in map(
            tuple, message.fields["headers"]
        )
        s.ws.send("SEND\ndestination:/queue/prices\n\nno NUL at the end")  # malformed, for the log
    frame = s.har_frame(tmp_path)
    sent = frame[(frame["type"] == "message") & (frame["direction"] == "send")]
    assert list(sent["kind"]) == ["CONNECT", "SEND", "invalid"]
    assert "NUL" in sent["decode_error"].iloc[2]


def mqtt_packet(kind: str, name: str | None = None, id: int | None = None, payload: Any = None, **fields: Any) -> bytes:
    fields.setdefault("level", 4)
    data = get("mqtt").encode(Decoded("mqtt", kind, name=name, id=id, payload=payload, fields=fields))
    assert isinstance(data, bytes)
    return data


async def test_mqtt_over_websocket_with_aedes(mqtt: tuple[Peer, str], tmp_path: Path) -> None:
    server, url = mqtt
    async with Session(url, ["mqtt"]) as s:
        s.ws.send(mqtt_packet("CONNECT", "nbws-test", protocol_name="MQTT", clean_start=True, keep_alive=30))
        connack = await s.reply(lambda d: d.kind == "CONNACK")
        assert connack.fields["reason_code"] == 0 and connack.latency is not None
        s.ws.send(mqtt_packet("SUBSCRIBE", "prices/#", 1, [["prices/#", 1]]))
        suback = await s.reply(lambda d: d.kind == "SUBACK")
        assert suback.id == 1 and suback.payload == [1] and suback.request is not None

        def reprice(view: Decoded) -> None:
            view.parts[0].payload = "99.5"

        # A PUBLISH and a PINGREQ in one WebSocket message: the codec splits them, aedes reads both.
        publish = mqtt_packet("PUBLISH", "prices/acme", 7, b"1.5", qos=1)
        edited = await s.edit_next(reprice, publish + mqtt_packet("PINGREQ"))
        assert [p.kind for p in edited.parts] == ["PUBLISH", "PINGREQ"]
        assert edited.parts[0].payload == "99.5"
        assert await server.event() == {"event": "publish", "topic": "prices/acme", "payload": "99.5"}
        puback = await s.reply(lambda d: d.kind == "PUBACK")
        assert puback.id == 7 and puback.latency is not None
        delivered = await s.reply(lambda d: d.kind == "PUBLISH")
        assert delivered.topic == "prices/acme" and delivered.payload == "99.5"
        await s.reply(lambda d: d.kind == "PINGRESP" and d.latency is not None)
    frame = s.har_frame(tmp_path)
    received = frame[(frame["type"] == "message") & (frame["direction"] == "receive")]
    # PUBACK and PINGRESP may come merged in one message (kind "packets"), as aedes often sends them.
    assert {"CONNACK", "SUBACK", "PUBLISH"} <= set(received["kind"])


# -- the Jupyter server's kernel channels --------------------------------------------------------------


@pytest.fixture
async def jupyter_kernel(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A Jupyter server (jupyter_server, not written by us) with one python3 kernel: its channels URL and auth header."""
    token = secrets.token_hex(16)  # sent in a header, never in a URL that a recording would keep
    auth = {"Authorization": f"token {token}"}
    app = [sys.executable, "-m", "jupyter_server"]
    async with jupyter_server(app, tmp_path, tmp_path / "jupyter-home", token=token) as base:

        def start_kernel() -> str:
            request = urllib.request.Request(
                f"{base}/api/kernels", data=b'{"name":"python3"}', method="POST", headers=auth
            )
            with urllib.request.urlopen(request, timeout=timeout(30)) as response:
                kernel_id: str = json.loads(response.read())["id"]
                return kernel_id

        kernel = await asyncio.to_thread(start_kernel)
        yield base.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels", auth


def kernel_request(msg_type: str, content: dict[str, Any], framing: str, msg_id: str) -> str | bytes:
    header = {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "session": "nbws-test",
        "username": "nbws",
        "date": "2026-01-01T00:00:00.000Z",
        "version": "5.3",
    }
    fields = {
        "channel": "shell",
        "framing": framing,
        "header": header,
        "parent_header": {},
        "metadata": {},
        "buffers": [],
    }
    return get("jupyter").encode(Decoded("jupyter", msg_type, name=msg_type, payload=content, fields=fields))


EXECUTE = {"silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}


async def test_jupyter_kernel_channels(jupyter_kernel: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, auth = jupyter_kernel
    for framing in ("v1", "json"):  # the v1 binary framing, then the legacy JSON one, on the same kernel
        protocols = ["v1.kernel.websocket.jupyter.org"] if framing == "v1" else None
        async with Session(url, protocols, auth) as s:
            assert s.ws.protocol == ("v1.kernel.websocket.jupyter.org" if framing == "v1" else "")
            s.ws.send(kernel_request("kernel_info_request", {}, framing, f"info-{framing}"))
            info = await s.reply(lambda d, f=framing: d.kind == "kernel_info_reply" and d.id == f"info-{f}", seconds=30)
            assert info.latency is not None and info.payload["status"] == "ok"
            assert info.fields["framing"] == framing and info.fields["channel"] == "shell"

            def change_code(view: Decoded) -> None:
                view.payload["code"] = "6 * 9"

            request = kernel_request("execute_request", {"code": "6 * 7", **EXECUTE}, framing, f"run-{framing}")
            edited = await s.edit_next(change_code, request)
            assert edited.payload["code"] == "6 * 9" and edited.id == f"run-{framing}"
            reply = await s.reply(lambda d, f=framing: d.kind == "execute_reply" and d.id == f"run-{f}", seconds=30)
            assert reply.payload["status"] == "ok" and reply.request is not None and reply.latency is not None
            result = await s.reply(lambda d, f=framing: d.kind == "execute_result" and d.id == f"run-{f}", seconds=30)
            assert result.payload["data"]["text/plain"] == "54"  # the kernel ran the edited code
            assert result.fields["channel"] == "iopub"
        frame = s.har_frame(tmp_path)
        assert set(frame["protocol"].dropna()) == {"jupyter"}
        assert {"kernel_info_request", "execute_request", "execute_reply", "execute_result", "status"} <= set(
            frame["kind"]
        )
        assert not any(auth["Authorization"].split()[1] in str(v) for v in frame["data"])
