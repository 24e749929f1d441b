"""The directory through a real `lscloud up`: every endpoint via the gateway, the pages in Chromium.

One cloud for the module with only the project's functions/ (as a user runs it), stopped at
the end with SIGTERM; the last test checks nothing it started is left.
"""

from __future__ import annotations

import shutil

import httpx
import psutil
import pytest
from openapi_spec_validator import validate

from localcloud import process_tree, running

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "directory-cloud") as c:
        c.tree = [p.pid for p in process_tree(c.proc.pid)]
        yield c


@pytest.fixture(scope="module")
def api(cloud):
    with httpx.Client(base_url=cloud.gateway + "/directory", timeout=30) as client:
        yield client


def test_units_list_holds_the_province_and_its_65_communes(api):
    body = api.get("/v1/units", params={"limit": 100}).json()
    assert body["total"] == 66
    levels = [u["level"] for u in body["items"]]
    assert levels.count("province") == 1 and levels.count("commune") == 65
    assert {u["type"] for u in body["items"] if u["level"] == "commune"} == {"xa", "phuong"}


def test_units_search_ignores_diacritics_and_case(api):
    for q in ("dong dang", "ĐỒNG ĐĂNG", "Dong Dang"):
        names = [u["name"] for u in api.get("/v1/units", params={"q": q}).json()["items"]]
        assert "Xã Đồng Đăng" in names, q
    names = [u["name"] for u in api.get("/v1/units", params={"q": "lang son"}).json()["items"]]
    assert "Tỉnh Lạng Sơn" in names


def test_units_paging_walks_every_unit_once(api):
    seen, token = [], None
    while True:
        params = {"limit": 20, **({"page_token": token} if token else {})}
        page = api.get("/v1/units", params=params).json()
        seen += [u["code"] for u in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == 66


def test_one_unit_with_etag_and_304(api):
    first = api.get("/v1/units/20")
    assert first.status_code == 200 and first.json()["name"] == "Tỉnh Lạng Sơn"
    assert "max-age" in first.headers["cache-control"]
    assert len(first.headers.get_list("date")) == 1  # one Date, written by the server
    again = api.get("/v1/units/20", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_unknown_and_malformed_codes_are_problems_naming_the_field(api):
    missing = api.get("/v1/units/99999")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["errors"][0]["field"] == "/code" and missing.json()["title_vi"]
    bad = api.get("/v1/units/..%2F..%2Fsecrets")
    assert bad.status_code in (400, 404) and bad.headers["content-type"].startswith("application/problem+json")


def test_agencies_carry_the_border_bodies_usable_as_token_claims(api):
    codes = {a["code"] for a in api.get("/v1/agencies", params={"limit": 100}).json()["items"]}
    assert {"customs", "border-guard", "health-quarantine", "animal-quarantine", "plant-quarantine",
            "traffic-police", "tax", "ezone-board"} <= codes
    assert api.get("/v1/agencies/customs").json()["code"] == "customs"


def test_border_gates_have_counterparts_hours_and_capacity(api):
    gates = {g["code"]: g for g in api.get("/v1/border-gates").json()["items"]}
    assert {"huu-nghi", "tan-thanh", "coc-nam", "chi-ma", "dong-dang-rail"} <= set(gates)
    huu_nghi = api.get("/v1/border-gates/huu-nghi").json()
    assert huu_nghi["counterpart"]["name_zh"] == "友谊关"
    assert huu_nghi["capacity"]["export_per_hour"] > 0 and huu_nghi["hours"]["timezone"] == "Asia/Ho_Chi_Minh"


def test_post_offices_cover_every_commune(api):
    body = api.get("/v1/post-offices", params={"limit": 100}).json()
    units = {p["unit_code"] for p in body["items"]}
    assert len(units) == 65
    one = body["items"][0]
    assert api.get(f"/v1/post-offices/{one['code']}").json() == one
    in_unit = api.get("/v1/post-offices", params={"unit": one["unit_code"]}).json()["items"]
    assert one["code"] in [p["code"] for p in in_unit]


def test_writes_are_refused(api):
    resp = api.post("/v1/units", json={"code": "99999"})
    assert resp.status_code == 405 and "GET" in resp.headers["allow"]


def test_openapi_through_the_gateway_is_valid(api):
    doc = api.get("/openapi.json").json()
    validate(doc)
    assert "/v1/units/{code}" in doc["paths"]


def test_gateway_never_routes_the_event_endpoint(cloud):
    resp = httpx.post(cloud.gateway + "/directory/events", json={}, timeout=10)
    assert resp.status_code == 404


# -- pages, in headless Chromium ------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_docs_page_lists_every_operation_with_who_may_call(cloud, browser):
    page = browser.new_page()
    page.goto(cloud.gateway + "/docs?fn=directory")
    page.wait_for_selector(".opblock-summary-path")
    paths = [p.replace("\u200b", "") for p in page.locator(".opblock-summary-path").all_inner_texts()]
    assert "/v1/units/{code}" in paths and "/v1/border-gates" in paths
    op = page.locator(".opblock").filter(has=page.locator(".opblock-summary-path", has_text="/v1/border-gates")).first
    op.locator(".opblock-summary").click()
    op.get_by_text("anyone / mọi người").wait_for()
    assert page.locator(".errors-wrapper").count() == 0


def test_index_page_shows_directory_healthy(cloud, browser):
    page = browser.new_page()
    page.goto(cloud.gateway + "/")
    row = page.locator("tr", has_text="directory")
    assert "healthy" in row.inner_text()
    page.close()


def test_sigterm_leaves_no_process(cloud):
    cloud.terminate()
    assert cloud.proc.returncode == 0
    alive = [pid for pid in cloud.tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
