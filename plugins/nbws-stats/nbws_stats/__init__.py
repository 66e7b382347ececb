"""
nbws-stats: message rates and sizes per connection, with a small live plot.

An nbws plugin, published under the ``nbws`` entry-point group: installing
the package is enough for ``nbws.plugins`` to load it. It only observes,
and does as little as it can per message (a size, two comparisons and a
time check), so it is cheap to have loaded everywhere::

    import nbws
    stats = nbws.plugins.get("stats")
    ...
    stats.snapshot()          # {'c1': ConnectionStats(...), ...}
    print(stats.table())      # one line per connection
    stats.panel()             # a live table and a messages-per-second plot

It counts the messages that went over the wire (sent or delivered), not
those a transform dropped, and keeps per-second history for the last
``history`` seconds that had messages.

Message and byte counts are the connection's own (``conn.messages_sent``,
``conn.bytes_received``, ...) since the plugin first saw it, read when asked
and copied at the close; per-second buckets, rates, means and totals are
worked out from them when read. The hooks only keep the smallest and
largest sizes and note where each second begins.

The plugin never keeps a connection alive: it refers to a live connection
weakly, and the connection itself tells it of its close (a ``"close"``
listener), registered or not, so that the counts are copied then even if
the plugin was unregistered or disabled while the connection was open.
"""

from __future__ import annotations

import asyncio
import html
import math
import time as _time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import nbws

__all__ = ["ConnectionStats", "DirectionStats", "Stats", "StatsPanel", "stats"]

__version__ = "0.1.0"


# The minimum of a direction with no message yet: above any size, so that one comparison per message does.
_NO_MIN = 1 << 62

# The counts reading each live connection's counters, by connection (weakly) and then by id(counts).
# The connection tells _let_go of its close, so that they are copied and the connection let go even
# when no Stats is registered any more: an nbws_close hook is only called while its plugin is.
_readers: weakref.WeakKeyDictionary[nbws.BaseConnection, dict[int, DirectionStats]] = weakref.WeakKeyDictionary()


def _let_go(event: nbws.CloseEvent) -> None:
    """A connection closed: the counts reading it copy them and let it go (its ``"close"`` listener)."""
    conn = event.target
    if conn is None:
        return
    readers = _readers.pop(conn, None)
    if not readers:
        return
    now = _time.time()
    for counts in list(readers.values()):
        counts._detach()
        owner = counts._owner
        if owner is not None and owner.closed is None:
            owner.closed = now  # no nbws_close told it: the plugin was unregistered or disabled


class DirectionStats:
    """
    Counts for one direction of one connection.

    The message and byte counts of a live connection are the connection's own
    (``conn.messages_sent``, ``conn.bytes_sent``, ...: what nbws wrote or
    delivered, dropped messages excluded) since the plugin first saw it, read
    when asked: the plugin adds nothing per message for them. The connection
    is referred to weakly; at its close the counts are copied (whether the
    plugin is still registered or not), and it is no longer referred to.

    Attributes:
        messages: How many messages went over the wire.
        bytes: Their payload sizes in bytes (UTF-8 for text), added.
        min_size, max_size: The smallest (None with no message) and the largest payload.
    """

    __slots__ = ("_base", "_bytes", "_conn", "_messages", "_min", "_next", "_owner", "_sent", "max_size")

    def __init__(self, messages: int = 0, bytes: int = 0, min_size: int | None = None, max_size: int = 0) -> None:
        self._messages = messages  # counted here (a total, or a closed connection's counts)
        self._bytes = bytes
        self.max_size = max_size
        self._min = _NO_MIN if min_size is None else min_size
        # A live connection (weakly) whose counters (those of _sent's direction) since _base add to the above.
        self._conn: weakref.ref[nbws.BaseConnection] | None = None
        self._sent = True
        self._base = (0, 0)
        # When the hooks must start a new per-second bucket (see ConnectionStats._roll), and whose it is.
        self._next = 0.0
        self._owner: ConnectionStats | None = None

    def _live(self) -> tuple[int, int]:
        """(messages, bytes) the live connection counted since it was attached."""
        ref = self._conn
        conn = ref() if ref is not None else None
        if conn is None:
            return (0, 0)
        base = self._base
        if self._sent:
            return (conn.messages_sent - base[0], conn.bytes_sent - base[1])
        return (conn.messages_received - base[0], conn.bytes_received - base[1])

    def _attach(self, conn: nbws.BaseConnection, sent: bool, less: tuple[int, int] = (0, 0)) -> None:
        """Read ``conn``'s counters of one direction from now on (less ``less``, already counted by it)."""
        self._detach()
        self._sent = sent
        counts = (conn.messages_sent, conn.bytes_sent) if sent else (conn.messages_received, conn.bytes_received)
        self._base = (counts[0] - less[0], counts[1] - less[1])
        if conn.ready_state is nbws.CLOSED:
            # Seen after its close (a message observed at the end of the turn that closed it): no close
            # is coming to tell, so keep what it counted now.
            self._messages += less[0]
            self._bytes += less[1]
            return
        self._conn = weakref.ref(conn)
        readers = _readers.get(conn)
        if readers is None:
            readers = _readers[conn] = {}
            conn.on("close", _let_go)  # one function for every Stats: adding it again replaces it
        readers[id(self)] = self

    def _detach(self) -> None:
        """Keep the counts so far and let go of the connection."""
        ref = self._conn
        if ref is None:
            return
        messages, size = self._live()
        self._messages += messages
        self._bytes += size
        self._conn = None
        conn = ref()
        readers = _readers.get(conn) if conn is not None else None
        if readers is not None:
            readers.pop(id(self), None)

    @property
    def messages(self) -> int:
        """How many messages went over the wire."""
        return self._messages + self._live()[0]

    @messages.setter
    def messages(self, value: int) -> None:
        self._messages = value - self._live()[0]

    @property
    def bytes(self) -> int:
        """Their payload sizes in bytes (UTF-8 for text), added."""
        return self._bytes + self._live()[1]

    @bytes.setter
    def bytes(self, value: int) -> None:
        self._bytes = value - self._live()[1]

    @property
    def min_size(self) -> int | None:
        """The smallest payload in bytes, None with no message."""
        return None if self._min == _NO_MIN else self._min

    @min_size.setter
    def min_size(self, value: int | None) -> None:
        self._min = _NO_MIN if value is None else value

    @property
    def mean_size(self) -> float:
        """The mean payload size in bytes (0 with no message)."""
        messages = self.messages
        return self.bytes / messages if messages else 0.0

    def add(self, size: int) -> None:
        """Count one message of ``size`` bytes."""
        self._messages += 1
        self._bytes += size
        if size < self._min:
            self._min = size
        if size > self.max_size:
            self.max_size = size

    def __repr__(self) -> str:
        return (
            f"DirectionStats(messages={self.messages}, bytes={self.bytes}, "
            f"min_size={self.min_size}, max_size={self.max_size})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DirectionStats):
            return NotImplemented
        return (self.messages, self.bytes, self._min, self.max_size) == (
            other.messages,
            other.bytes,
            other._min,
            other.max_size,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value, as the dataclass it was


@dataclass(slots=True)
class ConnectionStats:
    """
    What one connection sent and received.

    Attributes:
        id, role, url: The connection's id, side and URL.
        opened, closed: When it opened and closed (seconds since the epoch; None if not yet).
        sent, received: :class:`DirectionStats` of each direction.
        history: Per-second buckets ``[second, sent, received, bytes_sent, bytes_received]``
            (a property: see below).
    """

    id: str
    role: str
    url: str = ""
    opened: float | None = None
    closed: float | None = None
    sent: DirectionStats = field(default_factory=DirectionStats)
    received: DirectionStats = field(default_factory=DirectionStats)
    # The buckets; the last one is the current second's, filled in when read (see history).
    _buckets: deque[list[int]] = field(default_factory=lambda: deque(maxlen=60), repr=False)
    # The counts (sent, received, bytes sent, bytes received) when the last bucket began.
    _base: tuple[int, int, int, int] = field(default=(0, 0, 0, 0), repr=False, compare=False)

    def __post_init__(self) -> None:
        self.sent._owner = self.received._owner = self

    @property
    def history(self) -> deque[list[int]]:
        """
        Per-second buckets ``[second, sent, received, bytes_sent, bytes_received]``, oldest first,
        for the seconds that had messages (at most the plugin's ``history`` of them).

        The hooks do not touch a bucket per message: they only note, on the first message of a
        new second, the counts at which it began; a bucket is the difference of the counts,
        worked out here when read (the current second's every time).
        """
        return self._settle()

    def _settle(self) -> deque[list[int]]:
        """The buckets, the current one filled in from the counts."""
        buckets = self._buckets
        if buckets:
            sent, received, base = self.sent, self.received, self._base
            bucket = buckets[-1]
            bucket[1] = sent.messages - base[0]
            bucket[2] = received.messages - base[1]
            bucket[3] = sent.bytes - base[2]
            bucket[4] = received.bytes - base[3]
        return buckets

    def _roll(self, message: nbws.Message) -> None:
        """
        The first message seen of a new second (its connection counted it already, unless dropped):
        close the current bucket without it, and open the new second's with it.

        Sent messages are observed at the end of the loop turn that wrote them, when the connection
        counted them all: those written in the same turn after this one stay in the closing second.
        The first bucket holds everything counted since the plugin first saw the connection.
        """
        sent, received = self.sent, self.received
        counts = (sent.messages, received.messages, sent.bytes, received.bytes)
        buckets = self._buckets
        if buckets:
            self._settle()
            size = 0 if message.dropped else message.size
            if message.direction == "send":
                base = (counts[0] - (0 if message.dropped else 1), counts[1], counts[2] - size, counts[3])
            else:
                base = (counts[0], counts[1] - (0 if message.dropped else 1), counts[2], counts[3] - size)
            bucket = buckets[-1]
            for column in range(4):
                bucket[column + 1] -= counts[column] - base[column]  # this message is the new second's
            self._base = base
        else:
            self._base = (0, 0, 0, 0)
        second = int(message.time)
        buckets.append([second, 0, 0, 0, 0])
        sent._next = received._next = second + 1

    @property
    def open(self) -> bool:
        """True until the connection closed."""
        return self.closed is None

    def rate(self, direction: str = "both", window: int = 10, now: float | None = None) -> float:
        """Messages per second over the last ``window`` seconds, for ``"send"``, ``"receive"`` or ``"both"``."""
        now = _time.time() if now is None else now
        since = int(now) - window
        columns = {"send": (1,), "receive": (2,), "both": (1, 2)}[direction]
        total = sum(bucket[c] for bucket in self.history if bucket[0] > since for c in columns)
        return total / window


class Stats:
    """
    An nbws plugin that keeps message counts, sizes and rates per connection.

    Args:
        history: Seconds of per-second history to keep per connection.
    """

    def __init__(self, history: int = 60) -> None:
        self.__name__ = "stats"
        self.history = history
        self.connections: dict[str, ConnectionStats] = {}
        """The statistics of every connection seen, by id."""
        # The same connections' DirectionStats, by id: what the per-message hooks look up (one dict subscript).
        self._sent: dict[str, DirectionStats] = {}
        self._received: dict[str, DirectionStats] = {}

    def __repr__(self) -> str:
        return f"<Stats {len(self.connections)} connections>"

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.connections.clear()
        self._sent.clear()
        self._received.clear()

    def _of(self, conn: nbws.BaseConnection) -> ConnectionStats:
        found = self.connections.get(conn.id)
        if found is None:
            found = self.connections[conn.id] = ConnectionStats(conn.id, conn.role)
            found._buckets = deque(maxlen=self.history)
            self._sent[conn.id] = found.sent
            self._received[conn.id] = found.received
        return found

    def _first(self, conn: nbws.BaseConnection, message: nbws.Message) -> ConnectionStats:
        """A connection first seen in a message hook (the plugin came late, or was reset): count from this message."""
        found = self._of(conn)
        counted = (0, 0) if message.dropped else (1, message.size)
        sent = message.direction == "send"
        found.sent._attach(conn, True, counted if sent else (0, 0))
        found.received._attach(conn, False, (0, 0) if sent else counted)
        return found

    def snapshot(self) -> dict[str, ConnectionStats]:
        """The statistics of every connection, by id (the live objects)."""
        return dict(self.connections)

    def totals(self) -> tuple[DirectionStats, DirectionStats]:
        """The sent and received counts of all connections together."""
        sent, received = DirectionStats(), DirectionStats()
        for stats in self.connections.values():
            for total, part in ((sent, stats.sent), (received, stats.received)):
                total.messages += part.messages
                total.bytes += part.bytes
                total.max_size = max(total.max_size, part.max_size)
                if part.min_size is not None:
                    total.min_size = part.min_size if total.min_size is None else min(total.min_size, part.min_size)
        return sent, received

    def series(self, seconds: int = 60, now: float | None = None) -> list[tuple[int, int]]:
        """Messages per second (sent, received) over the last ``seconds`` seconds, all connections, oldest first."""
        end = int(_time.time() if now is None else now)
        counts = {second: [0, 0] for second in range(end - seconds + 1, end + 1)}
        for stats in self.connections.values():
            for bucket in stats.history:
                slot = counts.get(bucket[0])
                if slot is not None:
                    slot[0] += bucket[1]
                    slot[1] += bucket[2]
        return [(sent, received) for sent, received in counts.values()]

    def table(self) -> str:
        """A plain-text table: one line per connection."""
        lines = [
            f"{'conn':<6} {'role':<6} {'state':<6} {'sent':>7} {'recv':>7} {'bytes out':>10} {'bytes in':>10} {'msg/s':>7}"
        ]
        for stats in self.connections.values():
            lines.append(
                f"{stats.id:<6} {stats.role:<6} {'open' if stats.open else 'closed':<6} "
                f"{stats.sent.messages:>7} {stats.received.messages:>7} {stats.sent.bytes:>10} "
                f"{stats.received.bytes:>10} {stats.rate():>7.1f}"
            )
        return "\n".join(lines)

    def panel(self, interval: float = 1.0) -> StatsPanel:
        """A live ipywidgets panel: the table and a plot of messages per second."""
        return StatsPanel(self, interval)

    # -- hooks --------------------------------------------------------------------------

    @nbws.hookimpl
    def nbws_open(self, conn: nbws.BaseConnection) -> None:
        """Start counting a connection (hook)."""
        stats = self._of(conn)
        stats.opened = _time.time()
        stats.closed = None
        stats.url = getattr(conn, "url", "") or ""
        stats.sent._attach(conn, True)  # a reconnecting client's counts go on from those it had
        stats.received._attach(conn, False)

    # nbws_message_sent and nbws_message_received run for every message of every connection in every
    # process where the plugin is installed (it autoloads), so each does the least it can: one dict
    # look-up, the message's size, two comparisons for the smallest and largest (whether the message
    # was dropped is only asked when it would be a new one), and one comparison of the message's time
    # with the end of the current second. Message and byte counts are the connection's own, and the
    # per-second buckets, rates, means and totals are worked out from them when read.

    @nbws.hookimpl
    def nbws_message_sent(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        """Note a message written (hook)."""
        try:
            counts = self._sent[conn.id]
        except KeyError:
            counts = self._first(conn, message).sent
        data = message.data
        size = len(data) if type(data) is bytes else len(data) if data.isascii() else len(data.encode())  # type: ignore[union-attr]
        if size > counts.max_size and not message.dropped:
            counts.max_size = size
        if size < counts._min and not message.dropped:
            counts._min = size
        if message.time >= counts._next:
            counts._owner._roll(message)  # type: ignore[union-attr]  # set for a connection's counts

    @nbws.hookimpl
    def nbws_message_received(self, conn: nbws.BaseConnection, message: nbws.Message) -> None:
        """Note a message delivered (hook)."""
        try:
            counts = self._received[conn.id]
        except KeyError:
            counts = self._first(conn, message).received
        data = message.data
        size = len(data) if type(data) is bytes else len(data) if data.isascii() else len(data.encode())  # type: ignore[union-attr]
        if size > counts.max_size and not message.dropped:
            counts.max_size = size
        if size < counts._min and not message.dropped:
            counts._min = size
        if message.time >= counts._next:
            counts._owner._roll(message)  # type: ignore[union-attr]  # set for a connection's counts

    @nbws.hookimpl
    def nbws_close(self, conn: nbws.BaseConnection) -> None:
        """Note when a connection closed, and keep its counts (hook)."""
        stats = self._of(conn)
        stats.closed = _time.time()
        stats.sent._detach()
        stats.received._detach()

    @nbws.hookimpl
    def nbws_panel(self, dashboard: Any) -> tuple[str, Any]:
        """Contribute the statistics panel to a dashboard (hook)."""
        return ("Stats", self.panel().widget)


def sparkline(series: list[tuple[int, int]], width: int = 360, height: int = 90) -> str:
    """
    An SVG plot of (sent, received) messages per second, oldest first: sent in blue, received in
    orange, with a y axis in messages per second (0 to the peak), an x axis in seconds before now,
    and a legend.
    """
    left, right, top, bottom = 40, 8, 16, 16
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1, *(max(pair) for pair in series)])
    step = plot_w / max(len(series) - 1, 1)

    def points(index: int) -> str:
        return " ".join(
            f"{left + i * step:.1f},{top + plot_h - (pair[index] / peak) * plot_h:.1f}" for i, pair in enumerate(series)
        )

    x0, x1, y0, y1 = left, left + plot_w, top + plot_h, top
    span = max(len(series) - 1, 0)
    grey = 'stroke="#999" stroke-width="1"'
    return (
        f'<svg class="nbws-stats-plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="9" fill="#666">'
        f'<line class="nbws-axis-y" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" {grey}/>'
        f'<line class="nbws-axis-x" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" {grey}/>'
        f'<text x="{x0 - 3}" y="{y1 + 3}" text-anchor="end">{peak}</text>'
        f'<text x="{x0 - 3}" y="{y0 + 3}" text-anchor="end">0</text>'
        f'<text x="2" y="{top + plot_h / 2 + 3:.0f}">msg/s</text>'
        f'<text x="{x0}" y="{height - 3}">-{span} s</text>'
        f'<text x="{x1}" y="{height - 3}" text-anchor="end">now</text>'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{points(0)}"/>'
        f'<polyline fill="none" stroke="#ff7f0e" stroke-width="1.5" points="{points(1)}"/>'
        f'<g class="nbws-legend"><rect x="{x1 - 120}" y="3" width="10" height="3" fill="#1f77b4"/>'
        f'<text x="{x1 - 106}" y="8">sent</text>'
        f'<rect x="{x1 - 70}" y="3" width="10" height="3" fill="#ff7f0e"/>'
        f'<text x="{x1 - 56}" y="8">received</text></g>'
        f'<text x="{x0 + 4}" y="8">peak {peak} msg/s</text></svg>'
    )


class StatsPanel:
    """
    The live view of a :class:`Stats`: a table per connection and a plot of
    messages per second (sent in blue, received in orange) over the last minute.

    It refreshes every ``interval`` seconds while the loop runs; :meth:`refresh`
    is the programmatic twin of its Refresh button; :meth:`close` stops it.

    Attributes:
        widget: The ipywidgets ``VBox`` to display.
    """

    def __init__(self, stats: Stats, interval: float = 1.0) -> None:
        import ipywidgets as widgets

        self.stats = stats
        self.interval = interval
        self.table = widgets.HTML()
        self.plot = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.widget = widgets.VBox([self.plot, self.table, self.refresh_button])
        self._handle: asyncio.TimerHandle | None = None
        self._closed = False
        self.refresh()
        self._schedule()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if not self._closed and math.isfinite(self.interval):
            self._handle = loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        if self.widget.comm is None and not self._closed:
            self._closed = True  # the widget was closed (a dashboard closing its tabs): stop
            return
        try:
            self.refresh()
        finally:
            self._schedule()

    def refresh(self) -> None:
        """Redraw the table and the plot from the current counts."""
        rows = "".join(
            f"<tr><td>{html.escape(s.id)}</td><td>{s.role}</td><td>{'open' if s.open else 'closed'}</td>"
            f"<td>{s.sent.messages}</td><td>{s.received.messages}</td><td>{s.sent.bytes}</td>"
            f"<td>{s.received.bytes}</td><td>{s.sent.mean_size:.0f} / {s.received.mean_size:.0f}</td>"
            f"<td>{s.rate():.1f}</td></tr>"
            for s in self.stats.connections.values()
        )
        self.table.value = (
            "<table><tr><th>conn</th><th>role</th><th>state</th><th>sent</th><th>received</th>"
            "<th>bytes out</th><th>bytes in</th><th>mean size out/in</th><th>msg/s (10 s)</th></tr>"
            f"{rows}</table>"
        )
        self.plot.value = sparkline(self.stats.series())

    def close(self) -> None:
        """Stop refreshing and close the widgets."""
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
        self.widget.close()
        self.table.close()
        self.plot.close()
        self.refresh_button.close()


stats = Stats()
"""The instance the ``stats`` entry point loads into ``nbws.plugins``."""
