"""
Issue 10, item 11: ``Request.query`` keeps the first value of each parameter, as
documented, so ``?token=wrong&token=RIGHT`` is refused; the ``Bearer`` scheme is
matched case-insensitively (RFC 9110 section 11.1), as nginx and Node's servers do.
"""

from __future__ import annotations

from _support import timeout
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import nbws


async def handshake_status(url: str, headers: list[tuple[str, str]] | None = None) -> int:
    """Open a connection with a library we did not write; return 101 or the HTTP status refusing it."""
    try:
        async with connect(url, additional_headers=headers or [], open_timeout=timeout()):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_query_keeps_the_first_value_of_each_parameter() -> None:
    queries: list[dict[str, str]] = []
    server = nbws.Server()
    server.on("connection", lambda conn: queries.append(conn.request.query))
    await server.start()
    try:
        assert await handshake_status(f"{server.url}?a=first&b=2&a=second&a=third") == 101
    finally:
        await server.stop()
    assert queries == [{"a": "first", "b": "2"}]


async def test_a_repeated_token_parameter_is_judged_by_its_first_value() -> None:
    server = nbws.Server(token="RIGHT")
    await server.start()
    try:
        assert await handshake_status(f"{server.url}?token=wrong&token=RIGHT") == 401
        assert await handshake_status(f"{server.url}?token=RIGHT&token=wrong") == 101
    finally:
        await server.stop()


async def test_the_bearer_scheme_is_case_insensitive() -> None:
    server = nbws.Server(token="s3cret")
    await server.start()
    try:
        for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
            assert await handshake_status(server.url, [("Authorization", f"{scheme} s3cret")]) == 101, scheme
        refused = {
            "wrong token": "bearer wrong",
            "another scheme": "Basic s3cret",
            "scheme glued to the token": "Bearers3cret",
            "no token": "Bearer",
            "token alone": "s3cret",
        }
        statuses = {
            name: await handshake_status(server.url, [("Authorization", value)]) for name, value in refused.items()
        }
        assert statuses == dict.fromkeys(refused, 401)
    finally:
        await server.stop()
