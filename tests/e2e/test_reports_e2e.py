"""A citizen's report through a real `lscloud up`: a photo with its GPS position (stripped), the
report routed to its agency, moved by that agency, the reporter following each step and rating the
answer, the public seeing a masked history, an Open311 partner reading it back in XML — and the
report's events on the stream, with the published contract and no personal data."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import httpx
import pytest
from PIL import Image

from localcloud import ROOT, running, wait_for
from lscloud.auth import dev_keys, issue_token

pytestmark = pytest.mark.e2e

CCCD, PHONE, NAME = "020088005555", "0987 654 321", "Lương Thị Mai"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "reports-cloud", [ROOT / "functions", ROOT / "peers"], only=["reports"]) as c:
        yield c


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (21.0, 51.0, 13.0), 3: "E", 4: (106.0, 45.0, 40.0)}
    raw = io.BytesIO()
    Image.new("RGB", (48, 32), (120, 90, 40)).save(raw, "JPEG", exif=exif.tobytes())
    return raw.getvalue()


def test_a_citizen_report_from_photo_to_rating(cloud):
    private, _ = dev_keys(cloud.state_dir)

    def bearer(role, sub, **claims):
        return {"Authorization": "Bearer " + issue_token(private, sub, role, **claims)}

    api = httpx.Client(base_url=cloud.gateway + "/reports", timeout=180, trust_env=False)  # a busy shared machine
    citizen = bearer("citizen", CCCD)
    officer = bearer("commune-officer", "cb-dongdang", unit="06184")

    # an Open311 client starts from discovery and appends GeoReport v2's paths to the endpoint it names
    endpoint = ok(api.get("/open311/discovery.json"))["endpoints"][0]["url"]
    assert endpoint == f"{cloud.gateway}/reports/open311/v2"
    assert ok(httpx.get(f"{endpoint}/services.json", timeout=30)) == ok(api.get("/open311/v2/services.json"))

    photo = ok(api.post("/v1/photos", content=jpeg_with_gps(), headers={**citizen, "Content-Type": "image/jpeg"}), 201)
    assert photo["url"] == f"{cloud.gateway}/reports/v1/photos/{photo['sha256']}"   # where anyone can fetch it
    served = httpx.get(photo["url"], timeout=30)
    assert served.status_code == 200 and Image.open(io.BytesIO(served.content)).getexif().get(0x8825) is None

    report = ok(api.post("/v1/reports", headers=citizen, json={
        "service_code": "MT-RAC-THAI", "lat": 21.8537, "long": 106.7610, "commune": "06184",
        "address_string": "khối 3, thị trấn Đồng Đăng, huyện Cao Lộc, tỉnh Lạng Sơn",
        "description": f"Rác tồn đọng 3 ngày. Liên hệ {NAME} {PHONE}", "photos": [photo["sha256"]],
        "reporter": {"name": NAME, "phone": PHONE}}), 201)
    rid = report["id"]
    assert report["commune"] == "06184" and report["agency"] == "ubnd-06184" and report["state"] == "submitted"

    assert rid in [d["id"] for d in ok(api.get("/v1/queue", headers=officer))["items"]]
    seen = []
    for action, body in [("acknowledge", {}), ("start", {"note": f"Đã liên hệ {NAME} qua {PHONE}"}),
                         ("fix", {"note": "Đã thu gom rác"})]:
        ok(api.post(f"/v1/reports/{rid}/actions/{action}", json=body, headers=officer))
        mine = ok(api.get(f"/v1/reports/{rid}", headers=citizen))        # the reporter follows each step
        seen.append(mine["state"])
        assert mine["reporter"]["phone"] == PHONE
    assert seen == ["acknowledged", "in_progress", "fixed"]
    rated = ok(api.post(f"/v1/reports/{rid}/rating", json={"rating": 5, "comment": "Nhanh"}, headers=citizen))
    assert rated["rating"] == 5 and rated["status"] == "closed"

    public = ok(api.get(f"/v1/reports/{rid}"))
    text = json.dumps(public, ensure_ascii=False)
    assert PHONE not in text and NAME not in text and "reporter" not in public
    assert [h["state"] for h in public["history"]] == ["submitted", "acknowledged", "in_progress", "fixed"]
    assert public["history"][2]["note"] == "Đã liên hệ *** qua ***"

    r = api.get(f"/open311/v2/requests/{rid}.xml", params={"jurisdiction_id": "langson.gov.vn"})
    req = ET.fromstring(r.content).find("request")
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    assert req.find("service_request_id").text == rid and req.find("status").text == "closed"
    assert req.find("media_url").text == photo["url"] and PHONE not in r.text

    def events():
        out = cloud.cli("events", "tail", "-n", "200", "--json")
        lines = [json.loads(x) for x in out.stdout.splitlines() if x.strip().startswith("{")]
        mine = [e["event"] for e in lines if isinstance(e.get("event"), dict) and e["event"].get("subject") == rid]
        return mine if len(mine) >= 5 else None

    mine = wait_for(events, 60, "the report's five events on the stream")
    text = json.dumps(mine, ensure_ascii=False)
    assert CCCD not in text and PHONE not in text and NAME not in text
    assert [e["type"] for e in mine] == [f"vn.langson.reports.report.{f}.v1" for f in
                                         ("submitted", "acknowledged", "started", "resolved", "rated")]
    assert mine[-1]["data"]["rating"] == 5 and mine[0]["data"]["agency"] == "ubnd-06184"
