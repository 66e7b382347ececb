"""
The message inspector and export of a MessageLog, kernel side: what a click on a row
shows, what Resend and "Edit and send" do, what the filter searches, and what Export
sends to the page. The page side is in system/test_browser_inspector.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _support import timeout

import nbws
from nbws.widgets import LogRow


@pytest.fixture
async def panel(server: nbws.Server) -> AsyncIterator[nbws.ClientPanel]:
    made = nbws.ClientPanel(server.url)
    ws = made.connect()
    await ws.opened(timeout=timeout())
    yield made
    ws.close()
    await ws.closed(timeout=timeout())
    made.close()


def click(log: nbws.MessageLog, row: LogRow) -> dict[str, Any]:
    """What the page does when a row is clicked: it sets the view's ``selected`` trait."""
    log.body.selected = row.id
    return dict(log.body.detail)


def page_says(log: nbws.MessageLog, content: dict[str, Any]) -> None:
    """A custom message from the page's inspector (Resend, Edit and send), as ipywidgets delivers it."""
    log.body._handle_custom_msg(content, [])


async def test_clicking_a_json_row_shows_the_whole_message_with_size_and_times(panel: nbws.ClientPanel) -> None:
    log = panel.message_log
    payload = json.dumps({"user": "ada", "items": list(range(300)), "needle": "deep inside"})
    panel.send(payload)
    row = await log.wait_for(lambda r: r.direction == "receive", timeout())
    detail = click(log, row)
    assert detail["id"] == row.id and detail["direction"] == "receive" and detail["connection"] == panel.ws.id  # type: ignore[union-attr]
    assert detail["text"] == "echo: " + payload and detail["json"] is False  # "echo: " makes it plain text
    sent_row = next(r for r in log.rows if r.direction == "send")
    detail = click(log, sent_row)
    assert detail["json"] is True and json.loads(detail["text"])["needle"] == "deep inside"
    facts = dict(detail["facts"])
    assert facts["size"].startswith(f"{len(payload):,} bytes")
    assert facts["number"] == f"#1 sent on {panel.ws.id}"  # type: ignore[union-attr]
    assert "T" in facts["timestamp"] and facts["time"][:2] == "20"
    assert detail["can_send"] is True
    log.select(None)
    assert log.body.detail == {}


async def test_binary_rows_show_hex_dump_and_base64(panel: nbws.ClientPanel) -> None:
    log = panel.message_log
    data = bytes(range(40))
    panel.send(data)
    row = await log.wait_for(lambda r: r.direction == "receive" and r.kind == "binary", timeout())
    detail = log.select(row)
    assert detail["base64"] == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw=="
    lines = detail["hex"].split("\n")
    assert lines[0] == "00000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  ................"
    assert lines[2] == "00000020  20 21 22 23 24 25 26 27                           !\"#$%&'"
    assert "text" not in detail


async def test_filter_searches_the_whole_message_not_only_the_preview(panel: nbws.ClientPanel) -> None:
    log = panel.message_log
    panel.send("x" * 2000 + " needle-at-the-end")
    panel.send("other")
    await log.wait_for(lambda r: r.direction == "receive" and "other" in r.preview, timeout())
    assert "needle" not in log.rows[1].preview, "the preview is cut long before the needle"
    log.set_filter(text="needle-at-the-end")
    assert [r.direction for r in log.filtered()] == ["send", "receive"]
    log.set_filter(text=r"needle-at-the-end$", regex=True)
    assert len(log.filtered()) == 2


async def test_resend_and_edit_from_the_inspector(panel: nbws.ClientPanel) -> None:
    log = panel.message_log
    panel.send('{"n": 1}')
    row = await log.wait_for(lambda r: r.direction == "send", timeout())
    page_says(log, {"action": "resend", "id": row.id})
    await log.wait_for(lambda r: r.direction == "receive" and r is not log.rows[2] and r.id > 3, timeout())
    assert [r.data for r in log.rows if r.direction == "send"] == ['{"n": 1}', '{"n": 1}']

    page_says(log, {"action": "edit", "id": row.id})
    assert panel.composer.mode.value == "json" and panel.composer.text.value == '{"n": 1}'
    assert "in the composer" in panel.status.text

    binary = LogRow("send", "c0", "binary", size=3, data=b"\x01\x02\x03")
    log.add(binary)
    log.edit(binary)
    assert panel.composer.mode.value == "hex" and panel.composer.text.value == "01 02 03"

    event = next(r for r in log.rows if r.kind == "open")
    with pytest.raises(ValueError, match="an event row has no message"):
        log.resend(event)
    page_says(log, {"action": "resend", "id": 10_000})
    log.flush()
    assert "resend failed: that row is no longer held" in log.info.value


async def test_edited_dropped_and_replayed_messages_are_marked(server: nbws.Server) -> None:
    class Shout:
        @nbws.hookimpl
        def nbws_message_receive(self, message: nbws.Message) -> None:
            if message.data == "echo: drop me":
                message.drop()
            elif isinstance(message.data, str):
                message.data = message.data.upper()

    ws = nbws.WebSocket(server.url, plugins=[Shout()])
    log = nbws.MessageLog()
    log.attach(ws)
    await ws.opened(timeout=timeout())
    ws.send("hi")
    ws.send("drop me")
    await log.wait_for(lambda r: "dropped" in r.marks, timeout())
    edited = next(r for r in log.rows if "edited" in r.marks)
    assert edited.data == "ECHO: HI" and edited.original == "echo: hi"
    detail = log.select(edited)
    assert detail["marks"] == ["edited"] and detail["original"] == "echo: hi"
    log.flush()
    assert '<span class="nbws-mark nbws-mark-edited">edited</span>' in log.body.value
    assert '<span class="nbws-mark nbws-mark-dropped">dropped</span>' in log.body.value
    message = nbws.Message("again", "send", replayed=True)
    log.add_message(message)
    assert log.rows[-1].marks == ("replayed",)
    log.add_message(nbws.Message("hello from the relay", "send", injected=True))
    assert log.rows[-1].marks == ("injected",)
    ws.close()
    await ws.closed(timeout=timeout())
    log.close()


async def test_export_button_offers_what_the_filter_shows_as_a_browser_download(
    front_end: list[tuple[str, dict[str, Any]]], server: nbws.Server, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    panel = nbws.ClientPanel(server.url)
    log = panel.message_log
    ws = panel.connect()
    await ws.opened(timeout=timeout())
    for text in ("apple", "banana", "cherry"):
        panel.send(text)
    await log.wait_for(lambda r: "echo: cherry" in r.preview, timeout())
    log.set_filter(text="an")
    before = len(front_end)
    log.export_button.click()
    custom = [msg for model, msg in front_end[before:] if model == log.body.model_id and msg.get("method") == "custom"]
    assert len(custom) == 1
    content = custom[0]["content"]
    assert content["type"] == "download" and content["name"].endswith(".jsonl")
    records = [json.loads(line) for line in content["text"].splitlines()]
    assert [r["text"] for r in records] == ["banana", "echo: banana"]
    assert list(tmp_path.iterdir()) == [], "nothing is written in the kernel's directory"
    log.flush()
    assert "downloading 2 rows (the rows the filter shows)" in log.info.value
    path = log.export(tmp_path / "all.jsonl")
    assert len(path.read_text().splitlines()) == len(log.rows)
    ws.close()
    await ws.closed(timeout=timeout())
    panel.close()


async def test_more_views_can_be_added_to_the_inspector(panel: nbws.ClientPanel) -> None:
    log = panel.message_log

    def upper(row: LogRow) -> tuple[str, str] | None:
        return ("Upper", row.data.upper()) if isinstance(row.data, str) else None

    def broken(row: LogRow) -> tuple[str, str]:
        raise ValueError("cannot decode")

    log.add_view(upper)
    log.add_view(broken)
    panel.send("hello")
    row = await log.wait_for(lambda r: r.direction == "receive", timeout())
    assert log.select(row)["views"] == [
        ["Upper", "ECHO: HELLO"],
        ["broken", "this view failed: ValueError: cannot decode"],
    ]


async def test_a_panel_shown_late_shows_what_a_recorder_kept(server: nbws.Server) -> None:
    rec = nbws.Recorder()
    ws = nbws.WebSocket(server.url, plugins=[rec])
    await ws.opened(timeout=timeout())
    for word in ("one", "two"):
        ws.send(word)
        await ws.recv(timeout=timeout())
    panel = ws.panel()  # displayed only now
    log = panel.message_log
    assert [(r.direction, r.kind, r.data) for r in log.rows[:5]] == [
        ("event", "open", None),
        ("send", "text", "one"),
        ("receive", "text", "echo: one"),
        ("send", "text", "two"),
        ("receive", "text", "echo: two"),
    ]
    assert "the 5 events above happened before this log was shown" in log.rows[5].detail
    ws.send("three")
    await log.wait_for(lambda r: r.data == "echo: three", timeout())
    assert [r.data for r in log.rows if r.direction == "send"] == ["one", "two", "three"], "nothing twice"
    ws.close()
    await ws.closed(timeout=timeout())
    panel.close()

    plain = nbws.WebSocket(server.url)  # no recorder: nothing to show, nothing said
    await plain.opened(timeout=timeout())
    assert nbws.MessageLog().show_history(plain) == 0
    plain.close()
    await plain.closed(timeout=timeout())
