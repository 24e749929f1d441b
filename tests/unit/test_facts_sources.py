"""Facts about Vietnam cite their source, and what nobody checked is served as unchecked: a fee or an
online mode with no source entry gets the assistant's caveat and the receipt's ``verified: false``;
border gates' hours, capacities and markers as the sources retrieved say; no certificate type that
Decree 30/2020 does not list; criminal records at the police from 1/3/2025; O3 8h at its last
printed breakpoint inside Table 2; Culture Day kept closed but cited honestly."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import fastjsonschema
import pytest
import yaml

from functions.assistant.function import answers
from functions.directory.function import gates
from functions.documents.function import registers
from functions.dossiers.function import submission
from functions.environment.function import aqi
from functions.procedures.function import catalogue
from lscloud import workdays

ROOT = Path(__file__).resolve().parents[2]
BY_CODE = {p["code"]: p for p in catalogue.build()["procedures"]}
CAVEAT = "chưa được đối chiếu"
GATES_YAML = yaml.safe_load(gates.DATA.read_text(encoding="utf-8"))


# -- 1. procedures: every fact a citizen is told has a source entry ----------------------------------

def _raw() -> dict:
    return yaml.safe_load(catalogue.DATA.read_text(encoding="utf-8"))


def _serve(monkeypatch, raw: dict) -> None:
    monkeypatch.setattr(catalogue, "_load", lambda: yaml.safe_dump(raw, allow_unicode=True))


def _proc(raw: dict, code: str) -> dict:
    return next(x for x in raw["procedures"] if x["code"] == code)


def test_an_unreviewed_fee_is_served_as_an_unverified_source_with_the_shared_note():
    assert len(BY_CODE) == 132
    fee = [s for s in BY_CODE["HT-XNTTHN"]["sources"] if s["fact"] == "fees"]
    assert fee and not fee[0]["verified"] and "no official source retrieved" in fee[0]["note"].lower()
    assert fee[0]["note"] == _raw()["unreviewed_notes"]["fees"] and fee[0]["ref"] is None


def test_the_catalogue_refuses_a_charged_procedure_that_does_not_declare_its_fees(monkeypatch):
    raw = _raw()
    p = _proc(raw, "HT-XNTTHN")
    assert "fees" in p["unreviewed"] and "fees" not in {s["fact"] for s in p["sources"]}
    p["unreviewed"].remove("fees")
    _serve(monkeypatch, raw)
    with pytest.raises(catalogue.CatalogueError, match=r"HT-XNTTHN.*fees"):
        catalogue.build()
    del p["unreviewed"]
    with pytest.raises(catalogue.CatalogueError, match="online_mode"):
        catalogue.build()


def test_a_fact_both_unreviewed_and_sourced_is_refused(monkeypatch):
    raw = _raw()
    p = _proc(raw, "HT-XNTTHN")
    p["sources"].append({"fact": "fees", "verified": False, "note": "Checked somewhere."})
    _serve(monkeypatch, raw)
    with pytest.raises(catalogue.CatalogueError, match=r"HT-XNTTHN'/unreviewed: 'fees' has a source entry too"):
        catalogue.build()


@pytest.mark.parametrize("edit,message", [
    (lambda raw: raw["unreviewed_notes"].pop("fees"), r"'fees' has no note in unreviewed_notes"),
    (lambda raw: raw["unreviewed_notes"].update(fees=" "), r"unreviewed_notes/fees: must be non-empty text"),
    (lambda raw: _proc(raw, "HT-XNTTHN")["unreviewed"].append("fee"), r"HT-XNTTHN'/unreviewed: 'fee' is not one of"),
    (lambda raw: _proc(raw, "HT-XNTTHN")["unreviewed"].append("fees"), r"HT-XNTTHN'/unreviewed: 'fees' is listed twice"),
    (lambda raw: _proc(raw, "HT-XNTTHN").update(unreviewed="fees"), r"HT-XNTTHN'/unreviewed: must be a non-empty list"),
])
def test_a_bad_unreviewed_declaration_is_refused(monkeypatch, edit, message):
    raw = _raw()
    edit(raw)
    _serve(monkeypatch, raw)
    with pytest.raises(catalogue.CatalogueError, match=message):
        catalogue.build()


def test_unreviewed_builds_the_same_sources_as_writing_each_entry_out(monkeypatch):
    """The shorthand changes no answer: every ``unreviewed`` fact written out as the
    ``{fact, verified: false, note}`` source entry it stands for builds the same catalogue."""
    raw = _raw()
    notes = raw.pop("unreviewed_notes")
    for p in raw["procedures"]:
        p["sources"] += [{"fact": f, "verified": False, "note": notes[f]} for f in p.pop("unreviewed", [])]
    _serve(monkeypatch, raw)
    spelled_out = {p["code"]: p["sources"] for p in catalogue.build()["procedures"]}
    assert spelled_out == {code: p["sources"] for code, p in BY_CODE.items()}
    assert sum(len(p["unreviewed"]) for p in _raw()["procedures"] if "unreviewed" in p) == 292


def test_a_fact_with_no_source_entry_is_answered_with_the_caveat():
    bare = copy.deepcopy(BY_CODE["HT-XNTTHN"])
    bare["sources"] = [s for s in bare["sources"] if s["fact"] not in ("fees", "online_mode")]
    assert answers.unverified(bare, "fees") and answers.unverified(bare, "online_mode")
    fees = answers.compose("fees", bare, "vi")
    assert "15.000 đồng" in fees and CAVEAT in fees
    assert CAVEAT in answers.compose("online", bare, "vi")
    assert "Not yet checked" in answers.compose("fees", bare, "en")
    # a verified source lifts the caveat; an unverified one beside it does not bring it back
    checked = copy.deepcopy(bare)
    checked["sources"] += [{"fact": "fees", "verified": True}, {"fact": "fees", "verified": False}]
    assert CAVEAT not in answers.compose("fees", checked, "vi")


def test_the_catalogues_own_unchecked_fee_is_answered_with_the_caveat():
    assert CAVEAT in answers.compose("fees", BY_CODE["HT-XNTTHN"], "vi")
    assert CAVEAT in answers.compose("online", BY_CODE["HT-XNTTHN"], "vi")


def test_the_receipt_says_whether_its_fees_were_checked():
    p = BY_CODE["HT-XNTTHN"]
    assert submission.fees_verified(p) is False
    assert submission.fees_verified({"sources": [{"fact": "fees", "verified": True}]}) is True
    assert submission.fees_verified({"fees": [{"name": "x", "amount_vnd": 1}]}) is False   # no source at all
    schema = json.loads((ROOT / "schemas/dossiers/receipt.json").read_text())
    assert schema["properties"]["fees"]["items"]["properties"]["verified"]["type"] == "boolean"
    check = fastjsonschema.compile(schema)
    check({"code": "X", "dossier_id": "d", "received_at": "t", "appointment_at": "t", "appointment_date": "2026-12-08",
           "fees": [{"name": "Lệ phí", "amount_vnd": 15000, "verified": False}]})


def test_criminal_records_moved_to_the_police_on_1_march_2025():
    """A guard on data: checks the text of LLTP-CD's level source, no code path."""
    level = [s for s in BY_CODE["LLTP-CD"]["sources"] if s["fact"] == "level"][0]
    assert "1/3/2025" in level["note"] and "1/7/2025, wrongly" in level["note"]
    assert level["verified"] and level["url"].startswith("https://") and level["kind"] == "press"
    assert "bắt đầu thực hiện từ 1/3" in level["reference_note"]


# -- 2. border gates ------------------------------------------------------------------------------

def _gate(code: str) -> dict:
    return {g["code"]: g for g in gates.all_gates()}[code]


def test_chi_ma_works_7_to_17_as_the_economic_zone_authority_says():
    chi_ma = _gate("chi-ma")
    assert (chi_ma["hours"]["open"], chi_ma["hours"]["close"]) == ("07:00", "17:00")
    assert chi_ma["hours"]["verified"] is True
    hours = [s for s in chi_ma["sources"] if s["fact"] == "hours"][0]
    assert hours["url"].startswith("http://banqlktck.langson.gov.vn/") and hours["kind"] == "official"
    assert "7:00-17:00 (giờ Hà Nội) tất cả các ngày trong tuần" in hours["reference_note"]
    assert gates.daily_capacity(chi_ma) == {"export": 150, "import": 100}


def test_chi_ma_type_cites_the_land_border_gate_decree():
    """A guard on data: checks the text of Chi Ma's type note, no code path."""
    note = [s for s in _gate("chi-ma")["sources"] if s["fact"] == "type"][0]["note"]
    assert "112/2014/NĐ-CP" in note and "34/2023/NĐ-CP" in note and "34/2014" not in note


def test_binh_nghi_is_not_bookable_until_a_source_says_it_clears_goods():
    from functions.border.function import queue

    bn = _gate("binh-nghi")
    assert bn["capacity"]["export_per_hour"] == 0 and bn["capacity"]["import_per_hour"] == 0
    assert queue.capacity(bn, "out") == 0 and queue.capacity(bn, "in") == 0
    assert queue.capacity(bn, "out", override=5) == 5        # an operator can open it
    cap = [s for s in bn["sources"] if s["fact"] == "capacity"][0]
    assert not cap["verified"] and "vnanet.vn" in cap["url"]
    schema = json.loads((ROOT / "schemas/directory/border-gate.json").read_text())
    fastjsonschema.compile(schema)(bn)


@pytest.mark.parametrize("export,import_,ok", [(-1, 30, False), (0, 30, False), (0, 0, True), (45, 30, True)])
def test_a_gate_is_bookable_both_ways_or_not_at_all(export, import_, ok):
    items = gates.all_gates()
    items[0]["capacity"].update(export_per_hour=export, import_per_hour=import_)
    if ok:
        gates.check(items)
    else:
        with pytest.raises(ValueError, match="capacities"):
            gates.check(items)


def test_na_hinh_is_recorded_with_its_sources_but_not_served_until_its_unit_is_known():
    pending = {p["name"]: p for p in GATES_YAML["pending"]}
    na_hinh = pending["Cửa khẩu phụ Na Hình"]
    assert "cửa khẩu phụ Na Hình" in GATES_YAML["references"]["tet-2026-clearance"]["note"]
    assert {s["fact"] for s in na_hinh["sources"]} >= {"type", "clears_goods"}
    assert all(s["ref"] in GATES_YAML["references"] for s in na_hinh["sources"])
    assert "unit" in na_hinh["missing"] and "capacity" in na_hinh["missing"]
    assert not any("Na Hình" in g["name"] for g in gates.all_gates())     # nothing to book against


def test_the_cargo_road_marker_and_the_opening_year():
    """A guard on data: checks the gates file's text, no code path."""
    ref = GATES_YAML["references"]["huu-nghi-routes-opening"]
    assert "1088/2-1089" in ref["document"] and "1088/3-1089" not in ref["document"]
    tan_thanh = {g["code"]: g for g in GATES_YAML["gates"]}["tan-thanh"]
    opened = [s for s in tan_thanh["sources"] if s["fact"] == "opened"][0]
    assert opened["verified"] is False and "inferred" in opened["note"]   # no dated text retrieved


# -- 3. Decree 30/2020 lists no Giấy chứng nhận ------------------------------------------------------

def test_no_certificate_type_is_numbered_in_the_administrative_register():
    """A guard on data: the register's type list holds no certificate (the lookup only reflects it)."""
    assert "giay-chung-nhan" not in registers.codes("types")
    assert all(t["abbr"] != "GCN" for k, t in registers.decree()["types"].items() if not k.startswith("_"))
    with pytest.raises(KeyError):
        registers.symbol("giay-chung-nhan", "UBND", None)


# -- 5. AQI: O3 8h's last printed breakpoint is inside Table 2 ---------------------------------------

@pytest.mark.parametrize("table,c,expected", [
    ("o3_8h", 400, (300.0, False)),     # row 6: 400 µg/m³ → 300; rows 7-8 are "-"
    ("o3_8h", 400.5, (300.0, True)),    # above it: beyond the table
    ("o3_8h", 300, None),
    ("pm25", 500, (500.0, True)),       # a full column's last row is "≥ 500"
    ("pm25", 250, (300.0, False)),
])
def test_o3_8h_is_beyond_the_table_only_above_400(table, c, expected):
    got = aqi.sub_index(table, c)
    if expected is None:
        assert got[1] is False and 200 < got[0] < 300
    else:
        assert got == expected


# -- 6. Culture Day: closed, unverified, no number that was never found ------------------------------

def test_culture_day_stays_closed_and_unverified_and_cites_no_unfound_resolution():
    """The calendar keeps the day closed and uncertain; the rest is a guard on data: the calendar
    files' text for its source."""
    cal = workdays.load()
    assert cal.is_holiday(date(2026, 11, 24)) and not cal.certain(date(2026, 11, 23), date(2026, 11, 25))
    for name in ("holidays-fixed.yaml", "holidays-2026.yaml"):
        text = (ROOT / "lscloud/data/calendar" / name).read_text(encoding="utf-8")
        src = yaml.safe_load(text)["sources"]["culture-day"]
        assert src["verified"] is False
        assert "28/2026" not in text and "QH16" not in text, name
        assert "Quốc hội" not in src["issuer"]
