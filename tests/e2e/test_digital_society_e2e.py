"""Issue 17's "Done when", through a real `lscloud up` (directory, border, community, market):

- a team logs activities offline and syncs the batch twice (counted once), the commune officer
  verifies, the commune's progress moves and the event the IOC consumes is on the bus;
- a seller opens a shop whose VietQR image, decoded by ZXing and parsed by an independent VietQR
  decoder, pays the right bank (BIN) and account;
- a lot's stamps scan as authentic through the gateway, an altered code does not; the export lot
  is linked to a real border declaration, read from border with the exporter's own token.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import qr_pay as napas
import zxingcpp
from PIL import Image

from localcloud import running, wait_for
from lscloud.auth import dev_keys, issue_token

pytestmark = pytest.mark.e2e

DONG_DANG, CHI_LANG = "06184", "06463"
FIRM = "0100109106"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "digital-cloud", only=["directory", "border", "community", "market"]) as c:
        yield c


@pytest.fixture(scope="module")
def gw(cloud):
    with httpx.Client(base_url=cloud.gateway, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def tok(cloud):
    private, _ = dev_keys(cloud.state_dir)

    def make(role, sub=None, unit=None):
        return {"Authorization": "Bearer " + issue_token(private, sub or f"{role}-e2e", role, unit=unit)}

    return make


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def test_a_team_syncs_twice_the_commune_verifies_and_the_ioc_hears_of_it(cloud, gw, tok):
    officer = tok("commune-officer", "cb-dd-1", unit=DONG_DANG)
    team = ok(gw.post("/community/v1/teams", json={
        "id": "to-pomo-" + uuid.uuid4().hex[:6], "name": "Tổ CNS thôn Pò Mỏ", "commune": DONG_DANG, "village": "Thôn Pò Mỏ",
        "leader": {"id": "020088001111", "name": "Hoàng Văn Tú"}, "members": [{"id": "020090002222", "name": "Lương Thị Mai"}]},
        headers=officer), 201)
    member = tok("team-member", "020090002222", unit=DONG_DANG)
    at = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()
    queued = [{"client_id": f"phone-{uuid.uuid4().hex[:10]}", "team": team["id"], "kind": kind, "household": hh,
               "details": details, "happened_at": at, "revision": 1}
              for kind, hh, details in (("epayment-account", "HK-0001", {"bank": "Agribank"}),
                                        ("digital-shop", "HK-0002", {"platform": "postmart.vn"}),
                                        ("app-install", "HK-0001", {"app": "citizen-app"}))]
    assert ok(gw.post("/community/v1/activities/sync", json={"activities": queued}, headers=member))["counts"] == {"created": 3}
    assert ok(gw.post("/community/v1/activities/sync", json={"activities": queued}, headers=member))["counts"] == {"duplicate": 3}
    ok(gw.put(f"/community/v1/communes/{DONG_DANG}/target", json={"households": 4, "source": "Sổ theo dõi hộ của xã"},
              headers=officer))
    before = ok(gw.get(f"/community/v1/communes/{DONG_DANG}/progress", headers=tok("ioc")))
    assert before["indicators"]["shop-or-payment"]["reached"] == 0
    pending = ok(gw.get(f"/community/v1/communes/{DONG_DANG}/pending", headers=officer))["items"]
    assert sorted(p["id"] for p in pending) == sorted(q["client_id"] for q in queued)
    for q in queued:
        ok(gw.post(f"/community/v1/activities/{q['client_id']}/verify", headers=officer))
    after = ok(gw.get(f"/community/v1/communes/{DONG_DANG}/progress", headers=tok("ioc")))
    main = after["indicators"]["shop-or-payment"]
    assert (main["reached"], main["share"], main["met"]) == (2, 0.5, True)
    assert after["activities"]["app-install"] == 1
    ranks = ok(gw.get("/community/v1/rankings", headers=tok("ioc")))["items"]
    assert ranks[0]["commune"] == DONG_DANG

    def published():
        tail = cloud.cli("events", "tail", "-n", "200", "--json")
        evs = [json.loads(line)["event"] for line in tail.stdout.splitlines() if line.startswith("{")]
        return [e for e in evs if e.get("type") == "vn.langson.community.progress.updated.v1"]

    events = wait_for(lambda: len(published()) >= 3 and published(), 30, "progress events for the IOC", log=cloud.log)
    assert events[-1]["data"]["indicators"]["shop-or-payment"]["reached"] == 2
    assert "HK-0001" not in json.dumps(events) and "020090002222" not in json.dumps(events)


def test_a_shop_pays_by_vietqr_that_decodes_to_its_bank_and_account(gw, tok):
    seller = tok("citizen", "020095001234")
    shop = ok(gw.post("/market/v1/shops", json={
        "id": "shop-" + uuid.uuid4().hex[:10], "name": "Hồng không hạt Bảo Lâm", "kind": "household", "commune": CHI_LANG,
        "payment": {"bank_bin": "970405", "account_number": "1500201234567", "account_name": "NONG VAN HAI"}},
        headers=seller), 201)
    png = gw.get(f"/market/v1/shops/{shop['id']}/qr")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    (read,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    fields = napas.decode(read.text)
    assert (fields["bin_id"], fields["consumer_id"], fields["service_code"]) == ("970405", "1500201234567", "QRIBFTTA")
    assert ok(gw.get(f"/market/v1/shops/{shop['id']}"))["payment"]["account_number"].endswith("4567")


def test_stamps_scan_authentic_an_altered_code_does_not_and_the_export_is_read_from_border(gw, tok):
    producer = tok("producer", FIRM)
    lot = ok(gw.post("/market/v1/lots", json={
        "product": "Hoa hồi khô Văn Quan", "unit": "bao 50 kg", "harvested_on": "2025-09-10", "producer_name": "HTX Hồi Văn Quan",
        "origin": {"commune": CHI_LANG, "plot": "VQ-12"}, "packing": {"packed_on": "2025-09-12", "facility": "Kho HTX"}},
        headers={**producer, "Idempotency-Key": uuid.uuid4().hex}), 201)
    batch = ok(gw.post(f"/market/v1/lots/{lot['id']}/stamps", json={"count": 5},
                       headers={**producer, "Idempotency-Key": uuid.uuid4().hex}), 201)
    code = batch["codes"][2]
    scan = ok(gw.get(f"/market/v1/stamps/{code}"))
    assert scan["authentic"] is True and scan["origin"]["commune_name"] == "Xã Chi Lăng" and scan["stamp"]["serial"] == 2
    altered = code[:60] + ("Q" if code[60] != "Q" else "R") + code[61:]
    assert ok(gw.get(f"/market/v1/stamps/{altered}")) | {} == {**ok(gw.get(f"/market/v1/stamps/{altered}")),
                                                            "authentic": False}
    assert batch["scan_url"].startswith(gw.base_url.__str__().rstrip("/") + "/market/v1/stamps/")
    assert batch["codes_url"] == f"/market/v1/lots/{lot['id']}/stamps/{batch['batch']}/codes"   # resolves at the gateway
    assert gw.get(batch["codes_url"], headers=producer).text.split() == batch["codes"]

    # a real export declaration at the real border function, read with the exporter's own token
    exporter = tok("enterprise", FIRM)
    did = "exp-" + uuid.uuid4().hex[:10]
    decl = gw.post("/border/v1/declarations", headers=exporter, json={
        "id": did, "gate": "huu-nghi", "direction": "export",
        "expected_arrival": (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat(),
        "vehicle": {"tractor_plate": "12C-123.45", "type": "tractor-trailer", "axles": 5, "empty_weight_kg": 15000},
        "driver": {"name": "Nông Văn Hải", "nationality": "VN", "id_type": "cccd", "id_number": "020088002468",
                   "phone": "0987654321"},
        "enterprise": {"tax_code": FIRM, "name": "HTX Hồi Văn Quan"},
        "goods": [{"hs_code": "090961", "description": "Hoa hồi khô", "packages": 400, "gross_weight_kg": 20000,
                   "value": 90000, "currency": "USD", "origin": "VN"}],
        "health": {"fever": False, "symptoms": [], "contact_with_case": False}})
    assert decl.status_code == 201, decl.text
    linked = ok(gw.post(f"/market/v1/lots/{lot['id']}/export", json={"declaration": did}, headers=exporter))
    assert linked["export"]["gate"] == "huu-nghi" and linked["export"]["crossed_on"] is None
    assert "0987654321" not in json.dumps(linked) and "020088002468" not in json.dumps(linked)
    stranger = gw.post(f"/market/v1/lots/{lot['id']}/export", json={"declaration": did},
                       headers=tok("enterprise", "0200123457"))
    assert stranger.status_code == 404           # not their lot
