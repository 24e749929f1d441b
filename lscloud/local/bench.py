"""`lscloud bench directory`: what the runtime and the gateway cost, measured side by side.

One run, same machine, same load generator, four targets:

1. the directory function's ``GET /v1/units/{code}`` through the gateway;
2. the same request straight to the function's port;
3. the bare func-python ``hello`` function (benchmarks/hello), served the same way;
4. a raw boto3 GET of the S3 object that holds the same unit;

plus the cold start (spawn → ``/health/readiness`` 200) and peak RSS of one fresh process
of each function. Figures are printed with ratios against the baselines measured in the
same run; nothing is asserted. The benchmark starts its own local cloud (temporary state
dir, free ports) unless ``--reuse`` points it at a running one, and stops what it started.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx

from .. import config
from .. import manifest as manifests
from ..store.objects import ObjectStore
from .bench_cpu import CpuMeter
from .bench_load import (BenchError, LoadResult, base, fmt_ratio, http_call, p50_ratio, print_cpu, rate_ratio,
                         rounds_row, row, run_alternated, run_load, s3_call, s3_create_call)
from .bench_soak import SoakMinute, print_soak_summary, soak_after_idle
from .cloud import cloud_settings
from .servers import free_port
from .supervisor import function_env, kill_group, process_alive, read_json, run_function_argv

WITHDRAWAL_VND = 100_000   # one bench withdrawal
HELLO_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
START_TIMEOUT_S = 240.0


@dataclass
class ColdStart:
    name: str
    ms: list[float] = field(default_factory=list)
    peak_rss: int = 0


def cold_start(m: manifests.Manifest, settings, runs: int = 3, warm_requests: int = 50,
               path: str = "/") -> ColdStart:
    """Spawn the function ``runs`` times on a free port; time to readiness 200, peak RSS."""
    import psutil

    out = ColdStart(m.name)
    client = httpx.Client(trust_env=False, timeout=2.0)
    try:
        for _ in range(runs):
            port = free_port()
            env = function_env(m, settings, port)
            t0 = time.perf_counter()
            proc = subprocess.Popen(run_function_argv(m.root), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=str(m.root))
            try:
                ps = psutil.Process(proc.pid)

                def rss() -> int:
                    try:
                        return ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                    except psutil.Error:
                        return 0

                while True:
                    if proc.poll() is not None:
                        raise BenchError(f"{m.name} exited with code {proc.returncode} while starting")
                    if time.perf_counter() - t0 > 120:
                        raise BenchError(f"{m.name} not ready within 120 s")
                    out.peak_rss = max(out.peak_rss, rss())
                    try:
                        if client.get(f"http://127.0.0.1:{port}/health/readiness").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.005)
                out.ms.append((time.perf_counter() - t0) * 1000)
                for _ in range(warm_requests):
                    client.get(f"http://127.0.0.1:{port}{path}")
                out.peak_rss = max(out.peak_rss, rss())
            finally:
                kill_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    kill_group(proc.pid, signal.SIGKILL)
                    proc.wait(5)
    finally:
        client.close()
    return out


@contextmanager
def local_cloud(functions_dir: Path, reuse_state_dir: Path | None,
                only: tuple[str, ...] = ("directory", "hello"), extra_dirs: tuple[Path, ...] = ()) -> Iterator[dict]:
    """A running cloud's ``cloud.json``: the one on ``reuse_state_dir``, or a fresh temporary one."""
    if reuse_state_dir is not None:
        cloud = read_json(reuse_state_dir / "cloud.json")
        if not cloud or cloud.get("state") != "ready" or not process_alive(cloud.get("pid"), cloud.get("create_time")):
            raise BenchError(f"no ready `lscloud up` on state dir {reuse_state_dir}")
        yield cloud
        return
    state_dir = Path(tempfile.mkdtemp(prefix="lscloud-bench-"))
    log_path = state_dir / "up.log"
    argv = [sys.executable, "-m", "lscloud.cli", "--state-dir", str(state_dir), "up", "--port", "0",
            "--functions-dir", str(functions_dir), "--functions-dir", str(HELLO_DIR)]
    for d in extra_dirs:
        argv += ["--functions-dir", str(d)]
    for name in only:
        argv += ["--only", name]
    print(f"… starting a temporary local cloud in {state_dir}", flush=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**config.environ(), "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            cloud = read_json(state_dir / "cloud.json")
            if cloud and cloud.get("state") == "ready" and cloud.get("pid") == proc.pid:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                raise BenchError(f"the local cloud did not start:\n{tail}")
            time.sleep(0.2)
        print(f"✓ local cloud ready: gateway {cloud['gateway']['url']}", flush=True)
        yield cloud
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # belt and braces: whatever the supervisor recorded and did not stop
        for p in (read_json(state_dir / "cloud.json") or {}).get("processes", []):
            if process_alive(p.get("pid"), p.get("create_time")):
                kill_group(p["pid"], signal.SIGKILL)
        shutil.rmtree(state_dir, ignore_errors=True)
        print("✓ temporary local cloud stopped", flush=True)


def find_unit(directory: manifests.Manifest, settings) -> tuple[str, str]:
    """A unit code and the key of its object, asked of the directory's own Model."""
    from lscloud import store
    from lscloud.store import keys

    from ..serve import load_package

    objects = ObjectStore.from_settings(settings)
    store.configure(objects, settings.bucket)
    package = load_package(directory.root)
    import importlib

    Unit = importlib.import_module(package.__name__ + ".models").Unit
    for unit in Unit.scan(limit=50):
        code = getattr(unit, "code", None)
        if code:
            return str(code), keys.object_key(Unit.Meta.table, str(code))
    raise BenchError(f"no units in bucket {settings.bucket} (table {Unit.Meta.table}): did the directory seed run?")


def bench_directory(*, requests: int = 1000, concurrency: int = 8, functions_dir: Path = Path("functions"),
                    reuse_state_dir: Path | None = None, max_seconds: float = 30.0, report: list | None = None,
                    rounds: int = 3) -> int:
    """See the module docstring; ``report``: a list that gets this bench's rows for `lscloud bench all`."""

    if requests < 1 or concurrency < 1 or rounds < 1:
        raise BenchError("--requests, --concurrency and --rounds must be at least 1")
    if not (functions_dir / "directory" / "func.yaml").is_file():
        raise BenchError(f"no directory function in {functions_dir} (expected {functions_dir}/directory/func.yaml)")
    directory = manifests.load(functions_dir / "directory")
    hello = manifests.load(HELLO_DIR / "hello")

    with local_cloud(functions_dir.resolve(), reuse_state_dir) as cloud:
        settings = cloud_settings(cloud)
        from lscloud.auth import dev_keys

        settings = settings.replace(jwt_public_key=dev_keys(settings.state_dir)[1])
        fns = cloud["functions"]
        for needed in ("directory", "hello"):
            if needed not in fns:
                raise BenchError(f"the cloud does not run {needed!r} (functions: {', '.join(fns)})")
        code, key = find_unit(directory, settings)
        gw = cloud["gateway"]["url"]
        path = f"/v1/units/{code}"
        objects = ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                              settings.s3_region, max_pool=max(32, concurrency * 2))
        targets = [
            ("directory via gateway", http_call(f"{gw}/directory{path}")),
            ("directory direct", http_call(f"{fns['directory']['direct_url']}{path}")),
            ("hello direct (bare func-python)", http_call(f"{fns['hello']['direct_url']}/")),
            ("hello via gateway", http_call(f"{gw}/hello/")),
            ("S3 GET, boto3 (same object)", s3_call(objects, settings.bucket, key)),
        ]
        print(f"… unit {code} (object {key}); {requests} requests per target in {rounds} round(s), "
              f"concurrency {concurrency}", flush=True)
        for name, make in targets:
            run_load(name, make, min(50, requests), min(concurrency, 4), 10)  # warm-up: connections, caches

        def measured(r: LoadResult) -> None:
            print(f"  measured {r.name}: {r.rps:.0f} req/s" + (f" ({r.errors} errors: {r.first_error})" if r.errors
                                                                else ""), flush=True)

        alternated = run_alternated([(name, make, requests) for name, make in targets], rounds=rounds,
                                    concurrency=concurrency, max_seconds=max_seconds, on_result=measured,
                                    cpu=CpuMeter(cloud))
        results = [alternated.merged[name] for name, _ in targets]
        print("… cold starts (3 each)", flush=True)
        colds = [cold_start(hello, settings), cold_start(directory, settings, path=path)]

    by = {r.name: r for r in results}
    hello_rps = by["hello direct (bare func-python)"].rps
    s3_rps = by["S3 GET, boto3 (same object)"].rps
    width = max(len(r.name) for r in results)
    print()
    print(f"lscloud bench directory — GET /v1/units/{code}; {requests} requests per target, concurrency {concurrency}, "
          f"{os.cpu_count()} CPU(s)")
    print(f"{'target'.ljust(width)}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}  {'vs hello':>8}  {'vs S3 GET':>9}")
    for r in results:
        print(f"{r.name.ljust(width)}  {r.rps:8.0f}  {r.pct(0.5):7.2f}  {r.pct(0.99):7.2f}  {r.errors:6d}  "
              f"{fmt_ratio(r.rps, hello_rps):>8}  {fmt_ratio(r.rps, s3_rps):>9}")
    gw_r, direct_r = by["directory via gateway"], by["directory direct"]
    if direct_r.rps and hello_rps:
        print(f"the gateway keeps {gw_r.rps / direct_r.rps:.0%} of the directory's direct throughput; "
              f"the directory (Flask + runtime + S3) serves {direct_r.rps / hello_rps:.0%} of bare hello's")
    print_cpu(results)
    print()
    print(f"{'cold start (spawn → readiness 200)':<36}  {'median ms':>9}  {'min ms':>7}  {'max ms':>7}  {'peak RSS MB':>11}")
    for c in colds:
        print(f"{c.name:<36}  {statistics.median(c.ms):9.0f}  {min(c.ms):7.0f}  {max(c.ms):7.0f}  "
              f"{c.peak_rss / 1_048_576:11.1f}")
    if report is not None:
        s3 = by["S3 GET, boto3 (same object)"]
        hello_gw = by["hello via gateway"]
        report.append(rounds_row(
            "GET /directory/v1/units/{code} via gateway", gw_r, base("S3 GET, boto3 (same object)", s3),
            alternated.ratios(lambda r: rate_ratio(r["directory via gateway"], r["S3 GET, boto3 (same object)"])),
            "≥ 1.0× raw GET rate", lambda x: x >= 1.0))
        report.append(rounds_row(
            "bare hello via gateway", hello_gw, base("hello direct", by["hello direct (bare func-python)"]),
            alternated.ratios(lambda r: rate_ratio(r["hello via gateway"], r["hello direct (bare func-python)"])),
            "≥ 0.75× direct", lambda x: x >= 0.75))
        c_hello, c_dir = (statistics.median(c.ms) for c in colds)
        ratio = c_dir / c_hello if c_hello else None
        rss_mb = colds[1].peak_rss / 1_048_576
        report.append(row("cold start directory, spawn → readiness 200", None,
                          {"name": "cold start hello", "p50_ms": round(c_hello, 1)}, ratio,
                          "≤ 1.3× hello, peak RSS ≤ 100 MB", ratio is not None and ratio <= 1.3 and rss_mb <= 100,
                          p50_ms=round(c_dir, 1), peak_rss_mb=round(rss_mb, 1)))
    return 1 if any(r.ok == 0 for r in results) else 0


# -- border -------------------------------------------------------------------------------------------

QUEUE_GATE = "coc-nam"
"""The gate whose yard queue the queue-position benchmark fills: not the declarations' (Hữu Nghị), and
one that takes trucks (Bình Nghi, its gate once, clears no goods: capacity 0, nothing bookable)."""


def _border_body(i: int, run: str, gate: str = "huu-nghi") -> dict:
    from datetime import datetime, timedelta, timezone

    return {"id": f"bench-{run}-{i:06d}", "gate": gate, "direction": "import",
            "expected_arrival": (datetime.now(timezone.utc) + timedelta(minutes=30)).isoformat(),
            "vehicle": {"tractor_plate": f"桂A·{10000 + i % 89999}", "type": "tractor-trailer", "axles": 5,
                        "empty_weight_kg": 15000},
            "driver": {"name": "Bench Driver", "nationality": "CN", "id_type": "passport", "id_number": f"E{i:08d}",
                       "phone": "+8613800000000"},
            "enterprise": {"tax_code": "0100109106", "name": "Bench Co"},
            "goods": [{"hs_code": "081090", "description": "durian", "packages": 800, "gross_weight_kg": 16000,
                       "value": 40000, "currency": "USD", "origin": "CN", "perishable": True}],
            "health": {"fever": False, "symptoms": [], "contact_with_case": False}, "submit": True}


def bench_border(*, requests: int = 300, concurrency: int = 8, waiting: int = 10_000, lookups: int = 300,
                 functions_dir: Path = Path("functions"), reuse_state_dir: Path | None = None,
                 max_seconds: float = 60.0, report: list | None = None, soak: bool = False,
                 soak_minutes: int = 10, soak_rate: int = 1000, rounds: int = 3) -> int:
    """Declarations created per second (full stack: gateway, auth, validation, idempotency, store,
    indexes, audit, events on NATS) against raw S3 conditional PUTs in the same run; then the
    queue-position lookup time with ``waiting`` trucks in the yard queue ahead.

    ``soak``: then ``soak_rate`` declarations a minute for ``soak_minutes`` (open loop), with the
    errors, p50 and p99 of each minute, so a p99 that climbs (a backlog, a leak) shows."""
    import json
    import uuid
    from concurrent.futures import ThreadPoolExecutor as Pool
    from datetime import datetime, timedelta, timezone

    from lscloud.auth import dev_keys, issue_token
    from lscloud.store import keys as store_keys

    if requests < 1 or concurrency < 1 or rounds < 1 or waiting < 0:
        raise BenchError("--requests, --concurrency and --rounds must be at least 1, --waiting at least 0")
    if soak and (soak_minutes < 1 or soak_rate < 1):
        raise BenchError("--soak-minutes and --soak-rate must be at least 1")
    if not (functions_dir / "border" / "func.yaml").is_file():
        raise BenchError(f"no border function in {functions_dir}")
    run = uuid.uuid4().hex[:8]
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("directory", "border")) as cloud:
        settings = cloud_settings(cloud)
        private = dev_keys(settings.state_dir)[0]
        gw = cloud["gateway"]["url"] + "/border"
        ent = {"Authorization": "Bearer " + issue_token(private, "0100109106", "enterprise", ttl_s=7200)}
        counter = iter(range(10 ** 9))
        lock = threading.Lock()

        def create_call():
            client = httpx.Client(trust_env=False, timeout=30.0)

            def call():
                with lock:
                    i = next(counter)
                r = client.post(f"{gw}/v1/declarations", json=_border_body(i, run), headers=ent)
                if r.status_code != 201:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")

            return call

        s3_put_call = s3_create_call(settings, f"bench-raw/{run}", b'{"n":1}', concurrency=concurrency)
        objects = ObjectStore.from_settings(settings)  # fills the yard queue below

        print(f"… warming up, then {requests} declarations (submitted: indexes, audit, events) at concurrency {concurrency}",
              flush=True)
        run_load("warm-up", create_call, min(20, requests), min(concurrency, 4), 20)
        meter = CpuMeter(cloud)   # the rounds', the idle cloud's and the soak's CPU
        writes = run_alternated([("POST /border/v1/declarations via gateway", create_call, requests),
                                 ("S3 PUT If-None-Match: * (boto3)", s3_put_call, requests * 10)],
                                rounds=rounds, concurrency=concurrency, max_seconds=max_seconds, cpu=meter)
        decl, puts = writes.merged.values()
        soaked: list[SoakMinute] = []
        idle: dict[str, float] = {}
        if soak:
            soaked, idle = soak_after_idle(create_call, meter, per_minute=soak_rate, minutes=soak_minutes,
                                           concurrency=concurrency, what="declarations")

        # the queue: `waiting` trucks ahead in the yard queue of one gate, then one real truck at the back
        print(f"… filling the yard queue of {QUEUE_GATE} (in) with {waiting} trucks", flush=True)
        table_prefix = store_keys.hash_prefix("border-queue", f"{QUEUE_GATE}_in")
        t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)

        def put_entry(i):
            k = f"1_2025010107_{int((t0 + timedelta(seconds=i)).timestamp() * 1e6):016d}_LSBENCH{i:06d}"
            objects.put(settings.bucket, table_prefix + store_keys.encode_part(k) + store_keys.SUFFIX,
                        json.dumps({"queue": f"{QUEUE_GATE}_in", "key": k, "declaration_id": f"bench-q-{i}"}).encode())

        started = time.perf_counter()
        with Pool(max(8, concurrency * 2)) as pool:
            list(pool.map(put_entry, range(waiting)))
        fill_s = time.perf_counter() - started
        with httpx.Client(trust_env=False, timeout=60.0) as client:
            body = _border_body(0, run + "q", gate=QUEUE_GATE) | {"booking": {"mode": "living"}}
            r = client.post(f"{gw}/v1/declarations", json=body, headers=ent)
            if r.status_code != 201:
                raise BenchError(f"could not create the measured truck: {r.status_code} {r.text[:200]}")
            created = r.json()
            yard = {"Authorization": "Bearer " + issue_token(private, "yard-1", "yard-operator", unit=QUEUE_GATE),
                    "Idempotency-Key": uuid.uuid4().hex}
            r = client.post(f"{gw}/v1/declarations/{created['id']}/arrival", headers=yard)
            if r.status_code != 200:
                raise BenchError(f"arrival failed: {r.status_code} {r.text[:200]}")
            raw_get_call = s3_call(
                ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_region),
                settings.bucket, store_keys.object_key("border-declarations", created["id"]))
            position = None

            def position_call():
                def call():
                    nonlocal position
                    r = client.get(f"{gw}/v1/declarations/{created['id']}/position", headers=ent)
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")
                    position = r.json()["queue"]["position"]

                return call

            # one client, one call at a time: a driver's lookup, not a load
            reads = run_alternated([("S3 GET, boto3 (the declaration)", raw_get_call, lookups),
                                    (f"queue position, {waiting} waiting", position_call, lookups)],
                                   rounds=rounds, concurrency=1, max_seconds=30)
            raw_get, pos = reads.merged.values()

            def lookup_call():
                def call():
                    r = client.get(f"{gw}/v1/lookup", params={"code": created["code"],
                                                              "plate": body["vehicle"]["tractor_plate"]})
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")

                return call

            looked_up = run_load("GET /v1/lookup (public, vi)", lookup_call, lookups, 1, 30)

    print()
    print(f"lscloud bench border — {os.cpu_count()} CPU(s), concurrency {concurrency}")
    width = max(len(decl.name), len(puts.name))
    print(f"{'target'.ljust(width)}  {'per s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for r in (decl, puts):
        print(f"{r.name.ljust(width)}  {r.rps:8.1f}  {r.pct(0.5):7.1f}  {r.pct(0.99):7.1f}  {r.errors:6d}"
              + (f"  ({r.first_error})" if r.errors else ""))
    if puts.rps:
        print(f"one declaration costs about {puts.rps / decl.rps:.1f} conditional PUTs of time "
              f"({decl.rps / puts.rps:.1%} of the raw PUT rate)" if decl.rps else "no declaration succeeded")
    print_cpu([decl, puts])
    if soaked:
        print_soak_summary(soaked, f"{soak_rate} declarations a minute", idle,
                           rounds_ms=decl.cpu_ms_per_op().get("total"))
    print(f"queue of {waiting} trucks filled in {fill_s:.1f}s; measured truck at position {position}")
    print(f"GET /v1/declarations/{{id}}/position  p50 {pos.pct(0.5):7.1f} ms  p90 {pos.pct(0.9):7.1f} ms  "
          f"({pos.ok} calls)")
    print(f"GET /v1/lookup (public, vi)          p50 {looked_up.pct(0.5):7.1f} ms  p90 {looked_up.pct(0.9):7.1f} ms")
    print(f"S3 GET (boto3, one object)           p50 {raw_get.pct(0.5):7.1f} ms  "
          f"(a position costs {pos.pct(0.5) / raw_get.pct(0.5):.1f} raw GETs of time)")
    if report is not None:
        report.append(rounds_row("border declaration (submitted, indexes, audit, event)", decl,
                                 base("S3 PUT If-None-Match: * (boto3)", puts),
                                 writes.ratios(lambda r: rate_ratio(r[puts.name], r[decl.name])),
                                 "≤ 8 conditional PUTs of time", lambda x: x <= 8))
        report.append(rounds_row(f"queue position with {waiting} trucks waiting", pos, base("S3 GET (boto3)", raw_get),
                                 reads.ratios(lambda r: p50_ratio(r[pos.name], r[raw_get.name])),
                                 "≤ 3 raw GETs of time", lambda x: x <= 3))
    return 1 if decl.ok == 0 or any(m.errors for m in soaked) else 0


# -- procedures ----------------------------------------------------------------------------------------

SEARCHES = ("khai sinh", "giay phep xay dung", "dat dai", "ho kinh doanh", "ly lich tu phap", "thủ tục kết hôn",
            "doi giay phep lai xe", "tro cap xa hoi")


def bench_procedures(*, requests: int = 1000, concurrency: int = 8, functions_dir: Path = Path("functions"),
                     reuse_state_dir: Path | None = None, max_seconds: float = 30.0) -> int:
    """Catalogue search latency (``GET /v1/procedures?q=...``, queries rotating) through the gateway,
    straight to the function, and a raw S3 GET of the snapshot object every search reads."""
    import itertools
    from urllib.parse import quote

    from lscloud.store import keys as store_keys

    if requests < 1 or concurrency < 1:
        raise BenchError("--requests and --concurrency must be at least 1")
    if not (functions_dir / "procedures" / "func.yaml").is_file():
        raise BenchError(f"no procedures function in {functions_dir}")
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("procedures",)) as cloud:
        settings = cloud_settings(cloud)
        fns = cloud["functions"]
        if "procedures" not in fns:
            raise BenchError(f"the cloud does not run 'procedures' (functions: {', '.join(fns)})")
        key = store_keys.object_key("procedures-snapshots", "catalogue")
        objects = ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                              settings.s3_region, max_pool=max(32, concurrency * 2))
        size = len(objects.get(settings.bucket, key).body)

        def searching(base: str):
            def make():
                client = httpx.Client(trust_env=False, timeout=10.0)
                queries = itertools.cycle(SEARCHES)

                def call():
                    r = client.get(f"{base}/v1/procedures?q={quote(next(queries))}&limit=20")
                    if r.status_code != 200 or not r.json()["items"]:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:120]}")

                return call

            return make

        targets = [("search via gateway", searching(cloud["gateway"]["url"] + "/procedures")),
                   ("search direct", searching(fns["procedures"]["direct_url"])),
                   ("S3 GET snapshot, boto3", s3_call(objects, settings.bucket, key))]
        print(f"… {len(SEARCHES)} queries rotating; snapshot {key} ({size / 1024:.0f} KiB); "
              f"{requests} requests per target, concurrency {concurrency}", flush=True)
        results = []
        for name, make in targets:
            run_load(name, make, min(50, requests), min(concurrency, 4), 10)
            results.append(run_load(name, make, requests, concurrency, max_seconds))

    s3 = results[-1]
    width = max(len(r.name) for r in results)
    print()
    print(f"lscloud bench procedures — catalogue search; {requests} requests per target, concurrency {concurrency}, "
          f"{os.cpu_count()} CPU(s)")
    print(f"{'target'.ljust(width)}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}  {'p50 vs S3':>9}")
    for r in results:
        print(f"{r.name.ljust(width)}  {r.rps:8.0f}  {r.pct(0.5):7.2f}  {r.pct(0.99):7.2f}  {r.errors:6d}  "
              f"{(r.pct(0.5) / s3.pct(0.5) if s3.pct(0.5) else float('nan')):8.1f}×"
              + (f"  ({r.first_error})" if r.errors else ""))
    return 1 if any(r.ok == 0 for r in results) else 0


def bench_softatm(*, requests: int = 200, concurrency: int = 8, functions_dir: Path = Path("functions"),
                  reuse_state_dir: Path | None = None, max_seconds: float = 120.0, report: list | None = None,
                  rounds: int = 3, soak: bool = False, soak_minutes: int = 10, soak_rate: int = 600) -> int:
    """Committed withdrawals per second end to end (teller creates → webhook through NATS and the
    dispatcher to the simulated bank → the bank reserves with a signed call → the teller commits),
    against raw S3 conditional PUTs measured in the same run.

    ``soak``: then ``soak_rate`` withdrawals a minute for ``soak_minutes`` (open loop, as the border's
    soak), with errors and p50/p99 per minute. The default 600 a minute is each of the province's
    200 points finishing one every 20 s, several times what a counter serves."""
    import uuid

    from lscloud.auth import dev_keys, issue_token

    if requests < 1 or concurrency < 1 or rounds < 1:
        raise BenchError("--requests, --concurrency and --rounds must be at least 1")
    if soak and (soak_minutes < 1 or soak_rate < 1):
        raise BenchError("--soak-minutes and --soak-rate must be at least 1")
    peers_dir = functions_dir.resolve().parent / "peers"
    if not (functions_dir / "softatm" / "func.yaml").is_file() or not (peers_dir / "softatm-bank-sim").is_dir():
        raise BenchError(f"no softatm function in {functions_dir} or no simulated bank in {peers_dir}")
    run = uuid.uuid4().hex[:8]
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("directory", "softatm", "softatm-bank-sim"),
                     extra_dirs=(peers_dir,)) as cloud:
        settings = cloud_settings(cloud)
        private = dev_keys(settings.state_dir)[0]
        gw = cloud["gateway"]["url"]
        op = {"Authorization": "Bearer " + issue_token(private, "bench-op", "operator", ttl_s=7200)}
        with httpx.Client(trust_env=False, timeout=30.0) as c:
            offices = c.get(gw + "/directory/v1/post-offices", params={"limit": 100}).json()["items"]
            chosen = [o for o in offices if o.get("soft_atm") and o["kind"] == "commune"][:concurrency]
            points = [o["code"] for o in chosen]
            # enough cash at each point for every withdrawal of the run (a tenth spare: points take turns),
            # up to what the point may hold; on a reused cloud, only what it lacks (what an earlier run
            # left there counts, or the delivery would pass the point's float limit and be refused)
            withdrawals = 10 + requests * rounds + (soak_rate * soak_minutes if soak else 0)
            cash = max(150_000_000, math.ceil(withdrawals * 1.1 / max(1, len(points))) * WITHDRAWAL_VND)
            for o in chosen:
                p, limit = o["code"], o.get("cash_float_limit_vnd")
                r = c.get(f"{gw}/softatm/v1/points/{p}/float", headers=op)
                if r.status_code != 200:
                    raise BenchError(f"float of {p}: {r.status_code} {r.text[:200]}")
                have = r.json()
                lacks = min(cash, limit or cash) - have["cash_vnd"] - have["held_vnd"]
                if lacks <= 0:
                    continue
                r = c.post(f"{gw}/softatm/v1/points/{p}/cash-deliveries", json={"id": f"bench-{run}-{p}",
                                                                              "amount_vnd": lacks}, headers=op)
                if r.status_code not in (200, 201):
                    raise BenchError(f"cash delivery failed: {r.status_code} {r.text[:200]}")
        # customers as a real day has them, each making about three withdrawals spread over the run:
        # the simulated bank opens any account of its test range on first use. Piled on a few
        # accounts, a day's load would grow each customer's daily counter to hundreds of transfers,
        # and the soak would measure that growth instead of the path. A run's customers are its own,
        # so a run on a reused cloud starts from customers with nothing counted yet.
        customers = max(20, withdrawals // 3)
        first_account = int(run, 16) % (10 ** 8 - customers)
        counter = iter(range(10 ** 9))
        lock = threading.Lock()
        # a teller signs in once for the shift, not once per customer
        tellers = {p: {"Authorization": "Bearer " + issue_token(private, f"t-{p}", "teller", unit=p, ttl_s=7200)}
                   for p in points}

        def transfer_call():
            client = httpx.Client(trust_env=False, timeout=30.0)

            def call():
                with lock:
                    i = next(counter)
                p = points[i % len(points)]
                teller = tellers[p]
                tid = f"b{run}{i:07d}"
                # as a teller's app does: the create's answer waits for the bank's (Prefer: wait)
                r = client.post(f"{gw}/softatm/v1/withdrawals", headers={**teller, "Prefer": "wait=10"}, json={
                    "id": tid, "bank": "simbank", "amount_vnd": WITHDRAWAL_VND,
                    "account": f"99{first_account + i % customers:08d}",
                    "customer_id_number": "020090001234"})
                if r.status_code != 201:
                    raise RuntimeError(f"create: HTTP {r.status_code}: {r.text[:120]}")
                # not answered yet (no waiting slot, or the bound): long-poll until the bank's answer (304: not yet)
                seen = r.json()
                tag, state, deadline = r.headers.get("ETag"), seen["state"], time.monotonic() + 30
                while state == "RECEIVED" and time.monotonic() < deadline:
                    r = client.get(f"{gw}/softatm/v1/transfers/{tid}",
                                   headers={**teller, "If-None-Match": tag or "", "Prefer": "wait=10"})
                    if r.status_code == 200:
                        seen = r.json()
                        tag, state = r.headers.get("ETag"), seen["state"]
                    elif r.status_code != 304:
                        raise RuntimeError(f"read: HTTP {r.status_code}: {r.text[:120]}")
                    elif "Preference-Applied" not in r.headers:
                        time.sleep(0.05)   # answered without waiting (every waiting slot taken): no busy loop
                if state != "RESERVED":
                    # say why, not the commit's 409 (a run once saw one and could not tell which)
                    raise RuntimeError(f"not reserved: {state} ({seen.get('abort_reason') or 'no answer in 30 s'})")
                r = client.post(f"{gw}/softatm/v1/withdrawals/{tid}/commit", json={}, headers=teller)
                if r.status_code != 200:
                    raise RuntimeError(f"commit: HTTP {r.status_code}: {r.text[:120]}")

            return call

        s3_put_call = s3_create_call(settings, f"bench-raw/{run}", b'{"n":1}', concurrency=concurrency)

        print(f"… warming up, then {requests} committed withdrawals end to end at concurrency {concurrency}", flush=True)
        run_load("warm-up", transfer_call, min(10, requests), min(concurrency, 4), 60)
        meter = CpuMeter(cloud)   # the rounds', the idle cloud's and the soak's CPU
        alternated = run_alternated([("withdrawal create→reserve (bank)→commit", transfer_call, requests),
                                     ("S3 PUT If-None-Match: * (boto3)", s3_put_call, requests * 10)],
                                    rounds=rounds, concurrency=concurrency, max_seconds=max_seconds,
                                    cpu=meter)
        tr, puts = alternated.merged.values()
        soaked: list[SoakMinute] = []
        idle: dict[str, float] = {}
        if soak:
            soaked, idle = soak_after_idle(transfer_call, meter, per_minute=soak_rate, minutes=soak_minutes,
                                           concurrency=concurrency, what="withdrawals")
    print()
    print(f"lscloud bench softatm — {os.cpu_count()} CPU(s), concurrency {concurrency}")
    width = max(len(tr.name), len(puts.name))
    print(f"{'target'.ljust(width)}  {'per s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for r in (tr, puts):
        print(f"{r.name.ljust(width)}  {r.rps:8.1f}  {r.pct(0.5):7.1f}  {r.pct(0.99):7.1f}  {r.errors:6d}"
              + (f"  ({r.first_error})" if r.errors else ""))
    if tr.rps and puts.rps:
        print(f"one committed transfer costs about {puts.rps / tr.rps:.0f} conditional PUTs of time")
    print_cpu([tr, puts])
    if soaked:
        print_soak_summary(soaked, f"{soak_rate} withdrawals a minute", idle,
                           rounds_ms=tr.cpu_ms_per_op().get("total"))
    if report is not None:
        p50s = alternated.ratios(lambda r: p50_ratio(r[tr.name], r[puts.name]))
        p50x = statistics.median(p50s) if p50s else None
        report.append(rounds_row("soft-ATM withdrawal create → bank reserve → commit", tr,
                                 base("S3 PUT If-None-Match: * (boto3)", puts),
                                 alternated.ratios(lambda r: rate_ratio(r[puts.name], r[tr.name])),
                                 "≤ 20 PUTs of time; p50 ≤ 10× raw PUT p50",
                                 lambda x: x <= 20 and p50x is not None and p50x <= 10,
                                 p50_vs_raw_put_p50=None if p50x is None else round(p50x, 1)))
    return 1 if tr.ok == 0 or any(m.errors for m in soaked) else 0
