"""
The pytest plugin shipped with nbws: WebSocket cassettes in the style of pytest-recording.

pytest loads it through the ``pytest11`` entry point ``nbws`` (``-p no:nbws``
turns it off). It adds the marker ``nbws_cassette``, the fixture
``nbws_cassette`` and the option ``--nbws-record-mode``::

    @pytest.mark.nbws_cassette("btc_ticks", upstream="wss://feed.example.com/v1")
    def test_ticks(nbws_cassette):
        feed = PriceFeed(nbws_cassette.url)
        assert feed.next_price() == 42000.5

The cassette is ``cassettes/<module>/<name>.jsonl`` next to the test module
(the name defaults to the test's name; give ``"name.har"`` for HAR). The
marker's keyword arguments are those of :class:`nbws.Cassette` (``mode``,
``upstream``, ``route``, ``match``, ``keys``, ``ignore``, ``speed``,
``redact_keys``, ``all_played``...); ``--nbws-record-mode`` overrides every
marker's mode. A marked test gets its cassette even without asking for the
fixture. When the test body ends, the cassette is stopped, written if it
recorded, and checked: an unexpected message, or (with ``all_played``, the
default) a recorded client message never sent, fails the test with the
expected and received messages side by side.

Nothing of nbws is imported until a test uses a cassette.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .cassette import Cassette

__all__ = ["nbws_cassette", "pytest_addoption", "pytest_configure"]

_MODES = ("once", "none", "new_episodes", "all")
_KEY = pytest.StashKey["Cassette"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--nbws-record-mode``."""
    group = parser.getgroup("nbws", "nbws WebSocket cassettes")
    group.addoption(
        "--nbws-record-mode",
        choices=_MODES,
        default=None,
        help="record mode of every nbws cassette: once (record if missing, the default), "
        "none (replay only), new_episodes (replay, record new connections), all (re-record)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``nbws_cassette`` marker."""
    config.addinivalue_line(
        "markers",
        "nbws_cassette(name=None, **options): replay (or record once) the WebSocket cassette "
        "cassettes/<module>/<name>.jsonl; options are those of nbws.Cassette",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every marked test its cassette, even one that does not ask for the fixture."""
    for item in items:
        if item.get_closest_marker("nbws_cassette") is not None:
            names = getattr(item, "fixturenames", None)
            if isinstance(names, list) and "nbws_cassette" not in names:
                names.append("nbws_cassette")


def _cassette_path(request: pytest.FixtureRequest, name: str | None) -> Path:
    module = Path(str(request.node.path))
    if name is None:
        name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_") or "cassette"
    path = Path(name)
    if not path.suffix:
        path = path.with_suffix(".jsonl")
    if path.is_absolute():
        return path
    return module.parent / "cassettes" / module.stem / path


@pytest.fixture
def nbws_cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    """
    The test's :class:`nbws.Cassette`, started: give ``nbws_cassette.url`` to the code under test.

    Configured by the ``nbws_cassette`` marker (name and options) and
    ``--nbws-record-mode``; without a marker, the cassette is named after
    the test and uses the defaults.
    """
    from .cassette import Cassette

    marker = request.node.get_closest_marker("nbws_cassette")
    args: tuple[Any, ...] = marker.args if marker is not None else ()
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if len(args) > 1:
        raise pytest.UsageError("nbws_cassette takes one positional argument, the cassette's name")
    name = options.pop("name", args[0] if args else None)
    mode = request.config.getoption("--nbws-record-mode") or options.pop("mode", "once")
    options.pop("mode", None)
    cassette = Cassette(_cassette_path(request, name), mode=mode, **options)
    cassette.start()
    request.node.stash[_KEY] = cassette
    try:
        yield cassette
    finally:
        cassette.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After the test body: stop its cassette and fail the test on a mismatch, with the diff."""
    try:
        result = yield
    except Exception as exc:
        cassette = item.stash.get(_KEY, None)
        if cassette is not None and (cassette.fake.problems or cassette.errors):
            from .exceptions import MismatchError

            cassette.stop()
            raise MismatchError(cassette.errors + cassette.fake.problems) from exc
        raise
    cassette = item.stash.get(_KEY, None)
    if cassette is not None:
        cassette.stop()
        cassette.check()
    return result
