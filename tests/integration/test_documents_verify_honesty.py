"""What ``POST /v1/verifications`` claims rests on what it checked.

The verifier said "valid, unmodified" for a signed form whose amount was changed in an appended
update (pyHanko's FORM_FILLING level counted as unmodified), "B-LTA" for a B-LT file once anyone
appended a document timestamp from their own TSA, "B-LT" for a B-T signature once the file held a
DSS of any content, and "invalid" for every signature once the signer's certificate expired,
although the embedded timestamp and revocation data are there for exactly that."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest
from asn1crypto import crl as asn1_crl
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import DocumentSecurityStore

from documents_support import make_pdf, nss_db, pdfsig

from functions.documents.function import pki, signing

pytestmark = pytest.mark.integration

AGENCY = "ubnd-tinh"
PDF = {"Content-Type": "application/pdf"}


@pytest.fixture
def documents(start_function):
    return start_function("documents", function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents"})


@pytest.fixture
def documents_blt(start_function):
    return start_function("documents", function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents",
                                                     "DOCUMENTS_PADES_LEVEL": "B-LT"})


def staff(tokens, sub, role="officer"):
    return tokens(role, sub, agency=AGENCY, unit="vp")


def form_pdf() -> bytes:
    """A decision with a fillable amount (an AcroForm text field), as forms are often issued."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(595, 842))
    c.drawString(72, 780, "Quyết định xử phạt - số tiền phạt (VND):")
    c.acroForm.textfield(name="so_tien", tooltip="so tien", x=72, y=730, width=200, height=20, value="500000",
                         borderWidth=0, forceBorder=False)
    c.showPage()
    c.save()
    return buf.getvalue()


def signed(client, tokens, body: bytes, n: int = 2) -> bytes:
    """``body`` uploaded and signed by ``n`` officers in order, through the API."""
    a, b = staff(tokens, "cv-an"), staff(tokens, "ct-binh", "supervisor")
    r = client.post("/v1/documents", query_string={"title": "QĐ xử phạt", "signers": "cv-an,ct-binh"},
                    data=body, headers={**a, **PDF})
    assert r.status_code == 201, r.get_data(as_text=True)
    doc = r.get_json()["id"]
    for h, name in ((a, "Nguyễn Văn An"), (b, "Trần Thị Bình"))[:n]:
        assert client.post(f"/v1/documents/{doc}/signatures", json={"name": name}, headers=h).status_code == 201
    return client.get(f"/v1/documents/{doc}/file", headers=a).get_data()


def verified(client, pdf: bytes) -> dict:
    r = client.post("/v1/verifications", data=pdf, headers=PDF)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def amount_changed(pdf: bytes, amount: str) -> bytes:
    """The form field's value and its appearance changed in an appended update, as a form filler does."""
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    field = next(ref.get_object() for ref in w.root["/AcroForm"]["/Fields"] if ref.get_object().get("/T") == "so_tien")
    field["/V"] = generic.TextStringObject(amount)
    font = generic.DictionaryObject({generic.NameObject("/Type"): generic.NameObject("/Font"),
                                     generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
                                     generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica")})
    ap = generic.StreamObject({
        generic.NameObject("/Type"): generic.NameObject("/XObject"),
        generic.NameObject("/Subtype"): generic.NameObject("/Form"),
        generic.NameObject("/BBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 200, 20)]),
        generic.NameObject("/Resources"): generic.DictionaryObject({generic.NameObject("/Font"): generic.DictionaryObject(
            {generic.NameObject("/Helv"): font})})}, stream_data=f"/Tx BMC BT /Helv 12 Tf 2 5 Td ({amount}) Tj ET EMC".encode())
    field["/AP"] = generic.DictionaryObject({generic.NameObject("/N"): w.add_object(ap)})
    w.update_container(field)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def stranger_tsa():
    """Someone else's root, CA and timestamp authority: nothing of it chains to our root."""
    root = pki.make_root()
    ca = pki.make_signing_ca(root, "http://stranger.example/root.crl")
    tsa = pki.make_tsa(ca, "http://stranger.example/ca.crl")
    return ca, signing.DevTimestampAuthority(tsa, signing.SimpleCertificateStore.from_certs([signing.asn1_cert(ca.cert)]))


def b_t_with_a_foreign_dss(documents) -> bytes:
    """A signature by one of our officers with its timestamp but no revocation data (B-T), then a
    DSS appended holding only a stranger's CRL."""
    custody = documents.app.config["DOCUMENTS_CUSTODY"]
    _, ca, _ = custody._load_pki()
    officer = pki.issue_person(ca, custody.crl_url("signing-ca"), name="Lê Văn Cường", title=None, agency=AGENCY,
                               unit=None)
    meta = signers.PdfSignatureMetadata(field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES,
                                        embed_validation_info=False)
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signing.simple_signer(officer, custody.trust()),
                      timestamper=custody.timestamper()).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
                                                                  output=out)
    stranger_ca, _ = stranger_tsa()
    w = IncrementalPdfFileWriter(io.BytesIO(out.getvalue()))
    DocumentSecurityStore.supply_dss_in_writer(
        w, None, crls=[asn1_crl.CertificateList.load(pki.crl(stranger_ca).public_bytes(Encoding.DER))])
    done = io.BytesIO()
    w.write(done)
    return done.getvalue()


def test_a_form_field_changed_after_two_signatures_is_modified_and_invalid(documents, tokens, tmp_path):
    client = documents.app.test_client()
    pdf = signed(client, tokens, form_pdf())
    as_signed = verified(client, pdf)
    assert as_signed["valid"] is True
    assert [(s["valid"], s["modified_after_signing"]) for s in as_signed["signatures"]] == [(True, False)] * 2

    changed = amount_changed(pdf, "50000000")
    report = verified(client, changed)
    assert report["valid"] is False
    for s in report["signatures"]:
        assert s["intact"] and s["trusted"]            # the signed bytes are untouched ...
        assert s["modified_after_signing"] is True     # ... but the file shows another amount now
        assert s["valid"] is False and s["modification_level"] == "OTHER"
    # no document timestamp vouches for the changed file either: the change came after them all
    assert report["document_timestamps"] == 2 and report["document_timestamps_trusted"] == 0
    # the signed file itself still passes an independent validator (the change is in the update)
    db = nss_db(client.get("/v1/trust/root.pem").get_data(as_text=True), tmp_path / "nss")
    assert all(v["signature"] == "Signature is Valid." for v in pdfsig(pdf, db, tmp_path)
               if v["type"] == "ETSI.CAdES.detached")


def test_a_stranger_document_timestamp_does_not_make_b_lt_into_b_lta(documents_blt, tokens):
    client = documents_blt.app.test_client()
    pdf = signed(client, tokens, make_pdf(), n=1)
    assert [s["level"] for s in verified(client, pdf)["signatures"]] == ["B-LT"]

    _, stranger = stranger_tsa()
    foreign = io.BytesIO()
    signers.PdfTimeStamper(stranger).timestamp_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), "sha256", output=foreign)
    report = verified(client, foreign.getvalue())
    assert [(s["valid"], s["level"]) for s in report["signatures"]] == [(True, "B-LT")]
    assert report["document_timestamps"] == 1 and report["document_timestamps_trusted"] == 0

    # a document timestamp of the service's own TSA does
    ours = io.BytesIO()
    signers.PdfTimeStamper(documents_blt.app.config["DOCUMENTS_CUSTODY"].timestamper()).timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), "sha256", output=ours)
    report = verified(client, ours.getvalue())
    assert [(s["valid"], s["level"]) for s in report["signatures"]] == [(True, "B-LTA")]
    assert report["document_timestamps_trusted"] == 1


def test_a_dss_without_the_signers_revocation_data_is_not_b_lt(documents):
    client = documents.app.test_client()
    report = verified(client, b_t_with_a_foreign_dss(documents))
    assert [(s["valid"], s["level"]) for s in report["signatures"]] == [(True, "B-T")]


def test_signatures_stay_valid_after_the_signers_certificate_expires(documents, tokens, monkeypatch):
    client = documents.app.test_client()
    pdf = signed(client, tokens, make_pdf())
    unproven = b_t_with_a_foreign_dss(documents)
    now = verified(client, pdf)
    assert now["valid"] is True

    # four years on: the officers' certificates (pki.PERSON_YEARS) have expired; the function's
    # CRLs are those of that day (the PKI's clock), and its trust validates at that day (its moment)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365 * (pki.PERSON_YEARS + 1))
    monkeypatch.setattr(pki, "_now", lambda: later.replace(microsecond=0))
    custody = documents.app.config["DOCUMENTS_CUSTODY"]
    today = custody.trust
    monkeypatch.setattr(custody, "trust", lambda: dataclasses.replace(today(), moment=later))

    report = verified(client, pdf)
    assert report["valid"] is True
    assert [s.get("validation") for s in now["signatures"]] == ["current"] * 2
    for s, before in zip(report["signatures"], now["signatures"]):
        assert s["valid"] and s["trusted"] and s["level"] == "B-LTA" and s["validation"] == "long-term"
        assert s["validated_at"] == before["timestamp"]["time"]   # the time its timestamp proves
    # a signature without its revocation data in the file has nothing to be validated by then
    old = verified(client, unproven)
    assert [(s["valid"], s["trusted"], s["level"]) for s in old["signatures"]] == [(False, False, "B-T")]
