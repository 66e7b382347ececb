"""
Issue 10, item 6: secrets never reach a file, a log or a saved output.

A session whose URL carries ``?token=`` and ``api_key=`` and whose handshake
carries ``Authorization`` and ``Cookie`` headers, plus a client refused for a
wrong token, runs through every artifact nbws writes or shows: the Recorder's
JSON lines and HAR, the Logger's file and records, the ``nbws`` logger, error
events and exceptions, ``repr()`` of everything, MessageLog rows and export,
the client panel (its URL field, status and saved widget state), and a real
notebook's saved outputs. None may hold a secret. The policy itself is
checked on its own below.
"""

from __future__ import annotations

import json
import logging
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path

import ipywidgets
import nbformat
import pytest
from _support import timeout, until
from hypothesis import given, settings
from hypothesis import strategies as st
from nbclient import NotebookClient

import nbws
from nbws import redact


@pytest.fixture
def restore_policy() -> Iterator[None]:
    previous = redact.get_policy()
    yield
    redact.set_policy(previous)


# -- the policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ws://h/?token=abc", "ws://h/?token=REDACTED"),
        ("wss://h:8443/feed?room=1&access_token=abc&x=", "wss://h:8443/feed?room=1&access_token=REDACTED&x="),
        (
            "ws://h/?API_KEY=a&Key=b&password=c&secret=d",
            "ws://h/?API_KEY=REDACTED&Key=REDACTED&password=REDACTED&secret=REDACTED",
        ),
        ("ws://h/?k%65y=a&to+ken=b", "ws://h/?k%65y=REDACTED&to+ken=b"),  # names compared percent-decoded
        ("ws://h/?token=a&token=b", "ws://h/?token=REDACTED&token=REDACTED"),
        ("ws://user:pa55@h/", "ws://user:REDACTED@h/"),
        ("ws://user@h/?monkey=1&tokens=2", "ws://user@h/?monkey=1&tokens=2"),  # whole names only
        ("https://h/cb#access_token=abc&state=1", "https://h/cb#access_token=REDACTED&state=1"),
        ("ws://h/?token", "ws://h/?token"),
        ("", ""),
    ],
)
def test_urls_keep_everything_but_secret_values(url: str, shown: str) -> None:
    assert redact.url(url) == shown
    assert redact.url(shown) == shown  # idempotent: redacting twice changes nothing


def test_headers_keep_the_scheme_and_cookie_names() -> None:
    assert redact.headers(
        [
            ("Authorization", "Bearer abc"),
            ("proxy-authorization", "Basic dXNlcjpwYXNz"),
            ("Cookie", "sid=abc; theme=dark"),
            ("Set-Cookie", "sid=abc; Path=/; HttpOnly"),
            ("X-Api-Key", "abc"),
            ("Authorization", "abc"),
            ("Origin", "http://h"),
        ]
    ) == [
        ("Authorization", "Bearer REDACTED"),
        ("proxy-authorization", "Basic REDACTED"),
        ("Cookie", "sid=REDACTED; theme=REDACTED"),
        ("Set-Cookie", "sid=REDACTED; Path=/; HttpOnly"),
        ("X-Api-Key", "REDACTED"),
        ("Authorization", "REDACTED"),
        ("Origin", "http://h"),
    ]
    assert redact.headers({"authorization": "Bearer x"}) == [("authorization", "Bearer REDACTED")]


def test_free_text_loses_urls_secrets_and_credentials_not_prose() -> None:
    text = (
        "could not connect to 'ws://h/?token=abc&x=1': rejected; retry https://h/?key=k. "
        "Authorization: Bearer abcdefgh12; bearer tokens are a basic idea; Bearer eyJhbGciOi.x.y"
    )
    assert redact.text(text) == (
        "could not connect to 'ws://h/?token=REDACTED&x=1': rejected; retry https://h/?key=REDACTED "
        "Authorization: Bearer REDACTED; bearer tokens are a basic idea; Bearer REDACTED"
    )


def test_the_policy_is_configurable_globally(restore_policy: None) -> None:
    policy = redact.configure(secret_params=redact.DEFAULT_PARAMS | {"Session"}, mask="***")
    assert redact.get_policy() is policy
    assert redact.url("ws://h/?session=a&token=b&room=c") == "ws://h/?session=***&token=***&room=c"
    assert redact.header("Cookie", "a=1") == "a=***"
    redact.configure(enabled=False)
    assert redact.url("ws://h/?token=b") == "ws://h/?token=b"
    assert redact.header("Authorization", "Bearer b") == "Bearer b"
    previous = redact.set_policy(redact.Policy())
    assert previous.enabled is False and redact.url("ws://h/?token=b") == "ws://h/?token=REDACTED"


def test_bad_policies_are_refused_clearly() -> None:
    with pytest.raises(TypeError, match="secret_params must be a collection of names"):
        redact.Policy(secret_params="token")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty str names"):
        redact.Policy(secret_headers={"cookie", ""})
    with pytest.raises(ValueError, match="mask must be letters"):
        redact.Policy(mask="a b")
    with pytest.raises(TypeError, match=r"set_policy\(\) takes an nbws\.redact\.Policy"):
        redact.set_policy("off")  # type: ignore[arg-type]


def test_a_repr_shows_the_url_redacted_and_the_endpoint_keeps_it() -> None:
    ws = nbws.WebSocket("ws://127.0.0.1:9/?token=abc", reconnect=False)
    assert "token=REDACTED" in repr(ws) and "abc" not in repr(ws)
    assert ws.url == "ws://127.0.0.1:9/?token=abc"  # what it connects with is untouched
    ws.close()


def test_invalid_url_errors_do_not_quote_the_secret() -> None:
    with pytest.raises(nbws.InvalidURLError) as info:
        nbws.WebSocket("ws://h/?token=abc#frag")
    assert "abc" not in str(info.value) and "token=REDACTED" in str(info.value)
    with pytest.raises(nbws.InvalidURLError) as info:
        nbws.WebSocket("ws://h/?token=abc def")
    assert "abc" not in str(info.value)


# -- a whole session through every artifact --------------------------------------------------------------


async def test_no_artifact_of_a_session_holds_a_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token, api_key, cookie, wrong = (f"S3CRET{secrets.token_hex(6)}" for _ in range(4))
    caplog.set_level(logging.DEBUG, logger="nbws")
    caplog.set_level(logging.DEBUG, logger="websockets")  # its DEBUG lines show every handshake line
    rec = nbws.Recorder(tmp_path / "session.jsonl")
    log = nbws.Logger(logging.DEBUG, path=tmp_path / "log.jsonl")
    message_log = nbws.MessageLog()
    server = nbws.Server(token=token, plugins=[rec, log])
    message_log.attach(server)
    await server.start()
    shown: list[str] = []
    try:
        ws = nbws.WebSocket(
            f"{server.url}?token={token}&api_key={api_key}&room=1",
            headers={"Authorization": f"Bearer {token}", "Cookie": f"sid={cookie}"},
            plugins=[rec, log],
        )
        panel = nbws.ClientPanel(ws)
        await ws.opened(timeout=timeout())
        ws.send("hello")
        await until(lambda: rec.counts["send"] >= 1 and rec.counts["receive"] >= 1, what="a message recorded")
        errors: list[nbws.ErrorEvent] = []
        refused = nbws.WebSocket(f"{server.url}?token={wrong}", plugins=[rec, log])
        refused.on("error", errors.append)
        refused_panel = nbws.ClientPanel(refused)
        message_log.attach(refused)
        await refused.closed(timeout=timeout())
        unheard = nbws.WebSocket(f"{server.url}?token={wrong}")  # no listener: the nbws logger warns
        await unheard.closed(timeout=timeout())
        with pytest.raises(nbws.ConnectError) as info:
            await refused.opened(timeout=timeout())
        shown += [str(info.value), *(event.message for event in errors), repr(refused), repr(refused_panel)]
        refused_panel.refresh()
        panel.refresh()
        shown += [refused_panel.url.value, refused_panel.status.text, panel.status.text]
        shown += [repr(ws), repr(server), *map(repr, server.clients), repr(rec), repr(panel), panel.url.value]
        shown += [repr(event) for event in rec.recording]
        # The widget state a notebook saves, for every widget alive now.
        # (Widget by widget: a container an earlier test left holding a widget it closed cannot be
        # serialised, by a notebook either, and would fail get_manager_state() as a whole.)
        for widget in list(ipywidgets.widgets.widget._instances.values()):
            try:
                state = widget.get_state(drop_defaults=False)
            except AttributeError:
                continue
            shown.append(json.dumps(state, default=str))
        ws.close()
        await ws.closed(timeout=timeout())
        await until(lambda: rec.counts["close"] >= 3, what="three closes recorded")
        assert errors, "the refused client reported no error"
        assert ws.url.endswith(f"?token={token}&api_key={api_key}&room=1")  # the endpoint itself keeps it
        assert "token=REDACTED" in panel.url.value
    finally:
        await server.stop()
    rec.close()
    log.close()
    har = rec.save_har(tmp_path / "session.har")
    saved = rec.recording.save(tmp_path / "copy.jsonl")
    export = message_log.export(tmp_path / "rows.jsonl")
    shown += [row.detail for row in message_log.rows]
    shown += [record.getMessage() for record in caplog.records]
    shown += [json.dumps(getattr(record, "nbws_event", None), default=str) for record in caplog.records]
    files = {path.name: path.read_text(encoding="utf-8") for path in (rec.path, log.path, har, saved, export)}  # type: ignore[arg-type]

    # The secrets are really in play: redaction is what keeps them out, not their absence.
    assert "token=REDACTED" in files["session.jsonl"] and "api_key=REDACTED" in files["session.jsonl"]
    assert {"name": "token", "value": "REDACTED"} in json.loads(files["session.har"])["log"]["entries"][0]["request"][
        "queryString"
    ]
    assert any("token=REDACTED" in text for text in shown)
    warned = [r.getMessage() for r in caplog.records if r.name == "nbws" and r.levelno == logging.WARNING]
    assert any("could not connect to" in text and "token=REDACTED" in text for text in warned), warned
    handshakes = [r.getMessage() for r in caplog.records if r.name.startswith("websockets")]
    assert "> Authorization: Bearer REDACTED" in handshakes and "> Cookie: sid=REDACTED" in handshakes
    assert any(line.startswith("< GET /?token=REDACTED&api_key=REDACTED") for line in handshakes), handshakes
    for secret in (token, api_key, cookie, wrong):
        assert not [name for name, text in files.items() if secret in text], f"{secret} written to a file"
        assert not [text for text in shown if secret in text], f"{secret} shown"


NOTEBOOK_CELLS = [
    """
    import logging, pathlib, secrets
    import nbws
    logging.basicConfig(level=logging.INFO, force=True)
    TOKEN = "S3CRET" + secrets.token_hex(8)
    pathlib.Path(SECRET_FILE).write_text(TOKEN)
    server = nbws.Server(token=TOKEN, plugins=[nbws.Logger()])
    server.start()
    """,
    """
    ws = nbws.WebSocket(f"{server.url}?token={TOKEN}", headers={"Authorization": "Bearer " + TOKEN})
    await ws.opened(timeout=20)
    ws
    """,
    "print(ws, server.clients)\nws.url.replace(TOKEN, 'x')",
    """
    bad = nbws.WebSocket(f"{server.url}?token=WRONG{TOKEN}", plugins=[nbws.Logger()])
    await bad.closed(timeout=20)
    print(bad.last_error)
    bad
    """,
    "ws.close()\nawait ws.closed(timeout=20)\nawait server.stop()",
]


@pytest.mark.notebook
def test_a_notebook_saved_after_a_session_holds_no_secret(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    cells = [nbformat.v4.new_code_cell(f"SECRET_FILE = {str(secret_file)!r}")]
    cells += [nbformat.v4.new_code_cell(textwrap.dedent(source).strip()) for source in NOTEBOOK_CELLS]
    notebook = nbformat.v4.new_notebook(cells=cells)
    NotebookClient(notebook, timeout=int(timeout(60)), kernel_name="python3", store_widget_state=True).execute(
        cwd=str(tmp_path)
    )
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    token = secret_file.read_text()
    saved = path.read_text(encoding="utf-8")
    assert "token=REDACTED" in saved  # outputs and widget state were saved, redacted
    assert "application/vnd.jupyter.widget-state+json" in saved
    assert token not in saved


def test_a_har_from_a_browser_loads_and_saves_redacted(tmp_path: Path) -> None:
    source = tmp_path / "chrome.har"
    entry = {
        "startedDateTime": "2023-11-14T22:13:20.000Z",
        "request": {
            "url": "wss://feed.example/live?token=S3CRETabc&room=1",
            "headers": [{"name": "Authorization", "value": "Bearer S3CRETdef"}],
            "queryString": [{"name": "token", "value": "S3CRETabc"}],
        },
        "_webSocketMessages": [{"type": "send", "time": 1700000000.5, "opcode": 1, "data": "hi"}],
    }
    source.write_text(json.dumps({"log": {"entries": [entry]}}))
    loaded = nbws.Recording.load(source)
    assert loaded[0].url == "wss://feed.example/live?token=REDACTED&room=1"
    written = [
        loaded.to_har(tmp_path / "again.har").read_text(),
        loaded.save(tmp_path / "again.jsonl").read_text(),
        repr(list(loaded)),
        loaded.to_dataframe().to_csv(),
    ]
    assert not [text for text in written if "S3CRET" in text]


async def test_the_panel_reconnects_with_the_secret_its_field_hides() -> None:
    token = f"S3CRET{secrets.token_hex(6)}"
    server = nbws.Server(token=token)
    await server.start()
    try:
        ws = nbws.WebSocket(f"{server.url}?token={token}")
        panel = nbws.ClientPanel(ws)
        await ws.opened(timeout=timeout())
        assert panel.url.value == f"{server.url}?token=REDACTED"
        panel.disconnect()
        await ws.closed(timeout=timeout())
        again = panel.connect()  # the field still shows REDACTED: the real token is used
        await again.opened(timeout=timeout())
        assert again.url == ws.url and panel.url.value == f"{server.url}?token=REDACTED"
        again.close()
        await again.closed(timeout=timeout())
        edited = panel.connect(f"{server.url}?token=other")  # a URL typed anew is taken as it is
        await edited.closed(timeout=timeout())
        assert edited.close_event is not None and edited.close_event.code == 1006
    finally:
        await server.stop()


def test_the_log_filter_redacts_records_of_other_libraries_and_drops_none() -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(redact.LogFilter())
    other = logging.getLogger("test_harden_redact.other")
    other.addHandler(handler)
    other.setLevel(logging.DEBUG)
    try:
        other.info("fetching %s", "https://api.example/v1?api_key=abc&q=1")
        other.info("> %s: %s", "Authorization", "Bearer abc")
        other.info("< %s %s %s", "GET", "/feed?token=abc", "HTTP/1.1")
        other.info("nothing secret %d", 42)
        other.info("%s", {"token": "abc"})  # not a URL or header: left as it is
    finally:
        other.removeHandler(handler)
    assert [record.getMessage() for record in records] == [
        "fetching https://api.example/v1?api_key=REDACTED&q=1",
        "> Authorization: Bearer REDACTED",
        "< GET /feed?token=REDACTED HTTP/1.1",
        "nothing secret 42",
        "{'token': 'abc'}",
    ]


NAME = st.sampled_from(["token", "Access_Token", "api_key", "key", "room", "user", "q", "tok", "secret"])
VALUE = st.text(st.sampled_from("abcXYZ019-._~%+"), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(NAME, VALUE), max_size=6), st.booleans())
def test_a_redacted_url_keeps_every_pair_but_secret_values(pairs: list[tuple[str, str]], password: bool) -> None:
    userinfo = "me:pa55word@" if password else ""
    url = f"wss://{userinfo}feed.example:8443/live?" + "&".join(f"{name}={value}" for name, value in pairs)
    shown = redact.url(url)
    base, _, query = shown.partition("?")
    assert base == ("wss://me:REDACTED@feed.example:8443/live" if password else "wss://feed.example:8443/live")
    expected = [(n, "REDACTED" if n.lower() in redact.DEFAULT_PARAMS else v) for n, v in pairs]
    assert [tuple(part.split("=", 1)) for part in query.split("&")] == (expected or [("",)])
