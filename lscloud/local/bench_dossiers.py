"""`lscloud bench dossiers`: dossier submissions per second, with their attachments, against raw S3
PUTs measured in the same run.

One submission is what a citizen's app does: send the dossier with the procedure's two required
documents (PDF, ~20 KB each) in one ``POST /dossiers/v1/dossiers`` (multipart: the JSON and the
files; validation, the procedure and unit from the peer cache of ``procedures`` and ``directory``,
the files checked and stored content-addressed, the receipt with its working-day appointment,
indexes, audit entry, event on NATS) — through the gateway. The older two-step flow (each file
``POST /dossiers/v1/attachments`` first, then the JSON naming them) is measured beside it. The
baseline is raw boto3 PUTs of the same attachment bytes. Figures are printed, nothing is asserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from pathlib import Path

import httpx

from .bench import local_cloud
from .bench_cpu import CpuMeter
from .bench_load import BenchError, print_cpu, run_alternated, run_load, s3_create_call
from .cloud import cloud_settings

ATTACHMENT_BYTES = 20_000


def _pdf(tag: str) -> bytes:
    head = b"%PDF-1.4\n% " + tag.encode() + b"\n"
    return head + b"0" * (ATTACHMENT_BYTES - len(head) - 6) + b"\n%%EOF"


def bench_dossiers(*, requests: int = 200, concurrency: int = 8, functions_dir: Path = Path("functions"),
                   reuse_state_dir: Path | None = None, max_seconds: float = 60.0,
                   procedure: str = "HT-KS", unit: str = "05983", report: list | None = None, rounds: int = 3) -> int:
    from lscloud.auth import dev_keys, issue_token

    if requests < 1 or concurrency < 1 or rounds < 1:
        raise BenchError("--requests, --concurrency and --rounds must be at least 1")
    for name in ("dossiers", "procedures", "directory"):
        if not (functions_dir / name / "func.yaml").is_file():
            raise BenchError(f"no {name} function in {functions_dir}")
    run = uuid.uuid4().hex[:8]
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("directory", "procedures", "dossiers")) as cloud:
        settings = cloud_settings(cloud)
        private = dev_keys(settings.state_dir)[0]
        gw = cloud["gateway"]["url"]
        cit = {"Authorization": "Bearer " + issue_token(private, "020090001234", "citizen", ttl_s=7200)}
        with httpx.Client(trust_env=False, timeout=30.0) as c:
            r = c.get(f"{gw}/procedures/v1/procedures/{procedure}")
            if r.status_code != 200:
                raise BenchError(f"procedure {procedure} not in the catalogue: {r.status_code} {r.text[:200]}")
            required = [d["code"] for d in r.json()["documents"] if d.get("required")]
        counter = iter(range(10 ** 9))
        lock = threading.Lock()

        def one_request_call():
            client = httpx.Client(trust_env=False, timeout=30.0)

            def call():
                with lock:
                    i = next(counter)
                files = {code: (f"{code}.pdf", _pdf(f"{run}-{i}-{code}"), "application/pdf") for code in required}
                body = {"id": f"bench-{run}-{i:08d}", "procedure": procedure, "unit": unit,
                        "documents": [{"code": c, "sha256": hashlib.sha256(f[1]).hexdigest()} for c, f in files.items()]}
                r = client.post(f"{gw}/dossiers/v1/dossiers", headers=cit,
                                files={"body": (None, json.dumps(body), "application/json"), **files})
                if r.status_code != 201:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")

            return call

        def submit_call():
            client = httpx.Client(trust_env=False, timeout=30.0)

            def call():
                with lock:
                    i = next(counter)
                docs = []
                for code in required:
                    up = client.post(f"{gw}/dossiers/v1/attachments", content=_pdf(f"{run}-{i}-{code}"),
                                     headers={**cit, "Content-Type": "application/pdf"})
                    if up.status_code != 201:
                        raise RuntimeError(f"upload HTTP {up.status_code}: {up.text[:160]}")
                    docs.append({"code": code, "sha256": up.json()["sha256"]})
                r = client.post(f"{gw}/dossiers/v1/dossiers", headers=cit, json={
                    "id": f"bench-{run}-{i:08d}", "procedure": procedure, "unit": unit, "documents": docs})
                if r.status_code != 201:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")

            return call

        s3_put_call = s3_create_call(settings, f"bench-raw/{run}", lambda i: _pdf(f"raw-{i}"),
                                     concurrency=concurrency, content_type="application/pdf")

        print(f"… warming up, then {requests} submissions ({len(required)} attachments each) at concurrency {concurrency}",
              flush=True)
        run_load("warm-up", one_request_call, min(10, requests), min(concurrency, 4), 30)
        run_load("warm-up", submit_call, min(10, requests), min(concurrency, 4), 30)
        alternated = run_alternated([
            (f"submission (one POST with {len(required)} files) via gateway", one_request_call, requests),
            ("S3 PUT If-None-Match: * of a 20 KB PDF (boto3)", s3_put_call, requests * 10)],
            rounds=rounds, concurrency=concurrency, max_seconds=max_seconds, cpu=CpuMeter(cloud))
        subs, puts = alternated.merged.values()
        steps = run_load(f"submission ({len(required)} uploads + POST) via gateway", submit_call, requests, concurrency,
                         max_seconds)

    print()
    print(f"lscloud bench dossiers — {os.cpu_count()} CPU(s), concurrency {concurrency}, procedure {procedure}")
    width = max(len(subs.name), len(steps.name), len(puts.name))
    print(f"{'target'.ljust(width)}  {'per s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for r in (subs, steps, puts):
        print(f"{r.name.ljust(width)}  {r.rps:8.1f}  {r.pct(0.5):7.1f}  {r.pct(0.99):7.1f}  {r.errors:6d}"
              + (f"  ({r.first_error})" if r.errors else ""))
    if subs.rps and puts.rps:
        print(f"one submission with its attachments costs about {puts.rps / subs.rps:.1f} raw PUTs of time "
              f"({subs.rps / puts.rps:.1%} of the raw PUT rate); at 105,000 dossiers a year that is "
              f"{105_000 / subs.rps / 3600:.2f} h of one replica's time")
    if steps.rps and puts.rps:
        print(f"uploading the files first, then the dossier: about {puts.rps / steps.rps:.1f} raw PUTs of time")
    print_cpu([subs, puts])
    if report is not None:
        from .bench_load import base, rate_ratio, rounds_row

        report.append(rounds_row("dossier submission with two 20 KB PDFs", subs,
                                 base("S3 PUT If-None-Match: * of 20 KB", puts),
                                 alternated.ratios(lambda r: rate_ratio(r[puts.name], r[subs.name])),
                                 "≤ 10 PUTs of time", lambda x: x <= 10))
    return 1 if subs.ok == 0 else 0
