"""
pricefeed: a tiny client for a WebSocket price feed (an example of testing a client with nbws cassettes).

The feed speaks JSON: the client sends ``{"op": "auth", "api_key": ...}`` and
``{"op": "subscribe", "symbols": [...]}``; the server answers ``authed``,
``subscribed``, then pushes ``{"type": "tick", "symbol": ..., "price": ...}``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import urlencode

import websockets

DEFAULT_URL = "wss://prices.example.com/v1/stream"


@dataclass(frozen=True)
class Tick:
    """One price of one symbol."""

    symbol: str
    price: float


class FeedError(Exception):
    """The feed refused us or said something we do not understand."""


async def fetch_ticks(symbols: list[str], count: int, *, api_key: str, url: str = DEFAULT_URL) -> list[Tick]:
    """Subscribe to ``symbols`` and return the first ``count`` ticks."""
    full_url = f"{url}?{urlencode({'token': api_key})}"
    headers = {"Authorization": f"Bearer {api_key}"}
    async with websockets.connect(full_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "auth", "api_key": api_key}))
        reply = json.loads(await ws.recv())
        if reply.get("type") != "authed":
            raise FeedError(f"not authenticated: {reply}")
        await ws.send(json.dumps({"op": "subscribe", "symbols": symbols}))
        ticks: list[Tick] = []
        while len(ticks) < count:
            message = json.loads(await ws.recv())
            if message.get("type") == "tick":
                ticks.append(Tick(message["symbol"], float(message["price"])))
            elif message.get("type") != "subscribed":
                raise FeedError(f"unexpected message: {message}")
    return ticks


def latest_prices(symbols: list[str], *, api_key: str, url: str = DEFAULT_URL) -> dict[str, float]:
    """The first price of each symbol (a blocking call)."""
    prices: dict[str, float] = {}
    for tick in asyncio.run(fetch_ticks(symbols, len(symbols), api_key=api_key, url=url)):
        prices.setdefault(tick.symbol, tick.price)
    return prices
