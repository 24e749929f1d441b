"""A verification does each piece of its work once per claim that needs it, never once per check.

For a document of three B-LTA signatures the verifier built 21 validation contexts (parsing our
root, CA and CRLs each time), read the file's DSS 9 times, validated each signer's chain three
times and the timestamp authority's twelve times (~0.36 s of CPU a report). Counted here, not
timed; the report itself is the one it was."""

from __future__ import annotations

from collections import Counter

import pytest
from pyhanko.sign.validation import DocumentSecurityStore, generic_cms
from pyhanko_certvalidator import ValidationContext

from documents_support import make_pdf
from lscloud import pseudonyms

from functions.documents.function import verify

pytestmark = pytest.mark.integration

AGENCY = "ubnd-tinh"
PDF = {"Content-Type": "application/pdf"}


@pytest.fixture
def documents(start_function, peers):
    # the directory (peers): the seal's agency, asked when the document is issued
    return start_function("documents", peer_url_template=peers.template,
                          function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents"})


def issued(client, tokens) -> bytes:
    """Signed by two officers in order, then registered with the agency's seal: three signatures,
    each with its document timestamp."""
    a = tokens("officer", "cv-an", agency=AGENCY, unit="vp")
    b = tokens("supervisor", "ct-binh", agency=AGENCY, unit="vp")
    r = client.post("/v1/documents", query_string={"title": "QĐ", "signers": "cv-an,ct-binh", "type": "quyet-dinh"},
                    data=make_pdf(), headers={**a, **PDF})
    assert r.status_code == 201, r.get_data(as_text=True)
    doc = r.get_json()["id"]
    for h, name in ((a, "Nguyễn Văn An"), (b, "Trần Thị Bình")):
        assert client.post(f"/v1/documents/{doc}/signatures", json={"name": name}, headers=h).status_code == 201
    r = client.post(f"/v1/documents/{doc}/registration", json={}, headers=a)
    assert r.status_code == 200, r.get_data(as_text=True)
    return client.get(f"/v1/documents/{doc}/file", headers=a).get_data()


def test_a_three_signature_document_is_read_and_checked_once_per_claim(documents, tokens, monkeypatch):
    client = documents.app.test_client()
    pdf = issued(client, tokens)
    trust = documents.app.config["DOCUMENTS_CUSTODY"].trust()

    work: Counter = Counter()
    chains: Counter = Counter()
    init, read_dss, cert_usage = ValidationContext.__init__, DocumentSecurityStore.read_dss, generic_cms.validate_cert_usage

    def counted_init(self, *args, **kwargs):
        work["contexts"] += 1
        init(self, *args, **kwargs)

    def counted_read(handler):
        work["dss reads"] += 1
        return read_dss(handler)

    async def counted_usage(cert, *args, **kwargs):
        chains[cert.subject.native["common_name"]] += 1
        return await cert_usage(cert, *args, **kwargs)

    monkeypatch.setattr(ValidationContext, "__init__", counted_init)
    monkeypatch.setattr(DocumentSecurityStore, "read_dss", staticmethod(counted_read))
    monkeypatch.setattr(generic_cms, "validate_cert_usage", counted_usage)
    report = verify.report(pdf, trust)   # in this process, where the counting is
    monkeypatch.undo()

    sigs = report["signatures"]
    assert report["valid"] and report["document_timestamps_trusted"] == 3
    signer = {sub: f"{AGENCY} {pseudonyms.pseudonym('documents-signer-name', sub)[:10]}" for sub in ("cv-an", "ct-binh")}
    assert [(s["signer"]["name"], s["level"], s["validation"]) for s in sigs] == [
        (signer["cv-an"], "B-LTA", "current"), (signer["ct-binh"], "B-LTA", "current"),
        ("Ủy ban nhân dân tỉnh Lạng Sơn", "B-LTA", "current")]
    # one context for now; one per time a signature's timestamp proves (with the file's DSS, which
    # the last document timestamp's revision holds as it is: B-LTA is that same check)
    assert work["contexts"] == 1 + len({s["timestamp"]["time"] for s in sigs})
    # the DSS of the file, and of the last document timestamp's revision
    assert work["dss reads"] == 2
    # each signer's chain now and at its timestamp's time; the timestamp authority's once for each
    # signature's timestamp and each document timestamp
    tsa = "Lạng Sơn Cloud DEV Timestamp Authority"
    assert {name: n for name, n in chains.items() if name != tsa} == {s["signer"]["name"]: 2 for s in sigs}
    assert chains[tsa] == len(sigs) + report["document_timestamps"]
    # and the worker's report is this one
    r = client.post("/v1/verifications", data=pdf, headers=PDF)
    assert r.status_code == 200 and r.get_json() == report, r.get_data(as_text=True)[:300]
