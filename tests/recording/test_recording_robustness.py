"""
Issue 10, items 7, 8 and 9: recordings survive a crash at any byte, a recorder's
memory stays bounded, and impossible times are refused when a recording loads.

- A recording is decoded line by line: a UTF-8 character a crash cut in two
  spoils only the last line, and a complete last line that only lacks its
  newline is kept, when loading and when a recorder appends to the file again.
- A recorder holds at most ``keep`` events and ``keep_bytes`` of payload in
  memory; with a file, the file still has them all; without one, the first
  discard says so with a warning.
- NaN, infinities and absurd times are refused at load with a RecordingError
  naming the line (or the HAR entry and field).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from _support import timeout, until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbws
from nbws import RecordedEvent

HEADER = '{"format":"nbws-recording","version":1}\n'


def message(seq: int, data: str | bytes, when: float = 1_700_000_000.0) -> RecordedEvent:
    return RecordedEvent("message", when + seq, "c1", "client", "send", seq, data)


def load_quietly(path: Path) -> tuple[nbws.Recording, list[str]]:
    """Load a recording; return it and the texts of the RecordingWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = nbws.Recording.load(path)
    assert all(issubclass(w.category, nbws.RecordingWarning) for w in caught), [str(w.message) for w in caught]
    return loaded, [str(w.message) for w in caught]


# -- item 7: a crash at any byte ------------------------------------------------------------------


def test_a_character_cut_in_two_in_the_last_line_loses_only_that_line(tmp_path: Path) -> None:
    path = nbws.Recording([message(1, "first"), message(2, "héllo wörld ✓")]).save(tmp_path / "r.jsonl")
    raw = path.read_bytes()
    cut = raw.index("✓".encode()) + 1  # inside the three bytes of the check mark
    path.write_bytes(raw[:cut])
    with pytest.warns(nbws.RecordingWarning, match=r"line 3: the last line is cut short.*loaded the 1 events"):
        loaded = nbws.Recording.load(path)
    assert [event.data for event in loaded] == ["first"]


def test_invalid_utf8_before_the_last_line_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    good = json.dumps(message(2, "ok").to_json())
    path.write_bytes(HEADER.encode() + b'{"type":"open","time":1,"url":"ws://x/\xe2\x9c"}\n' + good.encode() + b"\n")
    with pytest.raises(nbws.RecordingError, match=r"r\.jsonl, line 2: not valid UTF-8"):
        nbws.Recording.load(path)


TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)  # any character, surrogates aside


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(TEXT, st.binary(max_size=8)), min_size=1, max_size=3))
def test_a_recording_cut_at_any_byte_loads_every_complete_event(tmp_path: Path, payloads: list[str | bytes]) -> None:
    events = [message(seq, data) for seq, data in enumerate(payloads, 1)]
    raw = nbws.Recording(events).save(tmp_path / "full.jsonl").read_bytes()
    newlines = [index for index, byte in enumerate(raw) if byte == ord("\n")]
    ends = newlines[1:]  # where each event's line ends: it is complete once the cut reaches its newline
    path = tmp_path / "cut.jsonl"
    for offset in range(1, len(raw) + 1):
        path.write_bytes(raw[:offset])
        loaded, warned = load_quietly(path)
        complete = sum(1 for end in ends if end <= offset)
        assert list(loaded) == events[:complete], offset
        # Only a cut inside a line loses something, and says so; a line missing only its newline is whole.
        at_a_line_end = offset in newlines or offset - 1 in newlines
        assert bool(warned) != at_a_line_end, (offset, warned)


def test_appending_keeps_a_complete_last_line_that_only_lacks_its_newline(tmp_path: Path) -> None:
    path = nbws.Recording([message(1, "one"), message(2, "two ✓")]).save(tmp_path / "r.jsonl")
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is lost, so nothing to warn about
        rec = nbws.Recorder(path)
        rec.record(message(3, "three"))
        rec.close()
    loaded, warned = load_quietly(path)
    assert [event.data for event in loaded] == ["one", "two ✓", "three"] and warned == []


def test_appending_still_removes_a_line_cut_inside_a_character(tmp_path: Path) -> None:
    path = nbws.Recording([message(1, "one"), message(2, "two ✓")]).save(tmp_path / "r.jsonl")
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.index("✓".encode()) + 2])
    with pytest.warns(nbws.RecordingWarning, match=r"last line was cut short.*removed that line"):
        rec = nbws.Recorder(path)
    rec.record(message(3, "three"))
    rec.close()
    loaded, warned = load_quietly(path)
    assert [event.data for event in loaded] == ["one", "three"] and warned == []


def test_a_file_cut_inside_its_header_loads_empty_and_is_started_again(tmp_path: Path) -> None:
    path = nbws.Recording([message(1, "one")]).save(tmp_path / "r.jsonl")
    path.write_bytes(path.read_bytes()[:20])
    with pytest.warns(nbws.RecordingWarning, match=r"line 1: the file ends inside its header line"):
        assert len(nbws.Recording.load(path)) == 0
    with pytest.warns(nbws.RecordingWarning, match=r"removed that line \(20 bytes\)"):
        rec = nbws.Recorder(path)
    rec.record(message(2, "two"))
    rec.close()
    loaded, warned = load_quietly(path)
    assert [event.data for event in loaded] == ["two"] and warned == []


# -- item 9: impossible times -----------------------------------------------------------------------

BAD_TIMES = ["NaN", "Infinity", "-Infinity", "1e308", "-1", "1" + "0" * 400]


@pytest.mark.parametrize("when", BAD_TIMES)
def test_impossible_times_are_refused_at_load_naming_the_line(tmp_path: Path, when: str) -> None:
    path = tmp_path / "r.jsonl"
    good = json.dumps(message(1, "ok").to_json())
    bad = good.replace(f'"time": {message(1, "ok").time}', f'"time": {when}')
    assert bad != good
    path.write_text(HEADER + good + "\n" + bad + "\n")
    with pytest.raises(nbws.RecordingError, match=r"r\.jsonl, line 3: 'time' must be a number of seconds"):
        nbws.Recording.load(path)


def har(frame_time: str = "1700000000.5", open_time: str = "1700000000", close_time: str = "1700000001") -> str:
    return (
        '{"log": {"entries": [{"startedDateTime": "2023-11-14T22:13:20.000Z", "request": {"url": "ws://x/"},'
        f' "_webSocketMessages": [{{"type": "send", "time": {frame_time}, "opcode": 1, "data": "hi"}}],'
        f' "_nbws": {{"openTime": {open_time}, "close": {{"time": {close_time}, "code": 1000}}}}}}]}}}}'
    )


@pytest.mark.parametrize("when", BAD_TIMES)
@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("frame_time", r"_webSocketMessages\[0\]\.time must be"),
        ("open_time", r"_nbws\.openTime must be"),
        ("close_time", r"_nbws\.close: 'time' must be"),
    ],
)
def test_impossible_times_in_a_har_file_are_refused_naming_the_field(
    tmp_path: Path, when: str, field: str, where: str
) -> None:
    path = tmp_path / "r.har"
    path.write_text(har(**{field: when}))
    json.loads(har())  # the template itself is valid
    with pytest.raises(nbws.RecordingError, match=r"r\.har: log\.entries\[0\]\." + where):
        nbws.Recording.load(path)


def test_a_har_started_before_1970_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    path.write_text(har().replace("2023-11-14", "1900-01-01"))
    with pytest.raises(nbws.RecordingError, match=r"startedDateTime is before 1970"):
        nbws.Recording.load(path)


def test_plausible_times_still_load_and_convert(tmp_path: Path) -> None:
    path = tmp_path / "r.har"
    path.write_text(har())
    loaded = nbws.Recording.load(path)
    assert [event.type for event in loaded] == ["open", "message", "close"]
    assert loaded.to_har_dict()["log"]["entries"][0]["startedDateTime"] == "2023-11-14T22:13:20.000Z"


# -- item 8: bounded memory ---------------------------------------------------------------------------


def test_with_a_file_memory_holds_a_window_and_the_file_everything(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    rec = nbws.Recorder(path, keep=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is lost: no warning
        for seq in range(1, 1001):
            rec.record(message(seq, f"m{seq}"))
    assert 75 <= len(rec.recording) <= 100
    assert rec.recording[-1].data == "m1000"
    assert rec.discarded + len(rec.recording) == 1000 and rec.counts["send"] == 1000
    assert [event.data for event in nbws.Recording.load(path)] == [f"m{seq}" for seq in range(1, 1001)]
    har_path = rec.save_har(tmp_path / "r.har")  # from the file: every event, not the window
    assert len(nbws.Recording.load(har_path).messages()) == 1000
    rec.close()


def test_payload_bytes_are_bounded_too(tmp_path: Path) -> None:
    rec = nbws.Recorder(tmp_path / "r.jsonl", keep_bytes=10_000)
    for seq in range(1, 101):
        rec.record(message(seq, b"x" * 1000))
    assert sum(event.size for event in rec.recording) <= 10_000
    assert rec.recording[-1].seq == 100
    rec.close()


def test_in_memory_only_a_cap_warns_once_when_it_starts_discarding() -> None:
    rec = nbws.Recorder(keep=10)
    for seq in range(1, 11):
        rec.record(message(seq, "x"))
    with pytest.warns(nbws.RecordingWarning, match=r"records in memory only and holds at most 10 events") as caught:
        for seq in range(11, 101):
            rec.record(message(seq, "x"))
    assert len(caught) == 1
    assert len(rec.recording) <= 10 and rec.recording[-1].seq == 100


def test_defaults_bound_memory_with_or_without_a_file(tmp_path: Path) -> None:
    on_disk, in_memory = nbws.Recorder(tmp_path / "r.jsonl"), nbws.Recorder()
    assert (on_disk.keep, on_disk.keep_bytes) == (10_000, 16 * 2**20)
    assert (in_memory.keep, in_memory.keep_bytes) == (100_000, 128 * 2**20)
    assert nbws.Recorder(keep=math.inf).keep == math.inf
    for bad in (0, -1, "10", True, math.nan):
        with pytest.raises(ValueError, match="keep must be a positive number"):
            nbws.Recorder(keep=bad)  # type: ignore[arg-type]


async def test_a_live_session_is_recorded_whole_to_the_file_with_a_small_window(
    server: nbws.Server, tmp_path: Path
) -> None:
    rec = nbws.Recorder(tmp_path / "r.jsonl", keep=20)
    ws = nbws.WebSocket(server.url, plugins=[rec])
    await ws.opened(timeout=timeout())
    for n in range(100):
        ws.send(f"m{n}")
    await until(lambda: rec.counts["receive"] == 100, what="100 echoes recorded")
    ws.close()
    await ws.closed(timeout=timeout())
    assert len(rec.recording) <= 20
    loaded = nbws.Recording.load(rec.path)  # type: ignore[arg-type]
    assert [event.data for event in loaded.messages("send")] == [f"m{n}" for n in range(100)]
    assert len(loaded.messages("receive")) == 100
    rec.close()


def test_appending_after_a_cut_at_any_byte_keeps_every_complete_event(tmp_path: Path) -> None:
    events = [message(1, "ünï ✓"), message(2, b"\x00\xff"), message(3, "🎉")]
    raw = nbws.Recording(events).save(tmp_path / "full.jsonl").read_bytes()
    newlines = [index for index, byte in enumerate(raw) if byte == ord("\n")]
    path = tmp_path / "cut.jsonl"
    for offset in range(1, len(raw) + 1):
        path.write_bytes(raw[:offset])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = nbws.Recorder(path)
            rec.record(message(9, "after"))
            rec.close()
        complete = sum(1 for end in newlines[1:] if end <= offset)
        loaded, warned = load_quietly(path)
        assert list(loaded) == [*events[:complete], message(9, "after")], offset
        assert warned == []
        lost = not (offset in newlines or offset - 1 in newlines)
        assert len(caught) == lost, (offset, [str(w.message) for w in caught])
