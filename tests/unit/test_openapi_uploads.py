"""What a client generator reads from /openapi.json besides JSON bodies: an upload's request body
(``@raw_body``: its media types and the size limit the runtime enforces, as OpenAPI 3.1 describes
raw binary data) with the refusals it may meet, and the success answers: every one has a schema
(none without, and it stays so), a file's as a string of binary format with its media type.
Iterates over functions/*."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from lscloud import rulesyntax
from lscloud.auth import allow
from lscloud.config import Settings
from lscloud.web import body_limit, build_openapi, create_app, raw_body

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(d.name for d in (ROOT / "functions").iterdir() if (d / "func.yaml").is_file())
BODY_METHODS = {"post", "put", "patch", "delete"}
FORM = "application/x-www-form-urlencoded"

# the response schemas written for clients to tolerate members added later
OPEN_ANSWERS = ["reports/report.json", "reports/nearby-reports.json", "reports/report-created.json",
                "reports/report-list.json", "reports/photo.json", "reports/support.json", "reports/stats.json",
                "reports/service-list.json", "reports/api-key.json", "market/shop.json", "market/shop-page.json",
                "market/product.json", "market/photo.json", "market/lot.json", "market/stamp-batch.json"]


def _built(name: str):
    app = importlib.import_module(f"functions.{name}.function.app").create_app(Settings(service=name))
    return app, build_openapi(app)


def _limit(view, settings) -> int:
    """The limit the runtime applies to the view's body (lscloud.web.app's _guard)."""
    limit = getattr(view, "__lscloud_max_body__", None)
    if isinstance(limit, str):
        limit = getattr(settings, limit)
    return settings.max_body_bytes if limit is None else limit


def _eventing(op: dict) -> bool:
    return (op.get("x-lscloud-access") or {}).get("roles") == ["eventing"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_upload_documents_its_body_its_limit_and_its_refusals(name):
    app, doc = _built(name)
    settings = app.extensions["lscloud"].settings
    seen = 0
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        raw = getattr(view, "__lscloud_raw_body__", None)
        if raw is None or getattr(view, "__lscloud_body_schema__", None):
            continue
        for method in sorted({m.lower() for m in rule.methods or ()} & BODY_METHODS):
            op = doc["paths"][rulesyntax.openapi_path(rule.rule)][method]
            where, limit = f"{name} {method.upper()} {rule.rule}", _limit(view, settings)
            body = op.get("requestBody")
            assert body is not None and body["required"] is True, where
            assert set(body["content"]) == (set(raw) or {"*/*"}), where
            assert str(limit) in body["description"] and " / " in body["description"], where
            for media_type, media in body["content"].items():
                schema = media["schema"]
                if media_type == FORM:
                    assert schema["type"] == "object", where
                    continue
                # raw bytes: no JSON type, no base64 encoding; the runtime's limit in octets
                assert "type" not in schema and "contentEncoding" not in schema, where
                assert schema["maxLength"] == limit, where
                assert schema.get("contentMediaType", media_type) == media_type, where
            if not _eventing(op):
                refusals = set(op["responses"])
                assert {"413", "422"} <= refusals, where
                assert ("415" in refusals) == bool(raw), where
                assert str(limit) in op["responses"]["413"]["description"], where
                if raw:
                    assert all(t in op["responses"]["415"]["description"] for t in raw), where
            seen += 1
    if name in ("reports", "market", "dossiers", "documents", "border", "community"):
        assert seen, f"{name}: its uploads were not found"


def test_the_documented_upload_is_what_the_runtime_takes(tmp_path):
    app = create_app("things", schemas_dir=tmp_path, settings=Settings().replace(max_body_bytes=2048,
                                                                                 blob_max_bytes=6000))

    @app.post("/v1/scans")
    @allow("public")
    @raw_body("application/pdf", "image/png")
    @body_limit("blob_max_bytes")
    def scan():
        """A scanned page."""
        return {}, 201

    @app.post("/v1/anything")
    @allow("public")
    @raw_body()
    def anything():
        """Any body at all."""
        return {}, 202

    @app.post("/v1/form")
    @allow("public")
    @raw_body(FORM)
    def form():
        """A form."""
        return {}, 201

    from openapi_spec_validator import validate

    doc = build_openapi(app)
    validate(doc)
    scans = doc["paths"]["/v1/scans"]["post"]["requestBody"]
    assert scans["content"] == {"application/pdf": {"schema": {"contentMediaType": "application/pdf", "maxLength": 6000}},
                                "image/png": {"schema": {"contentMediaType": "image/png", "maxLength": 6000}}}
    assert scans["required"] is True and "6000" in scans["description"] and "multipart/form-data" in scans["description"]
    assert doc["paths"]["/v1/anything"]["post"]["requestBody"]["content"] == {"*/*": {"schema": {"maxLength": 2048}}}
    assert "415" not in doc["paths"]["/v1/anything"]["post"]["responses"]       # any media type is taken
    assert doc["paths"]["/v1/form"]["post"]["requestBody"]["content"][FORM]["schema"]["type"] == "object"
    # what the document says is what the runtime does: the limit to the byte, the media types
    c = app.test_client()
    for media_type, media in scans["content"].items():
        limit = media["schema"]["maxLength"]
        assert c.post("/v1/scans", data=b"0" * limit, content_type=media_type).status_code == 201
        assert c.post("/v1/scans", data=b"0" * (limit + 1), content_type=media_type).status_code == 413
    assert c.post("/v1/scans", data=b"0", content_type="image/jpeg").status_code == 415
    assert c.post("/v1/anything", data=b"0" * 2048, content_type="text/plain").status_code == 202
    assert c.post("/v1/anything", data=b"0" * 2049, content_type="text/plain").status_code == 413


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_operation_has_a_typed_answer(name):
    """Every success answer but event delivery's and a bare 204 documents its body: a JSON answer
    names its schema (@responds), a file its media types (@responds(None, binary=...)), the
    runtime's own routes (/openapi.json, /downloads/...) included."""
    _, doc = _built(name)
    untyped = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ok = {code: answer for code, answer in op["responses"].items() if code.startswith("2")}
            if _eventing(op) or set(ok) == {"204"}:
                continue
            if not any("content" in answer for answer in ok.values()):
                untyped.append(f"{method.upper()} {path}")
    assert not untyped, f"{name}: answers without a schema: {sorted(untyped)}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_document_and_the_files_a_function_answers_are_typed(name):
    """``GET /openapi.json`` answers an OpenAPI 3.1 document; a photo, a sheet, a QR code, a download
    is a file (``format: binary``) of the media type it is served as, never JSON's ``{}``."""
    _, doc = _built(name)
    own = doc["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]
    assert set(own) == {"application/json"}, name
    assert own["application/json"]["schema"]["type"] == "object", name
    assert "OpenAPI 3.1" in own["application/json"]["schema"]["description"], name
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for code, answer in op["responses"].items():
                if not code.startswith("2"):
                    continue
                for media_type, media in answer.get("content", {}).items():
                    schema = media.get("schema", {})
                    if schema.get("format") == "binary":
                        assert schema["type"] == "string", (name, method, path, media_type)
                        assert schema.get("contentMediaType", "*/*") == media_type, (name, method, path, media_type)
    if name in ("dossiers", "procedures"):
        download = doc["paths"]["/downloads/{token}"]["get"]["responses"]["200"]["content"]
        assert download == {"*/*": {"schema": {"type": "string", "format": "binary"}}}, name


def test_binary_answers_name_their_media_types():
    """Market's files: the stamp sheet a PDF, the codes text, the QR a PNG, a photo JPEG or PNG."""
    _, doc = _built("market")
    lots = "/v1/lots/{lot_id}/stamps/{batch_id}"

    def types(path):
        content = doc["paths"][path]["get"]["responses"]["200"]["content"]
        return {t: m["schema"]["contentMediaType"] for t, m in content.items() if m["schema"]["format"] == "binary"}

    assert types(lots + "/sheet") == {"application/pdf": "application/pdf"}
    assert types(lots + "/codes") == {"text/plain": "text/plain"}
    assert types("/v1/shops/{shop_id}/qr") == {"image/png": "image/png"}
    assert types("/v1/photos/{sha256}") == {"image/jpeg": "image/jpeg", "image/png": "image/png"}
    status = doc["components"]["schemas"]["market.lot"]["properties"]["status"]
    assert status["enum"] == ["registered", "export_pending", "exported"]


@pytest.mark.parametrize("name", OPEN_ANSWERS)
def test_answer_schemas_leave_room_for_new_members(name):
    def closed(node) -> list:
        if isinstance(node, dict):
            return ([node] if node.get("additionalProperties") is False else []) + \
                [c for v in node.values() for c in closed(v)]
        return [c for v in node for c in closed(v)] if isinstance(node, list) else []

    assert closed(json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))) == [], name
