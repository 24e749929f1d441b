"""The identity and procedures domains, plain Python: CCCD decoding (lscloud.identifiers), name
comparison, the generated registry, the catalogue's rules, search ranking and paging, the form
PDFs, and who gets the dev signing key."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings as hsettings, strategies as st

from functions.identity.function import citizens, names, verification
from functions.procedures.function import catalogue, search, seed, templates
from lscloud import config
from lscloud.identifiers import InvalidIdentifier, parse_cccd
from lscloud.listing import QueryError, decode_token, fold
from lscloud.query import InvalidQuery, parse as parse_query
from lscloud import manifest
from lscloud.local.supervisor import SIGNING_KEY_ENV, function_env

ROOT = Path(__file__).resolve().parents[2]

DATA, BLOBS = seed.build_with_templates()
PROCS = DATA["procedures"]
BY_CODE = {p["code"]: p for p in PROCS}
EN = {f["code"]: f["name_en"] for f in DATA["fields"]}
INDEX = [search.index_entry(p, EN[p["field"]]) for p in PROCS]


# -- CCCD ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("number,province,sex,year,century", [
    ("020095001234", "Lạng Sơn", "male", 1995, 20), ("020196004321", "Lạng Sơn", "female", 1996, 20),
    ("020305000789", "Lạng Sơn", "female", 2005, 21), ("001090012345", "Hà Nội", "male", 1990, 20),
    ("0200 9500 1234", "Lạng Sơn", "male", 1995, 20)])
def test_cccd_decodes(number, province, sex, year, century):
    c = parse_cccd(number, today=date(2025, 7, 1))
    assert (c.province, c.sex, c.birth_year, c.century, c.province_code) == (province, sex, year, century, number[:3])


@pytest.mark.parametrize("number,rule", [("12345", "exactly 12 digits"), ("0200950012ab", "exactly 12 digits"),
                                         ("099095001234", "province code 099"), ("020430001234", "future"),
                                         ("020004001234", "implausible")])
def test_cccd_names_the_rule_it_breaks(number, rule):
    with pytest.raises(InvalidIdentifier, match=rule):
        parse_cccd(number, today=date(2025, 7, 1))


def test_generated_registry_is_valid_distinct_and_deterministic():
    people = citizens.all_citizens()
    assert len(people) >= 300 and len({c.id_number for c in people}) == len(people)
    assert citizens.generate() == citizens.generate()
    for c in people:
        parsed = parse_cccd(c.id_number, today=date(2025, 7, 1))
        assert parsed.birth_year == c.date_of_birth.year and parsed.sex == c.sex
        assert len(c.full_name.split()) >= 3
    assert sum(c.id_number.startswith("020") for c in people) > 0.7 * len(people)
    assert citizens.KNOWN[0].to_dict() == {"id_number": "020095001234", "full_name": "Nguyễn Văn An",
                                           "date_of_birth": "1995-03-12", "sex": "male"}


# -- names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed,registered,same", [
    ("Nguyễn Văn An", "Nguyễn Văn An", True),
    ("NGUYỄN VĂN AN", "Nguyễn Văn An", True),
    ("  nguyễn   văn  an ", "Nguyễn Văn An", True),
    ("Nguye\u0302\u0303n Va\u0306n An", "Nguyễn Văn An", True),         # NFD
    ("Lương Thị Hoà", "Lương Thị Hòa", True),                            # tone placement, old/new style
    ("Vi Thị Thuý", "Vi Thị Thúy", True),
    ("Nguyen Van An", "Nguyễn Văn An", False),                           # diacritics matter
    ("Nguyên Văn An", "Nguyễn Văn An", False),                           # another tone is another name
    ("Nguyễn Văn Ân", "Nguyễn Văn An", False),
    ("Dương Văn An", "Đương Văn An", False),                             # đ is not d
    ("Nguyễn An", "Nguyễn Văn An", False),
    ("", "Nguyễn Văn An", False), ("   ", "", False)])
def test_name_comparison(typed, registered, same):
    assert names.same_name(typed, registered) is same


@given(st.sampled_from([c.full_name for c in citizens.all_citizens()[:60]]),
       st.sampled_from(["upper", "lower", "nfd", "spaces"]))
@example("Lương Thị Hòa", "nfd")
@example("Nông Văn Thắng", "upper")
@hsettings(max_examples=40, deadline=None)
def test_name_survives_case_spacing_and_unicode_form(name, how):
    import unicodedata

    typed = {"upper": name.upper(), "lower": name.lower(), "nfd": unicodedata.normalize("NFD", name),
             "spaces": "  " + "   ".join(name.split()) + " "}[how]
    assert names.same_name(typed, name)
    assert not names.same_name(fold(name), name) or fold(name) == name.lower()


def test_compare_never_adds_fields():
    claim = verification.Claim("020095001234", "Nguyễn Văn An", date(1995, 3, 12))
    assert verification.compare(claim, citizens.KNOWN[0]).to_dict() == {
        "match": True, "fields": {"id_number": "match", "full_name": "match", "date_of_birth": "match"}}
    assert verification.compare(claim, None).fields == dict.fromkeys(verification.FIELDS, "mismatch")


# -- the catalogue -----------------------------------------------------------------------------------

def test_catalogue_size_and_spread():
    assert len(PROCS) >= 40
    per_field = {f["code"]: f["procedures"] for f in DATA["fields"]}
    assert sum(per_field.values()) == len(PROCS) and sum(n > 0 for n in per_field.values()) >= 12
    assert {p["level"] for p in PROCS} == {"province", "commune"} and {p["online_mode"] for p in PROCS} == {"full", "partial"}
    assert sum(1 for p in PROCS if len({s["agency"] for s in p["steps"]}) > 1) >= 5  # liên thông


def test_every_procedure_follows_the_rules():
    for p in PROCS:
        assert sum(s["days"] for s in p["steps"]) == p["processing_days"], p["code"]
        assert p["steps"][-1]["agency"] == p["agency"], p["code"]
        assert (p["level"] == "commune") == (p["agency"] == "ubnd-xa"), p["code"]
        assert p["legal_basis"] and p["results"] and p["documents"]
        for d in p["documents"]:
            assert "form" not in d and (d["template"] is None or set(d["template"]) == {"sha256", "media_type", "filename"})


def test_every_agency_named_exists_in_the_directory():
    directory = yaml.safe_load((ROOT / "functions/directory/function/data/agencies.yaml").read_text())
    known = {a["code"] for a in directory["agencies"]}
    assert catalogue.agencies_named(PROCS) <= known, catalogue.agencies_named(PROCS) - known


def test_contract_codes():
    assert [s["agency"] for s in BY_CODE["DD-BD"]["steps"]] == [
        "public-service-centre", "so-nong-nghiep-moi-truong", "tax", "so-nong-nghiep-moi-truong"]
    assert BY_CODE["DKKD-HKD"]["processing_days"] == 3


# -- the facts of issue 9, checked against the official texts ------------------------------------------

def test_on_time_birth_registration_is_same_day():
    ks = BY_CODE["HT-KS"]
    assert (ks["processing_days"], ks["same_day_cutoff"]) == (0, "15:00")
    assert {s["days"] for s in ks["steps"]} == {0} and {s["agency"] for s in ks["steps"]} == {"ubnd-xa"}
    assert any(s["fact"] == "processing_days" and s["verified"] and s["article"] == "Điều 16 khoản 2"
               for s in ks["sources"])


def test_house_permits_and_first_land_certificates_are_decided_by_the_commune():
    for code in ("XD-GPXD", "XD-GPXD-DC", "DD-GCN"):
        p = BY_CODE[code]
        assert (p["level"], p["agency"]) == ("commune", "ubnd-xa"), code
        assert "so-xay-dung" not in {s["agency"] for s in p["steps"]} and "public-service-centre" not in \
            {s["agency"] for s in p["steps"]}, code
    assert "Nghị định 140/2025/NĐ-CP" in BY_CODE["XD-GPXD"]["legal_basis"]
    level = next(s for s in BY_CODE["XD-GPXD"]["sources"] if s["fact"] == "level")
    assert level["verified"] and "140/2025" in level["document"] and level["url"].startswith("https://")
    assert [s["agency"] for s in BY_CODE["DD-GCN"]["steps"]] == ["ubnd-xa", "ubnd-xa", "tax", "ubnd-xa"]


def test_work_permits_and_unemployment_benefit_rest_on_the_2025_texts():
    gpld = BY_CODE["LD-GPLD"]
    assert "Nghị định 219/2025/NĐ-CP" in gpld["legal_basis"] and "Nghị định 152/2020/NĐ-CP" not in gpld["legal_basis"]
    assert gpld["processing_days"] == 10 and gpld["national_code"] == "1.014199"
    assert "Luật Việc làm số 74/2025/QH15" in BY_CODE["LD-TCTN"]["legal_basis"]
    assert not any("38/2013" in x for x in BY_CODE["LD-TCTN"]["legal_basis"])


def test_every_procedure_has_a_national_code_or_says_why_not():
    for p in PROCS:
        nc = [s for s in p["sources"] if s["fact"] == "national_code"]
        assert nc and {s["fact"] for s in p["sources"]} >= {"national_code", "level"}, p["code"]
        if p["national_code"] is None:
            assert not any(s["verified"] for s in nc), p["code"]
        else:
            assert catalogue.NATIONAL_CODE_RE.match(p["national_code"]), p["code"]
        for s in p["sources"]:
            assert s["verified"] or s["note"], (p["code"], s)
            if s["verified"]:
                assert s["kind"] in ("official", "press") and (s["url"] or s["copy"]), (p["code"], s)
    codes = [p["national_code"] for p in PROCS if p["national_code"]]
    assert len(codes) == len(set(codes))   # one national procedure is one local mnemonic


def test_nothing_is_decided_at_district_level():
    directory = yaml.safe_load((ROOT / "functions/directory/function/data/agencies.yaml").read_text())
    kinds = {a["code"]: a["kind"] for a in directory["agencies"]}
    for p in PROCS:
        assert p["level"] in ("province", "commune")
        for s in p["steps"]:
            assert s["unit_level"] in ("province", "commune") and "huyen" not in s["agency"], (p["code"], s)
            assert s["agency"] == "ubnd-xa" or kinds.get(s["agency"]) != "commune-committee", (p["code"], s)


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace('national_code: "1.001193"', 'national_code: "1001193"', 1), "national_code"),
    (lambda t: t.replace('    same_day_cutoff: "15:00"\n', "", 1), "same_day_cutoff"),
    (lambda t: t.replace('ref: "dvc-khai-sinh"}', 'ref: "tp-system3"}', 1), "verified fact names an official"),
    (lambda t: t.replace('ref: "dvc-khai-sinh"}', 'ref: "nowhere"}', 1), "not a key of references"),
])
def test_facts_without_a_proper_source_are_refused(monkeypatch, edit, message):
    text = catalogue.DATA.read_text(encoding="utf-8")
    bad = edit(text)
    assert bad != text
    monkeypatch.setattr(catalogue, "_load", lambda: bad)
    with pytest.raises(catalogue.CatalogueError, match=message):
        catalogue.build()


@pytest.mark.parametrize("days,level", [(1, "commune"), (2, "province"), (3, "commune"), (5, "province"), (30, "province")])
def test_standard_steps_add_up(days, level):
    steps = catalogue.standard_steps("so-y-te" if level == "province" else "ubnd-xa", level, days)
    assert sum(s["days"] for s in steps) == days and steps[-1]["code"] == "sign"
    assert steps[0]["agency"] == ("public-service-centre" if level == "province" else "ubnd-xa")


def test_bad_data_is_refused_with_a_location(monkeypatch):
    text = catalogue.DATA.read_text(encoding="utf-8")
    bad = text.replace("processing_days: 10\n    steps:\n      - {code: receive, agency: public-service-centre",
                       "processing_days: 9\n    steps:\n      - {code: receive, agency: public-service-centre", 1)
    monkeypatch.setattr(catalogue, "_load", lambda: bad)
    with pytest.raises(catalogue.CatalogueError, match=r"DD-BD'/steps: step days add up to 10"):
        catalogue.build()
    split = text.replace("['Luật Trật tự, an toàn giao thông đường bộ số 36/2024/QH15'",
                         "[Luật Trật tự, an toàn giao thông đường bộ số 36/2024/QH15", 1)
    monkeypatch.setattr(catalogue, "_load", lambda: split)
    with pytest.raises(catalogue.CatalogueError, match="lower case"):
        catalogue.build()


# -- search ------------------------------------------------------------------------------------------

def ranked(q: str) -> list[str]:
    return [PROCS[i]["code"] for i in search.rank(INDEX, fold(q))]


@pytest.mark.parametrize("q,first", [("khai sinh", "HT-KS"), ("KHAI SINH", "HT-KS"), ("khai sinh", "HT-KS"),
                                     ("giay phep xay dung", "XD-GPXD"), ("Giấy Phép Xây Dựng", "XD-GPXD"),
                                     ("ht-ks", "HT-KS"), ("dang ky ket hon", "HT-KH"), ("lam the huong dan vien", "DL-HDV"),
                                     ("thu tuc khai tu", "HT-KT"), ("ket ho", "HT-KH"), ("building permit", "XD-GPXD")])
def test_ranking(q, first):
    assert ranked(q)[0] == first, ranked(q)[:5]


def test_fillers_are_optional_but_content_words_are_required():
    assert ranked("thủ tục làm giấy khai sinh như thế nào")[0] == "HT-KS"  # a question finds its procedure
    assert ranked("xin giay phep lai xe")[0] in ("GT-DGPLX", "GT-CLGPLX")
    assert ranked("khai sinh cho con")[0] == "HT-KS"
    assert ranked("zzz khai sinh")[0] == "HT-KS" and ranked("zzz yyy khai sinh") == [] and ranked("zzz sinh") == []


def _listing(args):
    """What the list route does: parse the query from its declaration, then list."""
    return search.listing(PROCS, INDEX, parse_query(search.LIST_PARAMS, args))


def test_listing_filters_search_and_pages():
    page = _listing({"q": "giay", "level": "province", "limit": "3"})
    assert len(page.items) == 3 and all(p["level"] == "province" for p in page.items) and page.next_page_token
    assert decode_token(page.next_page_token, {"q": "giay", "level": "province"}) == 3
    with pytest.raises(QueryError):
        decode_token(page.next_page_token, {"q": "giay"})
    for bad, field in (({"level": "huyen"}, "level"), ({"field": "X Y"}, "field"), ({"agency": "Bad Code"}, "agency"),
                       ({"limit": "101"}, "limit"), ({"fee": "cheap"}, "fee")):
        with pytest.raises(InvalidQuery) as err:
            _listing(bad)
        assert [e["field"] for e in err.value.errors] == [field]
    assert _listing({"field": "no-such-field"}).total == 0  # a well-formed code that names no field: nothing
    xd = _listing({"agency": "so-xay-dung", "limit": "100"})
    assert "XD-TDTK" in {p["code"] for p in xd.items} and "XD-GPXD" not in {p["code"] for p in xd.items}
    by_national = _listing({"q": "1.001193"})   # the national code finds its procedure
    assert [p["code"] for p in by_national.items][:1] == ["HT-KS"]


# -- form templates ------------------------------------------------------------------------------------

def test_form_pdfs_are_well_formed_and_deterministic():
    assert len(BLOBS) >= 30
    for pdf in list(BLOBS.values())[:10]:
        assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
        xref_at = int(re.search(rb"startxref\n(\d+)\n", pdf).group(1))
        assert pdf[xref_at:xref_at + 4] == b"xref"
        count = int(re.search(rb"xref\n0 (\d+)\n", pdf).group(1))
        offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n ", pdf)]
        assert len(offsets) == count - 1
        for n, at in enumerate(offsets, start=1):
            assert pdf[at:].startswith(f"{n} 0 obj".encode())
        length = int(re.search(rb"/Length (\d+)", pdf).group(1))
        start = pdf.index(b"stream\n") + 7
        assert pdf[start + length:start + length + 9] == b"endstream"   # reportlab: no EOL before it
    p = BY_CODE["HT-KS"]
    assert seed.build_with_templates()[1].keys() == BLOBS.keys()
    form = {**p["documents"][0], "form": ["Họ tên"]}
    assert templates.form_pdf(p, form) == templates.form_pdf(p, form)   # the text: tests/integration/test_procedure_forms.py


# -- the dev signing key goes to the identity function only ---------------------------------------------

def test_only_identity_gets_the_signing_key(tmp_path):
    s = config.Settings(state_dir=str(tmp_path))
    base = {"PATH": "/usr/bin", SIGNING_KEY_ENV: "/leaked/from/shell.pem"}
    found = {m.name: m for m in manifest.discover(ROOT / "functions")}
    assert {"identity", "procedures", "directory"} <= set(found)
    for name, m in found.items():
        env = function_env(m, s, 9000, base=base)
        if name == "identity":
            assert env[SIGNING_KEY_ENV] == str(tmp_path.resolve() / "keys" / "dev-es256.pem")
        else:
            assert SIGNING_KEY_ENV not in env, name
    assert SIGNING_KEY_ENV not in function_env(found["identity"], s.replace(env="cluster"), 9000, base=base)
