"""The directory over HTTP, seeded into a real weed mini: lists, gets, search, paging, caching."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from functions.directory.function import models, seed as directory_seed
from functions.directory.function.app import create_app
from lscloud import runtime
from lscloud.runtime import Runtime

import role_matrix

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def seeded(base_settings, object_store):
    """One bucket seeded once for the module (every test here only reads it): its name and the seed's report."""
    bucket = f"t-dir-{uuid.uuid4().hex[:16]}"
    object_store.ensure_bucket(bucket)
    rt = runtime.install(Runtime(base_settings.replace(bucket=bucket)))
    try:
        started = time.monotonic()
        result = directory_seed.seed(rt)
        result["took_s"] = time.monotonic() - started
    finally:
        runtime.uninstall()
    return {**result, "bucket": bucket}


@pytest.fixture
def client(start_function, seeded):
    """The directory started as Knative starts it, on the seeded bucket."""
    return start_function("directory", bucket=seeded["bucket"]).app.test_client()


def _json(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    return resp.get_json()


def _all(client, path):
    items, token, pages = [], None, 0
    while True:
        page = _json(client.get(path, query_string={"limit": 20, **({"page_token": token} if token else {})}))
        items += page["items"]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            return items, page["total"], pages


def test_seed_reports_counts_and_stores_snapshots(install, seeded):
    rt = install(bucket=seeded["bucket"])
    assert {k: seeded[k] for k in ("units", "agencies", "border-gates", "post-offices")} == \
           {"units": 66, "agencies": seeded["agencies"], "border-gates": 6, "post-offices": 66}
    assert seeded["agencies"] >= 65 + 20
    assert seeded["fingerprint"] == directory_seed.seed_fingerprint() == directory_seed.fingerprint()
    snap = models.DirectorySnapshot.get("units")
    assert snap.size == 66 and snap.items[0]["code"] == "20"
    assert models.Unit.get("06040").data["name"] == "Xã Thất Khê"
    # seeding again replaces rather than conflicts
    assert directory_seed.seed(rt)["units"] == 66
    print(f"seed took {seeded['took_s']:.2f}s")


def test_units_list_pages_and_get(client):
    items, total, pages = _all(client, "/v1/units")
    assert total == 66 and len(items) == 66 and pages == 4
    assert items[0]["code"] == "20" and items[0]["level"] == "province"
    assert len({u["code"] for u in items}) == 66
    first = _json(client.get("/v1/units"))
    assert len(first["items"]) == 50 and first["total"] == 66 and first["next_page_token"]
    by_offset = _json(client.get("/v1/units?offset=60&limit=10"))
    assert [u["code"] for u in by_offset["items"]] == [u["code"] for u in items[60:]]
    unit = _json(client.get("/v1/units/06040"))
    assert unit["name"] == "Xã Thất Khê" and unit["type"] == "xa" and unit["parent_code"] == "20"
    assert _json(client.get("/v1/units/20"))["name"] == "Tỉnh Lạng Sơn"


@pytest.mark.parametrize("q,first", [("lang son", "Tỉnh Lạng Sơn"), ("dong dang", "Xã Đồng Đăng"),
                                     ("ĐỒNG ĐĂNG", "Xã Đồng Đăng"), ("That Khe", "Xã Thất Khê")])
def test_units_search(client, q, first):
    page = _json(client.get("/v1/units", query_string={"q": q}))
    assert page["items"][0]["name"] == first


def test_units_filter_by_type(client):
    wards = _json(client.get("/v1/units?type=phuong"))
    assert wards["total"] == 4 and {u["type"] for u in wards["items"]} == {"phuong"}
    communes = _json(client.get("/v1/units?type=xa&limit=100"))
    assert communes["total"] == 61 and communes["next_page_token"] is None


def test_page_token_refuses_other_filters(client):
    token = _json(client.get("/v1/units?type=xa&limit=5"))["next_page_token"]
    assert _json(client.get("/v1/units", query_string={"type": "xa", "limit": 5, "page_token": token}))["items"]
    resp = client.get("/v1/units", query_string={"type": "phuong", "page_token": token})
    assert resp.status_code == 400 and resp.mimetype == PROBLEM
    assert resp.get_json()["errors"][0]["field"] == "page_token"


@pytest.mark.parametrize("query,field", [("limit=0", "limit"), ("limit=101", "limit"), ("type=huyen", "type"),
                                         ("offset=-3", "offset"), ("page_token=%21%21", "page_token")])
def test_bad_list_parameters(client, query, field):
    resp = client.get("/v1/units?" + query)
    assert resp.status_code == 400 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["errors"][0]["field"] == field
    assert body["title_vi"] and body["detail_vi"]


@pytest.mark.parametrize("query,field,message_vi", [
    ("limit=0", "limit", "Tham số 'limit' phải là số nguyên từ 1 đến 100."),
    ("limit=abc", "limit", "Tham số 'limit' phải là số nguyên từ 1 đến 100."),
    ("page_token=" + "A" * 201, "page_token", "Tham số 'page_token' chỉ được có tối đa 200 ký tự."),
    ("page_token=ab%01", "page_token", "Tham số 'page_token' không được chứa ký tự điều khiển."),
    ("page_token=%21%21", "page_token", "Tham số 'page_token' không phải mã trang do danh sách này cấp; "
                                        "hãy tải lại danh sách từ đầu (bỏ page_token)."),
], ids=["limit-0", "limit-abc", "page_token-too-long", "page_token-control", "page_token-unissued"])
def test_bad_list_parameters_are_told_in_vietnamese(client, query, field, message_vi):
    # a citizen's app shows errors[].message_vi next to the field: the title alone says nothing of what to fix
    resp = client.get("/v1/units?" + query)
    assert resp.status_code == 400 and resp.mimetype == PROBLEM
    [item] = resp.get_json()["errors"]
    assert item["field"] == field and item["message"] and item["message_vi"] == message_vi


def test_agencies(client):
    items, total, _ = _all(client, "/v1/agencies")
    by = {a["code"]: a for a in items}
    assert total == len(items) == len(by)
    for code in ("customs", "border-guard", "health-quarantine", "animal-quarantine", "plant-quarantine",
                 "traffic-police", "tax", "ezone-board"):
        assert by[code]["roles"]["border_clearance"] is True
    assert by["so-tu-phap"]["kind"] == "department"
    assert by["ubnd-06040"]["kind"] == "commune-committee" and by["ubnd-06040"]["unit_code"] == "06040"
    clearing = _json(client.get("/v1/agencies?role=border_clearance&limit=100"))
    assert {a["code"] for a in clearing["items"]} >= {"customs", "tax", "ezone-board"}
    assert all(a["roles"]["border_clearance"] for a in clearing["items"])
    committees = _json(client.get("/v1/agencies?kind=commune-committee&limit=100"))
    assert committees["total"] == 65
    at_gate = _json(client.get("/v1/agencies?gate=huu-nghi&limit=100"))
    assert "customs-huu-nghi" in {a["code"] for a in at_gate["items"]}
    assert _json(client.get("/v1/agencies/customs"))["name_en"].startswith("Customs")
    assert _json(client.get("/v1/agencies", query_string={"q": "hai quan"}))["items"][0]["code"].startswith("customs")


def test_border_gates(client):
    page = _json(client.get("/v1/border-gates"))
    codes = {g["code"] for g in page["items"]}
    assert {"huu-nghi", "tan-thanh", "coc-nam", "chi-ma", "dong-dang-rail", "binh-nghi"} <= codes
    huu_nghi = _json(client.get("/v1/border-gates/huu-nghi"))
    assert huu_nghi["counterpart"]["name_zh"] == "友谊关"
    assert huu_nghi["hours"]["timezone"] == "Asia/Ho_Chi_Minh"
    assert huu_nghi["capacity"]["export_per_hour"] > 0
    unit = _json(client.get(f"/v1/units/{huu_nghi['unit_code']}"))
    assert unit["name"] == "Xã Đồng Đăng"
    rail = _json(client.get("/v1/border-gates?mode=rail"))
    assert [g["code"] for g in rail["items"]] == ["dong-dang-rail"]
    assert _json(client.get("/v1/border-gates", query_string={"q": "Pingxiang"}))["total"] >= 1
    # Tân Thanh and Cốc Nam clear as routes (lối thông quan) of the Hữu Nghị international gate
    assert huu_nghi["clearance_routes"] == ["tan-thanh", "coc-nam"]
    routes = _json(client.get("/v1/border-gates", query_string={"parent_gate": "huu-nghi"}))
    assert [g["code"] for g in routes["items"]] == ["tan-thanh", "coc-nam"]
    tan_thanh = _json(client.get("/v1/border-gates/tan-thanh"))
    assert (tan_thanh["type"], tan_thanh["parent_gate"]) == ("clearance-route", "huu-nghi")
    assert any(s["fact"] == "parent_gate" and s["verified"] for s in tan_thanh["sources"])


def test_post_offices(client):
    items, total, _ = _all(client, "/v1/post-offices")
    assert total == 66
    in_that_khe = _json(client.get("/v1/post-offices?unit=06040"))
    assert [p["code"] for p in in_that_khe["items"]] == ["bd-06040"]
    assert in_that_khe["items"][0]["soft_atm"] is True
    main = _json(client.get("/v1/post-offices/bd-20"))
    assert main["kind"] == "provincial" and main["cash_float_limit_vnd"] > 0
    soft = _json(client.get("/v1/post-offices?soft_atm=true&limit=100"))
    assert soft["total"] == 62 and all(p["soft_atm"] for p in soft["items"])
    assert client.get("/v1/post-offices?unit=6040").status_code == 400


@pytest.mark.parametrize("path,field", [("/v1/units/99999", "/code"), ("/v1/agencies/nobody", "/code"),
                                        ("/v1/border-gates/atlantis", "/code"), ("/v1/post-offices/bd-99999", "/code")])
def test_unknown_codes_are_404_problems(client, path, field):
    resp = client.get(path)
    assert resp.status_code == 404 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["status"] == 404 and body["errors"][0]["field"] == field
    assert body["type"].endswith("/not-found") and body["title"].endswith(" not found")
    assert body["title_vi"].startswith("Không tìm thấy") and body["detail"]
    assert "ETag" not in resp.headers


@pytest.mark.parametrize("path", ["/v1/units/6040", "/v1/units/%2E%2E", "/v1/agencies/Customs",
                                  "/v1/post-offices/06040", "/v1/border-gates/a_b", "/v1/units/" + "1" * 300])
def test_malformed_codes_are_400_problems(client, path):
    resp = client.get(path)
    assert resp.status_code == 400 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["errors"][0]["field"] == "/code" and len(body["detail"]) < 200
    assert body["type"].endswith("/invalid-parameter") and body["title"].startswith("Malformed ")


def test_paths_that_walk_out_are_not_found(client):
    resp = client.get("/v1/units/..%2F..%2Fdirectory-snapshots%2Funits")
    assert resp.status_code == 404 and resp.mimetype == PROBLEM


def test_etag_cache_control_and_304(client):
    for path in ("/v1/units", "/v1/units/06040", "/v1/agencies?role=border_clearance", "/v1/border-gates/tan-thanh",
                 "/v1/post-offices?unit=06184"):
        resp = client.get(path)
        assert resp.status_code == 200
        etag = resp.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert resp.headers["Cache-Control"] == "public, max-age=300"
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.get_data() == b""
        assert again.headers["ETag"] == etag
        other = client.get(path, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200
    # different content, different tag
    assert client.get("/v1/units/06040").headers["ETag"] != client.get("/v1/units/06184").headers["ETag"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/v1/units", "/v1/units/06040", "/v1/agencies/customs", "/v1/border-gates",
                                  "/v1/post-offices/bd-20"])
def test_writes_are_405_problems(client, method, path):
    resp = getattr(client, method)(path, json={"name": "x"})
    assert resp.status_code == 405 and resp.mimetype == PROBLEM
    assert "GET" in resp.headers["Allow"]


def test_unseeded_store_answers_503(rt):
    app = create_app(rt.settings)  # the test's own, empty bucket
    resp = app.test_client().get("/v1/units")
    assert resp.status_code == 503 and resp.mimetype == PROBLEM and resp.headers["Retry-After"] == "30"
    body = resp.get_json()
    assert body["type"].endswith("not-seeded") and body["title"] == "Directory data not loaded"
    assert app.test_client().get("/v1/units/06040").status_code == 404  # an item that is not there


def test_openapi_documents_routes_and_response_schemas(client):
    doc = _json(client.get("/openapi.json"))
    paths = doc["paths"]
    for path in ("/v1/units", "/v1/units/{code}", "/v1/agencies", "/v1/agencies/{code}", "/v1/border-gates",
                 "/v1/border-gates/{code}", "/v1/post-offices", "/v1/post-offices/{code}"):
        op = paths[path]["get"]
        assert op["summary"] and op["security"] == []
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert json.dumps(schema).count("#/components/schemas/directory.") >= 1
    assert "directory.border-gate" in doc["components"]["schemas"]
    assert {p["name"] for p in paths["/v1/units"]["get"]["parameters"]} >= {"q", "type", "limit", "page_token"}
    assert paths["/v1/units"]["get"]["summary"].startswith("List the province")
    # the runtime's @responds / @query_params: item schemas, the page envelope, caching, q
    from openapi_spec_validator import validate

    validate(doc)
    comps = doc["components"]["schemas"]
    assert comps["directory.unit"]["title"] == "Unit" and "$id" not in comps["directory.unit"]
    assert comps["Page"]["required"] == ["items", "total", "next_page_token"]
    unit = paths["/v1/units/{code}"]["get"]
    (code,) = unit["parameters"]   # documented with the unit's own code rule; a malformed one is a 400 naming it
    assert (code["name"], code["in"], code["schema"]["pattern"]) == ("code", "path", r"^(\d{2}|\d{5})$")
    assert unit["responses"]["200"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/directory.unit"}
    assert set(unit["responses"]["200"]["headers"]) == {"ETag", "Cache-Control"}
    assert set(unit["responses"]) == {"200", "304", "400", "404", "503", "default"}  # the runtime's problems too
    assert unit["responses"]["404"]["content"]["application/problem+json"]["example"]["title_vi"]
    units = paths["/v1/units"]["get"]
    page = units["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["allOf"][0] == {"$ref": "#/components/schemas/Page"}
    assert page["allOf"][1]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/directory.unit"}
    q = next(p for p in units["parameters"] if p["name"] == "q")
    assert q["in"] == "query" and q["required"] is False and "diacritics" in q["description"]


def test_odd_path_ids_get_a_problem_never_a_5xx(client):
    from path_ids import assert_no_route_fails_on_odd_ids

    assert assert_no_route_fails_on_odd_ids(client.application, lambda role: {}) >= 10


def test_every_endpoint_with_every_role(client, keys):
    """Held to functions/directory/access.yaml (every route public and read-only), not to @allow."""
    assert role_matrix.check(client.application, "directory", keys[0]) >= 8 * 14


def test_a_unit_is_served_from_memory_within_the_bound_then_revalidated(start_function, settings, monkeypatch):
    """Reference data read on every request costs no S3 call within LSCLOUD_PEER_FRESH_S; after it,
    one conditional GET (a 304 when unchanged). A write in this replica is read back at once, another
    replica's within the bound (issue 11)."""
    import lscloud.freshness as freshness_mod
    from functions.directory.function import units
    from lscloud import store
    from lscloud.store import ObjectStore
    from store_calls import counting

    clock = [1000.0]
    monkeypatch.setattr(freshness_mod.time, "monotonic", lambda: clock[0])
    client = start_function("directory", peer_fresh_s=5).app.test_client()
    unit = units.by_code()["06040"]
    models.Unit(code="06040", name=unit["name"], type=unit["type"], data=unit).save()

    with counting() as calls:
        assert _json(client.get("/v1/units/06040")) == unit
    assert calls["get"] == 1
    with counting() as calls:
        for _ in range(20):
            assert _json(client.get("/v1/units/06040")) == unit
    assert sum(calls.counts.values()) == 0, calls

    clock[0] += 5.5   # past the bound: asked again, conditionally
    with counting() as calls:
        assert _json(client.get("/v1/units/06040")) == unit
        assert _json(client.get("/v1/units/06040")) == unit
    assert calls["get"] == 1 and store.connection()[0]._reference.revalidated == 1

    # a write in this replica: read back at once, without asking
    item = models.Unit.get("06040")
    item.data = {**unit, "short_name": "Thất Khê (mới)"}
    item.save()
    with counting() as calls:
        assert _json(client.get("/v1/units/06040"))["short_name"] == "Thất Khê (mới)"
    assert calls["get"] == 0

    # another replica's write (its own store connection): served here once the bound has passed
    other = ObjectStore.from_settings(settings)
    body = json.dumps({**item.to_dict(), "data": {**unit, "short_name": "Thất Khê (khác)"}}).encode()
    other.put(settings.bucket, models.Unit._key_for("06040"), body)
    assert _json(client.get("/v1/units/06040"))["short_name"] == "Thất Khê (mới)"   # within the bound
    clock[0] += 5.5
    with counting() as calls:
        assert _json(client.get("/v1/units/06040"))["short_name"] == "Thất Khê (khác)"
    assert calls["get"] == 1
