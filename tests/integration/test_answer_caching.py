"""What a browser or a cache may keep of the functions' answers, on real weed mini + nats-server.

- Reference data a web page asks for again and again (dossiers' working-day calendar, reports'
  service types in its own API and in Open311's JSON and XML, the market's shops, a shop's page and
  its stamp keys, every function's ``/openapi.json``) carries a strong ETag and a public
  ``Cache-Control``; the same request with that ETag is a bodiless 304.
- A caller's own data is never stored: an answer that does not say how it may be cached is
  ``no-store`` (a list of one's dossiers, a submission); a record at its version is private and
  revalidated, and the dossier, whose clock moves between its versions, is never answered 304 on
  its version alone.
"""

# ruff: noqa: F811 (pytest fixtures imported from dossiers_support are named as parameters)
from __future__ import annotations

import uuid

import pytest

from digital_support import ok
from dossiers_support import CITIZEN, dossier_peers, dossiers, pdf  # noqa: F401

pytestmark = pytest.mark.integration

REFERENCE = "public, max-age=300"
CHI_LANG = "06463"


def revalidates(client, path: str, cache_control: str, **headers) -> str:
    """The answer at ``path`` is public with a strong ETag, and asked again with it a 304: its ETag."""
    first = client.get(path, headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)[:300]
    etag = first.headers.get("ETag", "")
    assert etag.startswith('"') and len(etag) > 10, (path, dict(first.headers))
    assert first.headers["Cache-Control"] == cache_control, path
    again = client.get(path, headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"", path
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == cache_control
    changed = client.get(path, headers={**headers, "If-None-Match": '"not-this-one"'})
    assert changed.status_code == 200 and changed.data == first.data
    return etag


def test_dossiers_calendar_and_openapi_revalidate(dossiers):
    revalidates(dossiers, "/v1/calendar/2026", REFERENCE)
    doc = dossiers.get("/openapi.json")
    assert revalidates(dossiers, "/openapi.json", doc.headers["Cache-Control"]) == doc.headers["ETag"]
    assert doc.headers["Cache-Control"].startswith("public, max-age=")
    # behind the gateway the document names its prefix: another body, another tag
    prefixed = dossiers.get("/openapi.json", headers={"X-Forwarded-Prefix": "/dossiers"})
    assert prefixed.headers["ETag"] != doc.headers["ETag"]


def test_a_citizens_dossiers_are_never_stored_and_the_dossier_is_revalidated(dossiers, tokens):
    cit = tokens("citizen", CITIZEN)
    docs = []
    for code in ("to-khai", "giay-chung-sinh"):
        up = dossiers.post("/v1/attachments", data=pdf(code + uuid.uuid4().hex),
                           headers={**cit, "Content-Type": "application/pdf"})
        assert up.headers["Cache-Control"] == "no-store"
        docs.append({"code": code, "sha256": ok(up, 201)["sha256"]})
    body = {"id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983", "documents": docs}
    created = dossiers.post("/v1/dossiers", json=body, headers=cit)
    assert created.status_code == 201 and created.headers["Cache-Control"] == "private, no-cache"
    listed = dossiers.get("/v1/dossiers", headers=cit)
    assert ok(listed)["items"] and listed.headers["Cache-Control"] == "no-store"
    assert dossiers.get(f"/v1/dossiers/{body['id']}/audit", headers=cit).headers["Cache-Control"] == "no-store"
    one = dossiers.get(f"/v1/dossiers/{body['id']}", headers=cit)
    assert one.headers["ETag"] == created.headers["ETag"] and one.headers["Cache-Control"] == "private, no-cache"
    # its clock (working days left, overdue) moves without a new version: the version never stands for the body
    again = dossiers.get(f"/v1/dossiers/{body['id']}", headers={**cit, "If-None-Match": one.headers["ETag"]})
    assert again.status_code == 200 and "clock" in again.get_json()


@pytest.fixture
def reports(start_function, peers):
    return start_function("reports", peer_url_template=peers.template).app.test_client()


def test_reports_service_types_revalidate_in_every_format(reports):
    revalidates(reports, "/v1/services", REFERENCE)
    as_json = revalidates(reports, "/open311/v2/services.json", REFERENCE)
    as_xml = revalidates(reports, "/open311/v2/services.xml", REFERENCE)
    assert as_json != as_xml
    assert reports.get("/open311/v2/services.xml").mimetype == "text/xml"


@pytest.fixture
def market(start_function, peers):
    return start_function("market", peer_url_template=peers.template).app.test_client()


def test_market_shops_their_page_and_the_stamp_keys_revalidate(market, tokens):
    shop = {"id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà bà Hoa", "kind": "household",
            "commune": CHI_LANG, "village": "Thôn Đồng Bành",
            "payment": {"bank_bin": "970415", "account_number": "113366668888", "account_name": "HOANG THI HOA"}}
    opened = market.post("/v1/shops", json=shop, headers=tokens("citizen", "020095001234"))
    assert opened.status_code == 201 and opened.headers["Cache-Control"] == "no-store"
    listing = revalidates(market, f"/v1/shops?commune={CHI_LANG}", "public, max-age=60")
    page = revalidates(market, f"/v1/shops/{shop['id']}", "public, max-age=60")
    assert listing != page
    revalidates(market, "/v1/stamp-keys", "public, max-age=3600")
    # a token changes nothing of public data (and a shared cache may keep it: "public")
    assert revalidates(market, f"/v1/shops/{shop['id']}", "public, max-age=60", **tokens("citizen")) == page
