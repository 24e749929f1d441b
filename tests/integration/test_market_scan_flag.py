"""A genuine stamp cannot be flagged a possible copy cheaply; a real copy still is.

The scan is public and anonymous and ``lat``/``lon`` are the caller's word. The old rules counted
scans: two GETs from one laptop (one saying Lạng Sơn, one Hồ Chí Minh City) or 51 GETs flagged any
genuine stamp for every later shopper, and buyers refused the farmer's produce. Now the rules count
callers (the runtime's caller key: token subject, else address, an IPv6 one by its /64), the
far-apart evidence needs two callers at each place, the flag says what it rests on, and each
caller's scans are rate-limited. On real weed mini + nats-server (the conftest fixtures).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from digital_support import ok
from market_support import PRODUCER
from lscloud.delivery import tail
from store_calls import counting

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LANG_SON, HCMC = {"lat": 21.85, "lon": 106.76}, {"lat": 10.78, "lon": 106.70}
SCAN_SCHEMA = Draft202012Validator(json.loads((ROOT / "schemas" / "market" / "scan.json").read_text()))


@pytest.fixture
def start(start_function, peers):
    def _start(**env):
        return start_function("market", peer_url_template=peers.template, function_env=env)
    return _start


def issue(client, tokens, count=4):
    prod = tokens("producer", PRODUCER)
    body = {"product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 120, "harvested_on": "2025-08-20",
            "producer_name": "HTX Na Chi Lăng", "origin": {"commune": "06463", "plot": "CL-07"},
            "packing": {"packed_on": "2025-08-21", "facility": "Kho HTX Chi Lăng"}}
    lot = ok(client.post("/v1/lots", json=body, headers={**prod, "Idempotency-Key": uuid.uuid4().hex}), 201)
    batch = ok(client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": count},
                           headers={**prod, "Idempotency-Key": uuid.uuid4().hex}), 201)
    return batch["codes"]


def scan(client, code, address, where=None):
    r = client.get(f"/v1/stamps/{code}", query_string=where or {}, headers={"X-Forwarded-For": address})
    answer = ok(r)
    assert list(SCAN_SCHEMA.iter_errors(answer)) == [], answer
    return answer


def flagged_events(settings, serial):
    return [e["event"] for e in tail(settings, 200) if e["event"]["type"] == "vn.langson.market.stamp.flagged.v1"
            and e["event"]["data"]["serial"] == serial]


def test_one_caller_cannot_flag_a_genuine_stamp_by_place_or_by_count(start, tokens):
    client = start().app.test_client()
    codes = issue(client, tokens)
    # the survey's attack: Lạng Sơn, then minutes later Hồ Chí Minh City, from one address
    scan(client, codes[0], "203.0.113.7", LANG_SON)
    there = scan(client, codes[0], "203.0.113.7", HCMC)
    assert there["possible_copy"] is False and there["copy_reasons"] == [] and there["copy_evidence"] == []
    # the other: 51 scans (MARKET_SCAN_LIMIT is 50) from one caller
    for _ in range(50):
        answer = scan(client, codes[1], "198.51.100.9")
    assert answer["scans"]["count"] == 50 and answer["possible_copy"] is False
    # a phone's privacy addresses are one caller: its /64
    for i, where in enumerate((LANG_SON, HCMC, LANG_SON, HCMC)):
        answer = scan(client, codes[2], f"2001:ee0:4f1:9a2::{i + 1:x}", where)
    assert answer["possible_copy"] is False


def test_two_callers_far_apart_are_not_enough_two_at_each_place_are(start, tokens, rt):
    market = start()
    client = market.app.test_client()
    codes = issue(client, tokens)
    # a shopper in Lạng Sơn sends a photo of the stamp to a relative in Sài Gòn: one caller at each end
    scan(client, codes[3], "203.0.113.10", LANG_SON)
    answer = scan(client, codes[3], "2402:800:6314:1::5", HCMC)
    assert answer["possible_copy"] is False
    # a real copy: more buyers at each end
    scan(client, codes[3], "203.0.113.11", LANG_SON)
    copied = scan(client, codes[3], "2402:800:6314:2::5", HCMC)
    assert copied["authentic"] is True and copied["possible_copy"] is True
    assert copied["copy_reasons"] == ["implausible-places"]
    (evidence,) = copied["copy_evidence"]
    assert evidence["reason"] == "implausible-places" and evidence["callers"] == 4
    assert 1100 < evidence["distance_km"] < 1300 and evidence["hours"] < 1
    assert "4" in evidence["message"] and "1" in evidence["message_vi"] and "km" in evidence["message_vi"]
    # every later shopper sees it, with its evidence; the fact is published once
    later = scan(client, codes[3], "192.0.2.44")
    assert later["possible_copy"] is True and later["copy_evidence"] == copied["copy_evidence"]
    events = flagged_events(rt.settings, 3)
    assert len(events) == 1 and events[0]["data"]["reasons"] == ["implausible-places"]

    # the stamp's record names its callers by a short tag keyed to the stamp, never by address
    from functions.market.function.models import StampScans

    record = json.dumps(StampScans.get(copied["stamp"]["batch"], f"{3:010d}").data)
    assert not any(a in record for a in ("203.0.113", "2402:800", "192.0.2")), record


def test_too_many_callers_flag_a_stamp_and_the_flag_says_so(start, tokens):
    client = start(MARKET_SCAN_LIMIT="3").app.test_client()
    codes = issue(client, tokens)
    for _ in range(5):
        assert scan(client, codes[0], "203.0.113.20")["possible_copy"] is False   # one caller, five scans
    for i in range(2):
        assert scan(client, codes[0], f"203.0.113.{21 + i}")["possible_copy"] is False
    answer = scan(client, codes[0], "203.0.113.23")                               # the fourth caller
    assert answer["possible_copy"] is True and answer["copy_reasons"] == ["too-many-scans"]
    assert answer["copy_evidence"][0] | {"message": "", "message_vi": ""} == {
        "reason": "too-many-scans", "callers": 4, "limit": 3, "message": "", "message_vi": ""}
    assert "3" in answer["copy_evidence"][0]["message_vi"]


def test_each_callers_scans_are_rate_limited(start, tokens):
    client = start(MARKET_SCAN_RATE_LIMIT="3", MARKET_SCAN_RATE_WINDOW_S="3600").app.test_client()
    codes = issue(client, tokens)
    for _ in range(3):
        scan(client, codes[0], "203.0.113.30")
    r = client.get(f"/v1/stamps/{codes[0]}", headers={"X-Forwarded-For": "203.0.113.30"})
    assert r.status_code == 429 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) > 0 and r.get_json()["detail_vi"]
    r = client.get("/v1/stamps/not-a-code", headers={"X-Forwarded-For": "203.0.113.30"})
    assert r.status_code == 429       # counted before anything: malformed codes too
    assert scan(client, codes[0], "203.0.113.31")["scans"]["count"] == 4      # another caller is not held


def test_a_scan_costs_what_it_did(start, tokens):
    client = start().app.test_client()
    codes = issue(client, tokens)
    scan(client, codes[0], "203.0.113.40")            # the batch and lot are read once per replica
    with counting() as first:
        scan(client, codes[1], "203.0.113.40", LANG_SON)
    with counting() as again:
        scan(client, codes[1], "203.0.113.40", LANG_SON)
    # the caller's counter (one conditional PUT) and the stamp's record (created, or If-Match the
    # copy this replica wrote): the old scan's repeat was a refused create, a GET and a PUT
    assert sum(first.counts.values()) <= 2, repr(first)
    assert sum(again.counts.values()) <= 2, repr(again)


def test_a_flag_kept_before_callers_were_counted_no_longer_stands(start, tokens):
    client = start().app.test_client()
    codes = issue(client, tokens)
    stamp = scan(client, codes[0], "203.0.113.50")["stamp"]
    from functions.market.function.models import StampScans

    item = StampScans.get(stamp["batch"], f"{stamp['serial']:010d}")
    # the old record: two places, no callers, flagged
    item.data = {"count": 2, "first_at": "2026-01-01T00:00:00.000Z", "last_at": "2026-01-01T00:05:00.000Z",
                 "places": [{"lat": 21.9, "lon": 106.8, "at": "2026-01-01T00:00:00.000Z"},
                            {"lat": 10.8, "lon": 106.7, "at": "2026-01-01T00:05:00.000Z"}],
                 "possible_copy": True, "reasons": ["implausible-places"]}
    item.save()
    answer = scan(client, codes[0], "203.0.113.51", HCMC)
    assert answer["possible_copy"] is False and answer["copy_reasons"] == [] and answer["scans"]["count"] == 3


def test_the_rules_over_a_record_a_truck_ride_and_a_photo_sent_far_away_are_no_copy():
    from datetime import datetime, timedelta, timezone

    from functions.market.function import scans

    rules = {"scan_limit": 50, "copy_distance_km": 100, "copy_speed_kmh": 200}
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
    lang_son, hanoi, hcmc = (scans.Place.coarse(21.853, 106.761), scans.Place.coarse(21.028, 105.834),
                             scans.Place.coarse(10.776, 106.700))
    ride = scans.new_tally()     # packer and seller in Lạng Sơn, two buyers in Hà Nội three hours later
    for by, where, h in (("a", lang_son, 0), ("b", lang_son, 0), ("c", hanoi, 3), ("d", hanoi, 3)):
        assert not scans.observe(ride, where, t0 + timedelta(hours=h), by=by, **rules)
    photo = scans.new_tally()    # two at home, the photo scanned by a relative in Sài Gòn: one caller there
    for by, where in (("a", lang_son), ("b", lang_son), ("c", hcmc), ("c", hcmc), ("a", hcmc)):
        assert not scans.observe(photo, where, t0, by=by, **rules)
    copy = scans.new_tally()
    flags = [scans.observe(copy, where, t0 + timedelta(minutes=i), by=by, **rules)
             for i, (by, where) in enumerate((("a", lang_son), ("c", hcmc), ("b", lang_son), ("d", hcmc), ("e", hcmc)))]
    assert flags == [False, False, False, True, False] and copy["reasons"] == ["implausible-places"]
    assert copy["evidence"] == [{"reason": "implausible-places", "callers": 4, "distance_km": 1234, "hours": 0.1}]
