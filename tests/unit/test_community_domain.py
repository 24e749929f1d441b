"""The community's plain rules: what counts as the same activity, and the Resolution 49 figures."""

from functions.community.function import activities, targets


def item(**changes):
    return {"client_id": "dev-12345678", "team": "to-1", "kind": "epayment-account", "household": "hk-0042",
            "details": {"bank": "Agribank"}, "happened_at": "2026-03-01T08:00:00+07:00", "revision": 1, **changes}


def test_the_same_activity_resent_or_renumbered_has_the_same_content():
    assert activities.content_hash(item()) == activities.content_hash(item(revision=7))
    assert activities.content_hash(item()) == activities.content_hash(item(household="HK-0042 "))  # one household
    assert activities.content_hash(item()) != activities.content_hash(item(details={"bank": "BIDV"}))
    assert activities.household_ref("hk-0042") == activities.household_ref("HK-0042")
    assert "0042" not in activities.household_ref("HK-0042")


def test_resolution_49_counts_shops_and_payment_accounts_against_half_the_households():
    assert targets.indicators_for("digital-shop") == ["shop-or-payment", "visited"]
    assert targets.indicators_for("training") == []
    fig = targets.figures({"shop-or-payment": 60, "visited": 90}, households=121)
    main = fig["shop-or-payment"]
    assert (main["target_share"], main["target_households"], main["share"], main["met"]) == (0.5, 61, 0.4959, False)
    assert main["source"]["verified"] is False and "49-NQ/TU" in main["source"]["document"]
    assert fig["visited"]["target_households"] is None and fig["visited"]["share"] == 0.7438
    unknown = targets.figures({}, households=None)["shop-or-payment"]
    assert (unknown["share"], unknown["met"], unknown["target_households"]) == (None, None, None)
