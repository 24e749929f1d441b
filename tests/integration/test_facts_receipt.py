"""A citizen's receipt says whether the fees it charges were checked against a source (real
procedures + dossiers functions on real weed mini + nats-server, the repo's own fixtures)."""

import pytest

from test_facts_deadlines import MONDAY_9, env, submit  # noqa: F401  (fixture re-used)

pytestmark = pytest.mark.integration


def test_a_fee_nobody_checked_is_on_the_receipt_as_unverified(env):  # noqa: F811  (the fixture)
    pc = env[0]
    proc = pc.get("/v1/procedures/HT-XNTTHN").get_json()
    fees = [s for s in proc["sources"] if s["fact"] == "fees"]
    assert [s["verified"] for s in fees] == [False] and "no official source retrieved" in fees[0]["note"].lower()
    assert {"online_mode", "legal_basis"} <= {s["fact"] for s in proc["sources"]}
    doc = submit(env, "HT-XNTTHN", MONDAY_9)
    receipt = doc["receipt"]
    assert receipt["fee_total_vnd"] == 15000
    assert [(f["amount_vnd"], f["verified"]) for f in receipt["fees"]] == [(15000, False)]
    assert doc["procedure"]["fees_verified"] is False and doc["procedure"]["processing_days_verified"] is False


def test_a_checked_fee_is_on_the_receipt_as_verified(env):  # noqa: F811
    doc = submit(env, "CT-BSBC", MONDAY_9)
    assert doc["procedure"]["fees_verified"] is True
    assert doc["receipt"]["fees"] and all(f["verified"] is True for f in doc["receipt"]["fees"])
