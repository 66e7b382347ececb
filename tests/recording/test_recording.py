"""The recorder captures every event of real sessions; recordings load, save and convert without losing anything."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import signal
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from _support import timeout, until

import nbws
from nbws import transforms


def record_server(server: nbws.Server, rec: nbws.Recorder) -> nbws.Recorder:
    """Record the server's side; clients made with ``plugins=[rec]`` record theirs.

    Not globally: connections other tests left closing must not slip into this recording.
    """
    server.plugins.register(rec)
    return rec


async def echo_session(
    server: nbws.Server, *messages: str | bytes, reason: str = "done", plugins: tuple[object, ...] = ()
) -> nbws.WebSocket:
    """Open a client to the echo server, send each message and wait for its echo, then close."""
    ws = nbws.WebSocket(server.url, plugins=plugins)
    await ws.opened(timeout=timeout())
    for data in messages:
        ws.send(data)
        await ws.recv(timeout=timeout())
    ws.close(1000, reason)
    await ws.closed(timeout=timeout())
    return ws


def closes(rec: nbws.Recorder) -> int:
    return rec.counts["close"]


# -- recording a real session ----------------------------------------------------------------


async def test_records_every_event_of_both_sides(server: nbws.Server, tmp_path: Path) -> None:
    rec = record_server(server, nbws.Recorder(tmp_path / "session.jsonl"))
    ws = await echo_session(server, "hello", b"\x00\x01\xff", "bye", plugins=(rec,))
    await until(lambda: closes(rec) == 2)
    rec.close()

    events = rec.recording
    client = events.filter(connection=ws)
    conn_id = next(c for c in events.connections if c != ws.id)
    on_server = events.filter(connection=conn_id)

    assert [e.type for e in client] == ["open"] + ["message"] * 6 + ["close"]
    assert client[0].url == server.url and client[0].role == "client"
    assert [(e.direction, e.seq, e.opcode, e.data) for e in client.messages()] == [
        ("send", 1, 1, "hello"),
        ("receive", 1, 1, "echo: hello"),
        ("send", 2, 2, b"\x00\x01\xff"),
        ("receive", 2, 2, b"\x00\x01\xff"),
        ("send", 3, 1, "bye"),
        ("receive", 3, 1, "echo: bye"),
    ]
    assert [(e.direction, e.data) for e in on_server.messages()] == [
        ("receive", "hello"),
        ("send", "echo: hello"),
        ("receive", b"\x00\x01\xff"),
        ("send", b"\x00\x01\xff"),
        ("receive", "bye"),
        ("send", "echo: bye"),
    ]
    assert on_server[0].role == "server" and on_server[0].url == server.url
    for side in (client, on_server):
        close = side[-1]
        assert (close.type, close.code, close.reason, close.was_clean) == ("close", 1000, "done", True)
    times = [e.time for e in client]
    assert times == sorted(times)
    assert rec.counts == {"open": 2, "send": 6, "receive": 6, "close": 2, "error": 0}

    assert nbws.Recording.load(rec.path) == events


async def test_binary_data_is_base64_in_the_file(server: nbws.Server, tmp_path: Path) -> None:
    rec = record_server(server, nbws.Recorder(tmp_path / "r.jsonl"))
    await echo_session(server, bytes(range(256)), plugins=(rec,))
    await until(lambda: closes(rec) == 2)
    rec.close()
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    binary = [line for line in lines if line.get("opcode") == 2]
    assert len(binary) == 4
    assert all(base64.b64decode(line["data"]) == bytes(range(256)) for line in binary)


async def test_transformed_and_dropped_messages_keep_their_original(server: nbws.Server, tmp_path: Path) -> None:
    rec = nbws.Recorder(tmp_path / "r.jsonl")
    ws = nbws.WebSocket(
        server.url,
        plugins=[
            rec,
            transforms.map_text(str.upper, direction="send")
            | transforms.drop_if(lambda m: m.data == "SECRET", direction="send"),
        ],
    )
    await ws.opened(timeout=timeout())
    ws.send("secret")
    ws.send("hi")
    assert (await ws.recv(timeout=timeout())).data == "echo: HI"
    ws.close()
    await ws.closed(timeout=timeout())
    rec.close()

    sent = nbws.Recording.load(rec.path).messages("send")
    assert [(e.data, e.original, e.dropped, e.changed) for e in sent] == [
        ("SECRET", "secret", True, True),
        ("HI", "hi", False, True),
    ]
    received = rec.recording.messages("receive")
    assert [(e.data, e.original) for e in received] == [("echo: HI", None)]


async def test_errors_are_recorded_with_phase_and_plugin(server: nbws.Server) -> None:
    class Faulty:
        __name__ = "faulty"

        @nbws.hookimpl
        def nbws_message_received(self, message: nbws.Message) -> None:
            raise RuntimeError("boom")

    rec = nbws.Recorder()
    ws = nbws.WebSocket(server.url, plugins=[rec, Faulty()])
    await ws.opened(timeout=timeout())
    ws.send("x")
    await ws.recv(timeout=timeout())
    await until(lambda: rec.counts["error"] == 1)
    ws.close()
    await ws.closed(timeout=timeout())

    (error,) = rec.recording.filter(type="error")
    assert (error.connection, error.phase, error.plugin) == (ws.id, "plugin", "faulty")
    assert "boom" in error.error
    assert rec.recording[-1].type == "close"


async def test_recorder_on_one_endpoint_records_only_it(server: nbws.Server) -> None:
    rec = nbws.Recorder()
    ws = nbws.WebSocket(server.url, plugins=[rec])
    other = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    await other.opened(timeout=timeout())
    other.send("not me")
    ws.send("me")
    await ws.recv(timeout=timeout())
    await other.recv(timeout=timeout())
    assert rec.recording.connections == [ws.id]
    assert [e.data for e in rec.recording.messages()] == ["me", "echo: me"]
    assert rec.connections == [ws]
    for client in (ws, other):
        client.close()
        await client.closed(timeout=timeout())
    assert rec.connections == []


async def test_stop_and_start_pause_the_recording(server: nbws.Server) -> None:
    rec = nbws.Recorder(active=False)
    ws = nbws.WebSocket(server.url, plugins=[rec])
    await ws.opened(timeout=timeout())
    ws.send("unseen")
    await ws.recv(timeout=timeout())
    rec.start()
    ws.send("seen")
    await ws.recv(timeout=timeout())
    rec.stop()
    ws.send("unseen again")
    await ws.recv(timeout=timeout())
    ws.close()
    await ws.closed(timeout=timeout())
    assert [e.data for e in rec.recording] == ["seen", "echo: seen"]


async def test_a_file_is_appended_to_across_recorders(server: nbws.Server, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    for word in ("one", "two"):
        rec = nbws.Recorder(path)
        ws = nbws.WebSocket(server.url, plugins=[rec])
        await ws.opened(timeout=timeout())
        ws.send(word)
        await ws.recv(timeout=timeout())
        ws.close()
        await ws.closed(timeout=timeout())
        rec.close()
    loaded = nbws.Recording.load(path)
    assert [e.data for e in loaded.messages("send")] == ["one", "two"]
    assert len(loaded.connections) == 2


async def test_recording_again_after_a_crash_removes_the_cut_line_first(server: nbws.Server, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(HEADER + GOOD + '{"type":"message","time":2.0,"conn')
    with pytest.warns(
        nbws.RecordingWarning, match=r"r.jsonl: its last line was cut short.*removed that line \(34 bytes\)"
    ):
        rec = nbws.Recorder(path)
    await echo_session(server, "after the crash", plugins=(rec,))
    rec.close()
    loaded = nbws.Recording.load(path)  # no warning: nothing is cut any more
    assert [e.data for e in loaded.messages()] == ["a", "after the crash", "echo: after the crash"]


def test_a_recorder_refuses_a_file_that_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    with pytest.raises(nbws.RecordingError, match=r"notes.txt, line 1: not an nbws recording"):
        nbws.Recorder(path)


async def test_fsync_mode_writes_every_event(server: nbws.Server, tmp_path: Path) -> None:
    rec = record_server(server, nbws.Recorder(tmp_path / "r.jsonl", fsync=True))
    await echo_session(server, "a", plugins=(rec,))
    await until(lambda: closes(rec) == 2)
    # Not closed: what is on disk already is all of it.
    assert nbws.Recording.load(rec.path) == rec.recording
    rec.close()


# -- the in-memory recording --------------------------------------------------------------------


def sample() -> nbws.Recording:
    return nbws.Recording(
        [
            nbws.RecordedEvent("open", 100.0, "c1", "client", url="ws://h/"),
            nbws.RecordedEvent("message", 100.5, "c1", "client", "send", 1, "a"),
            nbws.RecordedEvent("message", 101.0, "c1", "client", "receive", 1, b"\x01"),
            nbws.RecordedEvent("open", 101.5, "c2", "client", url="ws://h/x"),
            nbws.RecordedEvent("message", 102.0, "c2", "client", "send", 1, "b"),
            nbws.RecordedEvent("error", 102.5, "c2", "client", phase="receive", error="bad"),
            nbws.RecordedEvent("close", 103.0, "c1", "client", code=1000, reason="", was_clean=True),
        ]
    )


def test_filter_by_connection_direction_type_and_time() -> None:
    recording = sample()
    assert recording.connections == ["c1", "c2"]
    assert [e.time for e in recording.filter(connection="c2")] == [101.5, 102.0, 102.5]
    assert [e.data for e in recording.filter(direction="send")] == ["a", "b"]
    assert [e.type for e in recording.filter(type=["open", "close"])] == ["open", "open", "close"]
    assert [e.time for e in recording.filter(start=101.0, end=102.5)] == [101.0, 101.5, 102.0]
    assert [e.data for e in recording.messages("receive", "c1")] == [b"\x01"]
    assert recording.filter(where=lambda e: e.type == "error")[0].error == "bad"
    assert (recording.start, recording.end, recording.duration) == (100.0, 103.0, 3.0)
    assert isinstance(recording[1:3], nbws.Recording) and len(recording[1:3]) == 2
    with pytest.raises(ValueError, match="direction"):
        recording.filter(direction="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown event type 'ping'"):
        recording.filter(type="ping")  # type: ignore[arg-type]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    recording = sample()
    path = recording.save(tmp_path / "r.jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    assert first["format"] == "nbws-recording" and first["version"] == nbws.recording.FORMAT_VERSION
    assert nbws.Recording.load(path) == recording


def test_to_dataframe() -> None:
    frame = sample().to_dataframe()
    assert list(frame["type"]) == ["open", "message", "message", "open", "message", "error", "close"]
    assert list(frame["offset"]) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    messages = frame[frame["type"] == "message"]
    assert list(messages["direction"]) == ["send", "receive", "send"]
    assert list(messages["opcode"]) == [1, 2, 1]
    assert list(messages["size"]) == [1, 1, 1]
    assert frame["time"].iloc[0] == datetime.datetime(1970, 1, 1, 0, 1, 40, tzinfo=datetime.timezone.utc)
    assert frame.loc[6, "code"] == 1000


def test_to_dataframe_says_what_is_missing_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ImportError, match=r"to_dataframe\(\) needs pandas.*pip install pandas"):
        sample().to_dataframe()


# -- HAR ------------------------------------------------------------------------------------------


def check_devtools_can_import(document: dict[str, Any]) -> None:
    """The fields Chrome DevTools' HAR importer requires (front_end/models/har/HARFormat.ts), checked the same way."""
    log = document["log"]
    assert isinstance(log["version"], str)
    assert isinstance(log["creator"]["name"], str) and isinstance(log["creator"]["version"], str)
    assert isinstance(log["entries"], list)
    for entry in log["entries"]:
        datetime.datetime.fromisoformat(entry["startedDateTime"].replace("Z", "+00:00"))
        assert isinstance(entry["time"], (int, float))
        request, response = entry["request"], entry["response"]
        for key in ("method", "url", "httpVersion"):
            assert isinstance(request[key], str)
        for part in (request, response):
            assert isinstance(part["headersSize"], (int, float)) and isinstance(part["bodySize"], (int, float))
            assert isinstance(part["headers"], list) and isinstance(part["cookies"], list)
        assert response["status"] == 101 and isinstance(response["statusText"], str)
        assert isinstance(response["content"]["size"], (int, float)) and isinstance(
            response["content"]["mimeType"], str
        )
        assert isinstance(response["redirectURL"], str)
        for key in ("send", "wait", "receive"):
            assert isinstance(entry["timings"][key], (int, float))
        assert entry["_resourceType"] == "websocket"
        for frame in entry["_webSocketMessages"]:
            assert frame["type"] in ("send", "receive", "error")
            assert (
                isinstance(frame["time"], float) and isinstance(frame["opcode"], int) and isinstance(frame["data"], str)
            )


async def test_har_round_trip_of_a_real_session(server: nbws.Server, tmp_path: Path) -> None:
    rec = record_server(server, nbws.Recorder())
    first = await echo_session(server, "héllo", b"\x00\xff", '{"a": 1}', plugins=(rec,))
    ws = nbws.WebSocket(server.url + "?room=1&user=me", plugins=[rec, transforms.map_text(str.upper, "send")])
    await ws.opened(timeout=timeout())
    ws.send("changed")
    await ws.recv(timeout=timeout())
    ws.close(4000, "custom")
    await ws.closed(timeout=timeout())
    await until(lambda: closes(rec) == 4)

    path = rec.save_har(tmp_path / "session.har")
    document = json.loads(path.read_text())
    check_devtools_can_import(document)
    entries = {entry["_nbws"]["connection"]: entry for entry in document["log"]["entries"]}
    assert len(entries) == 4
    assert entries[ws.id]["request"]["url"] == server.url + "?room=1&user=me"
    assert entries[ws.id]["request"]["queryString"] == [{"name": "room", "value": "1"}, {"name": "user", "value": "me"}]
    frames = entries[first.id]["_webSocketMessages"]
    assert [(f["type"], f["opcode"], f["data"]) for f in frames[:4]] == [
        ("send", 1, "héllo"),
        ("receive", 1, "echo: héllo"),
        ("send", 2, base64.b64encode(b"\x00\xff").decode()),
        ("receive", 2, base64.b64encode(b"\x00\xff").decode()),
    ]

    loaded = nbws.Recording.load(path)
    assert loaded == rec.recording
    last = loaded.filter(connection=ws.id)
    assert (last[-1].code, last[-1].reason) == (4000, "custom")
    assert [(e.data, e.original) for e in last.messages("send")] == [("CHANGED", "changed")]


def test_har_keeps_each_connections_order(tmp_path: Path) -> None:
    # A pipelined client: its sends are stamped when send() was called, before the replies
    # that the recorder saw first. Each connection keeps the recorded order; connections merge by time.
    recording = nbws.Recording(
        [
            nbws.RecordedEvent("open", 1.0, "c1", "client", url="ws://h/"),
            nbws.RecordedEvent("message", 1.2, "c1", "client", "send", 1, "a"),
            nbws.RecordedEvent("message", 1.4, "c1", "client", "receive", 1, "reply a"),
            nbws.RecordedEvent("message", 1.3, "c1", "client", "send", 2, "b"),
            nbws.RecordedEvent("open", 1.35, "c2", "client", url="ws://h/"),
            nbws.RecordedEvent("message", 1.5, "c1", "client", "receive", 2, "reply b"),
        ]
    )
    loaded = nbws.Recording.load(recording.to_har(tmp_path / "r.har"))
    assert [e.data for e in loaded.filter(connection="c1").messages()] == ["a", "reply a", "b", "reply b"]
    assert [e.connection for e in loaded.filter(type="open")] == ["c1", "c2"]


def test_har_leaves_out_dropped_messages(tmp_path: Path) -> None:
    recording = nbws.Recording(
        [
            nbws.RecordedEvent("open", 1.0, "c1", "client", url="ws://h/"),
            nbws.RecordedEvent("message", 2.0, "c1", "client", "send", 1, "kept"),
            nbws.RecordedEvent("message", 3.0, "c1", "client", "send", 2, "gone", dropped=True),
        ]
    )
    loaded = nbws.Recording.load(recording.to_har(tmp_path / "r.har"))
    assert [e.data for e in loaded.messages()] == ["kept"]


def chrome_har() -> dict[str, Any]:
    """A HAR file shaped the way Chrome's DevTools exports one: a page, an XHR, and a WebSocket with frames."""
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": [
                {
                    "startedDateTime": "2024-05-01T10:00:00.000Z",
                    "id": "page_1",
                    "title": "http://localhost:8000/",
                    "pageTimings": {"onContentLoad": 120.5, "onLoad": 180.2},
                }
            ],
            "entries": [
                {
                    "_initiator": {"type": "other"},
                    "_priority": "VeryHigh",
                    "_resourceType": "document",
                    "cache": {},
                    "connection": "1021",
                    "pageref": "page_1",
                    "request": {
                        "method": "GET",
                        "url": "http://localhost:8000/",
                        "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "Host", "value": "localhost:8000"}],
                        "queryString": [],
                        "cookies": [],
                        "headersSize": 412,
                        "bodySize": 0,
                    },
                    "response": {
                        "status": 200,
                        "statusText": "OK",
                        "httpVersion": "HTTP/1.1",
                        "headers": [],
                        "cookies": [],
                        "content": {"size": 512, "mimeType": "text/html", "text": "<html></html>"},
                        "redirectURL": "",
                        "headersSize": 150,
                        "bodySize": 512,
                        "_transferSize": 662,
                        "_error": None,
                    },
                    "serverIPAddress": "127.0.0.1",
                    "startedDateTime": "2024-05-01T10:00:00.000Z",
                    "time": 12.3,
                    "timings": {
                        "blocked": 1.2,
                        "dns": -1,
                        "ssl": -1,
                        "connect": -1,
                        "send": 0.1,
                        "wait": 10.0,
                        "receive": 1.0,
                        "_blocked_queueing": 0.8,
                    },
                },
                {
                    "_initiator": {
                        "type": "script",
                        "stack": {
                            "callFrames": [
                                {
                                    "functionName": "connect",
                                    "scriptId": "12",
                                    "url": "http://localhost:8000/app.js",
                                    "lineNumber": 3,
                                    "columnNumber": 14,
                                }
                            ]
                        },
                    },
                    "_priority": "Low",
                    "_resourceType": "websocket",
                    "cache": {},
                    "connection": "1034",
                    "pageref": "page_1",
                    "request": {
                        "method": "GET",
                        "url": "ws://localhost:8765/feed",
                        "httpVersion": "HTTP/1.1",
                        "headers": [
                            {"name": "Upgrade", "value": "websocket"},
                            {"name": "Sec-WebSocket-Version", "value": "13"},
                        ],
                        "queryString": [],
                        "cookies": [],
                        "headersSize": 480,
                        "bodySize": 0,
                    },
                    "response": {
                        "status": 101,
                        "statusText": "Switching Protocols",
                        "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "Upgrade", "value": "websocket"}],
                        "cookies": [],
                        "content": {"size": 0, "mimeType": "x-unknown"},
                        "redirectURL": "",
                        "headersSize": 129,
                        "bodySize": 0,
                        "_transferSize": 129,
                        "_error": None,
                    },
                    "serverIPAddress": "127.0.0.1",
                    "startedDateTime": "2024-05-01T10:00:01.250Z",
                    "time": 3.1,
                    "timings": {
                        "blocked": 0.5,
                        "dns": -1,
                        "ssl": -1,
                        "connect": -1,
                        "send": 0,
                        "wait": 2.6,
                        "receive": 0,
                        "_blocked_queueing": 0.5,
                    },
                    "_webSocketMessages": [
                        {"type": "send", "time": 1714557601.262541, "opcode": 1, "data": '{"subscribe":"prices"}'},
                        {"type": "receive", "time": 1714557601.270812, "opcode": 1, "data": '{"price":101.5}'},
                        {"type": "receive", "time": 1714557601.771004, "opcode": 2, "data": "AAECAw=="},
                        {"type": "send", "time": 1714557602.004113, "opcode": 9, "data": ""},
                        {"type": "error", "time": 1714557602.5, "opcode": -1, "data": "net::ERR_CONNECTION_RESET"},
                    ],
                },
            ],
        }
    }


def test_a_har_file_as_chrome_writes_it_loads(tmp_path: Path) -> None:
    path = tmp_path / "localhost.har"
    path.write_text(json.dumps(chrome_har(), indent=2))
    loaded = nbws.Recording.load(path)
    assert [e.type for e in loaded] == ["open", "message", "message", "message", "error"]
    opened = loaded[0]
    assert (opened.connection, opened.role, opened.url) == ("har2", "client", "ws://localhost:8765/feed")
    assert opened.time == datetime.datetime(2024, 5, 1, 10, 0, 1, 250000, tzinfo=datetime.timezone.utc).timestamp()
    assert [(e.direction, e.seq, e.data, e.time) for e in loaded.messages()] == [
        ("send", 1, '{"subscribe":"prices"}', 1714557601.262541),
        ("receive", 1, '{"price":101.5}', 1714557601.270812),
        ("receive", 2, b"\x00\x01\x02\x03", 1714557601.771004),
    ]
    assert loaded[-1].error == "net::ERR_CONNECTION_RESET"
    # And what we write from it DevTools would read back.
    check_devtools_can_import(loaded.to_har_dict())


# -- malformed files --------------------------------------------------------------------------------

HEADER = '{"format":"nbws-recording","version":1}\n'
GOOD = '{"type":"message","time":1.0,"connection":"c1","direction":"send","seq":1,"opcode":1,"data":"a"}\n'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"the file is empty"),
        ("hello\n", r"line 1: neither an nbws recording"),
        (GOOD, r"line 1: not an nbws recording"),
        ('{"format":"nbws-recording","version":7}\n', r"line 1: recording format version 7 is newer"),
        (HEADER + GOOD + "{not json\n" + GOOD, r"line 3: invalid JSON"),
        (
            HEADER + GOOD + '{"type":"message","time":2,"direction":"up","opcode":1,"data":"x"}\n',
            r"line 3: 'direction'",
        ),
        (HEADER + '{"type":"message","time":"noon","direction":"send","opcode":1,"data":"x"}\n', r"line 2: 'time'"),
        (HEADER + '{"type":"message","time":1,"direction":"send","opcode":2,"data":"%%%"}\n', r"line 2: .*base64"),
        (HEADER + '{"type":"message","time":1,"direction":"send","opcode":5,"data":"x"}\n', r"line 2: 'opcode'"),
        (HEADER + '{"type":"close","time":1,"code":"normal"}\n', r"line 2: 'code'"),
        (HEADER + '{"type":"dance","time":1}\n', r"line 2: 'type'"),
        (HEADER + "[1, 2]\n", r"line 2: expected a JSON object"),
        (HEADER + GOOD + "{cut but with its newline\n", r"line 3: invalid JSON"),
        ('{"log": {"entries": {}}}', r"log.entries must be an array"),
        ('{"log": []}', r"not a HAR file"),
        ('{"log": {"entries": [1]}}', r"log.entries\[0\]: expected an object"),
        (
            '{"log": {"entries": [{}, {"startedDateTime": "2024-01-01T00:00:00Z", "_webSocketMessages": '
            '[{"type": "send", "time": 1, "opcode": 1, "data": "a"}, {"type": "send", "time": "x", "opcode": 1, "data": "b"}]}]}}',
            r"log.entries\[1\]._webSocketMessages\[1\].time must be a number",
        ),
        (
            '{"log": {"entries": [{"startedDateTime": "2024-01-01T00:00:00Z", "_webSocketMessages": '
            '[{"type": "receive", "time": 1, "opcode": 2, "data": "not base64!"}]}]}}',
            r"log.entries\[0\]._webSocketMessages\[0\]: 'data' .*base64",
        ),
        (
            '{"log": {"entries": [{"startedDateTime": "2024-01-01T00:00:00Z", "_webSocketMessages": '
            '[{"type": "shout", "time": 1, "opcode": 1, "data": "a"}]}]}}',
            r"log.entries\[0\]._webSocketMessages\[0\].type must be",
        ),
        (
            '{"log": {"entries": [{"startedDateTime": "yesterday", "_webSocketMessages": []}]}}',
            r"log.entries\[0\].startedDateTime is not an ISO 8601 date",
        ),
        ('{"log": {"entries": [\n{"_webSocketMessages": [}\n]}}', r"not valid JSON for a HAR file"),
        (HEADER + "[" * 100_000 + "\n", r"line 2: invalid JSON: nested too deeply"),
        ('{"log": ' + "[" * 100_000, r"not valid JSON for a HAR file: nested too deeply"),
    ],
)
def test_malformed_files_name_the_place(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(nbws.RecordingError, match=message) as info:
        nbws.Recording.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_cut_last_line_loads_the_rest_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text(HEADER + GOOD + GOOD + '{"type":"message","time":3.0,"conn')
    with pytest.warns(nbws.RecordingWarning, match=r"line 4: the last line is cut short.*loaded the 2 events"):
        loaded = nbws.Recording.load(path)
    assert [e.data for e in loaded] == ["a", "a"]


def test_loading_never_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "r.jsonl"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path.write_text(
        HEADER + json.dumps({"type": "message", "time": 1, "direction": "send", "opcode": 1, "data": payload}) + "\n"
    )
    assert nbws.Recording.load(path)[0].data == payload
    assert not marker.exists()


# -- crash safety -------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import nbws

    async def main():
        rec = nbws.Recorder(sys.argv[1])
        nbws.plugins.register(rec)
        server = nbws.Server()
        server.on("message", lambda conn, message: conn.send("echo: " + message.data))
        await server.start()
        ws = nbws.WebSocket(server.url)
        await ws.opened()
        n = 0
        while True:
            n += 1
            ws.send(f"message {n}")
            await ws.recv()
            if n % 25 == 0:
                print(len(rec.recording), flush=True)

    asyncio.run(main())
    """
)


async def test_a_killed_recording_process_loses_nothing_it_recorded(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "crash.jsonl"
    env = {**os.environ, "NBWS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(path), stdout=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    recorded = 0
    try:
        while recorded < 400:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout(20))
            assert line, "the recording process ended early"
            recorded = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-stream: the child is still sending and recording
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = nbws.Recording.load(path)
    assert all(issubclass(w.category, nbws.RecordingWarning) for w in caught)
    assert len(loaded) >= recorded
    # Nothing is missing up to the last event: every sequence number is there, in order.
    for connection in loaded.connections:
        for direction in ("send", "receive"):
            seqs = [e.seq for e in loaded.messages(direction, connection)]
            assert seqs == list(range(1, len(seqs) + 1))
    (client,) = {e.connection for e in loaded if e.role == "client"}
    assert [e.data for e in loaded.messages("send", client)][:3] == ["message 1", "message 2", "message 3"]
