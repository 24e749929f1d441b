"""A dossier's result signed through a real `lscloud up`: the citizen submits, officers process the
steps; at the last step the result is drafted in the documents function (linked to the dossier),
signed by two officers in order, registered as an outgoing document with the next number (and the
agency's seal); its `document.issued` event moves the dossier on to done with the signed result,
and the citizen downloads the signed PDF, which poppler's pdfsig validates against the published
dev root. The verification endpoint and the trust root are served through the gateway."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from localcloud import ROOT, running

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from documents_support import make_pdf, nss_db, pdfsig, signature_timestamps_verify  # noqa: E402

pytestmark = pytest.mark.e2e

CITIZEN = {"id_number": "020095001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1995-03-12"}   # seeded
FUNCTIONS = ("identity", "procedures", "dossiers", "directory", "documents")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "documents-cloud", only=list(FUNCTIONS)) as c:
        yield c


@pytest.fixture(scope="module")
def gw(cloud):
    with httpx.Client(base_url=cloud.gateway, timeout=60) as client:
        yield client


def idem(h):
    return {**h, "Idempotency-Key": uuid.uuid4().hex}


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def officer(gw, agency, unit, sub):
    t = ok(gw.post("/identity/v1/tokens/officer", json={"officer_id": sub, "agency": agency, "unit": unit}), 201)
    return {"Authorization": "Bearer " + t["access_token"]}


def test_a_dossier_result_signed_by_two_registered_and_downloaded(cloud, gw, tmp_path: Path):
    ok(gw.post("/identity/v1/verifications", json=CITIZEN))
    cit = {"Authorization": "Bearer " + ok(gw.post("/identity/v1/tokens/citizen", json=CITIZEN), 201)["access_token"]}
    proc = ok(gw.get("/procedures/v1/procedures/XD-TDTK"))
    docs = []
    for d in proc["documents"]:
        if d["required"]:
            r = gw.post("/dossiers/v1/attachments", content=make_pdf(d["code"] + uuid.uuid4().hex),
                        headers={**cit, "Content-Type": "application/pdf"})
            docs.append({"code": d["code"], "sha256": ok(r, 201)["sha256"]})
    did = "e2e-" + uuid.uuid4().hex[:12]
    doc = ok(gw.post("/dossiers/v1/dossiers", json={"id": did, "procedure": "XD-TDTK", "unit": "05983",
                                                    "documents": docs}, headers=cit), 201)

    # officers move the dossier to its last step
    for _ in range(10):
        if doc["status"] == "received":
            s0 = doc["steps"][0]
            doc = ok(gw.post(f"/dossiers/v1/dossiers/{did}/start",
                             headers=idem(officer(gw, s0["agency"], s0["unit"] or "05983", "cb-" + s0["agency"]))))
            continue
        step = doc["steps"][doc["current_step"]]
        if doc["current_step"] == len(doc["steps"]) - 1:
            break
        h = officer(gw, step["agency"], step["unit"] or "05983", "cb-" + step["agency"])
        doc = ok(gw.post(f"/dossiers/v1/dossiers/{did}/steps/complete", headers=idem(h), json={"step": step["code"]}))
    last = doc["steps"][doc["current_step"]]
    unit = last["unit"] or "05983"
    drafter = officer(gw, last["agency"], unit, "cv-soan-thao")
    leader = officer(gw, last["agency"], unit, "ld-lanh-dao")

    # drafted in documents as the dossier's result, signed in order, registered
    d = ok(gw.post("/documents/v1/documents", content=make_pdf("Thông báo kết quả thẩm định"),
                   params={"title": "Thông báo kết quả thẩm định thiết kế", "type": "thong-bao", "dossier": did,
                           "signers": "cv-soan-thao,ld-lanh-dao"},
                   headers={**idem(drafter), "Content-Type": "application/pdf"}), 201)
    assert d["dossier_id"] == did and d["status"] == "draft"
    ok(gw.post(f"/documents/v1/documents/{d['id']}/signatures", json={"name": "Phạm Văn Soạn", "title": "Chuyên viên"},
               headers=idem(drafter)), 201)
    signed = ok(gw.post(f"/documents/v1/documents/{d['id']}/signatures",
                        json={"name": "Lê Văn Lãnh", "title": "Giám đốc"}, headers=idem(leader)), 201)
    assert signed["status"] == "signed"
    # the citizen cannot read it before it is issued
    assert gw.get(f"/documents/v1/documents/{d['id']}/file", headers=cit).status_code == 404
    issued = ok(gw.post(f"/documents/v1/documents/{d['id']}/registration",
                        json={}, headers=idem(drafter)))   # the agency's name and abbreviation: never the caller's
    reg = issued["registration"]
    assert issued["status"] == "issued" and reg["number"] >= 1 and reg["display"] == f"Số: {reg['number']:02d}/TB-SXD"

    # the event moves the dossier on: done, with the signed result
    deadline = time.monotonic() + 120
    while True:
        seen = ok(gw.get(f"/dossiers/v1/dossiers/{did}", headers=cit))
        if seen["status"] == "done" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert seen["status"] == "done", seen["status"]
    assert seen["result"]["document_id"] == d["id"] and seen["result"]["display"] == reg["display"]

    # the citizen downloads the signed result and an independent validator trusts it
    assert seen["result"]["file_url"] == f"{cloud.gateway}/documents/v1/documents/{d['id']}/file"   # whole, as kept
    pdf = gw.get(seen["result"]["file_url"], headers=cit)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    db = nss_db(gw.get("/documents/v1/trust/root.pem").text, tmp_path / "nss")
    verdicts = [v for v in pdfsig(pdf.content, db, tmp_path) if v["type"] == "ETSI.CAdES.detached"]
    # the certified signers: each officer by their certificate (never a name they typed), the seal by the
    # directory's name of the agency
    certified = [s["certificate"]["name"] for s in issued["signatures"]] + [issued["registration"]["seal"]["name"]]
    assert [v["signer"] for v in verdicts] == certified and certified[-1] == "Sở Xây dựng"
    assert not {"Phạm Văn Soạn", "Lê Văn Lãnh"} & set(certified)
    assert all(v["signature"] == "Signature is Valid." and v["certificate"] == "Certificate is Trusted."
               for v in verdicts), verdicts
    assert signature_timestamps_verify(pdf.content, db / "root.pem", tmp_path) == [True, True, True]
    report = ok(gw.post("/documents/v1/verifications", content=pdf.content,
                        headers={"Content-Type": "application/pdf"}))
    assert report["valid"] and {s["level"] for s in report["signatures"]} <= {"B-LT", "B-LTA"}

    # the next outgoing document of the same agency gets the next number
    d2 = ok(gw.post("/documents/v1/documents", content=make_pdf("Công văn"), params={"title": "Công văn"},
                    headers={**idem(drafter), "Content-Type": "application/pdf"}), 201)
    ok(gw.post(f"/documents/v1/documents/{d2['id']}/signatures", json={}, headers=idem(drafter)), 201)
    r2 = ok(gw.post(f"/documents/v1/documents/{d2['id']}/registration", json={"unit_abbr": "VP"},
                    headers=idem(drafter)))["registration"]
    assert r2["number"] == reg["number"] + 1
