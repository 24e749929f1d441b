"""Facts about Vietnam the platform serves, checked against the data and the code that serves them:
same-day procedures, deadlines that say whether anyone checked them, fees waived online or charged
per page, VietQR banks that only receive, unchecked border-gate hours, and the noise regulation
that was replaced."""

from __future__ import annotations

import json
from pathlib import Path

import fastjsonschema
import pytest

from functions.directory.function import gates
from functions.dossiers.function import submission
from functions.environment.function import noise, standards
from functions.market.function import vietqr
from functions.procedures.function import catalogue
from lscloud import errors

ROOT = Path(__file__).resolve().parents[2]
BY_CODE = {p["code"]: p for p in catalogue.build()["procedures"]}


# -- 1. same-day procedures; every deadline says how it was checked ---------------------------------

@pytest.mark.parametrize("code,article", [("CT-BSBC", None), ("CT-CK", "Nghị định 23/2015/NĐ-CP Điều 7"),
                                          ("HT-KH", "Điều 18 khoản 2"), ("HT-KT", "Điều 34 khoản 2")])
def test_certification_marriage_and_death_registration_are_same_day(code, article):
    p = BY_CODE[code]
    assert (p["processing_days"], p["same_day_cutoff"]) == (0, "15:00")
    assert {s["days"] for s in p["steps"]} == {0} and {s["agency"] for s in p["steps"]} == {"ubnd-xa"}
    days = [s for s in p["sources"] if s["fact"] == "processing_days"]
    assert days and all(s["verified"] and s["kind"] in ("official", "press") and s["url"] for s in days)
    assert article is None or article in [s["article"] for s in days]
    # the longer times the law gives belong to a verification case, and the entry says so
    longer = {"HT-KH": "05 ngày", "HT-KT": "03 working days", "CT-BSBC": "02 (hai) ngày"}.get(code)
    assert longer is None or any(longer in (s["note"] or "") for s in days)


def test_every_procedure_says_how_its_deadline_was_checked():
    for p in BY_CODE.values():
        assert any(s["fact"] == "processing_days" for s in p["sources"]), p["code"]
    assert [s["verified"] for s in BY_CODE["HT-BSTL"]["sources"] if s["fact"] == "processing_days"] == [False]


def test_a_procedure_without_a_deadline_source_is_refused(monkeypatch):
    text = catalogue.DATA.read_text(encoding="utf-8")
    start = text.index("  - code: HT-BSTL\n")
    line = text.index('      - {fact: "processing_days"', start)
    bad = text[:line] + text[text.index("\n", line) + 1:]
    monkeypatch.setattr(catalogue, "_load", lambda: bad)
    with pytest.raises(catalogue.CatalogueError, match=r"HT-BSTL'/sources: must say how processing_days"):
        catalogue.build()


# -- 2. fees waived online, fees per page -----------------------------------------------------------

@pytest.mark.parametrize("code", ["DN-TNHH1", "DN-CTCP", "DN-TD", "DN-TNHH2", "DN-DNTN", "DN-CN"])
def test_a_fee_waived_online_is_not_charged_online(code):
    p = BY_CODE[code]
    waived = [f for f in p["fees"] if f["waived_online"]]
    assert waived and all("miễn khi nộp trực tuyến" in f["name"] for f in waived)
    assert any(s["fact"] == "fees" and "waived_online" in (s["note"] or "") for s in p["sources"])
    full = sum(f["amount_vnd"] for f in p["fees"])
    online, counter = submission.fees(p, "online"), submission.fees(p, "counter")
    assert sum(f["amount_vnd"] for f in online) == full - sum(f["amount_vnd"] for f in waived)
    assert sum(f["amount_vnd"] for f in counter) == full


def test_per_page_fees_are_not_summed_as_flat_fees():
    p = BY_CODE["CT-BSBC"]
    assert [(f["per"], f["max_vnd"]) for f in p["fees"]] == [("page", 200000), ("page", 200000)]
    charged = submission.fees(p, "online")
    assert sum(f["amount_vnd"] for f in charged) == 0
    assert [f["rate_vnd"] for f in charged] == [2000, 1000] and all("page count" in f["note"] for f in charged)


# -- 3. VietQR: a shop's bank need only receive -------------------------------------------------------

def test_a_shop_at_a_receive_only_bank_gets_its_vietqr():
    from vietnam_qr_pay import BanksObject

    receive_only = [b.bin for b in BanksObject.values()
                    if getattr(b.viet_qr_status, "name", None) == "RECEIVE_ONLY" and b.bin and not b.deprecated]
    assert "970444" in receive_only and set(receive_only) <= set(vietqr.banks())
    assert "970444" in vietqr.payload("970444", "1234567890", "Cua hang")   # CB Bank
    with pytest.raises(errors.Invalid):
        vietqr.payload("970999", "1234567890", "x")


# -- 5. border gates: hours, capacity and type say how they were checked -------------------------------

def test_gate_hours_capacity_and_type_cite_their_source():
    validate = fastjsonschema.compile(json.loads((ROOT / "schemas/directory/border-gate.json").read_text()))
    for g in gates.all_gates():
        validate(g)
        facts = {s["fact"]: s for s in g["sources"]}
        assert {"hours", "capacity", "type"} <= set(facts), g["code"]
        # the gate's hours are verified exactly when their source is (Chi Ma's, by the Economic Zone Authority)
        assert g["hours"]["verified"] is facts["hours"]["verified"] is (g["code"] == "chi-ma"), g["code"]
        assert all(s["verified"] or s["note"] for s in g["sources"])
    huu_nghi = {s["fact"]: s for s in gates.all_gates()[0]["sources"]}
    assert "7h-18h" in huu_nghi["hours"]["note"] and huu_nghi["hours"]["url"].startswith("https://")


# -- 6. noise: the 2010 regulation was replaced ------------------------------------------------------------

def test_noise_limits_say_their_regulation_is_superseded():
    src = standards.qcvn_26()["source"]
    assert src["status"] == "superseded" and src["superseded_by"]["from"] == "2025-11-14"
    judged = noise.assess("ordinary", 14, 72.0)
    assert judged["verified"] is False and judged["source_status"] == "superseded"
    assert "QCVN 26:2025/BNNMT" in judged["superseded_by"] and "2025-11-14" in judged["superseded_by"]
