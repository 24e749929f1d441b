"""A lot's dates against the province's calendar, on real weed mini + nats-server: a packing date
after today here and a certificate that had lapsed before the harvest are refused naming the field
(vi + en); a stamp of an older lot whose certificate has lapsed since scans with it ``expired``.
Time moves through the lot module's ``today_here`` (the province's date)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from jsonschema import Draft202012Validator

import role_matrix
from digital_support import ok
from market_support import CHI_LANG, idem, PRODUCER
from functions.market.function import lots

pytestmark = pytest.mark.integration

TODAY = date(2026, 3, 10)


@pytest.fixture
def client(start_function, peers, monkeypatch):
    monkeypatch.setattr(lots, "today_here", lambda at=None: TODAY)
    return start_function("market", peer_url_template=peers.template).app.test_client()


def lot(**changes):
    return {"product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 120,
            "harvested_on": (TODAY - timedelta(days=3)).isoformat(), "producer_name": "HTX Na Chi Lăng",
            "origin": {"commune": CHI_LANG, "plot": "CL-07"},
            "certificates": [{"kind": "vietgap", "number": "VietGAP-TT-12-34", "issued_by": "Sở NN&MT Lạng Sơn",
                              "valid_until": (TODAY + timedelta(days=20)).isoformat()}],
            "packing": {"packed_on": (TODAY - timedelta(days=2)).isoformat(), "facility": "Kho HTX Chi Lăng"},
            **changes}


def refused(client, tokens, body) -> dict:
    r = client.post("/v1/lots", json=body, headers=idem(tokens("producer", PRODUCER)))
    assert r.status_code == 422 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
    return r.get_json()


def test_a_packing_date_after_today_here_is_refused(client, tokens):
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    problem = refused(client, tokens, lot(packing={"packed_on": tomorrow}))
    (err,) = problem["errors"]
    assert err["field"] == "/packing/packed_on" and "future" in err["message"] and "tương lai" in err["message_vi"]
    # today itself is a packing date
    ok(client.post("/v1/lots", json=lot(packing={"packed_on": TODAY.isoformat()}),
                   headers=idem(tokens("producer", PRODUCER))), 201)


def test_a_certificate_lapsed_before_the_harvest_is_refused_naming_it(client, tokens):
    harvested = TODAY - timedelta(days=3)
    certs = [{"kind": "organic", "number": "HC-1", "valid_until": (harvested + timedelta(days=1)).isoformat()},
             {"kind": "vietgap", "number": "VG-1", "valid_until": (harvested - timedelta(days=1)).isoformat()}]
    problem = refused(client, tokens, lot(certificates=certs))
    (err,) = problem["errors"]
    assert err["field"] == "/certificates/1/valid_until" and "harvest" in err["message"]
    assert "hết hiệu lực" in err["message_vi"]
    # both bad at once: both named
    both = refused(client, tokens, lot(certificates=certs[1:], packing={"packed_on": "2099-01-01"}))
    assert sorted(e["field"] for e in both["errors"]) == ["/certificates/0/valid_until", "/packing/packed_on"]


def test_a_scan_after_the_certificate_lapsed_shows_it_expired(client, tokens, monkeypatch):
    prod = tokens("producer", PRODUCER)
    created = ok(client.post("/v1/lots", json=lot(certificates=[
        {"kind": "vietgap", "number": "VG-2", "valid_until": (TODAY + timedelta(days=20)).isoformat()},
        {"kind": "ocop", "number": "OCOP-3"}]), headers=idem(prod)), 201)
    batch = ok(client.post(f"/v1/lots/{created['id']}/stamps", json={"count": 2}, headers=idem(prod)), 201)
    schema = Draft202012Validator(json.loads((role_matrix.ROOT / "schemas/market/scan.json").read_text()))

    def scan():
        answer = ok(client.get(f"/v1/stamps/{batch['codes'][0]}"))
        assert list(schema.iter_errors(answer)) == []
        return [(c["number"], c["expired"]) for c in answer["certificates"]]

    assert scan() == [("VG-2", False), ("OCOP-3", False)]
    monkeypatch.setattr(lots, "today_here", lambda at=None: TODAY + timedelta(days=21))
    assert scan() == [("VG-2", True), ("OCOP-3", False)]
