"""What a verified activity is counted in, and how a verification being counted is named."""

from datetime import datetime, timedelta, timezone

from functions.community.function import tallies


def test_an_activity_joins_its_households_indicators_its_communes_kind_and_its_teams_kind():
    doc = {"id": "dev-12345678", "commune": "06184", "team": "to-1", "kind": "digital-shop", "household_ref": "abc"}
    assert [(p.set, p.member, p.team, p.field, p.name) for p in tallies.places(doc)] == [
        ("06184.shop-or-payment", "abc", None, "reached", "shop-or-payment"),
        ("06184.visited", "abc", None, "reached", "visited"),
        ("commune.06184.digital-shop", "dev-12345678", None, "activities", "digital-shop"),
        ("team.to-1.digital-shop", "dev-12345678", "to-1", "activities", "digital-shop")]
    training = {**doc, "kind": "training", "household_ref": None}
    assert [p.set for p in tallies.places(training)] == ["commune.06184.training", "team.to-1.training"]


def test_entries_list_in_the_order_their_verifications_started():
    """The tick lists the entries up to a time: their keys must sort as their times, at any instant."""
    on_the_second = datetime(2026, 3, 1, 8, 0, 0, tzinfo=timezone.utc)
    stamps = [tallies.stamp(on_the_second + timedelta(microseconds=us)) for us in (0, 1, 999_999, 1_000_000)]
    assert len({len(s) for s in stamps}) == 1 and stamps == sorted(stamps)
    entry = f"{stamps[1]} dev-12345678 0a1b2c3d"
    assert tallies.started_at(entry) == stamps[1] and stamps[0] < tallies.started_at(entry) + "~"
