"""
Property-based tests (hypothesis) over the public API's inputs.

The rule every property checks: an argument is either refused at once, in the
call, with TypeError or ValueError (as the browser's ``WebSocket`` does), or it
works end to end over a real connection. Nothing may be accepted and then fail
later on the wire, and nothing accepted may change on the way.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import pytest
from _support import timeout
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

import nbws

# The fixtures below are made once per test and shared by its examples, on purpose.
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW_EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

TOKEN_PATTERN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
TOKEN = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}", fullmatch=True)
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=50),
    st.binary(max_size=50),
    st.binary(max_size=50).map(bytearray),
    st.binary(max_size=50).map(memoryview),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.tuples(st.integers()),
)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[nbws.Server, nbws.WebSocket, list[nbws.Message]]]:
    """An echo server, a client connected to it, and what the server received."""
    server = nbws.Server()
    received: list[nbws.Message] = []

    @server.on("message")
    def echo(conn: nbws.Connection, message: nbws.Message) -> None:
        received.append(message)
        conn.send(message.data)

    await server.start()
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    yield server, ws, received
    ws.close()
    await ws.closed(timeout=timeout())
    await server.stop()


@pytest.fixture
async def server() -> AsyncIterator[nbws.Server]:
    """A plain server; its clients' requests are in ``server.clients[i].request``."""
    server = nbws.Server()
    await server.start()
    yield server
    await server.stop()


# -- messages -----------------------------------------------------------------------


@EXAMPLES
@given(data=st.one_of(st.text(max_size=3000), st.binary(max_size=70_000)))
async def test_any_text_or_binary_arrives_unchanged_both_ways(
    pair: tuple[nbws.Server, nbws.WebSocket, list[nbws.Message]], data: str | bytes
) -> None:
    _, ws, received = pair
    ws.send(data)
    echo = await ws.recv(timeout=timeout())
    assert type(echo.data) is type(data) and echo.data == data
    assert received[-1].data == data and received[-1].is_binary == isinstance(data, bytes)


@EXAMPLES
@given(value=ANYTHING)
async def test_send_takes_exactly_str_and_bytes_like(
    pair: tuple[nbws.Server, nbws.WebSocket, list[nbws.Message]], value: Any
) -> None:
    _, ws, _ = pair
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        ws.send(value)
        echo = await ws.recv(timeout=timeout())
        assert echo.data == (value if isinstance(value, str) else bytes(value))
    else:
        with pytest.raises(TypeError):
            ws.send(value)
        assert ws.buffered_amount == 0


@EXAMPLES
@given(text=st.text(alphabet=st.characters(codec=None, categories=["Cs", "Ll", "Zs"]), max_size=20))
async def test_text_that_is_not_unicode_is_refused_in_the_call(
    pair: tuple[nbws.Server, nbws.WebSocket, list[nbws.Message]], text: str
) -> None:
    _, ws, _ = pair
    try:
        text.encode()
    except UnicodeEncodeError:
        # A lone surrogate cannot be sent as UTF-8: ValueError at once, the connection carries on.
        with pytest.raises(ValueError):
            ws.send(text)
        assert ws.buffered_amount == 0 and ws.ready_state is nbws.OPEN
        return
    ws.send(text)
    assert (await ws.recv(timeout=timeout())).data == text


@EXAMPLES
@given(value=ANYTHING)
def test_message_data_takes_exactly_str_and_bytes_like(value: Any) -> None:
    message = nbws.Message("before", "send")
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        message.data = value
        assert message.data == (value if isinstance(value, str) else bytes(value))
        assert message.is_binary is not isinstance(value, str)
        assert message.original == "before"
    else:
        with pytest.raises(TypeError):
            message.data = value
        assert message.data == "before"


# -- closing ------------------------------------------------------------------------

CLIENT_CODES = st.one_of(st.integers(3000, 4999), st.just(1000), st.integers(-5, 70_000), st.booleans(), st.floats())
REASONS = st.one_of(st.text(max_size=130), st.text(alphabet="é☃\U0001f600", min_size=25, max_size=70))


def valid_reason(reason: str) -> bool:
    return len(reason.encode()) <= 123


@FEW_EXAMPLES
@given(code=CLIENT_CODES, reason=REASONS)
async def test_client_close_takes_exactly_the_browsers_codes_and_short_reasons(
    server: nbws.Server, code: Any, reason: str
) -> None:
    closes: asyncio.Queue[nbws.CloseEvent] = asyncio.Queue()
    server.off("close")
    server.on("close", lambda conn, event: closes.put_nowait(event))
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    valid_code = type(code) is int and (code == 1000 or 3000 <= code <= 4999)
    if not (valid_code and valid_reason(reason)):
        with pytest.raises((TypeError, ValueError)):
            ws.close(code, reason)
        assert ws.ready_state is nbws.OPEN
        ws.close()
        await ws.closed(timeout=timeout())
        return
    ws.close(code, reason)
    event = await asyncio.wait_for(closes.get(), timeout())
    assert (event.code, event.reason, event.was_clean) == (code, reason, True)


SERVER_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


@FEW_EXAMPLES
@given(code=st.one_of(st.sampled_from(sorted(SERVER_CODES)), st.integers(900, 5100)), reason=REASONS)
async def test_server_close_takes_the_rfc_codes_and_short_reasons(server: nbws.Server, code: int, reason: str) -> None:
    ws = nbws.WebSocket(server.url)
    await ws.opened(timeout=timeout())
    conn = server.clients[-1]
    if not ((code in SERVER_CODES or 3000 <= code <= 4999) and valid_reason(reason)):
        with pytest.raises(ValueError):
            conn.close(code, reason)
        ws.close()
        await ws.closed(timeout=timeout())
        return
    conn.close(code, reason)
    event = await ws.closed(timeout=timeout())
    assert (event.code, event.reason, event.was_clean) == (code, reason, True)


# -- the opening handshake ----------------------------------------------------------


def would_reach_another_host(url: str) -> bool:
    """Whether nbws could try to connect somewhere other than this machine with ``url``."""
    try:
        host = parse_uri(url).host
    except (InvalidURI, ValueError):
        return False
    return host not in ("127.0.0.1", "localhost", "::1")


@EXAMPLES
@given(url=st.one_of(st.text(max_size=40), st.text(max_size=30).map(lambda s: "ws://" + s)))
def test_a_url_is_refused_in_the_call_or_is_a_websocket_url(url: str) -> None:
    # Hypothesis might write a real host name: never connect anywhere but here.
    assume(not would_reach_another_host(url))
    try:
        ws = nbws.WebSocket(url, open_timeout=1)
    except ValueError as exc:
        assert isinstance(exc, nbws.InvalidURLError)
        return
    ws.close()
    assert parse_uri(url).host in ("127.0.0.1", "localhost", "::1")


PATHS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="#"), max_size=30)


@EXAMPLES
@given(path=PATHS, query=st.one_of(st.none(), PATHS))
@example(path="a b", query=None)
@example(path="a", query="q=\r\nX-Injected: 1")
async def test_a_url_path_is_refused_in_the_call_or_reaches_the_server(
    server: nbws.Server, path: str, query: str | None
) -> None:
    url = f"ws://127.0.0.1:{server.port}/{path}" + (f"?{query}" if query is not None else "")
    try:
        ws = nbws.WebSocket(url, compression=None)
    except nbws.InvalidURLError:
        return
    # Accepted: then the server must be able to read the request it gets.
    await ws.opened(timeout=timeout())
    request = server.clients[-1].request
    assert request.path.startswith("/")
    ws.close()
    await ws.closed(timeout=timeout())


HEADER_VALUES = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=30)


@EXAMPLES
@given(name=st.one_of(TOKEN.map(lambda t: "X-" + t), st.text(max_size=10)), value=HEADER_VALUES)
async def test_a_header_is_refused_in_the_call_or_reaches_the_server_unchanged(
    server: nbws.Server, name: str, value: str
) -> None:
    try:
        ws = nbws.WebSocket(server.url, headers={name: value}, compression=None)
    except (TypeError, ValueError):
        return
    await ws.opened(timeout=timeout())
    # HTTP drops the spaces and tabs around a field value (RFC 7230 section 3.2.4).
    assert server.clients[-1].request.headers.get(name) == value.strip(" \t")
    ws.close()
    await ws.closed(timeout=timeout())


@EXAMPLES
@given(origin=st.one_of(st.text(max_size=30), st.integers()))
async def test_an_origin_is_refused_in_the_call_or_reaches_the_server(server: nbws.Server, origin: Any) -> None:
    try:
        ws = nbws.WebSocket(server.url, origin=origin, compression=None)
    except (TypeError, ValueError):
        return
    await ws.opened(timeout=timeout())
    assert server.clients[-1].request.origin == origin.strip(" \t")
    ws.close()
    await ws.closed(timeout=timeout())


@FEW_EXAMPLES
@given(offered=st.lists(st.one_of(TOKEN, st.text(max_size=8)), min_size=1, max_size=4), data=st.data())
@example(offered=["chat\n"], data=None)
async def test_subprotocols_are_refused_in_the_call_or_negotiated(offered: list[str], data: st.DataObject) -> None:
    if not (all(TOKEN_PATTERN.fullmatch(p) for p in offered) and len(set(offered)) == len(offered)):
        with pytest.raises(ValueError):
            nbws.Server(protocols=offered)
        with pytest.raises(ValueError):
            nbws.WebSocket("ws://127.0.0.1:9/", offered)
        return
    supported = data.draw(st.lists(st.sampled_from(offered), min_size=1, unique=True))
    server = nbws.Server(protocols=supported)
    await server.start()
    try:
        ws = nbws.WebSocket(server.url, offered)
        await ws.opened(timeout=timeout())
        # The server picks its own first choice among those offered.
        assert ws.protocol == supported[0] == server.clients[-1].protocol
        ws.close()
        await ws.closed(timeout=timeout())
    finally:
        await server.stop()


# -- options ------------------------------------------------------------------------


@EXAMPLES
@given(
    initial=st.floats(-1, 100, allow_nan=False),
    maximum=st.floats(-1, 100, allow_nan=False),
    factor=st.floats(-1, 10, allow_nan=False),
    jitter=st.floats(-1, 2, allow_nan=False),
    attempt=st.integers(1, 60),
)
def test_reconnect_delays_stay_within_the_policy(
    initial: float, maximum: float, factor: float, jitter: float, attempt: int
) -> None:
    try:
        policy = nbws.Reconnect(initial_delay=initial, max_delay=maximum, factor=factor, jitter=jitter)
    except ValueError:
        assert initial < 0 or maximum < initial or factor < 1 or not 0 <= jitter <= 1
        return
    base = min(maximum, initial * factor ** (attempt - 1))
    delay = policy.delay(attempt)
    assert base * (1 - jitter) - 1e-9 <= delay <= base + 1e-9
    assert math.isfinite(delay) and delay <= maximum + 1e-9


@EXAMPLES
@given(port=st.one_of(st.integers(-100, 70_000), st.booleans(), st.floats(), st.text(max_size=5)))
def test_server_port_is_an_int_from_0_to_65535(port: Any) -> None:
    if type(port) is int and 0 <= port <= 65535:
        assert nbws.Server(port=port).port is None  # nothing bound before start()
    else:
        with pytest.raises((TypeError, ValueError)):
            nbws.Server(port=port)


@EXAMPLES
@given(status=st.integers(-1000, 1000))
def test_a_handshake_is_rejected_only_with_an_http_error_status(status: int) -> None:
    from websockets.datastructures import Headers
    from websockets.http11 import Request as WsRequest

    request = nbws.Request(WsRequest("/", Headers()), None)
    if 400 <= status <= 599:
        request.reject(status)
        phrase = HTTPStatus(status).phrase if status in set(HTTPStatus) else "Rejected"
        assert request.rejected == (status, phrase)
    else:
        with pytest.raises(ValueError):
            request.reject(status)
        assert request.rejected is None
