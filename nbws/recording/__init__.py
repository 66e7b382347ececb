"""
Recording, saving, loading and replaying sessions: one job per module.

* :mod:`~nbws.recording.model` — :class:`RecordedEvent`, one event, and its
  JSON encoding (fields checked, URLs and errors redacted);
* :mod:`~nbws.recording.query` — :class:`Recording`, the events of a session
  to index, filter and save;
* :mod:`~nbws.recording.jsonl` — the JSON-lines format: reading with crash
  recovery, writing, and :class:`~nbws.recording.jsonl.JsonLinesWriter`, the
  one append-only writer of the :class:`Recorder` and the :class:`nbws.Logger`;
* :mod:`~nbws.recording.har` — HAR import and export (browser developer tools);
* :mod:`~nbws.recording.dataframe` — a recording as a pandas DataFrame;
* :mod:`~nbws.recording.recorder` — :class:`Recorder`, the plugin that records;
* :mod:`~nbws.recording.replay` — :class:`~nbws.recording.replay.Replayer` and
  :func:`~nbws.recording.replay.replay`, which send recorded messages again.

The names users need are also at the top of the package (``nbws.Recorder``,
``nbws.Recording``, ``nbws.replay``...). ``nbws.replay`` is the *function*;
the module that was ``nbws.replay`` is :mod:`nbws.recording.replay` (the old
module path still imports, with a DeprecationWarning).
"""

from .model import FORMAT, FORMAT_VERSION, EventType, PathLike, RecordedEvent, RecordingWarning
from .query import Recording
from .recorder import Recorder
from .replay import Replayer

# `replay` here stays the submodule nbws.recording.replay: the function is nbws.replay and
# nbws.recording.replay.replay (binding it here would hide the module, as it once did in nbws).

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "EventType",
    "PathLike",
    "RecordedEvent",
    "Recorder",
    "Recording",
    "RecordingWarning",
    "Replayer",
]
