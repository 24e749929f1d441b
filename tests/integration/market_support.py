"""What the market test modules share: the market function started against the stand-in peers (the
conftest's ``peers``), its test client, idempotency-keyed headers, the callers and the commune.

A module takes the fixtures by importing them by name (``from market_support import client, market
# noqa: F401``, with ``# ruff: noqa: F811`` at its top: pytest hands them in as parameters), and
defines its own where it differs."""

from __future__ import annotations

import pytest
from client_answers import idem  # noqa: F401 (its tests take them from here)

PRODUCER, OTHER_FIRM = "0100109106", "0200123457"     # cooperatives' tax codes (valid MSTs)
HOUSEHOLD = "020095001234"                            # a household's owner (a CCCD)
CHI_LANG = "06463"


@pytest.fixture
def market(start_function, peers):
    return start_function("market", peer_url_template=peers.template)


@pytest.fixture
def client(market):
    return market.app.test_client()

