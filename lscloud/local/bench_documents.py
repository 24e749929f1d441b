"""`lscloud bench documents`: signature latency and signatures per second, against a raw S3 PUT of
the same PDF measured in the same run.

A school's teacher (an officer of the school) uploads e-transcripts (a one-page PDF each); each is
then signed with ``POST /documents/v1/documents/{id}/signatures`` (a personal dev certificate,
PAdES with an RFC 3161 timestamp, the CRLs embedded, and a document timestamp at B-LTA — read the
sign, store the new revision, commit under If-Match), one request per signature at the given
concurrency; then a batch approval (``POST /documents/v1/batches``: one approval, many
signatures). The baseline is a raw create-only PUT of the same PDF bytes. Figures are printed,
nothing is asserted.
"""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from pathlib import Path

import httpx

from .bench import local_cloud
from .bench_load import BenchError, run_load, s3_create_call
from .cloud import cloud_settings


def _pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(595, 842))
    c.drawString(72, 760, "HỌC BẠ ĐIỆN TỬ - e-transcript (bench)")
    c.drawString(72, 740, f"{uuid.uuid4()}")
    c.showPage()
    c.save()
    return buf.getvalue()


def _upload(client: httpx.Client, gw: str, auth: dict, i: int) -> str:
    r = client.post(f"{gw}/documents/v1/documents", content=_pdf(), params={"title": f"Học bạ {i}",
                                                                           "type": "bao-cao"},
                    headers={**auth, "Content-Type": "application/pdf"})
    if r.status_code != 201:
        raise BenchError(f"uploading a transcript: HTTP {r.status_code} {r.text[:200]}")
    return r.json()["id"]


def bench_documents(*, requests: int = 30, batch: int = 20, concurrency: int = 2,
                    functions_dir: Path = Path("functions"), reuse_state_dir: Path | None = None,
                    max_seconds: float = 300.0) -> int:
    from lscloud.auth import dev_keys, issue_token

    if requests < 1 or batch < 1 or concurrency < 1:
        raise BenchError("--requests, --batch and --concurrency must be at least 1")
    if not (functions_dir / "documents" / "func.yaml").is_file():
        raise BenchError(f"no documents function in {functions_dir}")
    run = uuid.uuid4().hex[:8]
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("documents",)) as cloud:
        settings = cloud_settings(cloud)
        gw = cloud["gateway"]["url"]
        auth = {"Authorization": "Bearer " + issue_token(dev_keys(settings.state_dir)[0], f"gv-bench-{run}", "officer",
                                                         agency="thpt-bench", unit="12a1", ttl_s=7200)}
        sample = _pdf()
        with httpx.Client(trust_env=False, timeout=300.0) as c:
            print(f"… uploading {requests + batch + 1} one-page transcripts ({len(sample):,} bytes each)", flush=True)
            warm = _upload(c, gw, auth, 0)
            r = c.post(f"{gw}/documents/v1/documents/{warm}/signatures", json={"name": "Giáo viên Bench"}, headers=auth)
            if r.status_code != 201:      # the first signature also makes the PKI and the teacher's certificate
                raise BenchError(f"signing: HTTP {r.status_code} {r.text[:200]}")
            singles = [_upload(c, gw, auth, i) for i in range(1, requests + 1)]
            batched = [_upload(c, gw, auth, i) for i in range(requests + 1, requests + batch + 1)]

        puts = run_load("S3 PUT If-None-Match: * of the same PDF (boto3)",
                        s3_create_call(settings, f"bench-documents/{run}", sample, concurrency=concurrency,
                                       content_type="application/pdf"),
                        requests, concurrency, max_seconds)

        lock = threading.Lock()
        todo = iter(singles)

        def sign_call():
            client = httpx.Client(trust_env=False, timeout=120.0)

            def call():
                with lock:
                    doc = next(todo)
                r = client.post(f"{gw}/documents/v1/documents/{doc}/signatures", json={"name": "Giáo viên Bench"},
                                headers=auth)
                if r.status_code != 201:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:120]}")

            return call

        print(f"… {requests} signatures, one request each, at concurrency {concurrency}", flush=True)
        signs = run_load("sign one PDF (POST …/signatures via gateway)", sign_call, requests, concurrency, max_seconds)

        print(f"… one batch approval of {batch} transcripts", flush=True)
        with httpx.Client(trust_env=False, timeout=max(600.0, max_seconds)) as c:
            t0 = time.perf_counter()
            r = c.post(f"{gw}/documents/v1/batches", json={"documents": batched, "name": "Giáo viên Bench"},
                       headers=auth)
            batch_s = time.perf_counter() - t0
        batch_error = None if r.status_code == 200 and r.json().get("signed") == batch else \
            f"HTTP {r.status_code} {r.text[:200]}"

    print()
    print(f"lscloud bench documents — {os.cpu_count()} CPU(s), concurrency {concurrency}, PAdES level from "
          f"DOCUMENTS_PADES_LEVEL (func.yaml: B-LTA)")
    width = max(len(x.name) for x in (puts, signs))
    print(f"{'target'.ljust(width)}  {'per s':>8}  {'p50 ms':>8}  {'p99 ms':>8}  {'errors':>6}")
    for res in (puts, signs):
        print(f"{res.name.ljust(width)}  {res.rps:8.1f}  {res.pct(0.5):8.1f}  {res.pct(0.99):8.1f}  {res.errors:6d}"
              + (f"  ({res.first_error})" if res.errors else ""))
    if batch_error:
        print(f"batch approval of {batch}: failed ({batch_error})")
    else:
        print(f"batch approval: {batch} signatures in {batch_s:.2f} s → {batch / batch_s:.1f} signatures/s "
              f"({puts.rps / (batch / batch_s):.0f}× fewer than raw PUTs/s)")
    if signs.ok and puts.ok:
        print(f"a signature costs {signs.pct(0.5) / puts.pct(0.5):.0f}× a raw PUT of the same PDF at p50; "
              f"signatures/s are {puts.rps / max(signs.rps, 1e-9):.0f}× fewer than raw PUTs/s")
    return 1 if signs.errors or batch_error else 0
