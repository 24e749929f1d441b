"""The answers of reports and market, on real weed mini + nats-server, match the schemas their
/openapi.json documents for them (read through the document's own components, as a generated client
or schemathesis reads them): each view a reader may get (public, reporter, agency, moderation; an
open and a closed shop), so a typed client parses what the functions really send."""

from __future__ import annotations

import io
import uuid

import pytest
from jsonschema import Draft202012Validator
from PIL import Image

from lscloud import rulesyntax

pytestmark = pytest.mark.integration

DONG_DANG, CHI_LANG = "06184", "06463"
CCCD, PHONE = "020088001111", "0912 345 678"


def documented(app):
    """``check(response)``: the JSON answer matches the schema the app's /openapi.json gives its
    operation and status; returns the parsed body. A file's answer (a photo, a PDF, a download) is
    of a media type the document gives the operation as binary; returns its bytes."""
    doc = app.test_client().get("/openapi.json").get_json()
    urls = app.url_map.bind("localhost")

    def check(response):
        method, path = response.request.method, response.request.path
        assert 200 <= response.status_code < 300, (method, path, response.status_code, response.get_json())
        rule, _ = urls.match(path, method, return_rule=True)
        answer = doc["paths"][rulesyntax.openapi_path(rule.rule)][method.lower()]["responses"].get(str(response.status_code))
        assert answer and "content" in answer, (method, path, response.status_code, "no documented body")
        if response.mimetype != "application/json":
            media = answer["content"].get(response.mimetype) or answer["content"].get("*/*")
            assert media, (method, path, response.mimetype, "not a documented media type", list(answer["content"]))
            assert media["schema"]["type"] == "string", (method, path, media)
            assert media["schema"].get("contentMediaType", response.mimetype) == response.mimetype, (method, path)
            return response.get_data()
        schema = {"allOf": [answer["content"]["application/json"]["schema"]], "components": doc["components"]}
        body = response.get_json()
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in
                    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).iter_errors(body)]
        assert not problems, (method, path, problems)
        return body

    return check


def jpeg(colour=(90, 120, 60)) -> bytes:
    raw = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(raw, "JPEG")
    return raw.getvalue()


def test_every_view_of_a_report_is_the_documented_one(start_function, peers, tokens):
    reports = start_function("reports", peer_url_template=peers.template)
    client, check = reports.app.test_client(), documented(reports.app)
    citizen, operator = tokens("citizen", CCCD), tokens("operator")
    officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)

    photo = check(client.post("/v1/photos", data=jpeg(), headers={"Content-Type": "image/jpeg"}))
    first = check(client.post("/v1/reports", json={"service_code": "TTDT-LAN-CHIEM", "lat": 21.8540, "long": 106.7612,
                                                   "commune": DONG_DANG, "reporter": {"phone": PHONE}}))
    mine = check(client.post("/v1/reports", headers=citizen, json={
        "service_code": "TTDT-LAN-CHIEM", "lat": 21.8541, "long": 106.7613, "commune": DONG_DANG, "description": "Lấn chiếm vỉa hè",
        "reporter": {"name": "Hoàng Văn Tú", "phone": PHONE}, "photos": [photo["sha256"]]}))
    assert [n["id"] for n in mine["nearby"]] == [first["id"]] and mine["reporter"]["phone"] == PHONE
    by_address = check(client.post("/v1/reports", headers=citizen, json={
        "service_code": "GT-HU-HONG", "address_string": "thôn Pò Mỏ, xã Hoàng Đồng, thành phố Lạng Sơn", "attributes": {"severity": ["high"]}}))
    assert by_address["lat"] is None and "nearby" not in by_address

    nearby = check(client.get("/v1/reports/nearby?service_code=TTDT-LAN-CHIEM&lat=21.8540&long=106.7612"))
    assert nearby["total"] == 2 and all("distance_m" in r for r in nearby["items"])
    rid = mine["id"]
    assert "reporter" not in check(client.get(f"/v1/reports/{rid}"))
    assert check(client.get(f"/v1/reports/{rid}", headers=citizen))["token"]
    check(client.post(f"/v1/reports/{first['id']}/support", headers=citizen))
    queue = check(client.get("/v1/queue", headers=officer))
    assert rid in [r["id"] for r in queue["items"]]
    for action, body in (("acknowledge", {}), ("fix", {"note": "Đã dọn, gọi Hoàng Văn Tú"})):
        check(client.post(f"/v1/reports/{rid}/actions/{action}", json=body, headers=officer))
    rated = check(client.post(f"/v1/reports/{rid}/rating", json={"rating": 4}, headers=citizen))
    assert rated["rating"] == 4
    moved = check(client.post(f"/v1/reports/{first['id']}/actions/transfer",
                              json={"agency": "cong-an-tinh", "reason": "Gây rối trật tự"}, headers=officer))
    assert moved["transfers"][0]["to_agency"] == "cong-an-tinh"
    check(client.post(f"/v1/reports/{first['id']}/actions/hide", json={"reason": "spam"}, headers=operator))
    hidden = check(client.get(f"/v1/reports/{first['id']}", headers=operator))
    assert hidden["state"] == "hidden" and "reporter" not in hidden
    read = check(client.get(f"/v1/reports/{rid}"))
    assert [h["state"] for h in read["history"]] == ["submitted", "acknowledged", "fixed"]

    stats = check(client.get("/v1/stats", headers=tokens("ioc")))
    assert stats["total"]["received"] >= 2
    listed = check(client.get("/v1/services"))
    # the envelope every list has
    assert listed["items"] and listed["total"] == len(listed["items"]) and listed["next_page_token"] is None
    key = check(client.post("/v1/api-keys", json={"name": "Ứng dụng đối tác"}, headers=operator))
    assert key["api_key"].startswith(key["id"] + ".")
    check(client.post(f"/v1/api-keys/{key['id']}/rotate", headers=operator))
    assert check(client.delete(f"/v1/api-keys/{key['id']}", headers=operator))["revoked_at"]


def test_a_shop_its_page_its_products_and_its_listing_are_the_documented_ones(start_function, peers, tokens):
    market = start_function("market", peer_url_template=peers.template)
    client, check = market.app.test_client(), documented(market.app)
    owner = tokens("citizen", "020095001234")

    photo = check(client.post("/v1/photos", data=jpeg((240, 200, 80)), headers={**owner, "Content-Type": "image/jpeg"}))
    shops = []
    for village in ("Thôn Đồng Bành", None):
        body = {"id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà bà Hoa", "kind": "household",
                "commune": CHI_LANG, "payment": {"bank_bin": "970415", "account_number": "113366668888",
                                                 "account_name": "HOANG THI HOA"}} | ({"village": village} if village else {})
        shops.append(check(client.post("/v1/shops", json=body, headers=owner)))
    shop = shops[0]
    product = {"id": "na-loai-1", "name": "Na Chi Lăng loại 1", "category": "thuc-pham", "ocop_stars": 4,
               "price_vnd": 60000, "unit": "kg", "photos": [photo["sha256"]]}
    check(client.post(f"/v1/shops/{shop['id']}/products", json=product, headers=owner))
    page = check(client.get(f"/v1/shops/{shop['id']}"))
    assert [p["id"] for p in page["product_list"]] == ["na-loai-1"]
    for query in ({}, {"commune": CHI_LANG}, {"limit": 1}):
        listed = check(client.get("/v1/shops", query_string=query))
        assert listed["items"], query
    closed = check(client.post(f"/v1/shops/{shops[1]['id']}/close", headers={**owner, "Idempotency-Key": uuid.uuid4().hex}))
    assert closed["payment"] is None and closed["closed_at"]
    check(client.get(f"/v1/shops/{shops[1]['id']}"))


def test_a_lot_its_stamps_its_export_and_the_files_are_the_documented_ones(start_function, peers, tokens):
    market = start_function("market", peer_url_template=peers.template)
    client, check = market.app.test_client(), documented(market.app)
    producer, owner = tokens("producer", "0100109106"), tokens("citizen", "020095001234")
    exporter = tokens("enterprise", "0100109106")

    def idem(h):
        return {**h, "Idempotency-Key": uuid.uuid4().hex}

    lot = check(client.post("/v1/lots", headers=idem(producer), json={
        "product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 120, "harvested_on": "2025-08-20",
        "producer_name": "HTX Na Chi Lăng", "origin": {"commune": CHI_LANG, "plot": "CL-07"},
        "certificates": [{"kind": "vietgap", "number": "VG-123", "valid_until": "2027-01-01"}],
        "packing": {"packed_on": "2025-08-21", "facility": "Kho Chi Lăng"}}))
    assert lot["status"] == "registered" and lot["export"] is None
    bare = check(client.post("/v1/lots", headers=idem(producer), json={
        "product": "Hồi khô", "unit": "kg", "harvested_on": "2025-08-20", "origin": {"commune": CHI_LANG}}))
    assert bare["packing"] is None and bare["quantity"] is None
    batch = check(client.post(f"/v1/lots/{lot['id']}/stamps", json={"count": 3}, headers=idem(producer)))
    assert len(batch["codes"]) == 3 and batch["last_serial"] == 2
    codes = check(client.get(batch["codes_url"], headers=producer))
    assert codes.decode().split() == batch["codes"]
    assert check(client.get(batch["sheet_url"], headers=producer)).startswith(b"%PDF")
    listed = check(client.get("/v1/lots", headers=producer))
    assert {lot["id"], bare["id"]} <= {i["id"] for i in listed["items"]}
    assert check(client.get(f"/v1/lots/{lot['id']}", headers=producer))["batches"][0]["batch"] == batch["batch"]

    # export_pending while the truck has not left, then exported once it has; a replaced link in the history
    states = []
    for status in ("queued", "exited"):
        did = "decl-" + uuid.uuid4().hex[:10]
        peers.declarations[did] = {"id": did, "owner": "0100109106", "direction": "export", "gate": "huu-nghi",
                                   "status": status, "timestamps": {"submitted": "2025-09-01T02:00:00Z",
                                                                    **({"exited": "2025-09-02T03:15:00Z"}
                                                                       if status == "exited" else {})}}
        linked = check(client.post(f"/v1/lots/{lot['id']}/export", json={"declaration": did}, headers=exporter))
        states.append(linked["status"])
    assert states == ["export_pending", "exported"] and linked["export_history"][0]["ended"] is None
    assert check(client.get(f"/v1/lots/{lot['id']}", headers=tokens("operator")))["status"] == "exported"

    photo = check(client.post("/v1/photos", data=jpeg(), headers={**owner, "Content-Type": "image/jpeg"}))
    assert check(client.get(f"/v1/photos/{photo['sha256']}")).startswith(b"\xff\xd8")
    shop = check(client.post("/v1/shops", headers=owner, json={
        "id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà bà Hoa", "kind": "household", "commune": CHI_LANG,
        "payment": {"bank_bin": "970415", "account_number": "113366668888", "account_name": "HOANG THI HOA"}}))
    assert check(client.get(f"/v1/shops/{shop['id']}/qr")).startswith(b"\x89PNG")


def test_a_reports_photo_a_download_the_widget_and_the_document_are_the_documented_ones(start_function, peers, rt):
    from lscloud import store
    from lscloud.auth import allow
    from lscloud.web import create_app, download_link

    reports = start_function("reports", peer_url_template=peers.template)
    client, check = reports.app.test_client(), documented(reports.app)
    photo = check(client.post("/v1/photos", data=jpeg(), headers={"Content-Type": "image/jpeg"}))
    assert check(client.get(f"/v1/photos/{photo['sha256']}")).startswith(b"\xff\xd8")
    assistant = start_function("assistant", peer_url_template=peers.template).app
    for app in (reports.app, assistant):
        assert documented(app)(app.test_client().get("/openapi.json"))["openapi"].startswith("3.1")
    assert b"<html" in documented(assistant)(assistant.test_client().get("/")).lower()

    # dossiers' and procedures' links: the runtime's own /downloads/{token}
    files = create_app("files-test", settings=rt.settings.replace(service="files-test"), downloads=True)

    @files.get("/v1/link/<sha256>")
    @allow("public")
    def make_link(sha256: str):
        return {"url": download_link(store.blobs("attachments"), sha256, 60, filename="to-khai.pdf")}

    files.testing = True
    pdf = store.blobs("attachments").put(b"%PDF-1.7\n%%EOF\n", "application/pdf").sha256
    url = files.test_client().get(f"/v1/link/{pdf}").get_json()["url"]
    assert documented(files)(files.test_client().get(url.removeprefix("http://localhost"))).startswith(b"%PDF")
