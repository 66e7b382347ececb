"""
ipywidgets panels for the recorder, the replayer and the intercept.

Each panel is a thin view: the state lives in the :class:`~nbws.Recorder`,
:class:`~nbws.Replayer` or :class:`~nbws.Intercept` it shows, and every
button has a programmatic twin (``panel.play()`` for the Play button, and
so on), so a panel can be driven from code and tests as from the mouse.
An error in a button's action is shown in the panel's status line and
logged; it never reaches the kernel.

The recorder and the intercept contribute their panels to an
:class:`nbws.Dashboard` through the ``nbws_panel`` hook when they are
registered globally; each panel also works on its own
(``rec.panel()``, ``icpt.panel()``, ``replayer.panel()``).
"""

from __future__ import annotations

import base64
import binascii
import html
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .. import OPEN, BaseConnection, RecordedEvent, Recording, redact
from ..builtins.logger import preview
from ._common import StatusLine, Throttle, close_widgets, forget, on_change, on_click, shows_errors, style

if TYPE_CHECKING:
    from .. import Intercept, Recorder, Replayer

__all__ = ["InterceptPanel", "RecorderPanel", "ReplayPanel"]

REFRESH_INTERVAL = 0.25
"""Seconds between two refreshes of a panel while events stream in."""


def _describe(event: RecordedEvent, start: float | None) -> str:
    offset = f"+{event.time - start:.3f}s " if start is not None else ""
    assert event.data is not None
    kind = "bin" if event.is_binary else "txt"
    return f"#{event.seq} {offset}{kind} {event.size} B: {preview(event.data, 60)}"


def _connection_label(conn: BaseConnection) -> str:
    url = getattr(conn, "url", None)  # a client's URL; a server's connection shows the path it asked for
    if not isinstance(url, str):
        request = getattr(conn, "request", None)
        url = request.path if request is not None else ""
    return f"{conn.id} ({conn.role} {redact.url(url)})"


class _Panel(widgets.VBox):  # type: ignore[misc]
    """
    What the three panels share, from :mod:`nbws.widgets._common`: the stylesheet,
    one status line (errors in words, in red), buttons whose errors are shown there
    and never reach the kernel, and one throttle for refreshes while events stream in.
    """

    def __init__(self, interval: float = REFRESH_INTERVAL, **kwargs: Any) -> None:
        self.status = StatusLine()
        self._style = style()
        self._throttle = Throttle(self.refresh, interval)
        super().__init__(**kwargs)
        self.add_class("nbws-panel")

    def refresh(self) -> None:
        """Bring the panel up to date (each panel says with what)."""

    def _refresh_soon(self, *_: object) -> None:
        """A watcher callback: refresh at the next turn of the loop, at most once per interval."""
        self._throttle.request()

    def _layout(self, *rows: Any) -> None:
        self.children = [self._style, *rows, self.status]

    def _button(
        self, description: str, action: Callable[[], Any], *, icon: str = "", tooltip: str = ""
    ) -> widgets.Button:
        button = widgets.Button(description=description, icon=icon, tooltip=tooltip or description)
        button.on_click(on_click(action))
        return button

    def _say(self, text: str, error: bool = False) -> None:
        if error:
            self.status.error(text)
        else:
            self.status.info(text)

    def close(self) -> None:
        """Close the panel's widgets; the object it shows goes on."""
        throttle = getattr(self, "_throttle", None)
        if throttle is not None:
            throttle.cancel()
        close_widgets(*(part for part in (getattr(self, "_style", None), getattr(self, "status", None)) if part))
        super().close()


# -------------------------------------------------------------------------
# Replay
# -------------------------------------------------------------------------


class ReplayPanel(_Panel):
    """
    Replay a recording interactively: its messages as a list, a target and
    a direction to choose, play / pause / step / stop, speed, editing a
    message before it is sent, and progress.

    Args:
        recording: The :class:`~nbws.Recording` to replay.
        targets: The connections one may replay to: a list, or a function
            returning the current list (called at each :meth:`refresh`).
        replayer: A :class:`~nbws.Replayer` to control, instead of making
            one at the first play, step or edit.

    The panel keeps no replay state of its own: an edit is the replayer's
    (:meth:`nbws.Replayer.edit`, shown from :attr:`nbws.Replayer.edits`), so a
    target must be chosen before editing; a replay not started yet keeps its
    edits when only the target or the mode changes.

    Programmatic twins of the controls: :meth:`play`, :meth:`pause`,
    :meth:`step`, :meth:`stop`, :meth:`edit`, :meth:`select`,
    :meth:`set_target`, :meth:`set_direction`, :meth:`set_speed`.
    """

    @classmethod
    def of_replayer(cls, replayer: Replayer) -> ReplayPanel:
        """A panel for ``replayer``: its recording, its target, its controls (what ``replayer.panel()`` shows)."""
        return cls(replayer.recording, targets=[replayer.target], replayer=replayer)

    def __init__(
        self,
        recording: Recording,
        targets: Sequence[BaseConnection] | Callable[[], Iterable[BaseConnection]] = (),
        *,
        replayer: Replayer | None = None,
    ) -> None:
        super().__init__()
        self.recording = recording
        self._targets = targets
        self.replayer: Replayer | None = replayer
        self._messages: list[RecordedEvent] = []

        self.target_select = widgets.Dropdown(description="Target", options=[])
        self.connection_select = widgets.Dropdown(description="Recorded", options=[])
        self.direction_buttons = widgets.ToggleButtons(
            options=["send", "receive"], value="send", description="Direction"
        )
        self.mode_buttons = widgets.ToggleButtons(options=["timed", "reactive"], value="timed", description="Mode")
        self.speed_slider = widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=2, step=0.1, description="Speed")
        self.fastest = widgets.Checkbox(value=False, description="as fast as possible")
        self.message_list = widgets.Select(options=[], rows=10, layout=widgets.Layout(width="100%"))
        self.editor = widgets.Textarea(
            placeholder="select a message to edit it before it is sent (binary: base64)",
            layout=widgets.Layout(width="100%"),
        )
        self.play_button = self._button("Play", self.play, icon="play")
        self.pause_button = self._button("Pause", self.pause, icon="pause")
        self.step_button = self._button("Step", self.step, icon="step-forward")
        self.stop_button = self._button("Stop", self.stop, icon="stop")
        self.apply_button = self._button("Apply edit", self._apply_edit, icon="pencil")
        self.refresh_button = self._button("", self.refresh, icon="refresh", tooltip="refresh the targets")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="Progress")
        self.progress_label = widgets.Label(value="")

        if replayer is not None:
            self.direction_buttons.value = replayer.direction
            self.mode_buttons.value = replayer.mode
            if math.isinf(replayer.speed):
                self.fastest.value = True
            else:
                self.speed_slider.value = replayer.speed
            replayer.watch(self._refresh_soon)

        for control in (self.direction_buttons, self.connection_select, self.target_select, self.mode_buttons):
            control.observe(on_change(lambda _: self._settings_changed()), "value")
        self.speed_slider.observe(on_change(lambda _: self._speed_changed()), "value")
        self.fastest.observe(on_change(lambda _: self._speed_changed()), "value")
        self.message_list.observe(on_change(lambda _: self._show_selected()), "value")

        self._layout(
            widgets.HBox([self.target_select, self.refresh_button]),
            self.connection_select,
            self.direction_buttons,
            self.mode_buttons,
            widgets.HBox([self.speed_slider, self.fastest]),
            self.message_list,
            self.editor,
            widgets.HBox([self.play_button, self.pause_button, self.step_button, self.stop_button, self.apply_button]),
            widgets.HBox([self.progress, self.progress_label]),
        )
        self.refresh()

    def __repr__(self) -> str:
        return f"<ReplayPanel {len(self._messages)} messages>"

    def close(self) -> None:
        """Close the panel's widgets and stop following the replayer (which goes on)."""
        replayer = getattr(self, "replayer", None)
        if replayer is not None:
            forget(replayer, self)
            replayer.unwatch(self._refresh_soon)
            if replayer.state == "ready":
                replayer.stop()  # never played: it only listened to its target
        super().close()

    # -- reading the state ------------------------------------------------------------

    @property
    def targets(self) -> list[BaseConnection]:
        """The connections offered as targets now (the open ones)."""
        found = self._targets() if callable(self._targets) else self._targets
        return [conn for conn in found if conn.ready_state is OPEN]

    @property
    def messages(self) -> list[RecordedEvent]:
        """The messages the replay would send with the current choices (the replayer's edits included)."""
        return list(self._messages)

    def _recorded_role(self) -> str:
        """The side (``"client"`` or ``"server"``) that recorded the connection chosen to replay, or ``""``."""
        connection = self.connection_select.value
        for event in self.recording:
            if event.connection == connection and event.role:
                return event.role
        return ""

    def refresh(self) -> None:
        """Bring the panel up to date with the recording, the targets and the replayer."""
        direction = self.direction_buttons.value
        connections = self.recording.messages(direction).connections
        if list(self.connection_select.options) != connections:
            previous = self.connection_select.value
            self.connection_select.options = connections
            if previous in connections:
                self.connection_select.value = previous
            elif connections:
                self.connection_select.value = connections[0]
        targets = self.targets
        current = self.target_select.value
        options = [(_connection_label(conn), conn) for conn in targets]
        if self.replayer is not None and all(conn is not self.replayer.target for conn in targets):
            options.insert(0, (_connection_label(self.replayer.target), self.replayer.target))
        if [value for _, value in options] != [value for _, value in self.target_select.options]:
            self.target_select.options = options
            if any(value is current for _, value in options):
                self.target_select.value = current
            elif options:
                # By default, what a client sent is replayed from a client, what a server sent from a server.
                role = self._recorded_role()
                same_side = [value for _, value in options if value.role == role]
                self.target_select.value = (same_side or [options[0][1]])[0]
        self._load_messages()
        self._show_progress()

    def _load_messages(self) -> None:
        replayer = self.replayer
        if replayer is not None:
            self._messages = list(replayer.messages)
        else:
            connection = self.connection_select.value
            chosen = self.recording.messages(self.direction_buttons.value, connection) if connection else Recording()
            self._messages = list(chosen)
        start = self.recording.start
        options = [(_describe(event, start), i) for i, event in enumerate(self._messages)]
        if list(self.message_list.options) != options:
            selected = self.message_list.value
            self.message_list.options = options
            if selected is not None and selected < len(options):
                self.message_list.value = selected

    def _show_progress(self) -> None:
        replayer = self.replayer
        total = len(self._messages)
        sent = replayer.position if replayer is not None else 0
        self.progress.max = max(total, 1)
        self.progress.value = sent
        state = replayer.state if replayer is not None else "ready"
        error = f" · {replayer.error}" if replayer is not None and replayer.error is not None else ""
        self.progress_label.value = f"{sent}/{total} sent · {state}{error}"
        if replayer is not None and replayer.finished and "playing" in self.status.value:
            # The status line ends where the progress bar does.
            self._say(state + error, error=replayer.error is not None)

    # -- controls -------------------------------------------------------------------------

    @shows_errors
    def _settings_changed(self) -> None:
        replayer = self.replayer
        if replayer is not None and replayer.state in ("ready", "done", "stopped", "failed"):
            was_ready = replayer.state == "ready"
            if was_ready or replayer.target is not self.target_select.value:
                self._drop_replayer()
                if was_ready and replayer.edits:
                    self._carry_edits(replayer)
        elif replayer is not None and self.mode_buttons.value != replayer.mode:
            self._say("the mode applies to the next replay", error=False)
        self.refresh()

    def _drop_replayer(self) -> None:
        """Stop following the replayer; one that never played is stopped (it listened to its target)."""
        replayer = self.replayer
        if replayer is None:
            return
        replayer.unwatch(self._refresh_soon)
        if replayer.state == "ready":
            replayer.stop()
        self.replayer = None

    def _carry_edits(self, old: Replayer) -> None:
        """A replay not started yet, with edits, whose target or mode changed: a new one, with the same edits."""
        if self.connection_select.value != old.connection or self.direction_buttons.value != old.direction:
            return  # other messages: the edits were for those
        target = self.target_select.value
        if target is None or target.ready_state is not OPEN:
            return
        replayer = self._new_replayer(target)
        for index, data in old.edits.items():
            replayer.edit(index, data)

    @shows_errors
    def _speed_changed(self) -> None:
        if self.replayer is not None:
            self.replayer.speed = self.speed

    @property
    def speed(self) -> float:
        """The speed chosen: the slider's value, or ``math.inf`` for as fast as possible."""
        return math.inf if self.fastest.value else float(self.speed_slider.value)

    def _make_replayer(self) -> Replayer:
        replayer = self.replayer
        if replayer is not None and not replayer.finished:
            return replayer
        self._forget_finished()
        self.refresh()
        target = self.target_select.value
        if target is None or target.ready_state is not OPEN:
            raise ValueError("choose a target connection first (an open WebSocket or server Connection)")
        if self.connection_select.value is None:
            raise ValueError(f"the recording has no {self.direction_buttons.value!r} messages to replay")
        return self._new_replayer(target)

    def _new_replayer(self, target: BaseConnection) -> Replayer:
        from .. import Replayer

        replayer = Replayer(
            self.recording,
            target,
            direction=self.direction_buttons.value,
            connection=self.connection_select.value,
            speed=self.speed,
            mode=self.mode_buttons.value,
        )
        replayer.watch(self._refresh_soon)
        self.replayer = replayer
        return replayer

    def _forget_finished(self) -> None:
        """A finished replay stays shown until the next play, step or edit starts afresh."""
        replayer = self.replayer
        if replayer is not None and replayer.finished:
            replayer.unwatch(self._refresh_soon)
            self.replayer = None
            self._load_messages()

    @shows_errors
    def play(self) -> None:
        """Play (the Play button): start a replay with the current choices, or resume a paused one."""
        self._make_replayer().play()
        self._say("playing")
        self.refresh()

    @shows_errors
    def pause(self) -> None:
        """Pause (the Pause button)."""
        if self.replayer is not None:
            self.replayer.pause()
            self._say("paused")
        self.refresh()

    @shows_errors
    def step(self) -> None:
        """Send the next message now (the Step button)."""
        message = self._make_replayer().step()
        self._say("nothing left to send" if message is None else f"sent {preview(message.data, 40)}")
        self.refresh()

    @shows_errors
    def stop(self) -> None:
        """Stop the replay for good (the Stop button); the next play starts again from the first message."""
        if self.replayer is not None:
            self.replayer.stop()
            self._say("stopped")
        self.refresh()

    def select(self, index: int) -> None:
        """Select message ``index`` in the list, showing it in the editor."""
        self.message_list.value = index

    @shows_errors
    def edit(self, index: int, data: str | bytes) -> None:
        """
        Change message ``index`` before it is sent (the editor and its Apply button).

        The edit is the replayer's (:meth:`nbws.Replayer.edit`): one is made for
        the chosen target if there is none yet, so a target must be chosen first.
        """
        self._forget_finished()
        if self.replayer is None and not 0 <= index < len(self._messages):
            raise IndexError(f"there is no message {index} (there are {len(self._messages)})")
        self._make_replayer().edit(index, data)
        self.refresh()
        self._say(f"message {index} edited")

    def set_target(self, conn: BaseConnection) -> None:
        """Choose the connection to replay to."""
        self.refresh()
        if all(value is not conn for _, value in self.target_select.options):
            raise ValueError(f"{conn!r} is not one of the open targets")
        self.target_select.value = conn

    def set_direction(self, direction: str) -> None:
        """Choose which recorded messages to send: ``"send"`` or ``"receive"``."""
        self.direction_buttons.value = direction

    def set_speed(self, speed: float) -> None:
        """Set the speed (``math.inf``: as fast as possible)."""
        if math.isinf(speed):
            self.fastest.value = True
        else:
            self.fastest.value = False
            self.speed_slider.value = speed

    @shows_errors
    def _show_selected(self) -> None:
        index = self.message_list.value
        if index is None or index >= len(self._messages):
            return
        data = self._messages[index].data
        assert data is not None
        self.editor.value = base64.b64encode(data).decode() if isinstance(data, bytes) else data

    @shows_errors
    def _apply_edit(self) -> None:
        index = self.message_list.value
        if index is None:
            raise ValueError("select a message to edit first")
        old = self._messages[index].data
        text = self.editor.value
        if isinstance(old, bytes):
            try:
                data: str | bytes = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("a binary message is edited as base64, and this is not valid base64") from None
        else:
            data = text
        self.edit(index, data)


# -------------------------------------------------------------------------
# Recorder
# -------------------------------------------------------------------------


class RecorderPanel(_Panel):
    """
    Control a :class:`~nbws.Recorder`: start / stop, its file, the counts of
    events recorded, save as HAR, and a replay section for what it recorded.

    Programmatic twins: :meth:`start`, :meth:`stop`, :meth:`save_har`.
    """

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder
        self.record_button = widgets.ToggleButton(value=recorder.active, description="Recording", icon="circle")
        self.file_label = widgets.HTML()
        self.counts_label = widgets.HTML()
        self.har_path = widgets.Text(value="recording.har", description="HAR file")
        self.save_button = self._button("Save as HAR", self.save_har, icon="download")
        self.replay = ReplayPanel(recorder.recording, targets=lambda: recorder.connections)
        self.replay_section = widgets.Accordion(children=[self.replay], titles=("Replay",))
        self.record_button.observe(on_change(self._toggle), "value")
        recorder.watch(self._refresh_soon)
        self._layout(
            widgets.HBox([self.record_button, self.file_label]),
            self.counts_label,
            widgets.HBox([self.har_path, self.save_button]),
            self.replay_section,
        )
        self.refresh()

    def __repr__(self) -> str:
        return f"<RecorderPanel {self.recorder!r}>"

    def close(self) -> None:
        """Close the panel's widgets and stop following the recorder (which goes on recording)."""
        if hasattr(self, "replay"):
            forget(self.recorder, self)
            self.recorder.unwatch(self._refresh_soon)
            self.replay.close()
        super().close()

    @shows_errors
    def _toggle(self, on: bool) -> None:
        if on and not self.recorder.active:
            self.recorder.start()
        elif not on and self.recorder.active:
            self.recorder.stop()

    def start(self) -> None:
        """Start recording (the Recording toggle, on)."""
        self.record_button.value = True

    def stop(self) -> None:
        """Stop recording (the Recording toggle, off)."""
        self.record_button.value = False

    @shows_errors
    def save_har(self, path: str | Path | None = None) -> Path:
        """Save what was recorded as a HAR file (the Save as HAR button); return its path."""
        if path is not None:
            self.har_path.value = str(path)
        name = self.har_path.value.strip()
        if not name:
            raise ValueError("enter a file name for the HAR file")
        written = self.recorder.save_har(name)
        recorder = self.recorder
        if recorder.discarded and recorder.path is not None:
            self._say(f"saved everything {recorder.path} holds to {written}")
        else:
            self._say(f"saved {len(recorder.recording.messages())} messages to {written}")
        return written

    def refresh(self) -> None:
        """Bring the panel up to date with the recorder."""
        recorder = self.recorder
        self.record_button.value = recorder.active
        self.record_button.button_style = "danger" if recorder.active else ""
        where = str(recorder.path) if recorder.path is not None else "memory only (no file)"
        self.file_label.value = f"to <code>{html.escape(where)}</code>"
        counts = recorder.counts
        parts = " · ".join(f"{name} {counts[name]}" for name in ("open", "send", "receive", "close", "error"))
        held = f" ({recorder.discarded} older ones no longer in memory)" if recorder.discarded else ""
        self.counts_label.value = f"{len(recorder.recording)} events{held}: {parts}"
        self.replay.refresh()


# -------------------------------------------------------------------------
# Intercept
# -------------------------------------------------------------------------


class InterceptPanel(_Panel):
    """
    The held queue of an :class:`~nbws.Intercept`, with forward / edit / drop.

    Programmatic twins: :meth:`forward`, :meth:`edit`, :meth:`drop`,
    :meth:`forward_all`, :meth:`select`, :meth:`start`, :meth:`stop`.
    """

    def __init__(self, intercept: Intercept) -> None:
        super().__init__(interval=0.05)
        self.intercept = intercept
        self.active_button = widgets.ToggleButton(
            value=intercept.active, description="Intercepting", icon="hand-paper-o"
        )
        self.held_list = widgets.Select(options=[], rows=8, layout=widgets.Layout(width="100%"))
        self.editor = widgets.Textarea(
            placeholder="the selected message (binary: base64)", layout=widgets.Layout(width="100%")
        )
        self.forward_button = self._button("Forward", self.forward, icon="arrow-right")
        self.edit_button = self._button("Edit and forward", self.edit, icon="pencil")
        self.drop_button = self._button("Drop", self.drop, icon="trash")
        self.forward_all_button = self._button("Forward all", self.forward_all, icon="fast-forward")
        self.counts_label = widgets.Label()
        self.active_button.observe(on_change(self._toggle), "value")
        self.held_list.observe(on_change(lambda _: self._show_selected()), "value")
        intercept.watch(self._refresh_soon)
        self._layout(
            widgets.HBox([self.active_button, self.counts_label]),
            self.held_list,
            self.editor,
            widgets.HBox([self.forward_button, self.edit_button, self.drop_button, self.forward_all_button]),
        )
        self.refresh()

    def __repr__(self) -> str:
        return f"<InterceptPanel {self.intercept!r}>"

    def close(self) -> None:
        """Close the panel's widgets and stop following the intercept (which goes on holding)."""
        if hasattr(self, "intercept"):
            forget(self.intercept, self)
            self.intercept.unwatch(self._refresh_soon)
        super().close()

    @shows_errors
    def _toggle(self, on: bool) -> None:
        if on and not self.intercept.active:
            self.intercept.start()
        elif not on and self.intercept.active:
            self.intercept.stop()

    def start(self) -> None:
        """Hold messages (the Intercepting toggle, on)."""
        self.active_button.value = True

    def stop(self) -> None:
        """Stop holding and forward everything held (the toggle, off)."""
        self.active_button.value = False

    def refresh(self) -> None:
        """Bring the list of held messages up to date."""
        intercept = self.intercept
        self.active_button.value = intercept.active
        # The toggle shows its state plainly: a coloured button that says it holds messages.
        self.active_button.button_style = "warning" if intercept.active else ""
        self.active_button.description = "Intercepting: on" if intercept.active else "Intercepting: off"
        held = intercept.held
        options = [
            (
                f"{item.id}: {item.conn.id} {item.direction} {item.message.size} B: {preview(item.message.data, 60)}",
                item.id,
            )
            for item in held
        ]
        if list(self.held_list.options) != options:
            selected = self.held_list.value
            self.held_list.options = options
            ids = [value for _, value in options]
            if selected in ids:
                self.held_list.value = selected
            elif ids:
                self.held_list.value = ids[0]
        counts = intercept.counts
        self.counts_label.value = (
            f"{len(held)} held · {counts['forward']} forwarded · {counts['edit']} edited · {counts['drop']} dropped"
        )
        # One message per connection and direction is held at a time; the rest wait behind it, in order.
        self.held_list.rows = max(2, min(12, len(options)))
        self._show_selected()

    def select(self, held_id: int) -> None:
        """Select the held message with this id, showing it in the editor."""
        self.held_list.value = held_id

    def _selected(self) -> int | None:
        value = self.held_list.value
        return value if isinstance(value, int) else None

    def _show_selected(self) -> None:
        held_id = self._selected()
        for item in self.intercept.held:
            if item.id == held_id:
                data = item.message.data
                self.editor.value = base64.b64encode(data).decode() if isinstance(data, bytes) else data
                return
        self.editor.value = ""

    @shows_errors
    def forward(self) -> None:
        """Forward the selected message (the oldest if none is selected)."""
        held = self.intercept.forward(self._selected())
        self._say(f"forwarded message {held.id}")
        self.refresh()

    @shows_errors
    def edit(self, data: str | bytes | None = None) -> None:
        """Forward the selected message with ``data`` (by default, the editor's text)."""
        held_id = self._selected()
        if data is None:
            text = self.editor.value
            item = next((h for h in self.intercept.held if h.id == held_id), None)
            if item is not None and item.message.is_binary:
                try:
                    data = base64.b64decode(text, validate=True)
                except (binascii.Error, ValueError):
                    raise ValueError("a binary message is edited as base64, and this is not valid base64") from None
            else:
                data = text
        held = self.intercept.edit(data, held_id)
        self._say(f"edited and forwarded message {held.id}")
        self.refresh()

    @shows_errors
    def drop(self) -> None:
        """Drop the selected message (the oldest if none is selected)."""
        held = self.intercept.drop(self._selected())
        self._say(f"dropped message {held.id}")
        self.refresh()

    @shows_errors
    def forward_all(self) -> None:
        """Forward every held message."""
        count = self.intercept.forward_all()
        self._say(f"forwarded {count} messages")
        self.refresh()
