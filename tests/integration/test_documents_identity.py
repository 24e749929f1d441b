"""What a signature certifies and a registration number asserts comes from the caller's token and
the directory, never from the request body.

A clerk of the education department signed as "Hồ Tiến Thiệu, Chủ tịch UBND tỉnh Lạng Sơn" and
registered the document under "Ủy ban nhân dân tỉnh Lạng Sơn": `Số: 01/QĐ-UBND`, a personal
certificate and a seal certificate in those names, and the public verification answered valid and
trusted with no trace of the clerk's agency. Each typed name was also a new certificate."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from documents_support import make_pdf, nss_db, pdfsig
from lscloud import pseudonyms

from functions.directory.function import agencies
from functions.documents.function import documents as domain, pki, signing
from client_answers import ok

pytestmark = pytest.mark.integration

PDF = {"Content-Type": "application/pdf"}
EDUCATION = "so-giao-duc-dao-tao"
EDUCATION_NAME = "Sở Giáo dục và Đào tạo"   # the directory's
CHAIRMAN = {"name": "Hồ Tiến Thiệu", "title": "Chủ tịch UBND tỉnh Lạng Sơn"}


@pytest.fixture
def documents(start_function, peers):
    return start_function("documents", peer_url_template=peers.template,
                          function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents"})


@pytest.fixture
def client(documents):
    return documents.app.test_client()


def certified(agency: str, sub: str) -> str:
    """The name the custody certifies for ``sub`` of ``agency``: the agency and a pseudonym."""
    return f"{agency} {pseudonyms.pseudonym('documents-signer-name', sub)[:10]}"


def signed_draft(client, h, **body) -> dict:
    doc = ok(client.post("/v1/documents", query_string={"title": "Quyết định", "type": "quyet-dinh"},
                         data=make_pdf(), headers={**h, **PDF}), 201)
    return ok(client.post(f"/v1/documents/{doc['id']}/signatures", json=body, headers=h), 201)


def test_a_clerk_cannot_register_or_seal_as_another_agency(client, tokens):
    clerk = tokens("officer", "cv-gddt-1", agency=EDUCATION, unit="vp")
    doc = signed_draft(client, clerk)
    r = client.post(f"/v1/documents/{doc['id']}/registration", headers=clerk,
                    json={"agency_abbr": "UBND", "agency_name": "Ủy ban nhân dân tỉnh Lạng Sơn"})
    assert r.status_code == 422 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
    assert {e["field"] for e in r.get_json()["errors"]} == {"/agency_abbr", "/agency_name"}
    assert ok(client.get(f"/v1/documents/{doc['id']}", headers=clerk))["registration"] is None

    reg = ok(client.post(f"/v1/documents/{doc['id']}/registration", json={}, headers=clerk))["registration"]
    assert reg["display"] == "Số: 01/QĐ-SGDĐT" and reg["seal"]["name"] == EDUCATION_NAME
    pdf = client.get(f"/v1/documents/{doc['id']}/file", headers=clerk).get_data()
    report = ok(client.post("/v1/verifications", data=pdf, headers=PDF))
    assert report["valid"]
    seal = report["signatures"][-1]["signer"]
    assert (seal["name"], seal["organization"]) == (EDUCATION_NAME, EDUCATION_NAME)
    assert "Ủy ban nhân dân" not in str(report)
    # the provincial committee's book holds nothing of the clerk's
    auditor = tokens("auditor", "tt-1")
    book = ok(client.get(f"/v1/registers/{reg['year']}/outgoing", query_string={"agency": "ubnd-tinh"}, headers=auditor))
    assert book["entries"] == []


def test_an_agency_the_directory_does_not_know_takes_no_number_and_no_seal(client, tokens):
    clerk = tokens("officer", "cv-gddt-1", agency="so-gddt", unit="vp")   # not an agency code of the directory
    doc = signed_draft(client, clerk)
    r = client.post(f"/v1/documents/{doc['id']}/registration", json={}, headers=clerk)
    assert r.status_code == 403 and r.get_json()["type"].endswith("agency-not-in-directory"), r.get_data(as_text=True)
    assert ok(client.get(f"/v1/documents/{doc['id']}", headers=clerk))["status"] == "signed"
    year = domain._year(datetime.now(timezone.utc))
    assert ok(client.get(f"/v1/registers/{year}/outgoing", headers=clerk))["entries"] == []


def test_a_signature_certifies_its_caller_never_a_typed_name(client, tokens, tmp_path):
    clerk = tokens("officer", "cv-gddt-1", agency=EDUCATION, unit="vp")
    doc = signed_draft(client, clerk, **CHAIRMAN)
    me = certified(EDUCATION, "cv-gddt-1")
    sig = doc["signatures"][0]
    assert (sig["name"], sig["title"], sig["certificate"]["name"], sig["certificate"]["title"]) == (me, None, me, None)
    assert (sig["stated_name"], sig["stated_title"]) == (CHAIRMAN["name"], CHAIRMAN["title"])

    pdf = client.get(f"/v1/documents/{doc['id']}/file", headers=clerk).get_data()
    signer = ok(client.post("/v1/verifications", data=pdf, headers=PDF))["signatures"][0]["signer"]
    assert (signer["name"], signer["title"], signer["organization"]) == (me, None, EDUCATION)
    # the signature dictionary names nobody (its /Name held the typed name), and an independent
    # validator reads the same signer from the certificate
    sig_object = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].sig_object
    assert "/Name" not in sig_object
    db = nss_db(client.get("/v1/trust/root.pem").get_data(as_text=True), tmp_path / "nss")
    assert [v["signer"] for v in pdfsig(pdf, db, tmp_path) if v["type"] == "ETSI.CAdES.detached"] == [me]


def test_a_typed_name_mints_no_certificate(client, tokens):
    clerk = tokens("officer", "cv-gddt-1", agency=EDUCATION, unit="vp")
    serials = {signed_draft(client, clerk, **body)["signatures"][0]["certificate"]["serial"]
               for body in (CHAIRMAN, {"name": "Nguyễn Văn An", "title": "Chuyên viên"}, {})}
    assert len(serials) == 1


def test_a_document_signed_under_a_typed_name_before_stays_valid(documents, client, tokens):
    """A certificate the custody issued for a typed name (before this change) is replaced at its
    holder's next signature, and what it signed still verifies: valid, trusted, in its name."""
    custody = documents.app.config["DOCUMENTS_CUSTODY"]
    holder = "p-" + pseudonyms.pseudonym("documents-signer", "cv-an")
    before = {"name": "Nguyễn Văn An", "title": "Chuyên viên", "agency": EDUCATION, "unit": "vp"}
    old_signer, _ = custody._identity(holder, before, lambda ca: pki.issue_person(
        ca, custody.crl_url("signing-ca"), name=before["name"], title=before["title"], agency=EDUCATION, unit="vp"))
    old_pdf = signing.sign_pdf(make_pdf(), signer=old_signer, trust=custody.trust(), timestamper=custody.timestamper(),
                               field="Sig1", appearance=signing.Appearance(before["name"], before["title"], EDUCATION, 0),
                               reason="Phê duyệt / Approved")

    now = signed_draft(client, tokens("officer", "cv-an", agency=EDUCATION, unit="vp"))
    assert now["signatures"][0]["certificate"]["name"] == certified(EDUCATION, "cv-an")
    report = ok(client.post("/v1/verifications", data=old_pdf, headers=PDF))
    assert report["valid"] and report["signatures"][0]["trusted"]
    assert report["signatures"][0]["signer"]["name"] == "Nguyễn Văn An"


def test_every_agency_of_the_directory_has_an_abbreviation_on_record():
    """data/agencies.json covers the directory: an agency without a line could issue nothing."""
    from functions.documents.function import issuers

    pattern = re.compile(r"^[A-ZĐ][A-Za-zĐđ0-9]{0,15}$")   # what a symbol's part may be
    missing = [a["code"] for a in agencies.all_agencies() if not issuers.abbreviation(a["code"], a["kind"])]
    assert missing == []
    assert all(pattern.fullmatch(v) for v in issuers.table()["agencies"].values())
    assert set(issuers.table()["agencies"]) <= {a["code"] for a in agencies.all_agencies()}
