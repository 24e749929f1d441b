"""The reports function on real weed mini + nats-server: Open311 GeoReport v2 in both formats and its
errors, API keys, a citizen's report routed and moved through FixMyStreet's states, rated, the
events of the published contract (no personal data), "me too", overdue on the clock, stats — and
the role matrix."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator

import role_matrix
from cuts import cut_once
from digital_support import ok
from lscloud.delivery import tail
from lscloud.statemachine import iso, now
from lscloud.web import SchemaSet

pytestmark = pytest.mark.integration

ROOT = role_matrix.ROOT
DONG_DANG, TAM_THANH = "06184", "05986"
CCCD, PHONE = "020088001111", "0912 345 678"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# through the runtime's own loader: the contract names the API's report-id.json and service-code.json by $ref
EVENT_SCHEMA = SchemaSet(ROOT / "schemas").validator("events/reports/report.v1.json")
OPEN311 = {name: Draft202012Validator(json.loads((ROOT / f"schemas/reports/open311/{name}.json").read_text()),
                                      format_checker=Draft202012Validator.FORMAT_CHECKER)
           for name in ("services", "service-definition", "service-requests", "errors")}


def valid(schema: str, body):
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in OPEN311[schema].iter_errors(body)]
    assert not problems, problems
    return body


@pytest.fixture
def reports(start_function, peers):
    return start_function("reports", peer_url_template=peers.template)


@pytest.fixture
def client(reports):
    return reports.app.test_client()


def api_key(client, tokens, agency=None, name="Ứng dụng đối tác"):
    # one live key a name and agency: a second issue of the same is the first's retry (a 409)
    body = {"name": name} | ({"agency": agency} if agency else {})
    return ok(client.post("/v1/api-keys", json=body, headers=tokens("operator")), 201)


def test_every_endpoint_answers_only_the_roles_of_its_table(reports, keys):
    samples = {"sha256": "0" * 64, "id": "20260101-00000000", "action": "acknowledge", "key_id": "k000000000000"}
    assert role_matrix.check(reports.app, "reports", keys[0], samples=samples) > 300


def test_open311_services_definitions_and_errors_in_both_formats(client):
    services = valid("services", ok(client.get("/open311/v2/services.json?jurisdiction_id=langson.gov.vn")))
    assert {s["group"] for s in services} == {"urban-order", "environment", "security", "roads", "electricity", "water"}
    assert all(set(s) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
               for s in services)
    r = client.get("/open311/v2/services.xml")
    assert r.status_code == 200 and r.content_type == "text/xml; charset=utf-8"
    assert r.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(r.data)
    assert root.tag == "services" and len(root.findall("service")) == len(services)
    assert root.find("service/metadata").text == "true"

    d = valid("service-definition", ok(client.get("/open311/v2/services/MT-O-NHIEM.json")))
    kinds = [a for a in d["attributes"] if a["code"] == "kind"][0]
    assert kinds["datatype"] == "singlevaluelist" and kinds["required"] is True
    commune = [a for a in d["attributes"] if a["code"] == "commune"][0]
    assert {"key": DONG_DANG, "name": "Xã Đồng Đăng"} in commune["values"]
    x = ET.fromstring(client.get("/open311/v2/services/MT-O-NHIEM.xml").data)
    assert x.tag == "service_definition" and x.find("attributes/attribute/values/value/key").text == "air"

    # errors: the spec's list of {code, description}, the right status, in the asked format
    r = client.get("/open311/v2/services/NOPE.json")
    valid("errors", r.get_json())
    assert r.status_code == 404 and r.get_json()[0]["code"] == 404 and "NOPE" in r.get_json()[0]["description"]
    r = client.get("/open311/v2/services.xml?jurisdiction_id=sfgov.org")
    e = ET.fromstring(r.data)
    assert r.status_code == 404 and e.tag == "errors" and e.find("error/code").text == "404"
    r = client.post("/open311/v2/requests.xml", data="service_code=ANTT&lat=21.85&long=106.76", headers=FORM)
    assert r.status_code == 403 and ET.fromstring(r.data).find("error/code").text == "403"
    r = client.post("/open311/v2/requests.json", data="api_key=k000000000000.not-a-real-secret-at-all",
                    headers=FORM)
    assert r.status_code == 403 and "api_key" in r.get_json()[0]["description"]
    r = client.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z")
    assert r.status_code == 400 and "90 days" in r.get_json()[0]["description"]
    r = client.get("/open311/v2/requests.json?start_date=yesterday")
    assert r.status_code == 400 and "start_date" in r.get_json()[0]["description"]
    # year 9999 or year 1 overflowed the window's arithmetic: a 500 to anyone who asked
    for q in ("start_date=9999-12-31T00:00:00Z", "end_date=0001-01-01T00:00:00Z",
              "start_date=0001-01-01T00:00:00Z&end_date=0001-01-10T00:00:00Z"):
        for path in ("requests", "servicerequestupdates"):
            r = client.get(f"/open311/v2/{path}.json?{q}")
            assert r.status_code == 400 and "between the years" in r.get_json()[0]["description"], (path, q)
    d = ok(client.get("/open311/discovery.json"))
    assert d["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert d["endpoints"][0]["url"] == "http://localhost/open311/v2"   # the function's own root, as reached
    behind = ok(client.get("/open311/discovery.json", headers={"X-Forwarded-Proto": "https",
                                                               "Host": "reports.lscloud.cloud.langson.gov.vn"}))
    assert behind["endpoints"][0]["url"] == "https://reports.lscloud.cloud.langson.gov.vn/open311/v2"  # Kourier
    assert behind["key_service"].startswith("https://reports.lscloud.cloud.langson.gov.vn/v1/api-keys")
    assert client.get(urlsplit(d["endpoints"][0]["url"]).path + "/services.json").status_code == 200
    assert ET.fromstring(client.get("/open311/discovery.xml").data).find("endpoints/endpoint/formats/format") is not None


def test_api_keys_are_shown_once_stored_hashed_rotated_and_revoked(client, tokens, rt):
    from functions.reports.function.models import ApiKey

    key = api_key(client, tokens)
    stored = ApiKey.get(key["id"]).data
    assert key["api_key"].split(".")[1] not in json.dumps(stored) and "secret_hash" not in key
    post = f"api_key={key['api_key']}&service_code=ANTT&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}"
    first = client.post("/open311/v2/requests.json", data=post, headers=FORM)
    assert first.status_code == 201
    # a GeoReport client retrying after a lost answer (it has no Idempotency-Key to send): one request
    again = client.post("/open311/v2/requests.json", data=post, headers=FORM)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()[0]["service_request_id"] == first.get_json()[0]["service_request_id"]
    new = ok(client.post(f"/v1/api-keys/{key['id']}/rotate", headers=tokens("operator")))
    # refused from the moment the key changed, the request answered before included
    assert client.post("/open311/v2/requests.json", data=post, headers=FORM).status_code == 403
    post = post.replace(key["api_key"], new["api_key"])
    assert client.post("/open311/v2/requests.json", data=post, headers=FORM).status_code == 201
    ok(client.delete(f"/v1/api-keys/{key['id']}", headers=tokens("operator")))
    assert client.post("/open311/v2/requests.json", data=post, headers=FORM).status_code == 403


def test_open311_post_validates_the_form(client, tokens, rt):
    k = api_key(client, tokens)["api_key"]
    cases = [
        # the address converter costs ~2 ms a comma-separated part: 20,000 characters held a request 38 s
        (f"api_key={k}&service_code=ANTT&lat=21.85&long=106.76&address_string={'x,' * 300}", 400, "address_string"),
        (f"api_key={k}&lat=21.85&long=106.76", 400, "service_code"),
        (f"api_key={k}&service_code=NOPE&lat=21.85&long=106.76", 404, "NOPE"),
        (f"api_key={k}&service_code=ANTT&attribute[commune]={DONG_DANG}", 400, "location"),
        (f"api_key={k}&service_code=ANTT&lat=21.85", 400, "long"),
        (f"api_key={k}&service_code=ANTT&lat=abc&long=106.7", 400, "lat"),
        (f"api_key={k}&service_code=ANTT&lat=10.8&long=106.7&attribute[commune]={DONG_DANG}", 400, "Lạng Sơn"),
        (f"api_key={k}&service_code=ANTT&lat=21.85&long=106.76&attribute[commune]=99999", 400, "99999"),
        (f"api_key={k}&service_code=MT-O-NHIEM&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}", 400,
         "attribute[kind]"),
        (f"api_key={k}&service_code=MT-O-NHIEM&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}"
         "&attribute[kind]=lava", 400, "attribute[kind]"),
        # kept and shown to everyone: only an absolute http(s) URL
        (f"api_key={k}&service_code=ANTT&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}"
         "&media_url=javascript:alert(1)", 400, "media_url"),
        (f"api_key={k}&service_code=ANTT&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}"
         "&media_url=/photos/x.jpg", 400, "media_url"),
    ]
    for body, status, word in cases:
        r = client.post("/open311/v2/requests.json", data=body, headers=FORM)
        assert r.status_code == status and word in r.get_json()[0]["description"], (body, r.get_data(as_text=True))
    r = client.post("/open311/v2/requests.json", json={"service_code": "ANTT"})
    assert r.status_code == 415 and isinstance(r.get_json(), list)


def test_an_old_address_is_resolved_to_the_2025_commune_and_routed(client, tokens, rt):
    k = api_key(client, tokens)["api_key"]
    body = (f"api_key={k}&service_code=MT-RAC-THAI&description=R%C3%A1c&address_string="
            "th%C3%B4n+P%C3%B2+M%E1%BB%8F%2C+x%C3%A3+Ho%C3%A0ng+%C4%90%E1%BB%93ng%2C+"
            "th%C3%A0nh+ph%E1%BB%91+L%E1%BA%A1ng+S%C6%A1n")
    rid = ok(client.post("/open311/v2/requests.json", data=body, headers=FORM), 201)[0]["service_request_id"]
    doc = ok(client.get(f"/v1/reports/{rid}"))
    assert doc["commune"] == TAM_THANH and doc["agency"] == f"ubnd-{TAM_THANH}"


def test_a_new_report_s_service_code_is_checked_by_its_shape_then_by_the_catalog(client):
    """``report-create.json`` names ``service-code.json``: a malformed code is the body's 422 naming
    ``/service_code``; a well-formed code the catalog does not hold stays the catalog's 404."""
    body = {"lat": 21.8537, "long": 106.7610, "commune": DONG_DANG, "reporter": {"phone": PHONE}}
    for code in ("mt-rac-thai", "MT RAC", "MT--RAC", "A" * 41, ""):
        r = client.post("/v1/reports", json=body | {"service_code": code})
        assert r.status_code == 422 and r.content_type.startswith("application/problem+json"), (code, r.status_code)
        assert [e["field"] for e in r.get_json()["errors"]] == ["/service_code"], code
    r = client.post("/v1/reports", json=body | {"service_code": "KHONG-CO"})
    assert r.status_code == 404 and r.content_type.startswith("application/problem+json")
    assert r.get_json()["type"].endswith("unknown-service"), r.get_json()


def _cut_once(monkeypatch, cut: str) -> list:
    """Cut off the next report's create after its record is stored: one side write refused by the
    store, or the process dying before any of its round. The cuts made, for the test to check."""
    from lscloud import aggregate
    from lscloud.store.errors import StoreUnavailable
    from functions.reports.function.models import AgencyQueue

    if cut == "a side write fails":
        return cut_once(monkeypatch, AgencyQueue, "save")
    return cut_once(monkeypatch, aggregate.Aggregate, "commit", error=StoreUnavailable("the process died here"))


def _received(client, tokens, rt, description: str) -> dict:
    """What the reports holding ``description`` left: their ids, and of each its trail, its events
    and whether the agency's queue, the open list and the Open311 list of its day have it."""
    from functions.reports.function.models import Report

    officer = tokens("officer", "cb-sxd", agency="so-xay-dung")
    queue = [d["id"] for d in ok(client.get("/v1/queue", headers=officer))["items"]]
    out = {}
    for r in (r for r in Report.scan() if r.data.get("description") == description):
        listed = ok(client.get(f"/open311/v2/requests.json?service_request_id={r.id}"))
        out[r.id] = {"trail": [e["action"] for e in reports_records().trail(r.id)], "queued": r.id in queue,
                     "listed": [x["service_request_id"] for x in listed],
                     "events": [e["event"]["id"] for e in tail(rt.settings, 500) if e["event"].get("subject") == r.id]}
    return out


def reports_records():
    from functions.reports.function import reports

    return reports.records()


@pytest.mark.parametrize("cut", ["a side write fails", "the process dies after the write"])
def test_a_report_resent_after_its_create_was_cut_off_is_received_once(client, tokens, rt, monkeypatch, cut,
                                                                       object_store, settings):
    """The report is stored, then its create's round is cut off: a 503, which gives the request's
    lease back, and the app sends the same report again (no key: the request is its own). The old
    code gave the retry a new id: a second report, and the first one, the reporter's phone number
    in it, on no queue and without an event, never handled. The retry is answered with the one
    report, its indexes, audit entry and event finished, each once."""
    body = {"service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
            "description": f"Ổ gà, gửi lại sau khi bị cắt ({cut})", "reporter": {"phone": PHONE}}
    cuts = _cut_once(monkeypatch, cut)
    first = client.post("/v1/reports", json=body)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    again = client.post("/v1/reports", json=body)
    assert again.status_code == 201, again.get_data(as_text=True)
    rid = again.get_json()["id"]
    assert _received(client, tokens, rt, body["description"]) == {rid: {
        "trail": ["submit"], "queued": True, "listed": [rid], "events": [f"{rid}.1.0"]}}
    assert again.headers.get("Idempotent-Replayed") == "true"
    # the same report sent again once the lease has let it go (IMPLICIT_S on) is a second report
    from functions.reports.function.models import Report

    stored = Report.get(rid)
    stored.data["requested_at"] = iso(now() - timedelta(hours=1))
    stored.save()
    for o in object_store.list(settings.bucket, "idempotency/"):
        object_store.delete(settings.bucket, o.key)
    later = client.post("/v1/reports", json=body)
    assert later.status_code == 201 and "Idempotent-Replayed" not in later.headers, later.get_data(as_text=True)
    assert set(_received(client, tokens, rt, body["description"])) == {rid, later.get_json()["id"]}


def test_an_open311_request_resent_after_its_create_was_cut_off_is_received_once(client, tokens, rt, monkeypatch):
    """The same, for a GeoReport client (no key; the form is the request)."""
    key = api_key(client, tokens)
    post = (f"api_key={key['api_key']}&service_code=GT-HU-HONG&lat=21.8537&long=106.7610&attribute[commune]={DONG_DANG}"
            "&description=Cột điện nghiêng, gửi lại")
    cuts = _cut_once(monkeypatch, "the process dies after the write")
    first = client.post("/open311/v2/requests.json", data=post, headers=FORM)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    again = client.post("/open311/v2/requests.json", data=post, headers=FORM)
    assert again.status_code == 201, again.get_data(as_text=True)
    rid = again.get_json()[0]["service_request_id"]
    assert _received(client, tokens, rt, "Cột điện nghiêng, gửi lại") == {rid: {
        "trail": ["submit"], "queued": True, "listed": [rid], "events": [f"{rid}.1.0"]}}
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_a_keyed_report_resent_after_its_create_was_cut_off_is_received_once(client, tokens, rt, monkeypatch):
    """With an Idempotency-Key: the same; another body under the key is the 409 naming its field."""
    citizen = {**tokens("citizen", "020088003333"), "Idempotency-Key": "report-cut-1"}
    body = {"service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
            "description": "Ổ gà có khóa, gửi lại"}
    cuts = _cut_once(monkeypatch, "a side write fails")
    assert client.post("/v1/reports", json=body, headers=citizen).status_code == 503 and cuts
    r = client.post("/v1/reports", json={**body, "description": "khác"}, headers=citizen)
    assert r.status_code == 409 and [e["field"] for e in r.get_json()["errors"]] == ["/description"], r.get_json()
    again = client.post("/v1/reports", json=body, headers=citizen)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.get_data(as_text=True)
    rid = again.get_json()["id"]
    assert _received(client, tokens, rt, body["description"]) == {rid: {
        "trail": ["submit"], "queued": True, "listed": [rid], "events": [f"{rid}.1.0"]}}


def test_a_report_marked_as_a_duplicate_names_one_that_exists(client, tokens):
    officer = tokens("officer", "cb-sxd", agency="so-xay-dung")
    body = {"service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
            "reporter": {"phone": PHONE}, "description": "Ổ gà lớn trước cổng chợ"}
    # two neighbours report the same pothole: two reports (one phone's retry would have been one)
    first, second = (ok(client.post("/v1/reports", json=body, headers={"X-Forwarded-For": f"198.51.100.{n}"}), 201)["id"]
                     for n in (1, 2))
    assert first != second
    for dup in ("../x", "x" * 64, "20260101-00000000", second):   # malformed, never issued, unknown, itself
        r = client.post(f"/v1/reports/{second}/actions/mark_duplicate", json={"duplicate_of": dup}, headers=officer)
        assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["/duplicate_of"], dup
    r = client.post(f"/v1/reports/{second}/actions/mark_duplicate", json={}, headers=officer)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/duplicate_of"
    marked = ok(client.post(f"/v1/reports/{second}/actions/mark_duplicate", json={"duplicate_of": first},
                            headers=officer))
    assert marked["state"] == "duplicate" and marked["duplicate_of"] == first


def test_a_citizen_report_through_its_states_rated_with_the_contract_events(client, tokens, rt):
    citizen = tokens("citizen", CCCD)
    r = ok(client.post("/v1/reports", headers=citizen, json={
        "service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
        "attributes": {"severity": ["high"]}, "reporter": {"name": "Hoàng Văn Tú", "phone": PHONE},
        "description": f"Ổ gà lớn trước nhà, gọi Hoàng Văn Tú {PHONE} hoặc CCCD {CCCD}"}), 201)
    rid = r["id"]
    assert r["agency"] == "so-xay-dung" and r["state"] == "submitted" and r["status"] == "open"
    assert r["deadline"].endswith("+07:00") and r["reporter"]["phone"] == PHONE

    public = ok(client.get(f"/v1/reports/{rid}"))
    assert "reporter" not in public and PHONE not in json.dumps(public) and CCCD not in json.dumps(public)
    assert "Hoàng Văn Tú" not in public["description"] and "***" in public["description"]

    officer = tokens("officer", "cb-sxd", agency="so-xay-dung")
    stranger = tokens("officer", "cb-ca", agency="cong-an-tinh")
    r = client.post(f"/v1/reports/{rid}/actions/acknowledge", headers=stranger)
    assert r.status_code == 404
    assert client.post(f"/v1/reports/{rid}/rating", json={"rating": 5}, headers=citizen).status_code == 409
    queue = ok(client.get("/v1/queue", headers=officer))
    assert rid in [d["id"] for d in queue["items"]]
    for action, body in [("acknowledge", {}), ("schedule", {"note": "Đội sửa chữa đến ngày mai"}),
                         ("start", {}), ("fix", {"note": "Đã vá ổ gà"})]:
        ok(client.post(f"/v1/reports/{rid}/actions/{action}", json=body, headers=officer))
    r = client.post(f"/v1/reports/{rid}/actions/fix", json={}, headers=officer)
    assert r.status_code == 409 and r.get_json()["current_state"] == "fixed"
    r = client.post(f"/v1/reports/{rid}/rating", json={"rating": 9}, headers=citizen)
    assert r.status_code in (400, 422) and r.get_json()["errors"][0]["field"] == "/rating"
    other = tokens("citizen", "020099009999")
    assert client.post(f"/v1/reports/{rid}/rating", json={"rating": 1}, headers=other).status_code == 404
    rated = ok(client.post(f"/v1/reports/{rid}/rating", json={"rating": 4}, headers=citizen))
    assert rated["rating"] == 4
    ok(client.post(f"/v1/reports/{rid}/actions/close", headers=citizen))

    public = ok(client.get(f"/v1/reports/{rid}"))
    assert [h["state"] for h in public["history"]] == ["submitted", "acknowledged", "action_scheduled",
                                                      "in_progress", "fixed", "closed"]
    assert public["status"] == "closed"

    mine = [e["event"] for e in tail(rt.settings, 300) if e["event"].get("subject") == rid]
    facts = [e["type"].split(".")[4] for e in mine]
    assert facts == ["submitted", "acknowledged", "started", "started", "resolved", "rated", "closed"], facts
    for e in mine:
        assert not list(EVENT_SCHEMA.iter_errors(e["data"])), e["data"]
        text = json.dumps(e, ensure_ascii=False)
        assert CCCD not in text and PHONE not in text and "Hoàng Văn Tú" not in text
    assert mine[0]["data"]["from_state"] is None and mine[0]["data"]["channel"] == "app"
    assert mine[5]["data"]["rating"] == 4 and mine[4]["data"]["rating"] is None
    assert mine[-1]["data"]["status"] == "closed" and mine[0]["data"]["commune"] == DONG_DANG

    # the Open311 view of the same report, and FixMyStreet's updates
    o = valid("service-requests", ok(client.get(f"/open311/v2/requests/{rid}.json")))
    valid("service-requests", ok(client.get("/open311/v2/requests.json?status=open,closed")))
    assert len(o) == 1 and o[0]["status"] == "closed" and o[0]["agency_responsible"] == "so-xay-dung"
    ups = ok(client.get("/open311/v2/servicerequestupdates.json"))
    assert [u["status"] for u in ups if u["service_request_id"] == rid] == [
        "OPEN", "OPEN", "ACTION_SCHEDULED", "IN_PROGRESS", "FIXED", "CLOSED"]


def test_transfer_me_too_anonymous_reports_overdue_and_stats(client, tokens, rt):
    from functions.reports.function import schedule

    commune_officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)
    anon = client.post("/v1/reports", json={"service_code": "TTDT-LAN-CHIEM", "lat": 21.8540, "long": 106.7612,
                                            "commune": DONG_DANG})
    assert anon.status_code == 422 and anon.get_json()["errors"][0]["field"] == "/reporter/phone"
    first = ok(client.post("/v1/reports", json={"service_code": "TTDT-LAN-CHIEM", "lat": 21.8540, "long": 106.7612,
                                                "commune": DONG_DANG, "reporter": {"phone": PHONE}}), 201)
    assert first["agency"] == f"ubnd-{DONG_DANG}"
    second = ok(client.post("/v1/reports", headers=tokens("citizen", CCCD), json={
        "service_code": "TTDT-XAY-DUNG", "lat": 21.8541, "long": 106.7613, "commune": DONG_DANG}), 201)
    assert [n["id"] for n in second["nearby"]] == [first["id"]] and second["nearby"][0]["distance_m"] < 30
    for pole in ("lat=90&long=0", "lat=-90&long=106.8"):   # a geohash has no neighbour beyond a pole: it was a 500
        assert ok(client.get(f"/v1/reports/nearby?service_code=TTDT-LAN-CHIEM&{pole}"))["items"] == []
    far = ok(client.get("/v1/reports/nearby?service_code=TTDT-LAN-CHIEM&lat=21.90&long=106.80"))
    assert far["total"] == 0
    # the filter is a service code by the catalog's rule, as in a report's body: another shape is the
    # caller's mistake, named, not an empty answer
    bad = client.get("/v1/reports/nearby?service_code=ttdt%20lan&lat=21.90&long=106.80")
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert [e["field"] for e in bad.get_json()["errors"]] == ["service_code"]
    assert ok(client.post(f"/v1/reports/{first['id']}/support", headers=tokens("citizen", CCCD)))["supporters"] == 1
    assert ok(client.post(f"/v1/reports/{first['id']}/support", headers=tokens("citizen", CCCD)))["supporters"] == 1

    r = client.post(f"/v1/reports/{first['id']}/actions/transfer", json={"agency": "cong-an-tinh"},
                    headers=commune_officer)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/reason"
    for agency in ("so-y-te", "no-such-agency"):          # not a report handler; not in the directory
        r = client.post(f"/v1/reports/{first['id']}/actions/transfer", json={"agency": agency, "reason": "x"},
                        headers=commune_officer)
        assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/agency"
    moved = ok(client.post(f"/v1/reports/{first['id']}/actions/transfer",
                           json={"agency": "cong-an-tinh", "reason": "Gây rối trật tự"}, headers=commune_officer))
    assert moved["agency"] == "cong-an-tinh" and moved["state"] == "assigned"
    assert client.post(f"/v1/reports/{first['id']}/actions/acknowledge", headers=commune_officer).status_code == 404

    # overdue: the clock's sweep past the deadline flags it once
    from functions.reports.function import reports as domain

    late = now() + timedelta(days=40)
    assert schedule.sweep(late)["flagged"] >= 2
    assert schedule.sweep(late)["flagged"] == 0
    assert domain.records().get(first["id"]).data["overdue"] is True
    stats = ok(client.get("/v1/stats", headers=tokens("ioc")))
    assert stats["by_commune"][DONG_DANG]["received"] >= 2 and stats["by_agency"]["cong-an-tinh"]["overdue"] >= 1
    assert stats["by_category"]["urban-order"]["open"] >= 2


def _figures_read_from_every_report(docs: list[dict]) -> dict:
    """What ``/v1/stats`` answered before its day summaries (bar ``from`` and ``to``), from every
    report of the window read: the oracle of the summed figures."""
    from functions.reports.function.states import OPEN, open311_status

    def bucket():
        return {"received": 0, "open": 0, "closed": 0, "overdue": 0, "rated": 0, "rating_sum": 0}

    by: dict[str, dict[str, dict]] = {"commune": {}, "category": {}, "agency": {}}
    total, states = bucket(), {}
    for d in docs:
        if d["status"] == "hidden":
            continue
        states[d["status"]] = states.get(d["status"], 0) + 1
        keys = {"commune": d["commune"], "category": d["category"], "agency": d.get("agency") or "-"}
        for b in [total] + [by[k].setdefault(v, bucket()) for k, v in keys.items()]:
            b["received"] += 1
            b[open311_status(d["status"])] += 1
            b["overdue"] += 1 if d.get("overdue") and d["status"] in OPEN else 0
            if d.get("rating"):
                b["rated"] += 1
                b["rating_sum"] += d["rating"]

    def done(b):
        s = b.pop("rating_sum")
        return {**b, "mean_rating": round(s / b["rated"], 2) if b["rated"] else None}

    return {"total": done(total), "states": states,
            **{f"by_{k}": {code: done(b) for code, b in sorted(v.items())} for k, v in by.items()}}


def test_stats_read_a_summary_a_day_and_only_the_reports_that_moved_since(client, tokens, rt):
    """GET /v1/stats read every report received in its window on every request (a year: some 100,000
    GETs). A summary per day of receipt holds each report's part, and the change feed names the
    reports written since it was kept: a request reads those alone, and a summary a week old is
    built again from every report of its day."""
    from functions.reports.function.models import DayFigures, Report
    from functions.reports.function.queries import get_many
    from lscloud.statemachine import iso
    from store_calls import counting

    officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)

    def citizen(n):
        return tokens("citizen", f"02008833{n:04d}")

    def new_report(n, service="TTDT-LAN-CHIEM"):
        return ok(client.post("/v1/reports", headers=citizen(n), json={
            "service_code": service, "lat": 21.8540 + n / 1000, "long": 106.7612, "commune": DONG_DANG}), 201)

    filed = [new_report(n) for n in range(3)] + [new_report(3, "GT-HU-HONG")]
    ids = [d["id"] for d in filed]
    for rid in ids[:2]:
        for action in ("acknowledge", "fix"):
            ok(client.post(f"/v1/reports/{rid}/actions/{action}", json={}, headers=officer))
    ok(client.post(f"/v1/reports/{ids[0]}/actions/close", json={}, headers=officer))
    assert ok(client.post(f"/v1/reports/{ids[1]}/rating", json={"rating": 4}, headers=citizen(1)))["rating"] == 4
    ok(client.post(f"/v1/reports/{ids[2]}/actions/hide", json={"reason": "Lời lẽ xúc phạm"},
                   headers=tokens("operator")))

    def stats():
        with counting() as calls:
            body = ok(client.get("/v1/stats", headers=tokens("ioc")))
        read = sorted(k for k in calls.keys_of("get") if k.startswith(f"{Report.Meta.table}/"))
        return {k: v for k, v in body.items() if k not in ("from", "to")}, read, calls

    def located(*rids):
        return sorted(Report.located(r)[1] for r in rids)

    days = {d["day"] for d in get_many(ids)}   # one, unless the reports straddle a local midnight
    first, read, _ = stats()
    assert read == located(*ids)   # no summary yet: each day's is built from its reports
    assert first == _figures_read_from_every_report(get_many(ids))
    assert first["total"] == {"received": 3, "open": 1, "closed": 2, "overdue": 0, "rated": 1, "mean_rating": 4.0}
    assert first["states"] == {"submitted": 1, "fixed": 1, "closed": 1}   # the hidden one left out

    again, read, calls = stats()
    assert again == first and read == []   # nothing moved: the summaries alone
    assert set(calls.keys_of("get")) == {DayFigures.located(day)[1] for day in days}, calls

    ok(client.post(f"/v1/reports/{ids[1]}/actions/reopen", json={"reason": "Vẫn chưa sửa xong"}, headers=officer))
    moved, read, _ = stats()
    assert read == located(ids[1])   # the feed names the one report written since
    assert moved == _figures_read_from_every_report(get_many(ids)) != first
    assert moved["total"] == {"received": 3, "open": 2, "closed": 1, "overdue": 0, "rated": 0, "mean_rating": None}
    assert stats()[1] == []

    # a summary built over a week ago is built again from every report of its day (what a lost feed
    # entry left wrong is put right), even when the feed names none
    for day in days:
        held = DayFigures.get(day)
        held.built = iso(now() - timedelta(days=9))
        held.save()
    rebuilt, read, _ = stats()
    assert read == located(*ids) and rebuilt == moved
    assert stats()[1] == []


def test_the_overdue_sweep_reads_only_the_reports_whose_deadline_has_passed(client, tokens, rt):
    """The minute's sweep read every open report (thousands, every minute); it lists the due index up
    to now and reads only those reports. A report closed leaves the index; reports stored before the
    index get their entries at a process's first sweep."""
    from functions.reports.function import lists, reports as domain, schedule
    from functions.reports.function.models import DueReport
    from store_calls import counting

    def new_report(n):
        return ok(client.post("/v1/reports", headers=tokens("citizen", f"02008800{n:04d}"), json={
            "service_code": "TTDT-LAN-CHIEM", "lat": 21.8540 + n / 1000, "long": 106.7612, "commune": DONG_DANG}), 201)

    filed = [new_report(n)["id"] for n in range(3)]
    assert len(DueReport.query_keys("due")) == 3
    lists._indexed[0] = True   # these reports have their entries from their own writes
    with counting() as calls:
        assert schedule.sweep(now())["flagged"] == 0
    assert calls["get"] == 0 and calls["list"] >= 1
    officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)
    ok(client.post(f"/v1/reports/{filed[2]}/actions/not_responsible", json={"reason": "Không thuộc thẩm quyền"},
                   headers=officer))
    assert len(DueReport.query_keys("due")) == 2

    late = now() + timedelta(days=40)
    assert schedule.sweep(late)["flagged"] == 2
    assert DueReport.query_keys("due") == [] and schedule.sweep(late)["flagged"] == 0
    assert [domain.records().get(r).data["overdue"] for r in filed] == [True, True, False]
    with counting() as calls:   # a flagged report moves on: its due entry is not deleted again
        ok(client.post(f"/v1/reports/{filed[0]}/actions/acknowledge", headers=officer))
    assert not [k for k in calls.keys_of("delete") if k.startswith("reports-due/")], calls

    # stored before the due index: no entries; the first sweep of a process gives them theirs
    older = [new_report(n)["id"] for n in range(3, 5)]
    for entry in DueReport.query_keys("due"):
        DueReport.get("due", entry).delete()
    assert schedule.sweep(late)["flagged"] == 0          # nothing in the index: nothing read
    lists._indexed[0] = False
    assert schedule.sweep(late)["flagged"] == len(older)
    assert all(domain.records().get(r).data["overdue"] for r in older)


def test_updates_are_the_moves_made_in_the_window_of_any_report_read_from_their_index(client, tokens, rt):
    """FixMyStreet's servicerequestupdates lists the updates made between start_date and end_date. It
    listed only the moves of the reports *received* in the window (a report filed last week and fixed
    today was missing) and read each one's whole trail. The moves are indexed by the day they were
    made now, and only the reports answered with are read."""
    from datetime import datetime, timezone

    from store_calls import counting

    ok(client.get("/open311/v2/servicerequestupdates.json"))   # the index is read from here on
    officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)
    filed = ok(client.post("/v1/reports", headers=tokens("citizen", CCCD), json={
        "service_code": "TTDT-LAN-CHIEM", "lat": 21.8540, "long": 106.7612, "commune": DONG_DANG}), 201)
    other = ok(client.post("/v1/reports", headers=tokens("citizen", "020088009999"), json={
        "service_code": "TTDT-LAN-CHIEM", "lat": 21.8640, "long": 106.7612, "commune": DONG_DANG}), 201)
    time.sleep(1.1)   # the window below starts after both were received (W3C date-times: whole seconds)
    after = datetime.now(timezone.utc).replace(microsecond=0)
    ok(client.post(f"/v1/reports/{filed['id']}/actions/acknowledge", headers=officer))
    ok(client.post(f"/v1/reports/{filed['id']}/actions/start", headers=officer))
    query = {"start_date": after.isoformat().replace("+00:00", "Z")}
    with counting() as calls:
        ups = ok(client.get("/open311/v2/servicerequestupdates.json", query_string=query))
    assert [(u["service_request_id"], u["status"]) for u in ups] == [(filed["id"], "OPEN"), (filed["id"], "IN_PROGRESS")]
    assert other["id"] not in {u["service_request_id"] for u in ups}
    assert [k for k in calls.keys_of("get") if k.startswith("reports/")] and not [
        k for k in calls.keys_of("get") if k.startswith("reports-audit/")]   # the report, never its trail
    assert not [k for k in calls.keys_of("list") if "_since" in k]   # when the index began: known already


def test_an_officers_queue_reads_only_their_agencys_reports(client, tokens, rt):
    """GET /v1/queue read every open report of the province, on every request, to keep the caller's.
    It lists the agency's queue index now, oldest deadline first, and reads only those reports; a
    report closed or transferred leaves it, and reports stored before the index are given their
    entries once per process."""
    from functions.reports.function import lists
    from functions.reports.function.models import AgencyQueue
    from store_calls import counting

    commune = f"ubnd-{DONG_DANG}"
    officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)
    police = tokens("officer", "cb-ca", agency="cong-an-tinh")

    def new_report(n, service="TTDT-LAN-CHIEM"):
        return ok(client.post("/v1/reports", headers=tokens("citizen", f"02008811{n:04d}"), json={
            "service_code": service, "lat": 21.8540 + n / 1000, "long": 106.7612, "commune": DONG_DANG}), 201)

    mine = [new_report(n)["id"] for n in range(3)]
    elsewhere = new_report(9, "GT-HU-HONG")   # the department of construction's
    assert elsewhere["agency"] != commune

    def queue(h):
        with counting() as calls:
            items = ok(client.get("/v1/queue", headers=h))["items"]
        return [d["id"] for d in items], calls

    ids, calls = queue(officer)
    assert sorted(ids) == sorted(mine) and calls["get"] == len(mine) and elsewhere["id"] not in ids
    assert [d["deadline"] for d in ok(client.get("/v1/queue", headers=officer))["items"]] == sorted(
        d["deadline"] for d in ok(client.get("/v1/queue", headers=officer))["items"])

    ok(client.post(f"/v1/reports/{mine[0]}/actions/not_responsible", json={"reason": "Không thuộc thẩm quyền"},
                   headers=officer))
    ok(client.post(f"/v1/reports/{mine[1]}/actions/transfer", json={"agency": "cong-an-tinh", "reason": "Gây rối"},
                   headers=officer))
    assert queue(officer)[0] == [mine[2]]
    assert mine[1] in queue(police)[0]
    assert len(AgencyQueue.query_keys(commune)) == 1   # the transferred report's old entry was dropped

    # stored before the index: no entries; the process's first queue (or sweep) gives them theirs
    for entry in AgencyQueue.query_keys(commune):
        AgencyQueue.get(commune, entry).delete()
    lists._indexed[0] = False
    assert queue(officer)[0] == [mine[2]]
    assert queue(officer)[1]["get"] == 1


def test_the_georeport_client_library_unchanged(reports, tokens, rt, tmp_path):
    """georeport (PyPI), written by nobody on this team, against the function served over HTTP."""
    georeport = pytest.importorskip("georeport")
    from werkzeug.serving import make_server
    import threading

    server = make_server("127.0.0.1", 0, reports.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/open311/v2"
        key = api_key(reports.app.test_client(), tokens)["api_key"]
        for fmt in ("json", "xml"):
            c = georeport.GeoReport(base, jurisdiction="langson.gov.vn", api_key=key, output_format=fmt)
            services = c.get_service_list()
            assert "ANTT" in [s["service_code"] for s in services]
            definition = c.get_service_definition("MT-O-NHIEM")
            attrs = definition["attributes"] if fmt == "json" else definition["attributes"]["attribute"]
            assert "kind" in [a["code"] for a in attrs]
            import requests

            r = requests.post(f"{base}/requests.{fmt}", data={
                "api_key": key, "jurisdiction_id": "langson.gov.vn", "service_code": "ANTT", "lat": "21.85",
                "long": "106.76", "attribute[commune]": DONG_DANG, "description": "Tụ tập gây rối",
                "first_name": "Tú", "last_name": "Hoàng", "phone": PHONE}, timeout=30)
            assert r.status_code == 201, r.text
            rid = r.json()[0]["service_request_id"] if fmt == "json" else \
                ET.fromstring(r.content).find("request/service_request_id").text
            one = c.get_service_request(rid)
            assert one["service_request_id"] == rid and one["status"] == "open"
            listed = c.get_service_requests(service_request_id=rid)
            listed = listed if isinstance(listed, list) else [listed]
            assert [x["service_request_id"] for x in listed] == [rid]
            recent = c.get_service_requests(service_code="ANTT", status="open")
            recent = recent if isinstance(recent, list) else [recent]
            assert rid in [x["service_request_id"] for x in recent]
            assert PHONE not in json.dumps(recent, ensure_ascii=False)
    finally:
        server.shutdown()


def test_unrouted_open311_paths_answer_the_spec_errors_and_moderation_hides(client, tokens, rt):
    r = client.get("/open311/v2/nothing.json")
    assert r.status_code == 404 and r.get_json()[0]["code"] == 404
    r = client.delete("/open311/v2/services.xml")
    assert r.status_code == 405 and ET.fromstring(r.data).find("error/code").text == "405"
    # a 405 names the methods the resource takes (RFC 9110 §15.5.6), in the spec's format too
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    assert r.content_type.startswith("text/xml")
    r = client.open("/open311/v2/requests.json", method="TRACE")
    assert r.status_code == 405 and "POST" in r.headers["Allow"] and r.get_json()[0]["code"] == 405
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.content_type.startswith("application/problem+json")
    # ids of a shape never issued: Open311 still answers the spec's 404 naming them (its path parameters
    # are documented, not matched); a /v1 path is the router's not-found, as an unknown id's
    r = client.get("/open311/v2/requests/no.such.xml")
    assert r.status_code == 404 and "no.such" in ET.fromstring(r.data).find("error/description").text
    r = client.get("/open311/v2/tokens/nope.json")
    assert r.status_code == 404 and "nope" in r.get_json()[0]["description"]
    for path in ("/v1/reports/nope", "/v1/reports/20260101-0a0b0c0d"):
        r = client.get(path)
        assert r.status_code == 404 and r.content_type.startswith("application/problem+json")

    rid = ok(client.post("/v1/reports", json={"service_code": "ANTT", "lat": 21.85, "long": 106.76,
                                              "commune": DONG_DANG, "reporter": {"phone": PHONE},
                                              "description": "Nội dung xúc phạm"}), 201)["id"]
    r = client.post(f"/v1/reports/{rid}/actions/hide", json={}, headers=tokens("operator"))
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/reason"
    r = client.post(f"/v1/reports/{rid}/actions/submit", json={}, headers=tokens("operator"))
    assert r.status_code == 404 and r.content_type.startswith("application/problem+json")
    ok(client.post(f"/v1/reports/{rid}/actions/hide", json={"reason": "Lời lẽ xúc phạm"}, headers=tokens("operator")))
    assert client.get(f"/v1/reports/{rid}").status_code == 404
    o = ok(client.get(f"/open311/v2/requests/{rid}.json"))[0]
    assert o["status"] == "closed" and o["description"] is None


def test_a_photos_media_url_is_where_anyone_fetches_it_and_meets_open311s_schema(client, reports):
    import io

    from PIL import Image

    raw = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 120, 60)).save(raw, "JPEG")
    photo = ok(client.post("/v1/photos", data=raw.getvalue(), headers={"Content-Type": "image/jpeg"}), 201)
    # the platform's address of the function (kept in the report, shown to everyone), never a request's headers
    assert photo["url"] == f"{reports.settings.public_url()}/v1/photos/{photo['sha256']}"
    r = ok(client.post("/v1/reports", headers={"X-Forwarded-Host": "evil.example"}, json={
        "service_code": "MT-RAC-THAI", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
        "reporter": {"name": "Lan", "phone": PHONE}, "photos": [photo["sha256"]]}), 201)
    (req,) = valid("service-requests", ok(client.get(f"/open311/v2/requests/{r['id']}.json")))
    assert req["media_url"] == photo["url"]
    assert client.get(urlsplit(req["media_url"]).path.removeprefix("/reports")).data[:3] == b"\xff\xd8\xff"


def test_a_store_that_does_not_answer_is_never_taken_for_an_absent_report(install):
    """A report looked up by id (a duplicate's original, a page of reports, a token) is absent only
    when the store says so: when it does not answer, the caller's request fails (503), it is never
    answered as "no such report" or as a shorter list."""
    from lscloud.local.servers import free_port
    from lscloud.store import StoreUnavailable

    from functions.reports.function import queries, reports

    install(s3_endpoint=f"http://127.0.0.1:{free_port()}")   # nothing listens there
    with pytest.raises(StoreUnavailable):
        reports._exists("20260101-00000000")
    with pytest.raises(StoreUnavailable):
        queries.get_many(["20260101-00000000", "20260101-00000001"])


def test_an_open311_token_is_not_found_only_when_the_store_says_so(start_function, peers):
    from lscloud.local.servers import free_port

    fn = start_function("reports", peer_url_template=peers.template)
    client = fn.app.test_client()
    r = client.get("/open311/v2/tokens/0123456789abcdef.json")
    assert r.status_code == 404 and "not found" in r.get_json()[0]["description"]
    # the running function's store goes away
    from lscloud import store
    from lscloud.store.objects import ObjectStore

    objects, bucket = store.connection()
    dead = ObjectStore.from_settings(fn.app.extensions["lscloud"].settings.replace(
        s3_endpoint=f"http://127.0.0.1:{free_port()}"))
    store.configure(dead, bucket)
    try:
        r = client.get("/open311/v2/tokens/0123456789abcdef.json")
    finally:
        store.configure(objects, bucket)
    assert r.status_code == 503 and r.headers["Retry-After"]
