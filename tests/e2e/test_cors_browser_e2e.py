"""A web page on another origin calls the API from a real browser (headless Chromium) through a real
`lscloud up` started with ``LSCLOUD_CORS_ORIGINS`` naming that page's origin: it reads public
reference data (and its ETag), gets a citizen token (a JSON POST: preflighted), uploads a file with
``Authorization`` and ``Idempotency-Key`` (preflighted), and reads a refusal's problem and status.
A page on an origin the setting does not name reads nothing: the browser itself refuses.

The page is served by a loopback server on a port of its own (another origin than the gateway's).
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading

import pytest

from localcloud import running
from lscloud.local.servers import free_port

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CITIZEN = {"id_number": "020095001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1995-03-12"}

PAGE = b"""<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Cong dich vu cong</title></head>
<body><script>
async function call(gw, citizen) {
  const out = {};
  const units = await fetch(gw + "/directory/v1/units?limit=2");
  out.units = {status: units.status, etag: units.headers.get("ETag"), total: (await units.json()).total};
  const tok = await fetch(gw + "/identity/v1/tokens/citizen", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(citizen)});
  const token = await tok.json();
  out.token = {status: tok.status, cache: tok.headers.get("Cache-Control"), role: token.role};
  const key = "page-" + Date.now() + "-" + Math.random().toString(16).slice(2);
  const send = () => fetch(gw + "/dossiers/v1/attachments?filename=to-khai.pdf", {
    method: "POST", body: "%PDF-1.4\\n% " + key + "\\n%%EOF\\n",
    headers: {"Authorization": "Bearer " + token.access_token, "Content-Type": "application/pdf",
              "Idempotency-Key": key}});
  const first = await send();
  const again = await send();
  out.upload = {status: first.status, sha256: (await first.json()).sha256, again: again.status,
                replayed: again.headers.get("Idempotent-Replayed"), cache: first.headers.get("Cache-Control")};
  const refused = await fetch(gw + "/dossiers/v1/dossiers", {headers: {"Authorization": "Bearer not-a-token"}});
  out.refused = {status: refused.status, type: (await refused.json()).type,
                 challenge: refused.headers.get("WWW-Authenticate")};
  const missing = await fetch(gw + "/nosuch/v1/things");
  out.missing = {status: missing.status, type: (await missing.json()).type};
  return out;
}
async function blocked(gw) {
  try { await fetch(gw + "/directory/v1/units?limit=2"); return "read"; }
  catch (e) { return e.name; }
}
</script></body></html>"""


class PageServer:
    """The page, on its own loopback port: another origin than the gateway's."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="page", daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def pages():
    portal, stranger = PageServer(), PageServer()
    yield portal, stranger
    portal.stop()
    stranger.stop()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, pages):
    portal, _ = pages
    with running(tmp_path_factory, "cors-cloud", only=["directory", "identity", "dossiers"],
                 env={"LSCLOUD_CORS_ORIGINS": portal.origin}) as c:
        yield c


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_a_page_on_the_allowed_origin_reads_and_posts_with_a_token(cloud, pages, browser):
    portal, _ = pages
    page = browser.new_page()
    try:
        page.goto(portal.origin + "/")
        out = page.evaluate("([gw, citizen]) => call(gw, citizen)", [cloud.gateway, CITIZEN])
    finally:
        page.close()
    assert out["units"]["status"] == 200 and out["units"]["total"] > 0
    assert out["units"]["etag"], "the ETag is exposed to the page"
    assert out["token"] == {"status": 201, "cache": "no-store", "role": "citizen"}, json.dumps(out)
    upload = out["upload"]
    assert upload["status"] == 201 and len(upload["sha256"]) == 64 and upload["cache"] == "no-store"
    assert upload["again"] == 201 and upload["replayed"] == "true"
    assert out["refused"]["status"] == 401 and out["refused"]["type"].endswith("/token-invalid")
    assert out["refused"]["challenge"].startswith("Bearer")
    # the gateway's own answer for a function it does not have: the page reads the 404 problem
    assert out["missing"]["status"] == 404 and out["missing"]["type"].endswith("/function-not-found")


def test_a_page_on_another_origin_reads_nothing(cloud, pages, browser):
    _, stranger = pages
    page = browser.new_page()
    try:
        page.goto(stranger.origin + "/")
        assert page.evaluate("gw => blocked(gw)", cloud.gateway) == "TypeError"   # the browser's CORS refusal
    finally:
        page.close()
