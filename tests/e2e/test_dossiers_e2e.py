"""A citizen's construction permit through a real `lscloud up`: identity verifies the citizen and signs
them in, the procedures catalogue finds the procedure, dossiers takes the submission with attachments
and issues a receipt; officers of two agencies (the public service centre, the Department of
Construction) process their steps, a supplement is requested and provided, the result is returned,
the public tracking and the IOC's stats reflect it."""

from __future__ import annotations

import uuid

import httpx
import pytest

from localcloud import ROOT, running, wait_for
from lscloud.auth import dev_keys, issue_token
from lscloud.telemetry import read_trace_file

pytestmark = pytest.mark.e2e

CITIZEN = {"id_number": "020095001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1995-03-12"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    for name in ("identity", "procedures", "dossiers", "directory"):
        if not (ROOT / "functions" / name / "func.yaml").is_file():
            pytest.skip(f"functions/{name} is not there yet")
    with running(tmp_path_factory, "dossiers-cloud") as c:
        yield c


@pytest.fixture(scope="module")
def gw(cloud):
    with httpx.Client(base_url=cloud.gateway, timeout=30) as client:
        yield client


def idem(h):
    return {**h, "Idempotency-Key": uuid.uuid4().hex}


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def pdf(tag: str) -> bytes:
    return b"%PDF-1.4\n% " + tag.encode() + b"\n%%EOF\n"


def officer(gw, agency, unit, sub):
    t = ok(gw.post("/identity/v1/tokens/officer", json={"officer_id": sub, "agency": agency, "unit": unit}), 201)
    return {"Authorization": "Bearer " + t["access_token"]}


def test_a_permit_from_sign_in_to_result(cloud, gw):
    # the citizen verifies against the population registry, then signs in
    v = ok(gw.post("/identity/v1/verifications", json=CITIZEN))
    assert v["match"] is True
    cit = {"Authorization": "Bearer " + ok(gw.post("/identity/v1/tokens/citizen", json=CITIZEN), 201)["access_token"]}

    # finds the procedure (no diacritics typed) and reads what it needs
    found = ok(gw.get("/procedures/v1/procedures", params={"q": "tham dinh thiet ke xay dung"}))["items"]
    assert "XD-TDTK" in [p["code"] for p in found]
    proc = ok(gw.get("/procedures/v1/procedures/XD-TDTK"))
    agencies = [s["agency"] for s in proc["steps"]]
    assert "public-service-centre" in agencies and "so-xay-dung" in agencies

    # uploads the required documents and submits
    docs = []
    for d in proc["documents"]:
        if d["required"]:
            r = gw.post("/dossiers/v1/attachments", content=pdf(d["code"] + uuid.uuid4().hex),
                        headers={**cit, "Content-Type": "application/pdf"}, params={"filename": d["code"] + ".pdf"})
            docs.append({"code": d["code"], "sha256": ok(r, 201)["sha256"]})
    did = "e2e-" + uuid.uuid4().hex[:12]
    r = gw.post("/dossiers/v1/dossiers", json={"id": did, "procedure": "XD-TDTK", "unit": "05983",
                                                "documents": docs}, headers=cit)
    created = ok(r, 201)
    assert r.headers["Location"] == f"/dossiers/v1/dossiers/{did}"   # under the gateway's prefix: it resolves
    assert ok(gw.get(r.headers["Location"], headers=cit))["id"] == did
    receipt = created["receipt"]
    assert receipt["code"].startswith("LS-") and receipt["appointment_date"] and receipt["channel"] == "online"
    assert receipt["processing_days"] == proc["processing_days"]
    # the receipt's tracking link works as it is, for anyone holding it
    assert receipt["track_url"] == f"{cloud.gateway}/dossiers{receipt['track_path']}"
    assert ok(httpx.get(receipt["track_url"], timeout=30))["code"] == receipt["code"]

    # officers of the steps' agencies move their own steps; the department asks for a supplement once
    supplement_asked = False
    doc = created
    for _ in range(10):
        if doc["status"] == "done":
            break
        if doc["status"] == "received":
            s0 = doc["steps"][0]
            h = officer(gw, s0["agency"], s0["unit"] or "05983", "cb-" + s0["agency"])
            doc = ok(gw.post(f"/dossiers/v1/dossiers/{did}/start", headers=idem(h)))
            continue
        step = doc["steps"][doc["current_step"]]
        h = officer(gw, step["agency"], step["unit"] or "05983", "cb-" + step["agency"])
        if step["agency"] == "so-xay-dung" and not supplement_asked:
            doc = ok(gw.post(f"/dossiers/v1/dossiers/{did}/supplement-requests", headers=idem(h), json={
                "step": step["code"], "message": "Bổ sung bản vẽ mặt cắt", "missing": [{"name": "Bản vẽ mặt cắt"}]}))
            assert doc["status"] == "waiting"
            track = ok(gw.get("/dossiers/v1/track", params={"code": receipt["code"], "secret": receipt["tracking_secret"]}))
            assert track["status"] == "waiting" and track["missing"][0]["name"] == "Bản vẽ mặt cắt"
            r = gw.post("/dossiers/v1/attachments", content=pdf("mat-cat" + uuid.uuid4().hex),
                        headers={**cit, "Content-Type": "application/pdf"})
            doc = ok(gw.post(f"/dossiers/v1/dossiers/{did}/supplements", headers=idem(cit),
                             json={"documents": [{"code": docs[0]["code"], "sha256": ok(r, 201)["sha256"]}]}))
            assert doc["status"] == "processing"
            supplement_asked = True
            continue
        if doc["current_step"] == len(doc["steps"]) - 1:
            r = gw.post("/dossiers/v1/attachments", content=pdf("giay-phep" + uuid.uuid4().hex),
                        headers={**h, "Content-Type": "application/pdf"})
            doc = ok(gw.post(f"/dossiers/v1/dossiers/{did}/result", headers=idem(h),
                             json={"sha256": ok(r, 201)["sha256"], "filename": "thong-bao-tham-dinh.pdf"}))
        else:
            doc = ok(gw.post(f"/dossiers/v1/dossiers/{did}/steps/complete", headers=idem(h), json={"step": step["code"]}))
    assert doc["status"] == "done" and supplement_asked and doc["on_time"] is True

    # the citizen gets the result document
    mine = ok(gw.get(f"/dossiers/v1/dossiers/{did}", headers=cit))
    link = ok(gw.get(f"/dossiers/v1/dossiers/{did}/files/{mine['result']['sha256']}", headers=cit))
    # a plain link through the gateway (the store itself is never published), its token kept out of traces
    assert link["url"].startswith(f"{cloud.gateway}/dossiers/downloads/")
    got = httpx.get(link["url"], timeout=10)
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    assert "thong-bao-tham-dinh.pdf" in got.headers["content-disposition"]
    token = link["url"].rsplit("/", 1)[1]
    ok(gw.post(f"/dossiers/v1/dossiers/{did}/rating", json={"score": 5}, headers=cit), 201)
    trail = [e["fact"] for e in ok(gw.get(f"/dossiers/v1/dossiers/{did}/audit", headers=cit))["items"] if e["fact"]]
    assert "dossier.handed-over" in trail and "supplement.provided" in trail and trail[-2:] == ["dossier.done", "dossier.rated"]

    # the IOC's figures
    private, _ = dev_keys(cloud.state_dir)
    ioc = {"Authorization": "Bearer " + issue_token(private, "ioc-wall", "ioc")}
    stats = ok(gw.get("/dossiers/v1/stats", headers=ioc))
    row = next(r for r in stats["by_procedure"] if r["procedure"] == "XD-TDTK")
    assert row["received"] >= 1 and row["resolved"] >= 1 and row["on_time"] >= 1 and row["online_share"] > 0

    # the download's spans (the gateway's and the function's) are written, with the token redacted
    traces = cloud.state_dir / "traces.jsonl"

    def download_spans():
        spans = [s for s in read_trace_file(traces) if s["name"] in ("GET /dossiers/*", "GET /downloads/<token>")
                 and "/downloads/" in str(s["attributes"].get("url.path", ""))]
        return spans if {s["service"] for s in spans} >= {"gateway", "dossiers"} else None

    spans = wait_for(download_spans, 30, "the download's spans", cloud.proc, cloud.log)
    assert all(s["attributes"]["url.path"].endswith("/downloads/[token]") for s in spans), spans
    assert token not in traces.read_text(encoding="utf-8")
    for log in [cloud.log, *cloud.state_dir.rglob("*.log")]:
        assert token not in log.read_text(encoding="utf-8", errors="replace"), log


def test_a_30_mb_attachment_is_a_413_and_the_next_request_is_answered(gw):
    """The outside review's case: a 30 MB attachment was a bare 500, and an oversized body left the
    next request to the same function hanging. A scan up to the blob limit is accepted."""
    cit = {"Authorization": "Bearer " + ok(gw.post("/identity/v1/tokens/citizen", json=CITIZEN), 201)["access_token"]}
    big = gw.post("/dossiers/v1/attachments", content=b"%PDF-1.4\n" + b"0" * (30 * 1024 * 1024),
                  headers={**cit, "Content-Type": "application/pdf"}, timeout=120)
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
    scan = gw.post("/dossiers/v1/attachments", content=b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024),
                   headers={**cit, "Content-Type": "application/pdf"})
    assert ok(scan, 201)["size"] == 3 * 1024 * 1024 + 9
    json_too_big = gw.post("/dossiers/v1/dossiers", content=b'{"id": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                           headers={**cit, "Content-Type": "application/json"})
    assert json_too_big.status_code == 413 and json_too_big.headers["content-type"] == "application/problem+json"
    assert ok(gw.get("/dossiers/v1/calendar/2026"))  # the next request on the same function: answered
