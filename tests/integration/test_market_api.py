"""The market function on real weed mini + nats-server: shops whose VietQR an independent decoder
reads back, lots and signed stamps that scan authentic (and altered ones that do not), copy
flags, the export link read from border with the exporter's own token, and the role matrix."""

# ruff: noqa: F811 (pytest fixtures imported from market_support are named as parameters)
from __future__ import annotations

import base64
import io
import json
import uuid
from datetime import date, timedelta

import pytest
import qr_pay as napas            # napas-qr-python: a VietQR decoder independent of the builder
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jsonschema import Draft202012Validator
from PIL import Image

import role_matrix
from digital_support import ok
from market_support import CHI_LANG, client, HOUSEHOLD, idem, market, OTHER_FIRM, PRODUCER  # noqa: F401
from lscloud import images, store
from lscloud.delivery import tail

from functions.market.function import stampcode

pytestmark = pytest.mark.integration

ROOT = role_matrix.ROOT
DONG_DANG = "06184"


def shop_body(**changes):
    return {"id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà bà Hoa", "kind": "household",
            "commune": CHI_LANG, "village": "Thôn Đồng Bành",
            "payment": {"bank_bin": "970415", "account_number": "113366668888", "account_name": "HOANG THI HOA"},
            **changes}


def lot_body(**changes):
    return {"product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 120, "harvested_on": "2025-08-20",
            "producer_name": "HTX Na Chi Lăng", "origin": {"commune": CHI_LANG, "plot": "CL-07"},
            "certificates": [{"kind": "vietgap", "number": "VietGAP-TT-12-34", "issued_by": "Sở NN&MT Lạng Sơn"}],
            "packing": {"packed_on": "2025-08-21", "facility": "Kho HTX Chi Lăng"}, **changes}


def test_every_endpoint_answers_only_the_roles_of_its_table(market, keys):
    assert role_matrix.check(market.app, "market", keys[0], samples={"sha256": "0" * 64, "batch": "a" * 10}) > 300


def test_a_household_shop_pays_by_vietqr_that_another_decoder_reads_back(client, tokens):
    cit = tokens("citizen", HOUSEHOLD)
    shop = ok(client.post("/v1/shops", json=shop_body(), headers=cit), 201)
    assert shop["payment"]["account_number"].endswith("8888") and "113366" not in json.dumps(shop["payment"])
    decoded = napas.decode(shop["vietqr"])              # CRC checked, EMVCo TLV parsed independently
    assert (decoded["bin_id"], decoded["consumer_id"], decoded["service_code"]) == ("970415", "113366668888", "QRIBFTTA")
    assert decoded["glocal_uuid"] == "A000000727" and decoded["transaction_currency"] == "704"
    assert decoded["country_code"] == "VN" and decoded["transaction_amount"] is None    # static: the buyer types it
    png = client.get(f"/v1/shops/{shop['id']}/qr")
    assert png.status_code == 200 and png.mimetype == "image/png"
    (read,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert read.text == shop["vietqr"]
    body = {**shop_body(), "id": shop["id"]}
    replay = client.post("/v1/shops", json=body, headers=cit)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    again = client.post("/v1/shops", json={**body, "name": "Another name"}, headers=cit)
    assert again.status_code == 409 and again.get_json()["type"].endswith("idempotency-key-reused")
    assert [e["field"] for e in again.get_json()["errors"]] == ["/name"]

    bad = client.post("/v1/shops", json=shop_body(payment={"bank_bin": "123456", "account_number": "1234567",
                                                          "account_name": "X Y"}), headers=cit)
    assert bad.status_code == 422 and [e["field"] for e in bad.get_json()["errors"]] == ["/payment/bank_bin"]
    wrong_kind = client.post("/v1/shops", json=shop_body(kind="firm"), headers=cit)
    assert wrong_kind.status_code == 422 and wrong_kind.get_json()["errors"][0]["field"] == "/kind"
    nowhere = client.post("/v1/shops", json=shop_body(commune="99999"), headers=cit)
    assert nowhere.status_code == 422 and nowhere.get_json()["errors"][0]["field"] == "/commune"

    # a product with a phone photo: stored without its GPS position
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (21.0, 38.0, 0.0), 3: "E", 4: (106.0, 34.0, 0.0)}
    raw = io.BytesIO()
    Image.new("RGB", (64, 48), (240, 200, 80)).save(raw, "JPEG", exif=exif.tobytes())
    assert images.has_location(raw.getvalue())
    photo = ok(client.post("/v1/photos", data=raw.getvalue(), headers={**cit, "Content-Type": "image/jpeg"}), 201)
    stored = store.blobs("market-photos").get(photo["sha256"])
    assert not images.has_location(stored) and stored != raw.getvalue()
    served = client.get(f"/v1/photos/{photo['sha256']}")  # public, from the function itself
    assert served.status_code == 200 and served.data == stored and served.content_type == "image/jpeg"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    product = {"id": "na-loai-1", "name": "Na Chi Lăng loại 1", "category": "thuc-pham", "ocop_stars": 4,
               "price_vnd": 60000, "unit": "kg", "photos": [photo["sha256"]]}
    ok(client.post(f"/v1/shops/{shop['id']}/products", json=product, headers=cit), 201)
    r = client.post(f"/v1/shops/{shop['id']}/products", json={**product, "id": "x2", "ocop_stars": 2}, headers=cit)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/ocop_stars"
    r = client.post(f"/v1/shops/{shop['id']}/products", json={**product, "id": "x3"}, headers=tokens("citizen", "020095009999"))
    assert r.status_code == 404              # not their shop: the same answer as no shop
    view = ok(client.get(f"/v1/shops/{shop['id']}"))
    assert [p["id"] for p in view["product_list"]] == ["na-loai-1"] and view["products"] == 1
    listed = ok(client.get("/v1/shops", query_string={"commune": CHI_LANG}))
    assert [s["id"] for s in listed["items"]] == [shop["id"]]


def issue(client, tokens, count=30, **lot_changes):
    prod = tokens("producer", PRODUCER)
    lot = ok(client.post("/v1/lots", json=lot_body(**lot_changes), headers=idem(prod)), 201)
    batch = ok(client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": count}, headers=idem(prod)), 201)
    return lot, batch


def test_stamps_scan_authentic_and_altered_or_unknown_codes_do_not(client, tokens, rt):
    lot, batch = issue(client, tokens)
    assert lot["origin"]["commune_name"] == "Xã Chi Lăng" and lot["status"] == "registered"
    codes = batch["codes"]
    assert len(codes) == len(set(codes)) == 30 and all(len(c) == stampcode.CODE_CHARS for c in codes)
    scanned = ok(client.get(f"/v1/stamps/{codes[7]}"))
    assert scanned["authentic"] is True and scanned["stamp"]["serial"] == 7 and scanned["product"] == "Na Chi Lăng loại 1"
    assert scanned["origin"] == {"commune": CHI_LANG, "commune_name": "Xã Chi Lăng", "plot": "CL-07"}
    assert [s["step"] for s in scanned["journey"]] == ["harvested", "packed", "stamped"]
    assert scanned["scans"]["count"] == 1 and "0100109106" not in json.dumps(scanned)
    assert ok(client.get(f"/v1/stamps/{codes[7].lower()}"))["scans"]["count"] == 2

    altered = codes[7][:30] + ("A" if codes[7][30] != "A" else "B") + codes[7][31:]
    for code, reason in ((altered, "bad-signature"), ("Z" * 120, "unknown-format"), ("not-a-code", "malformed"),
                         ("A" * 5000, "malformed"), ("%00", "malformed")):
        r = client.get(f"/v1/stamps/{code}")
        assert r.status_code in (200, 404) and r.status_code < 500, r.get_data(as_text=True)
        if r.status_code == 200:
            assert r.get_json() == {**r.get_json(), "authentic": False, "reason": reason}
    # signed with the province's key but never issued: a serial past the batch's end
    keys = client.application.config["MARKET_KEYS"]
    beyond = stampcode.encode(keys.private, keys.index, batch["batch"], 30)
    assert ok(client.get(f"/v1/stamps/{beyond}")) == {**ok(client.get(f"/v1/stamps/{beyond}")),
                                                       "authentic": False, "reason": "not-issued"}
    unknown_batch = stampcode.encode(keys.private, keys.index, stampcode.batch_id(b"\x00" * 6), 0)
    assert ok(client.get(f"/v1/stamps/{unknown_batch}"))["reason"] == "not-issued"

    # offline: the published key alone verifies a code
    jwks = ok(client.get("/v1/stamp-keys"))
    (jwk,) = jwks["keys"]
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
    assert stampcode.verify(codes[0], {int(jwk["kid"]): public}).serial == 0
    with pytest.raises(stampcode.NotAStamp):
        stampcode.verify(altered, {int(jwk["kid"]): public})

    # the codes file and the printable sheet derive the same codes
    prod = tokens("producer", PRODUCER)
    text = client.get(batch["codes_url"], headers=prod)
    assert text.status_code == 200 and text.get_data(as_text=True).split() == codes
    pdf = client.get(batch["sheet_url"], query_string={"from": 24}, headers=prod)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-") and pdf.mimetype == "application/pdf"
    assert client.get(batch["codes_url"], headers=tokens("producer", OTHER_FIRM)).status_code == 404
    r = client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 10**6}, headers=idem(prod))
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/count"

    # a copy: the same stamp scanned by different people in Lạng Sơn and, minutes later, in Hồ Chí Minh City
    for address, where in (("203.0.113.1", {"lat": 21.85, "lon": 106.76}), ("203.0.113.2", {"lat": 21.85, "lon": 106.76}),
                           ("203.0.113.3", {"lat": 10.78, "lon": 106.70}), ("203.0.113.4", {"lat": 10.78, "lon": 106.70})):
        copied = ok(client.get(f"/v1/stamps/{codes[3]}", query_string=where, headers={"X-Forwarded-For": address}))
    assert copied["authentic"] is True and copied["possible_copy"] is True
    assert copied["copy_reasons"] == ["implausible-places"] and copied["copy_evidence"][0]["callers"] == 4
    stream = [e["event"] for e in tail(rt.settings, 100)]
    flagged = [e for e in stream if e["type"] == "vn.langson.market.stamp.flagged.v1"]
    assert len(flagged) == 1 and flagged[0]["data"]["serial"] == 3
    schemas = {"stamp.flagged": "stamp.flagged.json", "lot.registered": "lot.json", "stamps.issued": "lot.json",
               "shop.opened": "shop.opened.json", "lot.exported": "lot.json"}
    for e in stream:
        fact = e["type"].removeprefix("vn.langson.market.").removesuffix(".v1")
        schema = json.loads((ROOT / "schemas" / "events" / "market" / schemas[fact]).read_text())
        assert list(Draft202012Validator(schema).iter_errors(e["data"])) == [], e["type"]


def test_an_export_lot_shows_the_crossing_border_told_its_exporter(client, tokens, peers):
    lot, batch = issue(client, tokens, count=2)
    peers.declarations["decl-export-1"] = {
        "id": "decl-export-1", "owner": PRODUCER, "direction": "export", "gate": "huu-nghi", "status": "exited",
        "timestamps": {"submitted": "2025-08-22T01:00:00Z", "exited": "2025-08-22T18:30:00Z"},
        "driver": {"id_number": "E7654321", "phone": "+8613800000000"}}
    peers.declarations["decl-import"] = {**peers.declarations["decl-export-1"], "id": "decl-import", "direction": "import"}
    peers.declarations["decl-other"] = {**peers.declarations["decl-export-1"], "id": "decl-other", "owner": OTHER_FIRM}
    exporter = tokens("enterprise", PRODUCER)
    linked = ok(client.post(f"/v1/lots/{lot['id']}/export", json={"declaration": "decl-export-1"}, headers=exporter))
    assert linked["status"] == "exported" and linked["export"]["crossed_on"] == "2025-08-23"   # 01:30 in Hà Nội time
    assert peers.seen[-2]["authorization"] == exporter["Authorization"]      # border judged the exporter itself
    assert "E7654321" not in json.dumps(linked)
    scanned = ok(client.get(f"/v1/stamps/{batch['codes'][0]}"))
    crossing = scanned["journey"][-1]
    assert crossing == {"step": "crossed-border", "on": "2025-08-23", "where": "Cửa khẩu quốc tế Hữu Nghị", "gate": "huu-nghi"}
    for did, field in (("decl-import", "/declaration"), ("decl-other", "/declaration"), ("nope", "/declaration")):
        r = client.post(f"/v1/lots/{lot['id']}/export", json={"declaration": did}, headers=exporter)
        assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == field
    other = client.post(f"/v1/lots/{lot['id']}/export", json={"declaration": "decl-other"},
                        headers=tokens("enterprise", OTHER_FIRM))
    assert other.status_code == 404          # not their lot
    assert ok(client.get(f"/v1/lots/{lot['id']}", headers=exporter))["export"]["gate"] == "huu-nghi"


def test_a_lot_linked_before_the_crossing_learns_the_day_from_borders_event(client, tokens, peers, market):
    from lscloud import events
    from lscloud.auth import delivery_headers

    lot, _ = issue(client, tokens, count=1)
    peers.declarations["decl-early"] = {"id": "decl-early", "owner": PRODUCER, "direction": "export", "gate": "huu-nghi",
                                        "status": "queued", "timestamps": {"submitted": "2025-09-01T02:00:00Z"}}
    exporter = tokens("enterprise", PRODUCER)
    linked = ok(client.post(f"/v1/lots/{lot['id']}/export", json={"declaration": "decl-early"}, headers=exporter))
    assert (linked["export"]["status"], linked["export"]["crossed_on"]) == ("queued", None)

    def exited(tax_code, event_id, at="2025-09-02T03:15:00.000Z"):
        # the border function's transition data (schemas/events/border/transition.json)
        ev = events.new_event("vn.langson.border.truck.exited.v1", "/border", {
            "declaration_id": "decl-early", "code": "TK-1", "direction": "export", "gate": "huu-nghi", "status": "exited",
            "enterprise_tax_code": tax_code, "from": "cleared", "to": "exited", "action": "exit", "at": at,
            "actor": {"kind": "device", "sub": "barrier-1"}, "reason": None, "details": {}}, id=event_id)
        headers, body = events.to_binary_http(ev)
        sender = delivery_headers(market.app.extensions["lscloud"].settings)
        return client.post("/events", data=body, headers={**headers, **sender})

    # an instant that is not one (or not a string) raised: five deliveries, then a dead letter. The
    # schema's `at` is a date-time, so both are refused at once (422) before the handler sees them
    assert exited(OTHER_FIRM, "ev-odd-1", at="soon").status_code == 422
    assert exited(OTHER_FIRM, "ev-odd-2", at=5).status_code == 422
    assert exited(OTHER_FIRM, "ev-1").status_code < 300       # another firm's event links nothing
    assert ok(client.get(f"/v1/lots/{lot['id']}", headers=exporter))["export"]["crossed_on"] is None
    assert exited(PRODUCER, "ev-2").status_code < 300
    crossed = ok(client.get(f"/v1/lots/{lot['id']}", headers=exporter))["export"]
    assert (crossed["status"], crossed["crossed_on"]) == ("exited", "2025-09-02")


def test_bad_lots_are_refused_naming_the_field(client, tokens):
    prod = tokens("producer", PRODUCER)
    future = (date.today() + timedelta(days=366)).isoformat()   # replace(year=+1) fails on 29 February
    for body, field in ((lot_body(harvested_on=future), "/harvested_on"),
                        (lot_body(packing={"packed_on": "2025-08-01"}), "/packing/packed_on"),
                        (lot_body(origin={"commune": "00000"}), "/origin/commune"),
                        (lot_body(unit=""), "/unit")):
        r = client.post("/v1/lots", json=body, headers=idem(prod))
        assert r.status_code == 422 and field in [e["field"] for e in r.get_json()["errors"]], (field, r.get_json())
    r = client.post("/v1/lots", json=lot_body(), headers=idem(tokens("producer", "not-a-tax-code")))
    assert r.status_code == 403
    mine = ok(client.get("/v1/lots", headers=prod))
    assert mine["items"] == []
