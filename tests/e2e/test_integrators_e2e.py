"""For the people who integrate (issue 19), through one `lscloud up` of every function and peer:

- every function's OpenAPI document validates as OpenAPI 3.1, documents its problem answers and
  has an example for every request body;
- a typed client generated from each document (openapi-python-client, into a temporary folder at
  test time, so it is always the documents of today and nobody commits generated code) builds and
  calls one endpoint of each function through the gateway;
- /docs renders every function's operations in headless Chromium from assets the gateway serves,
  and "Try it out" calls the local cloud.

The functions are read from the gateway's listing: a function added later is covered as it lands.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys

import httpx
import pytest


from localcloud import ROOT, running, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
METHODS = ("get", "post", "put", "patch", "delete")
# routes that are not an integrator's: event delivery (never through the gateway) and the document itself
NOT_FOR_CLIENTS = ("/openapi.json",)


def for_clients(path: str, op: dict) -> bool:
    """Not the document itself, nor what only the platform's event sender calls (/events, its dead letters)."""
    return path not in NOT_FOR_CLIENTS and op.get("x-lscloud-access", {}).get("roles") != ["eventing"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "integrators", [ROOT / "functions", ROOT / "peers"]) as c:
        yield c


@pytest.fixture(scope="module")
def documents(cloud) -> dict[str, dict]:
    def healthy():  # a function that lost a port race restarts: wait for it rather than fail
        listing = httpx.get(cloud.gateway + "/", timeout=30).json()
        return listing if listing["healthy"] else None

    listing = wait_for(healthy, 180, "every function to be healthy", cloud.proc, cloud.log)
    names = sorted(f["name"] for f in listing["functions"])
    assert "softatm" in names and "directory" in names
    out = {}
    for name in names:
        r = httpx.get(f"{cloud.gateway}/{name}/openapi.json", timeout=30)
        assert r.status_code == 200, name
        out[name] = r.json()
    return out


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_document_is_valid_openapi_3_1_and_documents_its_errors(documents):
    from openapi_spec_validator import validate

    for name, doc in documents.items():
        validate(doc)
        assert doc["openapi"].startswith("3.1"), name
        assert doc["servers"] == [{"url": f"/{name}", "description": "through the gateway / qua cổng"}]
        assert "title_vi" in doc["info"]["description"] and f"Hàm `{name}`" in doc["info"]["description"], name
        for path, method, op in operations(doc):
            where = f"{name} {method.upper()} {path}"
            responses = op["responses"]
            assert "default" in responses, where
            if not for_clients(path, op):
                continue
            problems = [c for c in responses if c[0] in "45"]
            assert problems, where
            for code in problems:
                if "/open311/" in path:   # Open311's own error format (GeoReport v2), not problem+json
                    assert "application/json" in responses[code]["content"], where
                    continue
                media = responses[code]["content"]["application/problem+json"]
                assert media["schema"] == {"$ref": "#/components/schemas/Problem"}, where
                assert media["example"]["status"] == int(code) and media["example"]["title_vi"], where
            body = op.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                assert "example" in body["application/json"], f"{where}: no example"
            for media, entry in body.items():   # an upload: its media type and its size limit, as served
                if media not in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data"):
                    assert entry.get("schema", {}).get("maxLength"), f"{where}: {media} without its limit"
            assert " / " in op.get("description", ""), f"{where}: who may call, in both languages"


def _module_name(operation_id: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", operation_id.lower()).strip("_")


def _candidates(doc: dict):
    """GET operations a client can call without inventing an identifier: public ones first."""
    found = []
    for path, method, op in operations(doc):
        if method != "get" or not for_clients(path, op) or "{" in path:
            continue
        if any(p.get("required") for p in op.get("parameters", [])):
            continue
        if "content" not in op["responses"].get("200", {}):
            continue  # only a typed answer proves the schema ("2XX" without @responds is not one)
        access = op.get("x-lscloud-access") or {}
        roles = [r for r in access.get("roles", []) if r != "public"]
        public = "public" in access.get("roles", [])
        if not public and not roles:
            continue  # partner-signed only
        found.append((0 if public else 1, path, op["operationId"], None if public else roles[0]))
    return sorted(found)


def test_a_generated_client_builds_and_calls_each_function(cloud, documents, tmp_path):
    config = tmp_path / "generator.yaml"
    # no formatter run: the client must build as generated. Bodies of other media types (a photo, a
    # PDF, a CRL, a CSV settlement) are bytes to the generator: each such type is told to be octet-stream
    native = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data",
              "application/octet-stream")
    uploads = sorted({media for doc in documents.values() for _, _, op in operations(doc)
                      for content in [op.get("requestBody", {}).get("content", {})]
                      + [r.get("content", {}) for r in op["responses"].values()]
                      for media in content if media not in native and not media.endswith("+json")})
    config.write_text("post_hooks: []\ncontent_type_overrides:\n"
                      + "".join(f"  {json.dumps(m)}: application/octet-stream\n" for m in uploads))
    sys.path.insert(0, str(tmp_path))
    called = {}
    try:
        for name, doc in documents.items():
            package = "client_" + name.replace("-", "_")
            spec = tmp_path / f"{name}.json"
            spec.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
            gen = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path", str(spec),
                                  "--output-path", str(tmp_path / package), "--meta", "none", "--config", str(config)],
                                 capture_output=True, text=True, timeout=120)
            assert gen.returncode == 0, f"{name}: {gen.stdout[-2000:]}{gen.stderr[-2000:]}"
            # a schema the generator cannot read is dropped from the client: the document must have none
            assert "WARNING" not in gen.stdout + gen.stderr, f"{name}: {gen.stdout[-3000:]}"
            client_mod = importlib.import_module(f"{package}.client")
            for _, path, operation_id, role in _candidates(doc):
                module = importlib.import_module(f"{package}.api.default.{_module_name(operation_id)}")
                if role is None:
                    client = client_mod.Client(base_url=f"{cloud.gateway}/{name}", raise_on_unexpected_status=False)
                else:
                    token = httpx.get(f"{cloud.gateway}/docs/token", params={"role": role}, timeout=30).json()["token"]
                    client = client_mod.AuthenticatedClient(base_url=f"{cloud.gateway}/{name}", token=token)
                with client as c:
                    response = module.sync_detailed(client=c)
                if response.status_code == 200:
                    called[name] = (path, role, type(response.parsed).__name__)
                    break
            else:
                # nothing callable without an identifier: the document itself, through its own client
                module = importlib.import_module(f"{package}.api.default.openapi_document_get")
                with client_mod.Client(base_url=f"{cloud.gateway}/{name}") as c:
                    assert module.sync_detailed(client=c).status_code == 200, name
                called[name] = ("/openapi.json", None, "")
    finally:
        sys.path.remove(str(tmp_path))
    assert set(called) == set(documents)
    # the typed answer was parsed into the generated model where the document declares one
    assert called["directory"][0].startswith("/v1/") and called["directory"][2] not in ("NoneType", "")
    print({k: v[:2] for k, v in called.items()})


# -- /docs in headless Chromium -----------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_docs_render_every_function_from_the_gateways_own_assets(cloud, documents, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1300, "height": 1600})
    foreign = []
    page.on("request", lambda r: r.url.startswith(cloud.gateway) or r.url.startswith("data:") or foreign.append(r.url))
    for name, doc in documents.items():
        page.goto(f"{cloud.gateway}/docs?fn={name}")
        expected = sum(1 for _ in operations(doc))
        page.wait_for_function(f"document.querySelectorAll('.opblock').length === {expected}", timeout=30_000)
        paths = set(page.locator(".opblock-summary-path").all_inner_texts())
        assert {p.replace("\u200b", "") for p in paths} == set(doc["paths"]), name
        assert page.locator(".errors-wrapper").count() == 0, name
    assert not foreign, foreign
    page.screenshot(path=str(tmp_path / "docs.png"))


def test_try_it_out_calls_a_public_endpoint_and_a_dev_token_unlocks_an_officers_one(cloud, browser):
    page = browser.new_page(viewport={"width": 1300, "height": 1600})
    page.goto(cloud.gateway + "/docs?fn=directory")
    op = page.locator(".opblock-get").filter(has=page.locator(".opblock-summary-path", has_text="/v1/units/{code}"))
    op.locator(".opblock-summary").click()
    op.locator(".try-out__btn").click()
    op.locator("input[placeholder='code']").fill("20")
    op.locator(".execute").click()
    status = op.locator(".live-responses-table tbody .response-col_status")
    status.wait_for(timeout=30_000)
    assert status.inner_text().strip() == "200"
    assert "Lạng Sơn" in op.locator(".live-responses-table .microlight").first.inner_text()

    # an operator's endpoint: 401 without a token, 200 after the page's dev-token getter
    page.goto(cloud.gateway + "/docs?fn=softatm")
    banks = page.locator(".opblock-get").filter(has=page.locator(".opblock-summary-path", has_text=re.compile(r"^/v1/banks$")))
    banks.locator(".opblock-summary").click()
    banks.locator(".try-out__btn").click()
    banks.locator(".execute").click()
    status = banks.locator(".live-responses-table tbody .response-col_status")
    status.wait_for(timeout=30_000)
    assert status.inner_text().strip() == "401"
    page.select_option("#role", "operator")
    page.click("#get-token")
    page.wait_for_function("document.getElementById('token-status').textContent.includes('operator')")
    banks.locator(".execute").click()
    page.wait_for_function("[...document.querySelectorAll('.live-responses-table tbody .response-col_status')]"
                           ".some(e => e.textContent.trim() === '200')", timeout=30_000)
