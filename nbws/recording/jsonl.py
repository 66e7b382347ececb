"""
Recordings as JSON lines: reading (with crash recovery), writing, and the one
append-only writer that both :class:`nbws.Recorder` and :class:`nbws.Logger` use.

The format, version 1::

    {"format": "nbws-recording", "version": 1, "created": 1700000000.0, "nbws": "0.1.0"}
    {"type": "open", "time": 1700000000.1, "connection": "c1", "role": "client", "url": "ws://127.0.0.1:8765/"}
    {"type": "message", "time": ..., "connection": "c1", "role": "client", "direction": "send", "seq": 1, "opcode": 1, "data": "hello"}
    {"type": "message", ..., "opcode": 2, "data": "AAEC"}           (binary: base64)
    {"type": "message", ..., "original": "hi", "original_opcode": 1}   (a transform changed it)
    {"type": "message", ..., "dropped": true}                          (a transform dropped it)
    {"type": "message", ..., "leg": "upstream", "pair": "p1", "injected": true}   (on a relay; optional)
    {"type": "close", "time": ..., "connection": "c1", "role": "client", "code": 1000, "reason": "", "was_clean": true}
    {"type": "error", "time": ..., "connection": "c1", "role": "client", "phase": "receive", "error": "...", "plugin": null}

The first line is a header naming the format and its version. Reading never
executes anything: it only parses JSON, line by line, so a line a crash cut
short spoils only itself.
"""

from __future__ import annotations

import json
import os
import threading
import time as _time
import warnings
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from ..exceptions import RecordingError
from .model import FORMAT, FORMAT_VERSION, PathLike, RecordedEvent, RecordingWarning, _dumps, _json_error

__all__ = ["JsonLinesWriter", "check_appendable", "read_lines", "write"]

_HEADER_START = b'{"format":"' + FORMAT.encode() + b'"'


def is_cut_header(line: bytes) -> bool:
    """Whether ``line`` is the start of a header line as a :class:`Recorder` writes it, cut short."""
    line = line.rstrip(b"\r")
    return bool(line) and (_HEADER_START.startswith(line) or line.startswith(_HEADER_START))


def new_header() -> dict[str, Any]:
    from .. import __version__

    return {"format": FORMAT, "version": FORMAT_VERSION, "created": _time.time(), "nbws": __version__}


def check_header(obj: object, where: str) -> None:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise RecordingError(
            f"{where}: not an nbws recording: the first line must be its header {{'format': {FORMAT!r}, ...}}"
        )
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordingError(f"{where}: the header's 'version' must be a positive integer, not {version!r}")
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{where}: recording format version {version} is newer than this nbws reads ({FORMAT_VERSION}): upgrade nbws"
        )


def read_lines(raw: bytes, path: Path) -> list[RecordedEvent]:
    """
    The events of a JSON-lines recording (``raw``, the bytes of ``path``).

    A last line cut short (a crash while writing, even inside a UTF-8
    character) is left out with a :class:`nbws.RecordingWarning`.

    Raises:
        nbws.RecordingError: naming the file and line that is wrong.
    """
    # Each line is decoded by itself: a character cut in two by a crash spoils only its own line.
    lines = raw.split(b"\n")
    complete = raw.endswith(b"\n")
    events: list[RecordedEvent] = []
    header_seen = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        last = number == len(lines)
        try:
            obj = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            if last and not complete:
                warnings.warn(
                    f"{path}, line {number}: the last line is cut short (the recording process stopped "
                    f"while writing it); loaded the {len(events)} events before it",
                    RecordingWarning,
                    stacklevel=3,
                )
                break
            if isinstance(exc, UnicodeDecodeError):
                raise RecordingError(f"{path}, line {number}: not valid UTF-8") from None
            raise RecordingError(f"{path}, line {number}: invalid JSON: {_json_error(exc)}") from None
        if not header_seen:
            check_header(obj, f"{path}, line {number}")
            header_seen = True
            continue
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            continue  # the header of a later session appended to the same file
        try:
            events.append(RecordedEvent.from_json(obj))
        except RecordingError as exc:
            raise RecordingError(f"{path}, line {number}: {exc}") from None
    return events


def write(path: PathLike, events: Iterable[RecordedEvent]) -> Path:
    """Write ``events`` as an nbws JSON-lines file (replacing the file); return its path."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(_dumps(new_header()))
        for event in events:
            f.write(_dumps(event.to_json()))
    return path


# -- appending ----------------------------------------------------------------------


def _complete_line(line: bytes) -> bool:
    """Whether ``line`` (without its newline) is a whole JSON object, as each line of a recording is."""
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except (ValueError, RecursionError):
        return False


def _drop_cut_line(path: Path) -> None:
    """Before appending to a recording, remove a last line a crash cut short (it would end up in the middle)."""
    with path.open("rb+") as f:
        end = f.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - 65536)
            f.seek(start)
            chunk = f.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline != -1:
                position = start + newline + 1
                break
            position = start
        if position == end:
            return
        f.seek(position)
        if _complete_line(f.read(end - position)):
            # Only its newline is missing: keep the event, end its line.
            f.seek(end)
            f.write(b"\n")
            return
        f.truncate(position)
    warnings.warn(
        f"{path}: its last line was cut short (the process that recorded it stopped while writing); "
        f"removed that line ({end - position} bytes) before appending",
        RecordingWarning,
        stacklevel=4,
    )


def check_appendable(path: Path) -> None:
    """
    Make ready to append to the recording at ``path``: check its header, remove a last line a crash cut.

    Nothing to do for a file that does not exist or is empty.

    Raises:
        nbws.RecordingError: if the file is not an nbws recording, or a newer version.
    """
    try:
        with path.open("rb") as f:
            first = f.readline()
    except FileNotFoundError:
        return
    if not first.strip():
        return
    try:
        obj = json.loads(first)
    except (ValueError, RecursionError):
        obj = None
    if obj is None and not first.endswith(b"\n") and is_cut_header(first):
        _drop_cut_line(path)  # a crash while writing the header: start the file again
        return
    check_header(obj, f"{path}, line 1")
    _drop_cut_line(path)


class JsonLinesWriter:
    """
    Append JSON objects to a file, one per line, each flushed at once.

    The one file writer of the built-in plugins: :class:`nbws.Recorder` writes
    its recording through it (with a header), :class:`nbws.Logger` its events
    (without one). The file is opened at the first :meth:`write`, in append
    mode; a last line that a crash cut short is removed first (with a
    :class:`nbws.RecordingWarning`), so a new line never lands in the middle of
    an old one. Writes from several threads are serialised; the file is closed
    by :meth:`close`, or when the writer is collected, without a ResourceWarning.

    Args:
        path: The file to append to.
        header: Called for the first line of a new (empty) file, or None for no header.
        fsync: Also ``os.fsync`` after each line (survives a power cut, about a
            millisecond per line).
        default: Given to ``json.dumps`` for values JSON cannot encode (the
            Logger passes ``str``); None: such a value is a TypeError.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        header: Callable[[], dict[str, Any]] | None = None,
        fsync: bool = False,
        default: Callable[[Any], Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._header = header
        self._default = default
        self._file: IO[str] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._lock = threading.Lock()
        self.lines = 0
        """How many lines this writer appended (headers included)."""

    def __repr__(self) -> str:
        return f"<JsonLinesWriter {self.path} {'open' if self._file is not None else 'closed'}: {self.lines} lines>"

    @property
    def is_open(self) -> bool:
        """True while the file is open (from the first :meth:`write` to :meth:`close`)."""
        return self._file is not None

    def write(self, obj: dict[str, Any]) -> None:
        """Append ``obj`` as one line and flush it (and fsync, if asked)."""
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=self._default) + "\n"
        with self._lock:
            f = self._file
            if f is None:
                f = self._file = self._open()
            f.write(line)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
            self.lines += 1

    def flush(self) -> None:
        """Flush what was written (each write already is; for a file read while it is open)."""
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        """Close the file; a later :meth:`write` opens it again and appends."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None

    def _open(self) -> IO[str]:
        path = self.path
        if path.exists() and path.stat().st_size:
            _drop_cut_line(path)
        f = path.open("a", encoding="utf-8", newline="\n")
        # Closed at exit or when the writer is collected, without a ResourceWarning.
        self._finalizer = weakref.finalize(self, f.close)
        if f.tell() == 0 and self._header is not None:
            f.write(json.dumps(self._header(), ensure_ascii=False, separators=(",", ":")) + "\n")
            self.lines += 1
        return f
