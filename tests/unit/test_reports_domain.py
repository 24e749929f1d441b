"""The reports function's domain, without servers: Open311 shapes and parsing, masking, geohash
neighbourhoods, the state machine's Open311 status, service attributes, old addresses, deadlines
counted on the platform's one working-day calendar."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from functions.reports.function import catalog, communes, geo, masking, open311, reports, states
from lscloud import errors, workdays


def test_open311_xml_follows_the_spec_shapes_and_json_is_the_same_list():
    items = [{"service_code": "ANTT", "metadata": True, "description": None}]
    body, ctype = open311.render("xml", "services", items)
    assert ctype == "text/xml; charset=utf-8" and body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(body)
    assert root.tag == "services" and root.find("service/metadata").text == "true"
    assert root.find("service/description").text is None
    errs = ET.fromstring(open311.render("xml", "errors", open311.Open311Error(403, "Invalid api_key").items)[0])
    assert errs.find("error/code").text == "403" and errs.find("error/description").text == "Invalid api_key"
    assert open311.render("json", "services", items)[0] == b'[{"service_code": "ANTT", "metadata": true, "description": null}]'


def test_the_form_parser_reads_attribute_codes_and_multivalue_lists():
    fields, attrs = open311.parse_form(b"api_key=k&service_code=A&attribute[kind]=air"
                                       b"&attribute[tags][]=a&attribute[tags][]=b&description=R%C3%A1c")
    assert fields == {"api_key": "k", "service_code": "A", "description": "Rác"}
    assert attrs == {"kind": ["air"], "tags": ["a", "b"]}
    with pytest.raises(open311.Open311Error):
        open311.parse_form(b"lat=1&lat=2")


def test_the_request_window_defaults_to_90_days_and_never_spans_more():
    start, end = open311.window({})
    assert (end - start).days == 90
    start, _ = open311.window({"end_date": "2026-06-01T00:00:00Z"})
    assert start == datetime(2026, 3, 3, tzinfo=timezone.utc)
    for bad in ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
                {"start_date": "2026-01-01"}, {"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}):
        with pytest.raises(open311.Open311Error) as e:
            open311.window(bad)
        assert e.value.status == 400
    with pytest.raises(open311.Open311Error) as e:
        open311.check_jurisdiction("sfgov.org")
    assert e.value.status == 404
    open311.check_jurisdiction("")                         # empty is the same as not given


def test_domain_refusals_become_open311_errors_with_their_field():
    e = open311.from_domain(errors.Invalid.at("attribute[kind]", "one of air, noise"))
    assert e.status == 400 and "attribute[kind]" in e.items[0]["description"]
    assert open311.from_domain(errors.NotFound("no such report")).status == 404


def test_public_text_is_masked():
    text = "Gọi anh Hoàng Văn Tú 0912 345 678 hoặc +84 912.345.678, CCCD 020088001111, tu@example.vn"
    out = masking.mask(text, ["Hoàng Văn Tú"])
    for secret in ("0912 345 678", "912.345.678", "020088001111", "tu@example.vn", "Hoàng Văn Tú"):
        assert secret not in out
    assert out.startswith("Gọi anh ***") and masking.mask("Ổ gà ở km 12", []) == "Ổ gà ở km 12"


def test_a_point_within_150_m_is_in_the_neighbourhood_of_cells():
    a = (21.85370, 106.76100)
    b = (21.85460, 106.76150)                             # ~110 m away
    assert geo.distance_m(a, b) == pytest.approx(113, abs=10)
    assert geo.cell(*b) in geo.neighbourhood(*a) and len(geo.neighbourhood(*a)) == 9
    assert geo.in_province(*a) and not geo.in_province(10.78, 106.70)


def test_every_state_has_an_open311_status_and_a_fixmystreet_one():
    assert {states.open311_status(s) for s in states.OPEN} == {"open"}
    assert {states.open311_status(s) for s in states.CLOSED} == {"closed"}
    assert set(states.FMS_STATUS) == set(states.STATES)
    assert all(a in states.MACHINE.actions for a in states.FMS_ACTION.values())
    facts = {a.fact.split(".")[1] for a in states.MACHINE.actions.values()}
    assert facts == {"submitted", "acknowledged", "assigned", "started", "resolved", "closed", "rejected", "reopened"}


def _schema(name: str) -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(__file__).resolve().parents[2] / "schemas" / "reports" / name).read_text(encoding="utf-8"))


def test_the_machine_s_moves_are_the_schema_s():
    """``schemas/reports/action-name.json`` states the moves a path may name; the state machine is the
    list (every action but the submit that creates a report)."""
    assert tuple(a for a in states.MACHINE.actions if a != "submit") == tuple(_schema("action-name.json")["enum"])


def test_the_ids_issued_have_the_shape_their_paths_state():
    """A report's id and token, an API key's id and every service code in the catalog are of the
    shape the path parameters naming them are documented (and, where they match, routed) with."""
    from jsonschema import Draft202012Validator

    from functions.reports.function import apikeys

    def shape(name):
        return Draft202012Validator(_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)

    report_id, token, key_id, code = (shape(n) for n in ("report-id.json", "report-token.json", "api-key-id.json",
                                                         "service-code.json"))
    for at in (datetime(2026, 12, 31, 17, 30, tzinfo=timezone.utc), datetime(2026, 1, 1, tzinfo=timezone.utc)):
        assert report_id.is_valid(reports.new_id(at))
    assert reports.new_id(datetime(2026, 12, 31, 17, 30, tzinfo=timezone.utc)).startswith("20270101-")   # +07:00
    for _ in range(20):
        assert token.is_valid(reports.new_token()) and key_id.is_valid(apikeys.new_id())
    # the key's id as ``verify`` reads it out of ``<id>.<secret>`` is the same rule
    assert apikeys._KEY.pattern.startswith(f"(?P<id>{_schema('api-key-id.json')['pattern'][1:-1]})\\.")
    assert catalog.services() and all(code.is_valid(c) for c in catalog.services())
    for v, odd in [(report_id, "20261203-1F2E3D4C"), (report_id, "20261203-1f2e3d4"), (report_id, "nearby"),
                   (token, "0123456789abcdef0"), (key_id, "k00000000000"), (key_id, "K000000000000"),
                   (code, "mt-rac-thai"), (code, "MT--RAC"), (code, "ANTT.json"), (code, "A" * 41)]:
        assert not v.is_valid(odd), odd


def test_the_events_data_is_of_the_contract_s_shape_for_every_service():
    """``schemas/events/reports/report.v1.json`` names the API's ``report-id.json`` and
    ``service-code.json`` by ``$ref``: what a report's event carries, for every service of the catalog,
    validates through the runtime's own schema loader (the refs resolve, the ids are as issued)."""
    from pathlib import Path

    from functions.reports.function.states import MACHINE
    from lscloud.statemachine import Actor, iso
    from lscloud.web import SchemaSet

    schemas = SchemaSet(Path(__file__).resolve().parents[2] / "schemas")
    contract = "events/reports/report.v1.json"
    at = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
    for service in catalog.services().values():
        doc = {"id": reports.new_id(at), "service_code": service["code"], "category": service["category"],
               "commune": "06184", "agency": catalog.agency_for(service, "06184"), "status": "new",
               "deadline": iso(reports.deadline_of(service, at)), "channel": "app", "rating": None}
        t = MACHINE.apply(doc, "submit", Actor("anonymous"), at=at)
        data = reports.records().event(t, doc, doc["id"], "e1")["data"]
        assert schemas.errors(contract, data) == [], data
    assert [e["field"] for e in schemas.errors(contract, {**data, "report_id": "r1", "service_code": "roads"})] \
        == ["/report_id", "/service_code"]


def test_service_attributes_are_checked_against_the_definition():
    s = catalog.get("MT-O-NHIEM")
    assert catalog.check_attributes(s, {"kind": ["air"], "commune": ["06184"]}) == {"kind": "air"}
    for given in ({}, {"kind": ["lava"]}, {"kind": ["air", "noise"]}, {"colour": ["red"]}):
        with pytest.raises(errors.Invalid):
            catalog.check_attributes(s, given)
    assert catalog.agency_for(catalog.get("TTDT-LAN-CHIEM"), "06184") == "ubnd-06184"
    assert catalog.agency_for(catalog.get("ANTT"), "06184") == "cong-an-tinh"
    commune = catalog.attributes(s)[-1]
    assert commune["code"] == "commune" and len(commune["values"]) == 65


def test_old_addresses_resolve_to_the_2025_commune():
    assert communes.from_address("khối 3, thị trấn Đồng Đăng, huyện Cao Lộc, Lạng Sơn")["code"] == "06184"
    assert communes.from_address("thôn Pò Mỏ, xã Hoàng Đồng, thành phố Lạng Sơn, tỉnh Lạng Sơn")["code"] == "05986"
    assert communes.from_address("12 Phố Huế, Hà Nội") is None and communes.from_address("") is None


# the library's own answers (vietnam-address-converter 1.0.5, its normalizers not memoized)
CONVERTED = [
    ("số 5 đường Bà Triệu, phường Chi Lăng, thành phố Lạng Sơn, tỉnh Lạng Sơn",
     "số 5 đường Bà Triệu, Phường Lương Văn Tri, Tỉnh Lạng Sơn"),
    ("xã Tân Thanh, huyện Văn Lãng, tỉnh Lạng Sơn", "Xã Hoàng Văn Thụ, Tỉnh Lạng Sơn"),
    ("thôn Còn Quan, xã Thụy Hùng, huyện Cao Lộc, tỉnh Lạng Sơn", "thôn Còn Quan, Xã Đồng Đăng, Tỉnh Lạng Sơn"),
    ("xa Tan Thanh, huyen Van Lang, tinh Lang Son", "Xã Hoàng Văn Thụ, Tỉnh Lạng Sơn"),
    ("xã Hữu Kiên, huyện Chi Lăng, Lạng Sơn", "Xã Quan Sơn, Tỉnh Lạng Sơn"),
    ("phường Bến Nghé, quận 1, TP Hồ Chí Minh", "Phường Sài Gòn, Thành phố Hồ Chí Minh"),
    ("asdf qwer", None),
]


def test_the_converter_builds_its_index_with_memoized_normalizers_and_answers_as_the_library_does():
    from vietnam_address_converter import normalize, text

    convert = communes.converter()
    for given, expected in CONVERTED:
        assert convert(given)["converted_text"] == expected, given
    # the build went through the memos (a version of the library that renames its normalizers
    # fails here, not silently slower), and the library's own functions are back afterwards
    assert communes.memo_sizes["normalize_vietnamese_name"] > 10_000
    assert communes.memo_sizes["normalize_address_text"] > 10_000
    assert text.normalize_vietnamese_name is normalize.normalize_vietnamese_name
    assert normalize.normalize_vietnamese_name.__module__ == normalize.__name__
    assert normalize.normalize_address_text.__module__ == normalize.__name__
    assert communes.converter() is convert


def test_deadlines_count_working_days_on_the_platform_calendar():
    friday = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)          # 10:00 local, a Friday
    due = reports.deadline_of(catalog.get("MT-RAC-THAI"), friday)      # 3 working days
    cal = workdays.load()
    assert due.astimezone(workdays.TZ).date().isoformat() == "2026-12-09"
    assert cal.between(friday, due) == workdays.days_to_minutes(3)


def test_every_service_is_routed_to_a_directory_agency_that_handles_reports():
    from functions.directory.function import agencies

    handlers = {a["code"] for a in agencies.all_agencies() if a["roles"]["report_handling"]}
    for s in catalog.services().values():
        for commune in ("06184", "05986"):
            assert catalog.agency_for(s, commune) in handlers, s["code"]


def test_an_address_is_read_by_its_last_parts_only(monkeypatch):
    """The converter costs ~2 ms per comma-separated part: 20,000 characters of them held a request
    for 38 s. The units are an address's last parts; only those are read."""
    from functions.reports.function import communes

    tail = "Số 12, ngõ 3, Phường Chi Lăng, Thành phố Lạng Sơn, Lạng Sơn"
    commune = communes.from_address(tail)
    padded = communes.from_address("x, " * 5000 + tail)
    assert commune and padded and padded["code"] == commune["code"]
    read: list[str] = []
    monkeypatch.setattr(communes, "converter", lambda: lambda text: read.append(text) or {})
    communes.from_address("x, " * 5000 + tail)
    assert read and len(read[0].split(",")) <= communes.ADDRESS_PARTS


def test_a_deadline_in_a_year_whose_holidays_are_not_published_is_provisional():
    """A report filed at the end of January 2027 was due inside the Tết break, counted as working
    days (the calendar has no 2027 file yet), and said nothing of it; dossiers' receipts did."""
    from datetime import datetime

    from functions.reports.function import reports
    from lscloud import workdays

    service = {"deadline_days": 5}
    december = datetime(2026, 12, 14, 9, tzinfo=workdays.TZ)
    assert reports.deadline_provisional(december, reports.deadline_of(service, december)) is False
    january = datetime(2027, 1, 28, 9, tzinfo=workdays.TZ)
    assert reports.deadline_provisional(january, reports.deadline_of(service, january)) is True


def test_an_open311_list_argument_names_at_most_a_hundred_values():
    """service_request_id= took a list of any length, each id a read of the store: 3,500 ids in a
    63 KB URL cost 2.5 s and 3,500 GETs of anyone's GET (the bounds survey)."""
    import pytest

    from functions.reports.function import open311

    ids = [f"20261207-{i:08x}" for i in range(open311.MAX_LISTED)]
    assert len(open311.listed({"service_request_id": ",".join(ids)}, "service_request_id")) == open311.MAX_LISTED
    with pytest.raises(open311.Open311Error) as refused:
        open311.listed({"service_request_id": ",".join([*ids, "20261207-ffffffff"])}, "service_request_id")
    assert refused.value.status == 400 and "at most" in str(refused.value)


def test_masking_finds_an_email_at_a_word_boundary_only():
    from functions.reports.function import masking

    assert masking.mask("gửi an.tran+bao@langson.gov.vn nhé") == "gửi *** nhé"
    assert masking.mask("x" * 4000 + " 0912 345 678") == "x" * 4000 + " ***"
