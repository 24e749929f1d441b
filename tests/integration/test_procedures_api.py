"""The procedure catalogue over HTTP, seeded into a real weed mini: search, filters, paging,
caching, form templates, the contract `dossiers` reads, and every endpoint with every role."""

from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlsplit

import pytest

from functions.procedures.function import models, seed as procedures_seed
from functions.procedures.function.app import create_app
from lscloud import runtime
from lscloud.runtime import Runtime

import role_matrix
from client_answers import ok

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seeded(base_settings, object_store):
    """One bucket seeded once for the module: its name and the seed's report."""
    bucket = f"t-proc-{uuid.uuid4().hex[:16]}"
    object_store.ensure_bucket(bucket)
    rt = runtime.install(Runtime(base_settings.replace(bucket=bucket)))
    try:
        result = procedures_seed.seed(rt)
    finally:
        runtime.uninstall()
    return {**result, "bucket": bucket}


@pytest.fixture
def function(start_function, seeded):
    """The procedures function started as Knative starts it, on the seeded bucket."""
    return start_function("procedures", bucket=seeded["bucket"])


@pytest.fixture
def client(function):
    return function.app.test_client()


def codes(page):
    return [p["code"] for p in page["items"]]


def test_seed_counts_and_reseed_is_stable(install, seeded):
    assert seeded["procedures"] >= 40 and seeded["fields"] >= 12 and seeded["templates"] >= 30
    again = procedures_seed.seed(install(bucket=seeded["bucket"]))
    assert again["fingerprint"] == seeded["fingerprint"]   # the catalogue's digest, the same data again


def test_the_seeds_version_follows_what_the_forms_bytes_depend_on(monkeypatch):
    """The fingerprint is hashed from the seed's inputs (no form drawn at start): the package, the
    fonts the forms embed, reportlab's version. Each of them changing is another version."""
    import reportlab

    from functions.procedures.function import templates

    first = procedures_seed.fingerprint()
    monkeypatch.setattr(templates, "font_identity", lambda: (("/elsewhere/DejaVuSans.ttf", 1),))
    other_fonts = procedures_seed.fingerprint()
    monkeypatch.setattr(reportlab, "Version", reportlab.Version + ".x")
    other_reportlab = procedures_seed.fingerprint()
    assert len({first, other_fonts, other_reportlab}) == 3


def test_the_contract_dossiers_reads(client):
    ks = ok(client.get("/v1/procedures/HT-KS"))
    assert set(ks) == {"code", "national_code", "name", "name_en", "field", "field_name", "level", "agency",
                       "online_mode", "documents", "fees", "processing_days", "same_day_cutoff", "steps", "legal_basis",
                       "results", "sources"}
    assert (ks["level"], ks["agency"], ks["processing_days"], ks["same_day_cutoff"]) == ("commune", "ubnd-xa", 0, "15:00")
    assert ks["national_code"] == "1.001193"
    assert [(s["code"], s["agency"], s["unit_level"], s["days"]) for s in ks["steps"]] == [
        ("receive", "ubnd-xa", "commune", 0), ("verify", "ubnd-xa", "commune", 0), ("sign", "ubnd-xa", "commune", 0)]
    assert {s["fact"] for s in ks["sources"]} >= {"national_code", "level", "processing_days"}
    doc = ks["documents"][0]
    assert set(doc) == {"code", "name", "name_en", "required", "copies", "template"}
    assert set(doc["template"]) == {"sha256", "media_type", "filename"}
    hkd = ok(client.get("/v1/procedures/DKKD-HKD"))
    assert hkd["level"] == "commune" and hkd["processing_days"] == 3 and {s["agency"] for s in hkd["steps"]} == {"ubnd-xa"}
    xd = ok(client.get("/v1/procedures/XD-GPXD"))
    assert (xd["level"], xd["agency"], xd["processing_days"]) == ("commune", "ubnd-xa", 15)
    assert [(s["code"], s["agency"], s["days"]) for s in xd["steps"]] == [
        ("receive", "ubnd-xa", 1), ("appraise", "ubnd-xa", 12), ("sign", "ubnd-xa", 2)]
    bd = ok(client.get("/v1/procedures/DD-BD"))
    assert bd["processing_days"] == 10 and [s["agency"] for s in bd["steps"]] == [
        "public-service-centre", "so-nong-nghiep-moi-truong", "tax", "so-nong-nghiep-moi-truong"]
    missing = client.get("/v1/procedures/XX-NOPE")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert client.get("/v1/procedures/not a code").status_code == 400


@pytest.mark.parametrize("q,first", [("khai sinh", "HT-KS"), ("KHAI SINH", "HT-KS"), ("Khai Sinh", "HT-KS"),
                                     ("giay phep xay dung", "XD-GPXD"), ("giấy phép xây dựng", "XD-GPXD"),
                                     ("ho kinh doanh", "DKKD-HKD"), ("ly lich tu phap", "LLTP-CD"),
                                     ("doi bang lai", None), ("doi giay phep lai xe", "GT-DGPLX"),
                                     ("thủ tục đăng ký kết hôn", "HT-KH"), ("hd-ks", None), ("HT-KS", "HT-KS"),
                                     ("birth registration", "HT-KS"), ("mai tang", "BTXH-MTP"),
                                     ("1.001193", "HT-KS"), ("1.014199", "LD-GPLD")])
def test_search_ignores_diacritics_and_case_and_ranks_names_first(client, q, first):
    page = ok(client.get("/v1/procedures", query_string={"q": q}))
    if first is None:
        assert page["total"] == 0 or page["items"][0]["code"] != "HT-KS"
    else:
        assert page["items"][0]["code"] == first, (q, codes(page)[:5])


def test_name_beats_field_beats_documents(client):
    # "hộ tịch" is in two names (bản sao trích lục hộ tịch; thay đổi … thông tin hộ tịch) and is the
    # field of every civil status procedure: the two by name come first, then the rest of the field
    ranked = codes(ok(client.get("/v1/procedures", query_string={"q": "ho tich", "limit": 100})))
    assert set(ranked[:2]) == {"HT-BSTL", "HT-TDCC"} and "HT-KS" in ranked[2:]
    # "tờ khai" is only in documents: found there, after nothing (no name or field has it)
    by_doc = codes(ok(client.get("/v1/procedures", query_string={"q": "to khai", "limit": 100})))
    assert "HT-KS" in by_doc and "CT-BSBC" not in by_doc
    # a word in a name outranks the same word found only in a document
    giay = codes(ok(client.get("/v1/procedures", query_string={"q": "giay phep lao dong", "limit": 100})))
    assert giay[0] == "LD-GPLD"


def test_filters_and_paging(client):
    commune = ok(client.get("/v1/procedures", query_string={"level": "commune", "limit": 100}))
    assert commune["total"] > 10 and {p["agency"] for p in commune["items"]} == {"ubnd-xa"}
    full_land = ok(client.get("/v1/procedures", query_string={"field": "dat-dai", "online_mode": "partial"}))
    assert set(codes(full_land)) >= {"DD-GCN", "DD-BD"} and all(p["online_mode"] == "partial" for p in full_land["items"])
    centre = ok(client.get("/v1/procedures", query_string={"agency": "public-service-centre", "limit": 100}))
    assert "DD-BD" in codes(centre) and "HT-KS" not in codes(centre) and "XD-GPXD" not in codes(centre)
    assert {"HT-KS", "HT-KH"} <= set(codes(ok(client.get("/v1/procedures?fee=free&limit=100"))))
    seen, token, pages = [], None, 0
    while True:
        page = ok(client.get("/v1/procedures", query_string={"limit": 7, **({"page_token": token} if token else {})}))
        seen += codes(page)
        pages += 1
        token = page["next_page_token"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == page["total"] >= 40 and pages == -(-page["total"] // 7)
    first = ok(client.get("/v1/procedures?limit=7"))
    other = client.get("/v1/procedures", query_string={"limit": 7, "page_token": first["next_page_token"], "level": "commune"})
    assert other.status_code == 400 and other.get_json()["errors"][0]["field"] == "page_token"
    for bad in ({"level": "district"}, {"field": "Not A Code"}, {"limit": "0"}, {"online_mode": "maybe"}, {"q": "x" * 101}):
        r = client.get("/v1/procedures", query_string=bad)
        assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == next(iter(bad)), bad


def test_fields_and_caching(client):
    fields = ok(client.get("/v1/fields"))
    assert fields["total"] >= 12 and sum(f["procedures"] for f in fields["items"]) >= 40
    for path in ("/v1/fields", "/v1/procedures?q=khai+sinh", "/v1/procedures/HT-KS"):
        r = client.get(path)
        assert r.headers["Cache-Control"] == "public, max-age=300" and r.headers["ETag"]
        again = client.get(path, headers={"If-None-Match": r.headers["ETag"]})
        assert again.status_code == 304 and again.get_data() == b""


def test_form_templates_are_real_pdfs_behind_short_lived_links(function, client):
    r = client.get("/v1/procedures/HT-KS/documents/to-khai/template")
    assert r.status_code == 303 and r.headers["Cache-Control"] == "no-store"
    location = urlsplit(r.headers["Location"])
    assert (location.scheme, location.netloc) == ("http", "localhost") and location.path.startswith("/downloads/")
    pdf = client.get(location.path)  # no token: the link is the credential
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    assert pdf.data.startswith(b"%PDF-1.4") and pdf.data.rstrip().endswith(b"%%EOF")
    assert "filename=ht-ks-to-khai.pdf" in pdf.headers["Content-Disposition"]
    link = ok(client.get("/v1/procedures/HT-KS/documents/to-khai/template?redirect=false"))
    assert hashlib.sha256(pdf.data).hexdigest() == link["sha256"] and link["media_type"] == "application/pdf"
    assert link["expires_in"] == function.settings.download_link_ttl_s and link["filename"] == "ht-ks-to-khai.pdf"
    assert client.get("/v1/procedures/HT-KS/documents/giay-chung-sinh/template").status_code == 404  # no form
    nope = client.get("/v1/procedures/HT-KS/documents/nope/template")
    assert nope.status_code == 404 and nope.get_json()["title"] == "Template not found"
    assert nope.get_json()["errors"] == [{"field": "/doc", "message": "has no such document"}]
    malformed = client.get("/v1/procedures/HT-KS/documents/Not_A_Doc/template").get_json()
    assert (malformed["status"], malformed["title"], malformed["errors"][0]["field"]) == \
        (400, "Malformed document code", "/doc")
    assert client.get("/v1/procedures/HT-KS/documents/..%2Fx/template").status_code in (400, 404)


def test_not_seeded_is_503(rt):
    app = create_app(rt.settings)  # the test's own, empty bucket
    r = app.test_client().get("/v1/procedures")
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    body = r.get_json()
    assert body["type"].endswith("/not-seeded") and body["title"] == "Catalogue not loaded"
    assert app.test_client().get("/v1/procedures/HT-KS").status_code == 404


def test_every_endpoint_with_every_role(client, keys):
    """Held to functions/procedures/access.yaml (every route public and read-only), not to @allow."""
    app = client.application
    assert role_matrix.check(app, "procedures", keys[0], samples={"code": "HT-KS", "doc": "to-khai"}) >= 5 * 14
    for path in ("/v1/procedures", "/v1/procedures/HT-KS", "/v1/fields"):
        for method in ("post", "put", "delete"):
            assert getattr(client, method)(path).status_code == 405


def test_the_snapshot_cache_is_revalidated_on_every_request(client):
    """A re-seed (here: a smaller snapshot written behind the app's back) is served at once."""
    before = ok(client.get("/v1/fields"))["total"]
    snap = models.CatalogueSnapshot.get(models.SNAPSHOT)
    try:
        models.CatalogueSnapshot(models.SNAPSHOT, items=snap.items[:1], index=snap.index[:1], fields=snap.fields[:1],
                                 fingerprint="test", size=1).save(overwrite=True)
        assert ok(client.get("/v1/fields"))["total"] == 1
        assert ok(client.get("/v1/procedures"))["total"] == 1
    finally:
        snap.save(overwrite=True)
    assert ok(client.get("/v1/fields"))["total"] == before


def test_odd_path_ids_get_a_problem_never_a_5xx(client):
    from path_ids import assert_no_route_fails_on_odd_ids

    assert assert_no_route_fails_on_odd_ids(client.application, lambda role: {}) >= 10
