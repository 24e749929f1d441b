"""`lscloud bench reports`: citizen reports created per second through the gateway against raw S3
PUTs, and the "me too" nearby-duplicate lookup with 100,000 reports indexed against raw GETs — all
measured in the same run.

- **Create**: ``POST /reports/v1/reports`` as signed-in citizens (validation, the commune, routing,
  the working-day deadline, the report under create-only, its audit entry, four index keys, the
  CloudEvent on NATS).
- **Raw PUT**: create-only PUTs of a report-sized JSON document (boto3), the store's own speed.
- **Nearby**: ``GET /reports/v1/reports/nearby`` at a point with a cluster of open reports around
  it, after ``--reports`` index entries (default 100,000) were spread over the province's cells,
  as many reports as the function would have indexed. The lookup lists nine geohash cells (the
  keys carry the positions) and reads only the nearest reports; its cost does not grow with the table.
- **Raw GET**: a GET of one report document, the floor of any lookup that reads one.
Figures are printed, nothing is asserted.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from .bench import local_cloud
from .bench_load import BenchError, run_load, s3_call, s3_create_call
from .cloud import cloud_settings

POINT = (21.8537, 106.7610)               # Đồng Đăng
COMMUNE = "06184"
CATEGORIES = ("urban-order", "environment", "security", "roads", "electricity", "water")


def _body(i: int) -> dict:
    # around the point within ~300 m: a busy street, where a new report has a few neighbours
    lat, lon = POINT[0] + random.uniform(-0.003, 0.003), POINT[1] + random.uniform(-0.003, 0.003)
    return {"service_code": "TTDT-LAN-CHIEM", "lat": lat, "long": lon, "commune": COMMUNE,
            "description": f"Lấn chiếm vỉa hè #{i}", "reporter": {"name": "Bench", "phone": "0912000000"}}


def bench_reports(*, requests: int = 300, concurrency: int = 8, reports: int = 100_000, lookups: int = 50,
                  functions_dir: Path = Path("functions"), reuse_state_dir: Path | None = None,
                  max_seconds: float = 60.0) -> int:
    from lscloud.auth import dev_keys, issue_token
    from lscloud.store import keys as store_keys
    from lscloud.store.objects import ObjectStore

    if requests < 1 or concurrency < 1 or reports < 0 or lookups < 1:
        raise BenchError("--requests, --concurrency and --lookups must be at least 1, --reports at least 0")
    if not (functions_dir / "reports" / "func.yaml").is_file():
        raise BenchError(f"no reports function in {functions_dir}")
    import pygeohash

    run = uuid.uuid4().hex[:6]
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("reports",)) as cloud:
        settings = cloud_settings(cloud)
        private = dev_keys(settings.state_dir)[0]
        gw = cloud["gateway"]["url"] + "/reports"
        counter = iter(range(10 ** 9))
        lock = threading.Lock()
        created: list[str] = []

        def create_call():
            client = httpx.Client(trust_env=False, timeout=60.0)
            head = {"Authorization": "Bearer " + issue_token(private, f"0200{uuid.uuid4().int % 10 ** 8:08d}",
                                                              "citizen", ttl_s=7200)}

            def call():
                with lock:
                    i = next(counter)
                r = client.post(f"{gw}/v1/reports", json=_body(i), headers=head)
                if r.status_code != 201:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")
                with lock:
                    created.append(r.json()["id"])

            return call

        print(f"… warming up, then {requests} reports at concurrency {concurrency}", flush=True)
        run_load("warm-up", create_call, min(10, requests), 2, 30)
        create = run_load("POST /reports/v1/reports via gateway", create_call, requests, concurrency, max_seconds)
        sample = json.dumps({"id": "x" * 17, "data": _body(0) | {"status": "submitted", "audit": "x" * 600}}).encode()
        raw_put = run_load("S3 PUT If-None-Match: * of a report-sized JSON (boto3)",
                           s3_create_call(settings, f"bench-raw/{run}", sample, concurrency=concurrency),
                           requests, concurrency, max_seconds)

        # the other reports of the province: index entries spread over its cells and categories
        objects = ObjectStore.from_settings(settings)
        print(f"… indexing {reports} open reports spread over Lạng Sơn", flush=True)
        rng = random.Random(run)

        def put_entry(i):
            lat, lon = rng.uniform(21.3, 22.5), rng.uniform(106.1, 107.3)
            cell = f"{rng.choice(CATEGORIES)}:{pygeohash.encode(lat, lon, precision=7)}"
            entry = f"2026-11-{1 + i % 28:02d}T00:00:00.000Z_{lat:.6f}_{lon:.6f}_bench{run}{i:07d}"
            objects.put(settings.bucket, store_keys.object_key("reports-nearby", cell, entry),
                        json.dumps({"cell": cell, "entry": entry}).encode())

        started = time.perf_counter()
        with ThreadPoolExecutor(max(8, concurrency * 2)) as pool:
            list(pool.map(put_entry, range(reports)))
        fill_s = time.perf_counter() - started
        url = f"{gw}/v1/reports/nearby"
        params = {"service_code": "TTDT-LAN-CHIEM", "lat": POINT[0], "long": POINT[1]}
        found = httpx.get(url, params=params, timeout=60.0, trust_env=False).json().get("total", 0)

        def nearby_call():
            client = httpx.Client(trust_env=False, timeout=60.0)

            def call():
                r = client.get(url, params=params)
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")
            return call

        doc_key = store_keys.object_key("reports", created[0]) if created else None
        nearby = run_load(f"GET /reports/v1/reports/nearby ({found} found)", nearby_call, lookups, 2, max_seconds)
        raw_get = run_load("raw S3 GET of one report document (boto3)",
                           s3_call(objects, settings.bucket, doc_key), lookups, 2, max_seconds) if doc_key else None

    print()
    print(f"lscloud bench reports — {os.cpu_count()} CPU(s), concurrency {concurrency}")
    width = max(len(r.name) for r in (create, raw_put, nearby) + ((raw_get,) if raw_get else ()))
    print(f"{'writes'.ljust(width)}  {'per s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for r in (create, raw_put):
        print(f"{r.name.ljust(width)}  {r.rps:8.1f}  {r.pct(0.5):7.1f}  {r.pct(0.99):7.1f}  {r.errors:6d}"
              + (f"  ({r.first_error})" if r.errors else ""))
    if raw_put.rps:
        print(f"reports/s as a share of raw PUTs/s: {create.rps / raw_put.rps:.2f}")
    print(f"{reports} index entries written in {fill_s:.1f}s ({reports / fill_s if fill_s else 0:.0f}/s)")
    print(f"{'lookups'.ljust(width)}  {'per s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for r in (nearby,) + ((raw_get,) if raw_get else ()):
        print(f"{r.name.ljust(width)}  {r.rps:8.1f}  {r.pct(0.5):7.1f}  {r.pct(0.99):7.1f}  {r.errors:6d}"
              + (f"  ({r.first_error})" if r.errors else ""))
    if raw_get and raw_get.pct(0.5):
        print(f"nearby p50 / raw GET p50: {nearby.pct(0.5) / raw_get.pct(0.5):.1f}x")
    return 0 if not (create.errors or nearby.errors) else 1
