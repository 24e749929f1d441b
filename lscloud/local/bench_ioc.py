"""`lscloud bench ioc`: events/s the IOC absorbs from the bus against raw S3 PUTs, and indicator read
latency against a raw S3 GET, measured in the same run.

Absorbing is the whole path an event takes: published on JetStream, pulled by the dispatcher's durable
consumer, POSTed to the IOC's ``/events`` (sender token checked; no run-once lease: the IOC's
handlers are repeat-safe), the fact written to the store and folded into the live projection. The
rate is events published / time until the IOC's figures count every one of them
(``reports.received`` through the gateway). The baseline is raw create-only PUTs of one small fact
record each (the IOC's own write per event). Reads are ``GET /ioc/v1/indicators`` (every indicator
with its breakdowns) and an hourly series, via the gateway, against a raw GET of one object.
Figures are printed, nothing is asserted.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from .bench import local_cloud
from .bench_load import BenchError, run_load, s3_call, s3_create_call
from .cloud import cloud_settings

REPORT = "vn.langson.reports.report.submitted.v1"


def _report(run: str, i: int, at: datetime) -> dict:
    """The ``i``-th report of a run, as the reports function publishes one (its event contract:
    ``schemas/events/reports/report.v1.json``; the run's ids follow on from a random start)."""
    from lscloud import events, workdays

    report_id = f"{at.astimezone(workdays.TZ):%Y%m%d}-{(int(run, 16) + i) % 2**32:08x}"
    return events.new_event(REPORT, "/bench", {
        "report_id": report_id, "service_code": "GT-HU-HONG", "category": "roads",
        "commune": f"{6001 + i % 40:05d}", "agency": None, "status": "open", "from_state": None,
        "to_state": "submitted", "deadline": None, "occurred_at": at.isoformat(), "channel": "app", "rating": None},
        id=f"bench-{run}-{i}")


def _counted(client: httpx.Client, gw: str) -> int:
    r = client.get(f"{gw}/ioc/v1/indicators", params={"area": "petitions"})
    if r.status_code != 200:
        raise BenchError(f"reading the indicators: HTTP {r.status_code} {r.text[:200]}")
    item = next(i for i in r.json()["items"] if i["id"] == "reports.received")
    return item["value"] or 0


def bench_ioc(*, events: int = 2000, reads: int = 300, concurrency: int = 8, functions_dir: Path = Path("functions"),
              reuse_state_dir: Path | None = None, max_seconds: float = 120.0) -> int:
    from lscloud.auth import dev_keys, issue_token
    from lscloud.bus import SyncBus

    if events < 1 or reads < 1 or concurrency < 1:
        raise BenchError("--events, --reads and --concurrency must be at least 1")
    if not (functions_dir / "ioc" / "func.yaml").is_file():
        raise BenchError(f"no ioc function in {functions_dir}")
    run = uuid.uuid4().hex[:8]
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("ioc",)) as cloud:
        settings = cloud_settings(cloud)
        gw = cloud["gateway"]["url"]
        auth = {"Authorization": "Bearer " + issue_token(dev_keys(settings.state_dir)[0], "bench", "ioc", ttl_s=7200)}
        bus = SyncBus(settings).start()
        now = datetime.now(timezone.utc) - timedelta(minutes=1)
        with httpx.Client(trust_env=False, timeout=60.0, headers=auth) as client:
            start_count = _counted(client, gw)
            print(f"… publishing {events:,} citizen-report events on the bus ({concurrency} publishers)", flush=True)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(lambda i: bus.publish(_report(run, i, now)), range(events)))
            published_s = time.perf_counter() - t0
            deadline = time.monotonic() + max_seconds * 5
            counted = start_count
            while counted < start_count + events:
                if time.monotonic() > deadline:
                    raise BenchError(f"the IOC counted {counted - start_count} of {events} events in time")
                time.sleep(1.0)
                counted = _counted(client, gw)
            absorbed_s = time.perf_counter() - t0
        bus.close()

        fact = b'{"at":"2026-12-03T10:00:00Z","attrs":{"category":"roads","commune":"06001"},"entity":"r","id":"' \
               + b"0" * 40 + b'","kind":"report","source":"reports","state":"submitted","values":{}}'
        puts = run_load("S3 PUT If-None-Match: * of one fact record (boto3)",
                        s3_create_call(settings, f"bench-ioc/{run}", fact, concurrency=concurrency),
                        min(events, 3000), concurrency, max_seconds)

        def get(path: str):
            def make():
                c = httpx.Client(trust_env=False, timeout=30.0, headers=auth)

                def call():
                    r = c.get(gw + path)
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:120]}")

                return call

            return make

        print(f"… {reads} reads of each kind at concurrency {concurrency}", flush=True)
        listing = run_load("GET /ioc/v1/indicators (all, with breakdowns)", get("/ioc/v1/indicators"), reads,
                           concurrency, max_seconds)
        series = run_load("GET /ioc/v1/indicators/reports.open/series (24 h)",
                          get("/ioc/v1/indicators/reports.open/series?step=hour"), reads, concurrency, max_seconds)
        from lscloud.store.objects import ObjectStore

        objects = ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_region)
        objects.put(settings.bucket, f"bench-ioc/{run}/get", fact)
        gets = run_load("S3 GET of one small object (boto3)", s3_call(objects, settings.bucket, f"bench-ioc/{run}/get"),
                        reads, concurrency, max_seconds)

    rate = events / absorbed_s
    print()
    print(f"lscloud bench ioc — {os.cpu_count()} CPU(s), concurrency {concurrency}, {counted:,} facts held")
    print(f"absorb {events:,} events: published in {published_s:.2f} s, all counted after {absorbed_s:.2f} s "
          f"→ {rate:,.0f} events/s (bus → dispatcher → /events → fact PUT → projection)")
    if puts.rps:
        print(f"raw PUTs of one fact each: {puts.rps:,.0f}/s → the IOC absorbs at {rate / puts.rps:.1%} of the raw PUT rate "
              f"(each event: the fact PUT and the delivery hops)")
    width = max(len(x.name) for x in (puts, listing, series, gets))
    print(f"{'target'.ljust(width)}  {'per s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for res in (puts, listing, series, gets):
        print(f"{res.name.ljust(width)}  {res.rps:8.1f}  {res.pct(0.5):7.1f}  {res.pct(0.99):7.1f}  {res.errors:6d}"
              + (f"  ({res.first_error})" if res.errors else ""))
    if gets.ok and listing.ok:
        print(f"reading every indicator costs {listing.pct(0.5) / gets.pct(0.5):.1f}× a raw GET at p50 "
              f"(computed from the in-memory projection; nothing read from the store)")
    return 1 if not (listing.ok and series.ok) else 0
