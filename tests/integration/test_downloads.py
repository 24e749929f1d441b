"""Short-lived download links a function hands out and serves itself (lscloud.web.downloads),
against a real weed mini: the link works without a token until it expires, names only what the
function linked, and keeps the caller's origin. That its token stays out of spans and logs is held
by tests/unit/test_redaction.py (an exported span) and tests/e2e/test_dossiers_e2e.py (the real gateway's)."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import quote, urlsplit

import jwt
import pytest

from lscloud import store
from lscloud.auth import allow
from lscloud.web import blob_response, create_app, download_link
from lscloud.web.downloads import mint

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
NAME = "Tờ khai đăng ký khai sinh.pdf"


@pytest.fixture
def app(rt):
    app = create_app("files-test", settings=rt.settings.replace(service="files-test"), downloads=True)

    @app.get("/v1/link/<sha256>")
    @allow("public")
    def make_link(sha256: str):
        return {"url": download_link(store.blobs("attachments"), sha256, 60, filename=NAME)}

    @app.get("/v1/photo/<sha256>")
    @allow("public")
    def photo(sha256: str):
        return blob_response(store.blobs("attachments"), sha256)

    app.testing = True
    return app


@pytest.fixture
def pdf(rt):
    return store.blobs("attachments").put(PDF, "application/pdf").sha256


def _path(url: str) -> str:
    return urlsplit(url).path


def test_a_link_downloads_the_file_without_credentials(app, pdf):
    client = app.test_client()
    url = client.get(f"/v1/link/{pdf}").get_json()["url"]
    assert url.startswith("http://localhost/downloads/")
    r = client.get(_path(url))
    assert r.status_code == 200 and r.get_data() == PDF
    assert r.headers["Content-Type"] == "application/pdf"
    # the Vietnamese name as RFC 6266's filename*, with an ASCII fallback for old clients
    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    assert f"filename*=UTF-8''{quote(NAME, safe='!#$&+-.^_`|~')}" in r.headers["Content-Disposition"]
    assert r.headers["ETag"] == f'"{pdf}"'
    cache = r.headers["Cache-Control"]
    assert cache.startswith("private, max-age=") and 1 <= int(cache.rsplit("=", 1)[1]) <= 60
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in r.headers["Content-Security-Policy"]
    # a browser that has it answers 304; a resumed download gets its range
    again = client.get(_path(url), headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    part = client.get(_path(url), headers={"Range": "bytes=0-4"})
    assert part.status_code == 206 and part.get_data() == b"%PDF-"


def test_the_link_keeps_the_origin_the_caller_used(app, pdf):
    client = app.test_client()
    behind = client.get(f"/v1/link/{pdf}", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "dossiers.lscloud.cloud.langson.gov.vn",
        "X-Forwarded-Prefix": "/dossiers"}).get_json()["url"]
    assert behind.startswith("https://dossiers.lscloud.cloud.langson.gov.vn/dossiers/downloads/ey")
    # what is not a host, a scheme or a prefix is not used
    odd = client.get(f"/v1/link/{pdf}", headers={
        "X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example/x?",
        "X-Forwarded-Prefix": "/../x"}).get_json()["url"]
    assert odd.startswith("http://localhost/downloads/ey")
    assert client.get(_path(behind).removeprefix("/dossiers")).get_data() == PDF


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the forger's short key
def test_an_expired_link_is_410_and_one_the_function_never_made_is_404(app, pdf, rt):
    client = app.test_client()
    settings = app.extensions["lscloud"].settings
    blobs = store.blobs("attachments")
    old = mint(settings, blobs, pdf, 60, now=time.time() - 120)
    gone = client.get(f"/downloads/{old}")
    assert gone.status_code == 410 and gone.mimetype == "application/problem+json"
    assert gone.get_json()["detail_vi"].startswith("Liên kết tải xuống đã hết hạn")

    good = mint(settings, blobs, pdf, 60)
    other = store.blobs("attachments").put(PDF + b"\n", "application/pdf").sha256
    header, claims, signature = good.split(".")
    forged_claims = jwt.utils.base64url_encode(jwt.utils.base64url_decode(claims).replace(
        pdf.encode(), other.encode())).decode()
    made_elsewhere = [
        f"{header}.{forged_claims}.{signature}",                                    # pointed at another file
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),                    # signature altered
        mint(settings.replace(service="dossiers"), blobs, pdf, 60),                 # another function's
        mint(settings.replace(s3_secret_key="another-secret"), blobs, pdf, 60),     # another key
        jwt.encode({"aud": "files-test/downloads", "exp": int(time.time()) + 60, "blob": f"attachments/{pdf}"},
                   settings.s3_secret_key, algorithm="HS256"),                      # the S3 secret, not the link key
        "eyJhbGciOiJub25lIn0.eyJibG9iIjoieCJ9.", "x" * 3000, "not-a-token",
    ]
    for token in made_elsewhere:
        r = client.get(f"/downloads/{token}")
        assert r.status_code == 404 and r.mimetype == "application/problem+json", token
        assert PDF not in r.get_data()
    # a link to a file that is no longer (or never was) there
    missing = mint(settings, blobs, "ab" * 32, 60)
    assert client.get(f"/downloads/{missing}").status_code == 404


def test_a_link_is_only_made_to_a_file_that_is_there(app, rt, pdf):
    with app.test_request_context("/"):
        with pytest.raises(store.DoesNotExist):
            download_link(store.blobs("attachments"), "cd" * 32, 60)
        with pytest.raises(store.InvalidKey):
            download_link(store.blobs("attachments"), "../x", 60)
        for ttl in (0, 24 * 3600 + 1, True, 1.5):
            with pytest.raises(ValueError):
                download_link(store.blobs("attachments"), pdf, ttl)


def test_a_public_blob_is_served_for_good_by_its_content(app, pdf):
    client = app.test_client()
    r = client.get(f"/v1/photo/{pdf}")
    assert r.status_code == 200 and r.get_data() == PDF and hashlib.sha256(r.get_data()).hexdigest() == pdf
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Content-Disposition" not in r.headers


def test_only_an_app_that_serves_links_makes_them(rt, pdf):
    plain = create_app("no-files", settings=rt.settings.replace(service="no-files"))
    assert "lscloud_download" not in plain.view_functions   # nor in its OpenAPI document
    with plain.test_request_context("/"), pytest.raises(RuntimeError, match="downloads=True"):
        download_link(store.blobs("attachments"), pdf, 60)
