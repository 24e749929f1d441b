"""The directory's domain: units from the package, curated agencies and gates, search, paging."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import fastjsonschema
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from functions.directory.function import agencies, catalog, gates, post_offices, units
from lscloud import listing as search
from lscloud import query as params

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas" / "directory"


def _validator(name):
    return fastjsonschema.compile(json.loads((SCHEMAS / name).read_text()))


def _names(items):
    return [i["name"] for i in items]


def _search_units(q):
    return search.search(units.all_units(), search.Query.parse(q), units.search_texts)


# -- units -------------------------------------------------------------------------------------

def test_province_and_its_65_commune_level_units():
    all_units = units.all_units()
    assert all_units[0] == {**all_units[0], "code": "20", "name": "Tỉnh Lạng Sơn", "level": "province",
                            "parent_code": None, "type": "tinh"}
    communes = units.communes()
    assert len(communes) == 65
    assert all(u["parent_code"] == "20" and u["level"] == "commune" for u in communes)
    codes = [u["code"] for u in all_units]
    assert len(set(codes)) == len(codes)
    assert all(len(c) == 5 and c.isdigit() for c in codes[1:])
    assert {u["type"] for u in communes} == {"xa", "phuong"}
    wards = sorted(u["short_name"] for u in communes if u["type"] == "phuong")
    assert wards == sorted(["Đông Kinh", "Lương Văn Tri", "Tam Thanh", "Kỳ Lừa"])


def test_unit_fields_come_from_the_package():
    that_khe = units.by_code()["06040"]
    assert that_khe["name"] == "Xã Thất Khê"
    assert that_khe["short_name"] == "Thất Khê"
    assert that_khe["name_ascii"] == "Xa That Khe"
    assert (that_khe["type"], that_khe["type_label"], that_khe["type_label_en"]) == ("xa", "Xã", "Commune")
    validate = _validator("unit.json")
    for u in units.all_units():
        validate(u)


def test_unit_code_shape():
    assert units.valid_code("20") and units.valid_code("06040")
    for bad in ("", "6040", "060400", "0604a", "../x", "2"):
        assert not units.valid_code(bad)


def test_find_by_name_is_exact_and_refuses_unknown_names():
    assert units.find_by_name("Xã Đồng Đăng")["code"] == "06184"
    assert units.find_by_name("dong dang")["code"] == "06184"
    with pytest.raises(LookupError):
        units.find_by_name("Xã Không Có")


# -- search ------------------------------------------------------------------------------------

def test_fold_drops_marks_and_case_and_maps_d_stroke():
    assert search.fold("ĐỒNG ĐĂNG") == "dong dang"
    assert search.fold("  Xã  Thất-Khê ") == "xa that khe"
    assert search.fold("đ") == "d"


@pytest.mark.parametrize("q", ["lang son", "Lạng Sơn", "LANG SON"])
def test_lang_son_finds_the_province_first(q):
    hits = _search_units(q)
    assert hits[0]["code"] == "20"
    # no commune is called Lạng Sơn: "Văn Lãng" has "lang" but not "son"
    assert "Xã Văn Lãng" not in _names(hits)


@pytest.mark.parametrize("q", ["dong dang", "ĐỒNG ĐĂNG", "Đồng Đăng", "xa dong dang", "dong d"])
def test_dong_dang_ignores_case_and_diacritics(q):
    assert _names(_search_units(q))[:1] == ["Xã Đồng Đăng"]


@pytest.mark.parametrize("q", ["that khe", "That Khe", "Thất Khê", "THẤT KHÊ"])
def test_that_khe(q):
    assert _names(_search_units(q)) == ["Xã Thất Khê"]


def test_search_by_code_and_no_match():
    assert _names(_search_units("06040")) == ["Xã Thất Khê"]
    assert _search_units("zzz qqq") == []
    assert search.Query.parse("  ") is None
    with pytest.raises(params.InvalidQuery) as err:
        params.parse(search.list_params(), {"q": "x" * 101})
    assert [e["field"] for e in err.value.errors] == ["q"]


def test_exact_names_rank_before_partial_matches():
    hits = _names(_search_units("son"))
    assert len(hits) > 3 and all(any(w.startswith("son") for w in search.fold(h).split(" ")) for h in hits)
    # "tan" prefixes several names (Tân Tiến, Tân Văn, Tân Tri ...): the exact name ranks first
    hits = _names(_search_units("tan thanh"))
    assert hits[0] == "Xã Tân Thành"
    many = _names(_search_units("tan"))
    assert len(many) > 3 and "Xã Tân Thành" in many


# -- paging ------------------------------------------------------------------------------------

def _walk(items, limit, filters):
    seen, offset, pages = [], 0, 0
    while True:
        page = search.paginate(items, limit=limit, offset=offset, filters=filters)
        assert page.total == len(items)
        seen += page.items
        pages += 1
        if page.next_page_token is None:
            return seen, pages
        offset = search.decode_token(page.next_page_token, filters)


@hsettings(max_examples=40, deadline=None)
@given(limit=st.integers(min_value=1, max_value=100))
def test_paging_returns_every_unit_once(limit):
    items = units.all_units()
    seen, pages = _walk(items, limit, {"q": None, "type": None})
    assert seen == items
    assert pages == -(-len(items) // limit)


def test_page_tokens_are_bound_to_their_filters():
    page = search.paginate(units.all_units(), limit=10, filters={"type": "xa"})
    assert search.decode_token(page.next_page_token, {"type": "xa"}) == 10
    with pytest.raises(search.QueryError) as err:
        search.decode_token(page.next_page_token, {"type": "phuong"})
    assert err.value.field == "page_token"
    for garbage in ("!!!", "eyJvIjotMX0", "a" * 300, "bm90IGpzb24"):
        with pytest.raises(search.QueryError):
            search.decode_token(garbage, {})


def _page_request(args):
    return search.page_request(params.parse(search.list_params(), args), {})


@pytest.mark.parametrize("args,field", [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"), ({"offset": "x"}, "offset"),
    ({"page_token": "abc", "offset": "3"}, "page_token"),
])
def test_bad_page_requests(args, field):
    with pytest.raises((params.InvalidQuery, search.QueryError)) as err:
        _page_request(args)
    fields = [e["field"] for e in err.value.errors] if isinstance(err.value, params.InvalidQuery) else [err.value.field]
    assert fields == [field]


def test_page_request_defaults_and_offset():
    assert _page_request({}) == (50, 0)
    assert _page_request({"limit": "100", "offset": "60"}) == (100, 60)
    page = search.paginate(units.all_units(), limit=50, offset=60)
    assert len(page.items) == 6 and page.next_page_token is None


# -- border gates ------------------------------------------------------------------------------

def test_gates_sanity():
    items = gates.all_gates()
    codes = [g["code"] for g in items]
    assert {"huu-nghi", "tan-thanh", "coc-nam", "chi-ma", "dong-dang-rail", "binh-nghi"} <= set(codes)
    assert len(set(codes)) == len(codes)
    known_units = units.by_code()
    validate = _validator("border-gate.json")
    for g in items:
        validate(g)
        assert known_units[g["unit_code"]]["name"] == g["unit_name"]
        assert known_units[g["unit_code"]]["level"] == "commune"
        # 0 both ways: a gate that does not clear goods (Bình Nghi) is not bookable; one 0 alone is a typo
        ex, im = g["capacity"]["export_per_hour"], g["capacity"]["import_per_hour"]
        assert (ex > 0 and im > 0) or ex == im == 0, g["code"]
        assert g["hours"]["timezone"] == "Asia/Ho_Chi_Minh"
    by = {g["code"]: g for g in items}
    assert by["huu-nghi"]["unit_name"] == "Xã Đồng Đăng"
    assert (by["huu-nghi"]["type"], by["huu-nghi"]["mode"]) == ("international", "road")
    assert by["dong-dang-rail"]["mode"] == "rail"
    assert by["huu-nghi"]["counterpart"]["name_zh"] == "友谊关"
    assert by["tan-thanh"]["counterpart"]["name_zh"] == "浦寨"
    # the big road gates clear several hundred to over a thousand trucks a day
    for code in ("huu-nghi", "tan-thanh"):
        per_day = sum(gates.daily_capacity(by[code]).values())
        assert 500 <= per_day <= 2000, (code, per_day)


@pytest.mark.parametrize("breakage", [
    lambda g: g["capacity"].update(export_per_hour=0),
    lambda g: g["hours"].update(open="23:00", close="07:00"),
    lambda g: g["coordinates"].update(lat=10.8),
    lambda g: g.update(type="huge"),
    lambda g: g["counterpart"].update(name_zh=""),
])
def test_gate_check_refuses_bad_data(breakage):
    items = copy.deepcopy(gates.all_gates())
    breakage(items[0])
    with pytest.raises(ValueError):
        gates.check(items)


def test_tan_thanh_and_coc_nam_are_clearance_routes_of_huu_nghi():
    by = {g["code"]: g for g in gates.all_gates()}
    assert by["huu-nghi"]["clearance_routes"] == ["tan-thanh", "coc-nam"] and by["huu-nghi"]["parent_gate"] is None
    for code, counterpart in (("tan-thanh", "浦寨"), ("coc-nam", "弄尧")):
        route = by[code]
        assert (route["type"], route["parent_gate"], route["mode"]) == ("clearance-route", "huu-nghi", "road")
        assert route["counterpart"]["name_zh"] == counterpart and route["clearance_routes"] == []
        parent = next(s for s in route["sources"] if s["fact"] == "parent_gate")
        assert parent["verified"] and parent["url"].startswith("https://") and "Hữu Nghị" in parent["document"]
    assert all(not g["clearance_routes"] for c, g in by.items() if c != "huu-nghi")


@pytest.mark.parametrize("breakage", [
    lambda by: by["tan-thanh"].update(parent_gate=None),                       # a route without its gate
    lambda by: by["chi-ma"].update(parent_gate="huu-nghi"),                    # a gate that names a parent
    lambda by: by["coc-nam"].update(parent_gate="tan-thanh"),                  # a route of a route
    lambda by: by["tan-thanh"].update(parent_gate="dong-dang-rail"),           # a road route of a rail gate
    lambda by: by["tan-thanh"].update(parent_gate="atlantis"),
])
def test_gate_check_refuses_a_broken_route(breakage):
    items = copy.deepcopy(gates.all_gates())
    breakage({g["code"]: g for g in items})
    with pytest.raises(ValueError):
        gates.check(items)


def test_gate_check_refuses_duplicate_codes():
    items = gates.all_gates()
    with pytest.raises(ValueError):
        gates.check(items + [copy.deepcopy(items[0])])


# -- agencies ----------------------------------------------------------------------------------

BORDER_BODIES = ("customs", "border-guard", "health-quarantine", "animal-quarantine", "plant-quarantine",
                 "traffic-police", "tax", "ezone-board")
DEPARTMENTS = ("so-tu-phap", "so-tai-chinh", "so-xay-dung", "so-nong-nghiep-moi-truong", "so-y-te",
               "so-giao-duc-dao-tao", "so-cong-thuong", "so-khoa-hoc-cong-nghe", "so-van-hoa-the-thao-du-lich",
               "so-noi-vu", "so-dan-toc-ton-giao", "so-ngoai-vu")


def test_agencies_cover_the_bodies_of_the_issue():
    items = agencies.all_agencies()
    by = {a["code"]: a for a in items}
    assert len(by) == len(items)
    for code in BORDER_BODIES:
        assert by[code]["roles"]["border_clearance"] is True, code
    for code in DEPARTMENTS:
        assert by[code]["kind"] == "department" and by[code]["parent"] == "ubnd-tinh"
    assert by["public-service-centre"]["kind"] == "centre"
    assert not by["so-tu-phap"]["roles"]["border_clearance"]
    validate = _validator("agency.json")
    for a in items:
        validate(a)
        assert agencies.valid_code(a["code"])
        assert a["parent"] is None or a["parent"] in by


def test_one_committee_per_commune_level_unit():
    committees = [a for a in agencies.all_agencies() if a["kind"] == "commune-committee"]
    assert sorted(a["unit_code"] for a in committees) == sorted(u["code"] for u in units.communes())
    that_khe = next(a for a in committees if a["code"] == "ubnd-06040")
    assert that_khe["name"] == "Ủy ban nhân dân xã Thất Khê"
    assert that_khe["roles"]["dossier_processing"] and that_khe["parent"] == "ubnd-tinh"


def test_agency_gates_and_units_exist():
    gate_codes = {g["code"] for g in gates.all_gates()}
    known = units.by_code()
    for a in agencies.all_agencies():
        assert set(a["gates"]) <= gate_codes
        assert a["unit_code"] is None or a["unit_code"] in known


def test_agency_check_refuses_bad_data():
    items = agencies.all_agencies()
    for broken in (
        items + [dict(items[0])],                                   # duplicate code
        [dict(items[0], code="Customs!")] + items[1:],              # malformed code
        [dict(items[1], parent="nobody")] + items[2:],              # dangling parent
        [dict(items[0], kind="club")] + items[1:],                  # unknown kind
    ):
        with pytest.raises(ValueError):
            agencies.check(broken)
    with pytest.raises(ValueError):
        agencies.check([dict(items[0], gates=["nowhere"])], {"huu-nghi"})


# -- post offices ------------------------------------------------------------------------------

def test_post_offices():
    items = post_offices.all_post_offices()
    codes = [p["code"] for p in items]
    assert len(codes) == len(set(codes)) == 66
    known = units.by_code()
    validate = _validator("post-office.json")
    for p in items:
        validate(p)
        assert p["unit_code"] in known and known[p["unit_code"]]["level"] == "commune"
        assert post_offices.valid_code(p["code"])
    main = items[0]
    assert main["code"] == "bd-20" and main["kind"] == "provincial" and main["soft_atm"]
    assert known[main["unit_code"]]["name"] == "Phường Lương Văn Tri"
    communes_served = [p["unit_code"] for p in items[1:]]
    assert sorted(communes_served) == sorted(u["code"] for u in units.communes())
    that_khe = post_offices.in_unit(items, "06040")
    assert [(p["code"], p["soft_atm"], p["name"]) for p in that_khe] == [
        ("bd-06040", True, "Bưu điện văn hóa xã Thất Khê")]
    assert all(p["cash_float_limit_vnd"] > 0 for p in items if p["soft_atm"])


# -- the catalog -------------------------------------------------------------------------------

def test_fingerprint_is_stable_and_follows_the_data():
    data = catalog.build()
    assert list(data) == list(catalog.KINDS)
    assert catalog.fingerprint() == catalog.fingerprint(data)
    assert len(catalog.fingerprint()) == 64
    changed = copy.deepcopy(data)
    changed["border-gates"][0]["capacity"]["export_per_hour"] += 1
    assert catalog.fingerprint(changed) != catalog.fingerprint(data)


# -- listing: filters + search + paging ---------------------------------------------------------

def _listing(items, args, *, texts, filters):
    """What a list route does: parse the query from the declaration, then list."""
    return search.listing(items, params.parse(search.list_params(filters), args), texts=texts, filters=filters)


def test_listing_filters_then_searches_then_pages():
    page = _listing(units.all_units(), {"type": "xa", "q": "son", "limit": "3"},
                    texts=units.search_texts, filters=units.filters())
    assert page.total > 3 and len(page.items) == 3
    assert all(u["type"] == "xa" for u in page.items)
    rest = _listing(units.all_units(), {"type": "xa", "q": "SƠN", "limit": "100", "page_token": page.next_page_token},
                    texts=units.search_texts, filters=units.filters())
    assert len(rest.items) == page.total - 3  # "son" and "SƠN" fold alike, so the token still fits


@pytest.mark.parametrize("items,filters,args,field", [
    (units.all_units(), units.filters(), {"type": "huyen"}, "type"),
    (agencies.all_agencies(), agencies.filters(), {"role": "king"}, "role"),
    (agencies.all_agencies(), agencies.filters(), {"unit": "6040"}, "unit"),
    (agencies.all_agencies(), agencies.filters(), {"unit": "06040\n"}, "unit"),
    (post_offices.all_post_offices(), post_offices.filters(), {"soft_atm": "yes"}, "soft_atm"),
    (gates.all_gates(), gates.filters(), {"mode": "sea"}, "mode"),
])
def test_listing_refuses_bad_filter_values(items, filters, args, field):
    with pytest.raises(params.InvalidQuery) as err:
        _listing(items, args, texts=lambda i: [i["code"]], filters=filters)
    assert [e["field"] for e in err.value.errors] == [field]


def test_listing_by_role_gate_and_soft_atm():
    clearing = _listing(agencies.all_agencies(), {"role": "border_clearance", "gate": "chi-ma", "limit": "100"},
                        texts=agencies.search_texts, filters=agencies.filters())
    codes = {a["code"] for a in clearing.items}
    assert {"customs", "customs-chi-ma", "border-guard", "health-quarantine"} <= codes
    assert "customs-huu-nghi" not in codes and "so-tu-phap" not in codes
    without = _listing(post_offices.all_post_offices(), {"soft_atm": "false"},
                       texts=post_offices.search_texts, filters=post_offices.filters())
    assert without.total == 4 and {p["kind"] for p in without.items} == {"ward"}
