"""The documents function on real weed mini + nats-server: upload, sign in order, register with the
next number and the agency's seal, read the file, verify it — with our endpoint and independently
(poppler's pdfsig against the published root, OpenSSL for the timestamp) — and bad input refused
with problem+json naming the field. Numbers under a barrier of concurrent writers: no gap, no repeat."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography import x509

import role_matrix
from documents_support import make_pdf, nss_db, pdfsig, signature_timestamps_verify
from lscloud import pseudonyms, store

from functions.documents.function import registers
from client_answers import ok

pytestmark = pytest.mark.integration

AGENCY = "ubnd-tinh"
SEAL = "Ủy ban nhân dân tỉnh Lạng Sơn"   # the directory's name of AGENCY
PDF = {"Content-Type": "application/pdf"}


@pytest.fixture
def documents(start_function, peers):
    # the directory (peers): the seal's agency, asked when an outgoing document is issued
    return start_function("documents", peer_url_template=peers.template,
                          function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents"})


def certified(sub: str) -> str:
    """The name a signer's certificate gives ``sub`` of AGENCY (the custody's pseudonym)."""
    return f"{AGENCY} {pseudonyms.pseudonym('documents-signer-name', sub)[:10]}"


@pytest.fixture
def client(documents):
    return documents.app.test_client()


def staff(tokens, sub, role="officer"):
    return tokens(role, sub, agency=AGENCY, unit="vp")


def problem(r, status, field=None):
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


def upload(client, h, **q):
    q.setdefault("title", "Quyết định cấp phép")
    return ok(client.post("/v1/documents", query_string=q, data=make_pdf(), headers={**h, **PDF}), 201)


def test_role_matrix(documents, keys):
    assert role_matrix.check(documents.app, "documents", keys[0],
                             samples={"year": "2026", "direction": "outgoing", "id": "0" * 32,
                                      "name": "root.crl"}) > 0


def test_two_signers_in_order_then_registered_and_independently_valid(client, tokens, tmp_path):
    drafter, leader = staff(tokens, "cv-an"), staff(tokens, "ct-binh", "supervisor")
    doc = upload(client, drafter, signers="cv-an,ct-binh", type="quyet-dinh")
    assert doc["status"] == "draft" and doc["id"]

    # the leader may not sign before the drafter
    problem(client.post(f"/v1/documents/{doc['id']}/signatures", json={}, headers=leader), 409)
    d1 = ok(client.post(f"/v1/documents/{doc['id']}/signatures", json={"name": "Nguyễn Văn An", "title": "Chuyên viên"},
                        headers=drafter), 201)
    assert d1["status"] == "signing"
    d2 = ok(client.post(f"/v1/documents/{doc['id']}/signatures", json={"name": "Trần Thị Bình", "title": "Chủ tịch"},
                        headers=leader), 201)
    assert d2["status"] == "signed" and [s["name"] for s in d2["signatures"]] == [certified("cv-an"), certified("ct-binh")]
    assert [s["stated_name"] for s in d2["signatures"]] == ["Nguyễn Văn An", "Trần Thị Bình"]

    reg = ok(client.post(f"/v1/documents/{doc['id']}/registration", json={}, headers=drafter))
    assert reg["status"] == "issued"
    assert reg["registration"]["number"] == 1 and reg["registration"]["display"] == "Số: 01/QĐ-UBND"
    # registering again answers the same registration
    again = ok(client.post(f"/v1/documents/{doc['id']}/registration", json={}, headers=drafter))
    assert again["registration"]["number"] == 1

    signed = client.get(f"/v1/documents/{doc['id']}/file", headers=drafter)
    assert signed.status_code == 200 and signed.mimetype == "application/pdf"
    pdf = signed.get_data()

    report = ok(client.post("/v1/verifications", data=pdf, headers=PDF))
    assert report["valid"] is True and len(report["signatures"]) == 3
    assert [s["signer"]["name"] for s in report["signatures"]] == [certified("cv-an"), certified("ct-binh"), SEAL]
    for s in report["signatures"]:
        assert s["trusted"] and s["intact"] and not s["modified_after_signing"]
        assert s["timestamp"]["trusted"] and s["level"] in ("B-LT", "B-LTA") and s["revocation"] == "good"
        assert s["chain"][0] == "Lạng Sơn Cloud DEV Root CA"

    root = client.get("/v1/trust/root.pem")
    assert root.status_code == 200
    db = nss_db(root.get_data(as_text=True), tmp_path / "nss")
    verdicts = [v for v in pdfsig(pdf, db, tmp_path) if v["type"] == "ETSI.CAdES.detached"]
    assert [v["signer"] for v in verdicts] == [certified("cv-an"), certified("ct-binh"), SEAL]
    assert all(v["signature"] == "Signature is Valid." and v["certificate"] == "Certificate is Trusted."
               for v in verdicts), verdicts
    # B-T: each signature's RFC 3161 token verified by OpenSSL against the root
    assert signature_timestamps_verify(pdf, db / "root.pem", tmp_path) == [True, True, True]

    # one byte changed inside the signed range: both validators say so
    tampered = bytearray(pdf)
    tampered[pdf.index(b"stream") + 20] ^= 0x01
    tampered = bytes(tampered)
    bad = ok(client.post("/v1/verifications", data=tampered, headers=PDF))
    assert bad["valid"] is False
    assert all(not s["intact"] and s["modified_after_signing"] for s in bad["signatures"])
    assert all(v["signature"] == "Digest Mismatch." for v in pdfsig(tampered, db, tmp_path)
               if v["type"] == "ETSI.CAdES.detached")

    trail = ok(client.get(f"/v1/documents/{doc['id']}/audit", headers=drafter))["entries"]
    assert [e["action"] for e in trail] == ["draft", "sign", "sign", "issue"]

    # the next outgoing document of the agency this year gets the next number
    nxt = upload(client, drafter, type="cong-van")
    ok(client.post(f"/v1/documents/{nxt['id']}/signatures", json={}, headers=drafter), 201)
    reg2 = ok(client.post(f"/v1/documents/{nxt['id']}/registration", json={"unit_abbr": "VP"},
                          headers=drafter))
    assert reg2["registration"]["display"] == "Số: 02/UBND-VP"
    year = reg2["registration"]["year"]
    book = ok(client.get(f"/v1/registers/{year}/outgoing", headers=drafter))
    assert [(e["number"], e["document_id"]) for e in book["entries"]] == [(1, doc["id"]), (2, nxt["id"])]
    assert book["next_page_token"] is None
    # a page at a time (a busy agency's book holds thousands of lines by December)
    first = ok(client.get(f"/v1/registers/{year}/outgoing", query_string={"limit": 1}, headers=drafter))
    assert [e["number"] for e in first["entries"]] == [1] and first["next_page_token"]
    rest = ok(client.get(f"/v1/registers/{year}/outgoing", query_string={"limit": 1, "page_token": first["next_page_token"]},
                         headers=drafter))
    assert [e["number"] for e in rest["entries"]] == [2] and rest["next_page_token"] is None
    bad = client.get(f"/v1/registers/{year}/outgoing", query_string={"page_token": "not-a-token"}, headers=drafter)
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "page_token"
    assert ok(client.get(f"/v1/registers/{year}/incoming", headers=drafter))["entries"] == []
    problem(client.get(f"/v1/registers/{year}/sideways", headers=drafter), 404)


def test_bad_input_is_refused_naming_the_field(client, tokens):
    h = staff(tokens, "cv-an")
    problem(client.post("/v1/documents", query_string={"title": "x"}, data=b"hello", headers={**h, "Content-Type": "text/plain"}), 415)
    problem(client.post("/v1/documents", query_string={"title": "x"}, data=b"not a pdf at all", headers={**h, **PDF}), 422, "")
    broken = make_pdf()[:300]
    problem(client.post("/v1/documents", query_string={"title": "x"}, data=broken, headers={**h, **PDF}), 422, "")
    problem(client.post("/v1/documents", data=make_pdf(), headers={**h, **PDF}), 400, "title")
    problem(client.post("/v1/documents", query_string={"title": "x", "urgency": "very"}, data=make_pdf(),
                        headers={**h, **PDF}), 400, "urgency")
    problem(client.post("/v1/documents", query_string={"title": "x"}, data=b"%PDF-" + b"0" * (21 * 1_048_576),
                        headers={**h, **PDF}), 413)
    problem(client.post("/v1/verifications", data=b"%PDF-1.7\ngarbage", headers=PDF), 422, "")
    problem(client.post("/v1/verifications", data=b"garbage", headers=PDF), 422, "")
    doc = upload(client, h)
    problem(client.post(f"/v1/documents/{doc['id']}/signatures", json={"name": ""}, headers=h), 422, "/name")
    # an unsigned document cannot be issued; another agency cannot see it
    problem(client.post(f"/v1/documents/{doc['id']}/registration", json={}, headers=h), 409)
    problem(client.get(f"/v1/documents/{doc['id']}", headers=tokens("officer", "x", agency="so-gddt")), 404)


def test_incoming_registered_and_assigned(client, tokens):
    clerk, head = staff(tokens, "vt-cuc"), staff(tokens, "gd-dung", "supervisor")
    a = upload(client, clerk, direction="incoming", urgency="khan")
    assert a["status"] == "received"
    reg = ok(client.post(f"/v1/documents/{a['id']}/registration", json={}, headers=clerk))
    assert reg["status"] == "registered" and reg["registration"]["display"] == "Số đến: 01"
    problem(client.post(f"/v1/documents/{a['id']}/assignment", json={"officer": "cv-an", "deadline": "2026-13-01"},
                        headers=head), 422, "/deadline")
    done = ok(client.post(f"/v1/documents/{a['id']}/assignment", json={"officer": "cv-an", "deadline": "2026-12-20"},
                          headers=head))
    assert done["status"] == "assigned" and done["assignment"]["officer"] == "cv-an"


def test_a_registration_resumed_in_the_new_year_keeps_the_number_in_its_book(client, tokens):
    """A registration that took its number on 31 December and died before it was recorded was
    resumed in January with last year's number, recorded under this year's book and year."""
    from datetime import datetime, timedelta, timezone

    from functions.documents.function import documents

    clerk = staff(tokens, "vt-tet")
    a = upload(client, clerk, direction="incoming")
    last_year = datetime.now(timezone.utc) - timedelta(days=366)
    old_book = registers.book_of(a["agency"], documents._year(last_year), "incoming", False)
    n = registers.take(old_book, a["id"], {"at": last_year.isoformat(), "by": "vt-tet", "doc_type": a["doc_type"]})

    def died_half_way(d: dict):
        d["registering"] = {"book": old_book, "at": last_year.isoformat(), "by": "vt-tet"}
        return [], True

    documents.RECORDS.mutate(a["id"], died_half_way)
    reg = ok(client.post(f"/v1/documents/{a['id']}/registration", json={}, headers=clerk))["registration"]
    assert (reg["book"], reg["year"], reg["number"]) == (old_book, documents._year(last_year), n)


def test_batch_one_approval_many_signatures(client, tokens):
    teacher = tokens("officer", "gv-hoa", agency="thpt-chu-van-an", unit="12a1")
    ids = [upload(client, teacher, title=f"Học bạ {i}", type="bao-cao")["id"] for i in range(3)]
    out = ok(client.post("/v1/batches", json={"documents": ids, "name": "Lê Thị Hoa", "title": "Giáo viên"},
                         headers=teacher))
    assert out["signed"] == 3 and all(r["status"] == "signed" for r in out["results"])


def test_keys_encrypted_and_no_subject_in_object_keys(client, tokens):
    sub = "079201001234"     # looks like a CCCD: it must not appear in any object key or certificate
    h = staff(tokens, sub)
    doc = upload(client, h)
    signed = ok(client.post(f"/v1/documents/{doc['id']}/signatures", json={"name": "Hà Văn Cường"}, headers=h), 201)
    assert sub not in str(signed["signatures"][0]["certificate"])
    other = upload(client, h)
    unnamed = ok(client.post(f"/v1/documents/{other['id']}/signatures", json={}, headers=h), 201)
    assert sub not in str(unnamed["signatures"][0]["certificate"]) and unnamed["signatures"][0]["name"].startswith(AGENCY)
    objects, bucket = store.connection()
    keys = [o.key for o in objects.list(bucket, "")]
    assert keys and not any(sub in k for k in keys)
    for k in keys:
        if k.startswith(("documents-signers/", "documents-pki/")):
            body = objects.get(bucket, k).body
            assert b"BEGIN PRIVATE KEY" not in body and b"BEGIN EC PRIVATE KEY" not in body
            assert b"BEGIN ENCRYPTED PRIVATE KEY" in body


def test_numbers_never_skipped_nor_reused_under_concurrent_writers(rt):
    book = registers.book_of(AGENCY, 2026, "outgoing")
    n_threads = 12
    barrier = threading.Barrier(n_threads)
    got: dict[str, int] = {}
    failures: list[BaseException] = []

    def worker(i):
        try:
            barrier.wait()
            got[f"doc-{i}"] = registers.take(book, f"doc-{i}", {"by": "t"})
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert sorted(got.values()) == list(range(1, n_threads + 1))
    assert [e["number"] for e in registers.entries(book, 1000)[0]] == list(range(1, n_threads + 1))
    # a document that already holds a number is found again, not given another
    assert registers.find(book, "doc-3") == got["doc-3"]
    assert registers.take(registers.book_of(AGENCY, 2026, "incoming"), "x", {}) == 1   # another book starts at 1


def _pdf_of(objects: list[bytes], trailer: bytes = b"/Root 1 0 R") -> bytes:
    """A PDF of these objects, with a cross-reference table and ``trailer``'s entries."""
    import io

    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.7\n")
    for i, o in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + o + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for o in offsets:
        out.write(b"%010d 00000 n \n" % o)
    out.write(b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref))
    return out.getvalue()


PAGES = [b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] >>"]


@pytest.mark.parametrize("pdf", [
    _pdf_of([b"[1 2 3]", *PAGES]),                                                       # a catalog that is no dictionary
    _pdf_of([b"<< /Type /Catalog /Pages 2 0 R /X " + b"[" * 50_000 + b"]" * 50_000 + b" >>", *PAGES]),   # nested deep
    _pdf_of([b"<< /Type /Catalog /Pages 2 0 R >>", *PAGES], trailer=b""),                 # a trailer without /Root
], ids=["catalog-not-a-dictionary", "nested-50000-deep", "no-root"])
def test_a_pdf_pyhanko_cannot_read_is_a_422_to_anyone_not_a_500(client, tokens, pdf):
    """The public verification endpoint (and an officer's upload) answered 500 to these: pyHanko
    asserts, recurses or finds no /Root outside what the code caught."""
    r = client.post("/v1/verifications", data=pdf, headers=PDF)
    assert r.status_code == 422 and r.mimetype == "application/problem+json", r.get_data(as_text=True)[:300]
    up = client.post("/v1/documents", query_string={"title": "x"}, data=pdf, headers={**staff(tokens, "cv-pdf"), **PDF})
    assert up.status_code == 422, up.get_data(as_text=True)[:300]


def test_a_pdf_that_cannot_take_a_signature_field_is_a_422_when_signed(client, tokens):
    """A PDF whose /AcroForm is a number reads well enough to upload, and pyHanko then raised a
    TypeError writing the signature field into it: a 500 on every signature."""
    pdf = _pdf_of([b"<< /Type /Catalog /Pages 2 0 R /AcroForm 5 >>", *PAGES])
    drafter = staff(tokens, "cv-form")
    doc = ok(client.post("/v1/documents", query_string={"title": "Tờ trình"}, data=pdf, headers={**drafter, **PDF}), 201)
    r = client.post(f"/v1/documents/{doc['id']}/signatures", json={}, headers=drafter)
    assert r.status_code == 422 and r.get_json()["type"].endswith("bad-pdf"), r.get_data(as_text=True)[:300]
    assert ok(client.get(f"/v1/documents/{doc['id']}", headers=drafter))["signatures"] == []


def test_an_upload_sent_again_is_the_same_document(client, tokens):
    """An officer's client retrying an upload after a lost answer made a second draft (two
    documents that would each get a number). The same bytes and details from the same officer are
    one document; another title is another."""
    a = staff(tokens, "cv-retry")
    pdf, q = make_pdf("Công văn gửi lại"), {"title": "Công văn về việc sửa đường"}
    first = client.post("/v1/documents", query_string=q, data=pdf, headers={**a, **PDF})
    again = client.post("/v1/documents", query_string=q, data=pdf, headers={**a, **PDF})
    assert first.status_code == again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    other = ok(client.post("/v1/documents", query_string={"title": "Công văn khác"}, data=pdf, headers={**a, **PDF}), 201)
    assert other["id"] != first.get_json()["id"]


def test_two_signers_racing_never_lose_a_signature(client, documents, tokens):
    a, b = staff(tokens, "cv-racer-a"), staff(tokens, "cv-racer-b")
    doc = upload(client, a)
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def sign(h):
        c = documents.app.test_client()
        barrier.wait()
        answers.append(c.post(f"/v1/documents/{doc['id']}/signatures", json={}, headers=h).status_code)

    threads = [threading.Thread(target=sign, args=(h,)) for h in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) in ([201, 201], [201, 409])
    final = ok(client.get(f"/v1/documents/{doc['id']}", headers=a))
    assert len(final["signatures"]) == answers.count(201)
    pdf = client.get(f"/v1/documents/{doc['id']}/file", headers=a).get_data()
    report = ok(client.post("/v1/verifications", data=pdf, headers=PDF))
    assert len(report["signatures"]) == len(final["signatures"]) and report["valid"]


def test_the_crl_names_of_the_schema_are_every_ca_s_crl_the_certificates_point_to(documents, client):
    """``schemas/documents/crl-name.json`` (the ``/v1/trust/crl/{name}`` route) lists each CA's CRL
    once, as the certificates below the root name it; another name is no CRL."""
    names = json.loads((role_matrix.ROOT / "schemas" / "documents" / "crl-name.json").read_text())["enum"]
    trust = documents.app.config["DOCUMENTS_CUSTODY"].trust()
    issuers = []
    for name in names:
        r = client.get(f"/v1/trust/crl/{name}")
        assert r.status_code == 200 and r.mimetype == "application/pkix-crl", name
        issuers.append(x509.load_der_x509_crl(r.data).issuer)
    assert sorted(map(str, issuers)) == sorted(str(c.subject) for c in (trust.root, *trust.intermediates))
    for cert in trust.intermediates:
        (point,) = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert point.full_name[0].value.rsplit("/", 1)[1] in names
    assert client.get("/v1/trust/crl/nope.crl").status_code == 404


def test_certificates_name_the_platforms_public_address_for_their_crls(start_function):
    # what a certificate names stays in it for its lifetime: the function's public URL, never a loopback one
    platform = start_function("documents", public_url_template="https://{name}.lscloud.cloud.langson.gov.vn")
    assert platform.app.config["DOCUMENTS_CUSTODY"].crl_url("root") == \
        "https://documents.lscloud.cloud.langson.gov.vn/v1/trust/crl/root.crl"
    own = start_function("documents", public_url_template="https://{name}.lscloud.cloud.langson.gov.vn",
                         function_env={"DOCUMENTS_PUBLIC_URL": "https://vanban.langson.gov.vn/"})
    assert own.app.config["DOCUMENTS_CUSTODY"].crl_url("root") == "https://vanban.langson.gov.vn/v1/trust/crl/root.crl"
