"""`lscloud bench market`: stamps issued per second and scan latency, against raw S3 PUTs and GETs
measured in the same run.

Issuing is what a producer's printer needs: ``POST /market/v1/lots/{lot}/stamps {"count": N}``
(a batch record, its codes signed with Ed25519 and kept in parts of 10,000, and one change to the
lot) and then every code of the batch (``GET …/codes``: the stored parts, streamed). The
baseline is what storing one object per stamp would cost: raw create-only PUTs, their rate measured
here and the time for N of them extrapolated. The scan is ``GET /market/v1/stamps/{code}`` through
the gateway (verify the signature, find the batch, count the scan on the stamp's own record, tell
the lot's story), first scans and repeated scans, against a raw GET of one object. Figures are
printed, nothing is asserted.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from pathlib import Path

import httpx

from .bench import local_cloud
from .bench_load import BenchError, run_load, s3_call, s3_create_call
from .cloud import cloud_settings

PRODUCER = "0100109106"


def _issue(client: httpx.Client, gw: str, auth: dict, lot: str, count: int) -> tuple[float, float, list[str]]:
    t0 = time.perf_counter()
    r = client.post(f"{gw}/market/v1/lots/{lot}/stamps", json={"count": count},
                    headers={**auth, "Idempotency-Key": uuid.uuid4().hex})
    if r.status_code != 201:
        raise BenchError(f"issuing {count} stamps: HTTP {r.status_code} {r.text[:200]}")
    t1 = time.perf_counter()
    batch = r.json()
    if "codes" in batch:
        codes = batch["codes"]
    else:
        got = client.get(gw + batch["codes_url"], headers=auth, timeout=600)
        if got.status_code != 200:
            raise BenchError(f"fetching the codes: HTTP {got.status_code} {got.text[:200]}")
        codes = got.text.split()
    if len(codes) != count:
        raise BenchError(f"{len(codes)} codes for a batch of {count}")
    return t1 - t0, time.perf_counter() - t0, codes


def bench_market(*, stamps: int = 100_000, scans: int = 2000, concurrency: int = 8,
                 functions_dir: Path = Path("functions"), reuse_state_dir: Path | None = None,
                 max_seconds: float = 60.0) -> int:
    from lscloud.auth import dev_keys, issue_token

    if stamps < 1 or scans < 1 or concurrency < 1:
        raise BenchError("--stamps, --scans and --concurrency must be at least 1")
    for name in ("market", "directory"):
        if not (functions_dir / name / "func.yaml").is_file():
            raise BenchError(f"no {name} function in {functions_dir}")
    run = uuid.uuid4().hex[:8]
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("directory", "market")) as cloud:
        settings = cloud_settings(cloud)
        gw = cloud["gateway"]["url"]
        auth = {"Authorization": "Bearer " + issue_token(dev_keys(settings.state_dir)[0], PRODUCER, "producer",
                                                         ttl_s=7200)}
        with httpx.Client(trust_env=False, timeout=120.0) as c:
            r = c.post(f"{gw}/market/v1/lots", headers={**auth, "Idempotency-Key": uuid.uuid4().hex}, json={
                "product": "Na Chi Lăng (bench)", "unit": "thùng", "harvested_on": "2025-08-20",
                "origin": {"commune": "06463", "plot": "bench"}})
            if r.status_code != 201:
                raise BenchError(f"registering the lot: HTTP {r.status_code} {r.text[:200]}")
            lot = r.json()["id"]
            print(f"… issuing a warm-up batch, then {stamps:,} stamps in one batch", flush=True)
            _issue(c, gw, auth, lot, 100)
            post_s, total_s, codes = _issue(c, gw, auth, lot, stamps)

        # baseline: one object per stamp, as raw create-only PUTs of a small record
        record = b'{"lot":"x","serial":0,"sig":"' + b"A" * 88 + b'"}'
        puts = run_load("S3 PUT If-None-Match: * of one stamp record (boto3)",
                        s3_create_call(settings, f"bench-market/{run}", record, concurrency=concurrency),
                        min(stamps, 3000), concurrency, max_seconds)

        lock = threading.Lock()
        fresh = iter(codes)                       # each stamp's first scan: its scan record is created
        pool = itertools.cycle(codes[:max(1, min(scans, len(codes)) // 4)])   # scanned again: read, then If-Match

        def scan_call(repeat: bool):
            def make():
                client = httpx.Client(trust_env=False, timeout=30.0)

                def call():
                    with lock:
                        code = next(pool) if repeat else next(fresh)
                    r = client.get(f"{gw}/market/v1/stamps/{code}")
                    if r.status_code != 200 or r.json().get("authentic") is not True:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:120]}")

                return call

            return make

        print(f"… {scans} first scans and {scans} repeated scans at concurrency {concurrency}", flush=True)
        first = run_load("scan, first of a stamp (via gateway)", scan_call(False), min(scans, len(codes)),
                         concurrency, max_seconds)
        again = run_load("scan, repeated (via gateway)", scan_call(True), scans, concurrency, max_seconds)
        from lscloud.store.objects import ObjectStore

        objects = ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_region)
        objects.put(settings.bucket, f"bench-market/{run}/get", record)
        gets = run_load("S3 GET of one small object (boto3)", s3_call(objects, settings.bucket, f"bench-market/{run}/get"),
                        scans, concurrency, max_seconds)

    put_time = stamps / puts.rps if puts.rps else float("nan")
    print()
    print(f"lscloud bench market — {os.cpu_count()} CPU(s), concurrency {concurrency}")
    print(f"issue {stamps:,} stamps: POST {post_s * 1000:.0f} ms (batch record, its code parts, the lot), "
          f"all codes signed and delivered in {total_s:.2f} s → {stamps / total_s:,.0f} stamps/s")
    print(f"the same as one object per stamp at the raw PUT rate ({puts.rps:,.0f}/s): {put_time:,.1f} s "
          f"→ issuing is {put_time / total_s:,.1f}× faster than raw PUTs alone")
    width = max(len(x.name) for x in (puts, first, again, gets))
    print(f"{'target'.ljust(width)}  {'per s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for res in (puts, first, again, gets):
        print(f"{res.name.ljust(width)}  {res.rps:8.1f}  {res.pct(0.5):7.1f}  {res.pct(0.99):7.1f}  {res.errors:6d}"
              + (f"  ({res.first_error})" if res.errors else ""))
    if gets.ok and again.ok:
        print(f"a repeated scan costs {again.pct(0.5) / gets.pct(0.5):.1f}× a raw GET at p50 "
              f"(signature check, batch and lot from cache, the scan counted with a GET + conditional PUT)")
    return 1 if not (first.ok and again.ok) else 0
