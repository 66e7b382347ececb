"""
pricefeed's tests, offline: each replays a cassette recorded once from the real feed.

To record (or re-record with ``--nbws-record-mode=all``), point PRICE_FEED_URL
at a live feed and give a real PRICE_FEED_KEY; the key never reaches the
cassettes (query ``token``, the ``Authorization`` header and the JSON key
``api_key`` are redacted). Without them the cassettes are replayed.
"""

from __future__ import annotations

import math
import os

import pricefeed
import pytest

UPSTREAM = os.environ.get("PRICE_FEED_URL")  # only needed to record
API_KEY = os.environ.get("PRICE_FEED_KEY", "test-key")

cassette = pytest.mark.nbws_cassette  # the marker of the nbws pytest plugin


@cassette("btc_and_eth", upstream=UPSTREAM, redact_keys=["api_key"], speed=math.inf)
def test_latest_prices(nbws_cassette):
    prices = pricefeed.latest_prices(["BTC-USD", "ETH-USD"], api_key=API_KEY, url=nbws_cassette.url)
    assert set(prices) == {"BTC-USD", "ETH-USD"}
    assert all(price > 0 for price in prices.values())
    assert [message.data for message in nbws_cassette.sent][
        1
    ] == '{"op": "subscribe", "symbols": ["BTC-USD", "ETH-USD"]}'


@cassette(route=["prices.example.com"], upstream=UPSTREAM, redact_keys=["api_key"], speed=math.inf)
def test_the_default_url_is_routed_to_the_cassette():
    ticks = pricefeed.latest_prices(["SOL-USD"], api_key=API_KEY)  # wss://prices.example.com, baked in
    assert list(ticks) == ["SOL-USD"]
