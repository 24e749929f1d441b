"""The load machinery every `lscloud bench` benchmark uses: closed-loop load over threads, a path and
its baseline measured in turn, the raw-S3 and HTTP calls, and the rows and tables of the results.

It stands apart from the benchmarks (``bench.py`` and the ``bench_*`` modules) so that each of them
measures with the same clock, the same rounds and the same baselines, and a new benchmark takes
them from here without pulling in another benchmark's code. `BenchError` is here too: the rounds
raise it, and this module imports no benchmark.
"""

from __future__ import annotations

import itertools
import math
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import httpx

from ..store.objects import ObjectStore
from .bench_cpu import CpuMeter, format_table, per_op_ms


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says why."""


@dataclass
class LoadResult:
    name: str
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    first_error: str | None = None
    cpu_s: dict[str, float] = field(default_factory=dict, repr=False)   # CPU seconds by process (bench_cpu)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000

    def cpu_ms_per_op(self) -> dict[str, float]:
        """Milliseconds of CPU per successful call, by process (empty when not measured)."""
        return per_op_ms(self.cpu_s, self.ok)


def run_load(name: str, make_call: Callable[[], Callable[[], None]], requests: int, concurrency: int,
             max_seconds: float, cpu: CpuMeter | None = None) -> LoadResult:
    """``requests`` calls over ``concurrency`` threads, stopped at ``max_seconds``.

    ``make_call`` runs once per thread (its own keep-alive client) and returns the call,
    which raises on a failed request. The clock starts once every thread has its call: making a
    client is not the path's work, and a baseline whose client is shared (boto3) would not pay it.
    An ``httpx.Client`` takes about 26 ms of CPU here (its TLS context): eight are 0.2 s, in a
    round of `bench all` (333 requests) that lasts 0.3-0.4 s.

    ``cpu``: also measure the CPU each process of the cloud spends over the same span
    (:attr:`LoadResult.cpu_s`).
    """
    result = LoadResult(name)
    lock = threading.Lock()
    issued = 0
    started = deadline = 0.0
    cpu_before: dict = {}

    def start_clock():
        nonlocal started, deadline, cpu_before
        cpu_before = cpu.sample() if cpu is not None else {}
        started, deadline = time.perf_counter(), time.monotonic() + max_seconds

    ready = threading.Barrier(concurrency, action=start_clock)

    def worker():
        nonlocal issued
        try:
            call = make_call()
        except BaseException:
            ready.abort()   # the others stop waiting; this thread's error is what the run reports
            raise
        ready.wait()
        local_lat, ok, errors, first = [], 0, 0, None
        while True:
            with lock:
                if issued >= requests or time.monotonic() > deadline:
                    break
                issued += 1
            t0 = time.perf_counter()
            try:
                call()
                ok += 1
                local_lat.append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors += 1
                first = first or f"{type(exc).__name__}: {exc}"[:200]
        with lock:
            result.ok += ok
            result.errors += errors
            result.latencies += local_lat
            result.first_error = result.first_error or first

    with ThreadPoolExecutor(concurrency, thread_name_prefix="bench") as pool:
        futures = [pool.submit(worker) for _ in range(concurrency)]
    failed = [e for e in (f.exception() for f in futures) if e is not None]
    if failed:   # the thread that could not make its call, not the ones it stopped waiting
        raise next((e for e in failed if not isinstance(e, threading.BrokenBarrierError)), failed[0])
    result.seconds = time.perf_counter() - started
    if cpu is not None:
        result.cpu_s = cpu.spent(cpu_before, cpu.sample())
    return result


def merged(name: str, results: list[LoadResult]) -> LoadResult:
    """One result of several runs of the same target: counts, time and latencies summed."""
    out = LoadResult(name)
    for r in results:
        out.ok += r.ok
        out.errors += r.errors
        out.seconds += r.seconds
        out.latencies += r.latencies
        out.first_error = out.first_error or r.first_error
        for role, used in r.cpu_s.items():
            out.cpu_s[role] = out.cpu_s.get(role, 0.0) + used
    return out


@dataclass
class Alternated:
    """Targets measured in turn, round after round: each target merged over the rounds, and each
    round on its own (for a ratio per round)."""

    merged: dict[str, LoadResult]
    each: list[dict[str, LoadResult]]

    def ratios(self, ratio: Callable[[dict[str, LoadResult]], float | None]) -> list[float]:
        """``ratio`` of each round (a round where it is undefined is left out)."""
        return [x for x in (ratio(r) for r in self.each) if x is not None and not math.isnan(x)]


def run_alternated(targets: list[tuple[str, Callable[[], Callable[[], None]], int]], *, rounds: int,
                   concurrency: int, max_seconds: float, on_result: Callable[[LoadResult], None] | None = None,
                   cpu: CpuMeter | None = None) -> Alternated:
    """Measure ``targets`` (name, call maker, requests in all) in ``rounds`` rounds, each target
    getting its share of its requests per round, in order A B … then … B A, so that a drift of the
    shared machine (another process, the store compacting, a CPU slowing) falls on a path and its
    baseline alike and shows as a spread of the per-round ratios instead of a verdict decided by
    luck. ``max_seconds`` caps each target per round; ``cpu`` as in :func:`run_load`."""
    if rounds < 1:
        raise BenchError("--rounds must be at least 1")
    each: list[dict[str, LoadResult]] = []
    for i in range(rounds):
        order = targets if i % 2 == 0 else list(reversed(targets))
        this: dict[str, LoadResult] = {}
        for name, make, requests in order:
            this[name] = run_load(name, make, max(1, requests // rounds), concurrency, max_seconds, cpu=cpu)
            if on_result:
                on_result(this[name])
        each.append(this)
    names = [name for name, _, _ in targets]
    return Alternated({n: merged(n, [r[n] for r in each]) for n in names}, each)


def rate_ratio(a: LoadResult, b: LoadResult) -> float | None:
    """``a``'s rate over ``b``'s (None when ``b`` did nothing)."""
    return a.rps / b.rps if b.rps else None


def p50_ratio(a: LoadResult, b: LoadResult) -> float | None:
    """``a``'s median latency over ``b``'s (None when either has none)."""
    return a.pct(0.5) / b.pct(0.5) if a.latencies and b.latencies else None


def http_call(url: str) -> Callable[[], Callable[[], None]]:
    def make():
        client = httpx.Client(trust_env=False, timeout=10.0)

        def call():
            r = client.get(url)
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:120]}")
            r.read()

        return call

    return make


def s3_call(objects, bucket: str, key: str) -> Callable[[], Callable[[], None]]:
    def make():
        def call():
            objects.client.get_object(Bucket=bucket, Key=key)["Body"].read()

        return call

    return make


def s3_create_call(settings, prefix: str, body: bytes | Callable[[int], bytes], *, concurrency: int,
                   content_type: str = "application/json") -> Callable[[], Callable[[], None]]:
    """The baseline for writes: raw create-only PUTs (``If-None-Match: *``) of fresh keys under ``prefix``."""
    objects = ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                          settings.s3_region, max_pool=max(32, concurrency * 2))
    numbers = itertools.count()
    lock = threading.Lock()

    def make():
        def call():
            with lock:
                i = next(numbers)
            data = body(i) if callable(body) else body
            # raw boto3, as every baseline: the store's own client is what the paths are measured with
            objects.client.put_object(Bucket=settings.bucket, Key=f"{prefix}/{i:08d}", Body=data,
                                      ContentType=content_type, IfNoneMatch="*")

        return call

    return make


def row(path: str, r: "LoadResult | None", baseline: dict, ratio: float | None, goal: str, met: bool | None,
        **extra) -> dict:
    """One line of `lscloud bench all`: a path, its figures, its baseline measured in the same run."""
    out = {"path": path, "rate_per_s": round(r.rps, 2) if r else None,
           "p50_ms": round(r.pct(0.5), 2) if r and r.latencies else None,
           "p99_ms": round(r.pct(0.99), 2) if r and r.latencies else None,
           "baseline": baseline, "ratio": None if ratio is None else round(ratio, 3), "goal": goal,
           "met": met, "errors": r.errors if r else 0}
    if r is not None and r.cpu_s:
        out["cpu_ms_per_op"] = r.cpu_ms_per_op()
    out.update(extra)
    return out


def rounds_row(path: str, r: "LoadResult", baseline: dict, ratios: list[float], goal: str,
               meets: Callable[[float], bool], **extra) -> dict:
    """:func:`row` for a path measured in rounds with its baseline (:func:`run_alternated`): its ratio
    is the median of the rounds' ``ratios``, the goal judged on it by ``meets``, and the least, the
    most and each of them kept beside it."""
    if not ratios:
        return row(path, r, baseline, None, goal, False, rounds=0, **extra)
    ratio = statistics.median(ratios)
    return row(path, r, baseline, ratio, goal, meets(ratio), ratio_min=round(min(ratios), 3),
               ratio_max=round(max(ratios), 3), ratios=[round(x, 3) for x in ratios], rounds=len(ratios), **extra)


def base(name: str, r: "LoadResult") -> dict:
    out = {"name": name, "rate_per_s": round(r.rps, 2), "p50_ms": round(r.pct(0.5), 2) if r.latencies else None}
    if r.cpu_s:
        out["cpu_ms_per_op"] = r.cpu_ms_per_op()
    return out


def print_cpu(results: list[LoadResult]) -> None:
    """Where each target's CPU went, by process (the targets measured with a :class:`CpuMeter`)."""
    lines = format_table([(r.name, r.cpu_ms_per_op()) for r in results])
    if lines:
        print()
        print("where the CPU goes (all cores; the bench client is the load, not the path):")
        for line in lines:
            print(line)


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:6.2f}×" if b else "     -"
