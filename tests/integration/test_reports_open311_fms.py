"""The reports function as FixMyStreet's Open311 client and an agency's own system use it, on real
weed mini + nats-server: a request located by lat/long alone (FixMyStreet's Open311.pm sends the
point and only the attributes its user filled in), and an agency's updates through
``POST servicerequestupdates`` moving a report along the shortest legal path of its states."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from digital_support import ok

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
THAT_KHE = "06040"                 # Xã Thất Khê (the old Tràng Định town)
THAT_KHE_MARKET = (22.2547, 106.4714)
BAC_GIANG = (21.25, 106.05)        # in the province's bounding box, not in it: Bắc Ninh (the old Bắc Giang)
DONG_DANG = "06184"


@pytest.fixture
def client(start_function, peers):
    return start_function("reports", peer_url_template=peers.template).app.test_client()


def api_key(client, tokens, agency=None) -> str:
    body = {"name": "Hệ thống của đối tác"} | ({"agency": agency} if agency else {})
    return ok(client.post("/v1/api-keys", json=body, headers=tokens("operator")), 201)["api_key"]


def test_a_request_located_by_lat_long_alone_is_filed_in_the_commune_of_its_point(client, tokens, rt):
    """GeoReport v2: "One of lat & long or address_string or address_id" is a full location, and the
    commune attribute is not required: it was refused without one."""
    k = api_key(client, tokens)
    lat, lon = THAT_KHE_MARKET
    r = client.post("/open311/v2/requests.xml", headers=FORM,
                    data=f"api_key={k}&service_code=MT-RAC-THAI&lat={lat}&long={lon}&description=R%C3%A1c")
    assert r.status_code == 201, r.get_data(as_text=True)
    rid = ET.fromstring(r.data).find("request/service_request_id").text
    doc = ok(client.get(f"/v1/reports/{rid}"))
    assert doc["commune"] == THAT_KHE and doc["commune_name"] == "Xã Thất Khê"
    assert doc["agency"] == f"ubnd-{THAT_KHE}" and doc["commune_inferred"] is True
    assert ok(client.get(f"/open311/v2/requests/{rid}.json"))[0]["address"] == "Xã Thất Khê"

    # a commune named stays the one named, not inferred
    rid = ok(client.post("/open311/v2/requests.json", headers=FORM, data=(
        f"api_key={k}&service_code=ANTT&lat={lat}&long={lon}&attribute[commune]={DONG_DANG}")), 201)[0][
        "service_request_id"]
    doc = ok(client.get(f"/v1/reports/{rid}"))
    assert doc["commune"] == DONG_DANG and doc["commune_inferred"] is False

    # a point of no commune of the province (in its bounding box, not in it) is refused by lat
    r = client.post("/open311/v2/requests.json", headers=FORM,
                    data=f"api_key={k}&service_code=ANTT&lat={BAC_GIANG[0]}&long={BAC_GIANG[1]}")
    assert r.status_code == 400 and "lat:" in r.get_json()[0]["description"], r.get_data(as_text=True)
    # an address alone is as strict as before: it must name the commune
    r = client.post("/open311/v2/requests.json", headers=FORM,
                    data=f"api_key={k}&service_code=ANTT&address_string=s%E1%BB%91+5+ph%E1%BB%91+X")
    assert r.status_code == 400 and "attribute[commune]" in r.get_json()[0]["description"]


def test_every_commune_has_a_centre_and_every_centre_is_a_commune():
    from functions.reports.function import communes, places

    assert set(places.CENTRES) == {c["code"] for c in communes.all_communes()}
    assert places.commune_at(*THAT_KHE_MARKET)["code"] == THAT_KHE and places.commune_at(*BAC_GIANG) is None


def updates_of(client, rid: str) -> list[str]:
    return [u["status"] for u in ok(client.get("/open311/v2/servicerequestupdates.json"))
            if u["service_request_id"] == rid]


def test_an_agency_moves_a_report_open_in_progress_fixed_through_servicerequestupdates(client, tokens, rt):
    """OPEN was refused outright, and every working status on a submitted report (the machine wants
    it acknowledged first)."""
    partner, police = api_key(client, tokens), api_key(client, tokens, agency="cong-an-tinh")
    lat, lon = THAT_KHE_MARKET
    rid = ok(client.post("/open311/v2/requests.json", headers=FORM,
                         data=f"api_key={partner}&service_code=ANTT&lat={lat}&long={lon}"), 201)[0]["service_request_id"]
    ok(client.get("/open311/v2/servicerequestupdates.json"))   # the updates index is read from here on

    expected = []
    for status, state, text in (("OPEN", "acknowledged", "Đã tiếp nhận"), ("IN_PROGRESS", "in_progress", "Đang xử lý"),
                                ("FIXED", "fixed", "Đã xử lý xong")):
        r = client.post("/open311/v2/servicerequestupdates.xml", headers=FORM, data=urlencode(
            {"api_key": police, "service_request_id": rid, "status": status, "description": text}))
        assert r.status_code == 200, r.get_data(as_text=True)
        assert ET.fromstring(r.data).find("request_update/status").text == status
        one = ok(client.get(f"/open311/v2/requests/{rid}.json"))[0]
        assert one["status"] == ("closed" if status == "FIXED" else "open") and one["status_notes"] == text
        assert ok(client.get(f"/v1/reports/{rid}"))["state"] == state
        expected.append(status)
        assert updates_of(client, rid) == ["OPEN"] + expected   # the submission, then each update

    # nothing leads from fixed back to in progress: a 400 naming status, in both languages
    r = client.post("/open311/v2/servicerequestupdates.json", headers=FORM,
                    data=f"api_key={police}&service_request_id={rid}&status=IN_PROGRESS")
    text = r.get_json()[0]["description"]
    assert r.status_code == 400 and "status:" in text and "fixed" in text and "đã xử lý xong" in text, text
    # FIXED again: already there, nothing written
    ok(client.post("/open311/v2/servicerequestupdates.json", headers=FORM,
                   data=f"api_key={police}&service_request_id={rid}&status=FIXED"))
    assert updates_of(client, rid) == ["OPEN", "OPEN", "IN_PROGRESS", "FIXED"]


def test_an_update_takes_the_shortest_legal_path_in_one_write(client, tokens, rt):
    from functions.reports.function import reports

    partner, police = api_key(client, tokens), api_key(client, tokens, agency="cong-an-tinh")
    other = api_key(client, tokens, agency="so-xay-dung")
    post = f"api_key={partner}&service_code=ANTT&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}"
    rid = ok(client.post("/open311/v2/requests.json", headers=FORM, data=post), 201)[0]["service_request_id"]

    # another agency's key is not this report's: as before, it may not post its updates
    r = client.post("/open311/v2/servicerequestupdates.json", headers=FORM,
                    data=f"api_key={other}&service_request_id={rid}&status=IN_PROGRESS")
    assert r.status_code == 404, r.get_data(as_text=True)

    up = ok(client.post("/open311/v2/servicerequestupdates.json", headers=FORM,
                        data=f"api_key={police}&service_request_id={rid}&status=IN_PROGRESS"))
    assert up[0]["status"] == "IN_PROGRESS"
    trail = reports.records().trail(rid)
    assert [(e["action"], e["to"]) for e in trail] == [("submit", "submitted"), ("acknowledge", "acknowledged"),
                                                        ("start", "in_progress")]
    # one write: both moves carry the report's same new version, each its own place and instant
    assert trail[1]["entry"].split("_")[1] == trail[2]["entry"].split("_")[1] and trail[1]["at"] < trail[2]["at"]
    assert up[0]["update_id"] == f"{rid}.{trail[2]['entry']}"

    # CLOSED from a working state: fixed, then closed
    ok(client.post("/open311/v2/servicerequestupdates.json", headers=FORM,
                   data=f"api_key={police}&service_request_id={rid}&status=CLOSED"))
    assert [e["to"] for e in reports.records().trail(rid)][3:] == ["fixed", "closed"]

    # a status that needs a reason names description when it has none
    rid = ok(client.post("/open311/v2/requests.json", headers=FORM, data=post + "&description=2"), 201)[0][
        "service_request_id"]
    r = client.post("/open311/v2/servicerequestupdates.json", headers=FORM,
                    data=f"api_key={police}&service_request_id={rid}&status=NO_FURTHER_ACTION")
    assert r.status_code == 400 and "description" in r.get_json()[0]["description"]
    ok(client.post("/open311/v2/servicerequestupdates.json", headers=FORM, data=urlencode(
        {"api_key": police, "service_request_id": rid, "status": "NO_FURTHER_ACTION", "description": "Không có vi phạm"})))
    assert [e["to"] for e in reports.records().trail(rid)] == ["submitted", "acknowledged", "unable_to_fix"]
