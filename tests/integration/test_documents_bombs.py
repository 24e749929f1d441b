"""PDF parse bombs on the documents function: read in bounded worker processes, never in the replica.

pyHanko makes a Python object of every number it parses, and its default limits let an object
stream decode to 4 MiB at any ratio: the public ``POST /v1/verifications`` took 10 s and 500 MB
for a 4 KB PDF of compressed zeros, 45 s and 2 GB (answering 200) for a 16 KB one with four form
fields; an officer's upload read the same bombs, and one that passed the upload's check took 8 s
and 600 MB to sign. Now such a file is a 422 (``pdf-too-costly``) and the test process, which
serves the app, does not grow; a signed document still gets the report it got; the public
verification is rate limited per caller and takes as much as an upload may be: it took at most
10 MiB, so a 15 MiB scan signed here could not be verified by whoever it was sent to."""

from __future__ import annotations

import resource
import threading
import zlib

import pytest

from documents_support import make_pdf, with_attachment

from functions.documents.function import verify

pytestmark = pytest.mark.integration

AGENCY = "ubnd-tinh"
PDF = {"Content-Type": "application/pdf"}
GROWTH_MAX_MB = 100


@pytest.fixture
def documents(start_function):
    return start_function("documents", function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents"})


@pytest.fixture
def client(documents):
    return documents.app.test_client()


def staff(tokens, sub, role="officer"):
    return tokens(role, sub, agency=AGENCY, unit="vp")


# -- the bombs (the bounds survey's, and one that passed the upload's check) ----------------------------

def _with_xref_stream(out: bytearray, rows: dict, root: int) -> bytes:
    num = max(rows) + 1
    rows[num] = (1, len(out), 0)
    index, data = [], b""
    for n in sorted(rows):
        t, a, b = rows[n]
        index += [n, 1]
        data += bytes([t]) + a.to_bytes(4, "big") + b.to_bytes(2, "big")
    out += (b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Index [%s] /Root %d 0 R /Length %d >>\nstream\n"
            % (num, num + 1, b" ".join(b"%d" % x for x in index), root, len(data)) + data + b"\nendstream\nendobj\n")
    out += b"startxref\n%d\n%%%%EOF\n" % rows[num][1]
    return bytes(out)


def _packed(fields: int, numbers: int, page: bool, catalog_packed: bool = False) -> bytes:
    """A catalog (packed itself in a Flate object stream, or listing ``fields`` form fields each
    packed in its own) holding arrays of ``numbers`` zeros: a few KB on the wire."""
    out, rows = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), {0: (0, 0, 65535)}

    def put(num, body):
        rows[num] = (1, len(out), 0)
        out.extend(b"%d 0 obj\n" % num + body + b"\nendobj\n")

    def packed(num, stm, body):
        header = b"%d 0 " % num
        comp = zlib.compress(header + body, 9)
        put(stm, b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
            % (len(header), len(comp)) + comp + b"\nendstream")
        rows[num] = (2, stm, 0)

    refs = b" ".join(b"%d 0 R" % (10 + i) for i in range(fields))
    kids = (b"[3 0 R] /Count 1" if page else b"[] /Count 0")
    if catalog_packed:
        packed(1, 1000, b"<< /Type /Catalog /Pages 2 0 R /Big [" + b"0 " * numbers + b"] >>")
    else:
        put(1, b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + refs + b"] >> >>")
    put(2, b"<< /Type /Pages /Kids " + kids + b" >>")
    if page:
        put(3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>")
    for i in range(fields):
        packed(10 + i, 2000 + i, b"<< /FT /Tx /T (f%d) /Big [" % i + b"0 " * numbers + b"] >>")
    return _with_xref_stream(out, rows, 1)


def plain(numbers: int) -> bytes:
    """A catalog holding an array of ``numbers`` zeros, uncompressed: no decode limit applies."""
    body = b"<< /Type /Catalog /Pages 2 0 R /Big [" + b"0 " * numbers + b"] >>"
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for n, obj in enumerate((body, b"<< /Type /Pages /Kids [] /Count 0 >>"), 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 3\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


BOMBS = {
    "catalog-4kb": lambda: _packed(0, 2_000_000, page=False, catalog_packed=True),   # 10 s, +500 MB, 200
    "four-fields-16kb": lambda: _packed(4, 2_000_000, page=False),                   # 45 s, +2 GB, 200
    "plain-4mb": lambda: plain(2_000_000),                                           # past the worker's memory
}


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def too_costly(r):
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    body = r.get_json()
    assert r.mimetype == "application/problem+json" and body["type"].endswith("pdf-too-costly"), body
    assert [e["field"] for e in body["errors"]] == [""] and body["detail_vi"], body
    return body


# -- the tests ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_pdf_bomb_sent_to_the_public_verification_is_a_422_and_the_replica_does_not_grow(client, bomb):
    pdf = BOMBS[bomb]()
    before = maxrss_mb()
    too_costly(client.post("/v1/verifications", data=pdf, headers=PDF))
    assert maxrss_mb() - before < GROWTH_MAX_MB


UPLOADS = {
    "catalog-4kb": BOMBS["catalog-4kb"],
    "four-fields-one-page": lambda: _packed(4, 2_000_000, page=True),
    # each field packed below every decode limit: the upload's check read the catalog and the page
    # count only, and signing then read the fields in the replica (8 s, +600 MB)
    "two-fields-to-sign": lambda: _packed(2, 500_000, page=True),
}


@pytest.mark.parametrize("bomb", list(UPLOADS))
def test_an_officer_s_upload_of_a_pdf_bomb_is_a_422_and_the_replica_does_not_grow(client, tokens, bomb):
    pdf = UPLOADS[bomb]()
    assert len(pdf) < 20_000
    before = maxrss_mb()
    too_costly(client.post("/v1/documents", query_string={"title": "x"}, data=pdf,
                           headers={**staff(tokens, "cv-bom"), **PDF}))
    assert maxrss_mb() - before < GROWTH_MAX_MB


def test_an_upload_is_read_by_one_worker_job(client, tokens, monkeypatch):
    """The route and documents.upload both checked the PDF: two worker jobs (two reads of the
    file, in a pool of two) for every upload."""
    from functions.documents.function import pdf_worker

    jobs, run = [], pdf_worker.POOL.run
    monkeypatch.setattr(pdf_worker.POOL, "run", lambda fn, *a: jobs.append(fn) or run(fn, *a))
    r = client.post("/v1/documents", query_string={"title": "QĐ"}, data=make_pdf(),
                    headers={**staff(tokens, "cv-mot"), **PDF})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert len(jobs) == 1, jobs


def signed(client, tokens, body: bytes | None = None) -> bytes:
    a, b = staff(tokens, "cv-an"), staff(tokens, "ct-binh", "supervisor")
    r = client.post("/v1/documents", query_string={"title": "QĐ", "signers": "cv-an,ct-binh"},
                    data=body or make_pdf(), headers={**a, **PDF})
    assert r.status_code == 201, r.get_data(as_text=True)
    doc = r.get_json()["id"]
    for h in (a, b):
        assert client.post(f"/v1/documents/{doc}/signatures", json={}, headers=h).status_code == 201
    return client.get(f"/v1/documents/{doc}/file", headers=a).get_data()


def test_a_signed_document_gets_the_report_it_got_in_process_while_bombs_are_read(documents, client, tokens):
    pdf = signed(client, tokens)
    expected = verify.report(pdf, documents.app.config["DOCUMENTS_CUSTODY"].trust())   # read here, as before
    assert expected["valid"] and len(expected["signatures"]) == 2
    sent = [BOMBS["plain-4mb"](), pdf, BOMBS["four-fields-16kb"](), pdf]
    answers: list = [None] * len(sent)

    def post(i):
        answers[i] = documents.app.test_client().post("/v1/verifications", data=sent[i], headers=PDF)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(sent))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    too_costly(answers[0])
    too_costly(answers[2])
    for r in (answers[1], answers[3]):
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        assert r.get_json() == expected


@pytest.mark.parametrize("bound", [{"cpu_s": 1}, {"wall_s": 0.5}], ids=["cpu", "wall"])
def test_a_worker_past_its_time_is_killed_and_replaced(client, monkeypatch, bound):
    """The plain bomb needs seconds of CPU before the worker's memory runs out: the CPU limit ends
    the worker first (SIGXCPU), or the wait for its answer does; the next PDF gets a new worker."""
    from functions.documents.function import pdf_worker

    for name, value in bound.items():
        monkeypatch.setattr(pdf_worker.POOL, name, value)
    body = too_costly(client.post("/v1/verifications", data=plain(2_000_000), headers=PDF))
    assert "out of memory" not in body["detail"]
    r = client.post("/v1/verifications", data=make_pdf(), headers=PDF)
    assert r.status_code == 200 and r.get_json()["signatures"] == [], r.get_data(as_text=True)[:300]


def test_the_public_verification_is_limited_per_caller(start_function, tokens):
    client = start_function("documents", function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents",
                                                       "DOCUMENTS_VERIFY_LIMIT": "2"}).app.test_client()
    one = {**PDF, "X-Forwarded-For": "203.0.113.7"}
    for _ in range(2):
        assert client.post("/v1/verifications", data=make_pdf(), headers=one).status_code == 200
    r = client.post("/v1/verifications", data=make_pdf(), headers=one)
    assert r.status_code == 429 and r.mimetype == "application/problem+json", r.get_data(as_text=True)[:300]
    assert int(r.headers["Retry-After"]) > 0 and r.get_json()["detail_vi"]
    # another caller has a window of its own
    assert client.post("/v1/verifications", data=make_pdf(), headers={**PDF, "X-Forwarded-For": "203.0.113.8"}
                       ).status_code == 200


def too_large(r, bound: int):
    assert r.status_code == 413, r.get_data(as_text=True)[:300]
    assert r.mimetype == "application/problem+json" and str(bound) in r.get_json()["detail"], r.get_json()
    return r.get_json()


def test_a_signed_document_as_large_as_an_upload_is_verified(documents, client, tokens):
    """A scan of 19 MiB, uploaded and signed here, then sent to the public verification by whoever
    received it: it was a 413 past 10 MiB. Read by a worker within its memory (pdf_worker.MEMORY_BYTES)."""
    bound = documents.app.extensions["lscloud"].settings.blob_max_bytes
    pdf = signed(client, tokens, with_attachment(make_pdf(), 19 * 1_048_576))
    assert 10 * 1_048_576 < len(pdf) <= bound
    r = client.post("/v1/verifications", data=pdf, headers=PDF)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    report = r.get_json()
    assert report["valid"] is True and report["document_timestamps_trusted"] == 2
    assert [(s["valid"], s["intact"], s["trusted"], s["level"]) for s in report["signatures"]] == [
        (True, True, True, "B-LTA")] * 2
    # one byte more than an upload may be is refused before anything reads it, naming the bound
    too_large(client.post("/v1/verifications", data=pdf + b"0" * (bound + 1 - len(pdf)), headers=PDF), bound)


def test_the_public_verification_takes_what_an_upload_may_be(start_function):
    """The bound is the upload's setting (LSCLOUD_BLOB_MAX_BYTES), not a number of its own."""
    bound = 12 * 1_048_576
    client = start_function("documents", function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents"},
                            blob_max_bytes=bound).app.test_client()
    too_large(client.post("/v1/verifications", data=b"%PDF-1.7\n" + b"0" * bound, headers=PDF), bound)
    # under it, the body is read (and, being no PDF, refused as such)
    r = client.post("/v1/verifications", data=b"%PDF-1.7\n" + b"0" * (11 * 1_048_576), headers=PDF)
    assert r.status_code == 422 and r.get_json()["type"].endswith("unreadable-pdf"), r.get_data(as_text=True)[:300]
