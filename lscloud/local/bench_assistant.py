"""`lscloud bench assistant`: the virtual assistant's accuracy and latency on its evaluation set,
through the gateway, against a bare function and raw S3 GETs measured in the same run.

1. Accuracy: every question of ``functions/assistant/function/data/eval.yaml`` (its ``tuning`` and
   ``holdout`` parts, each in a fresh session) is asked once through the gateway; printed are top-1
   and top-3 procedure accuracy (the answer's ``candidates``), intent accuracy, and latency p50/p99.
2. Load: the same questions rotating, through the gateway and straight to the function, next to the
   bare func-python ``hello`` and a raw S3 GET (boto3) of a small object — ratios in the same run.

Messages are rate-limited per caller (60 a minute), so the bench speaks as many dev-token callers
(one per 50 messages). The figures are printed, nothing is asserted.
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

import httpx
import yaml

from ..store.objects import ObjectStore
from .bench import local_cloud
from .bench_load import BenchError, LoadResult, http_call, run_load, s3_call
from .cloud import cloud_settings

PER_CALLER = 50
WARM_UP = 20   # questions asked before the timed pass, not counted
# the warm-up's question is none of the evaluation set's: asking those would warm the function's
# per-word caches for the first twenty timed questions
WARM_UP_TEXT = "hỏi về thủ tục hành chính"


def _pct(values: list[float], q: float) -> float:
    data = sorted(values) or [float("nan")]
    return data[min(len(data) - 1, int(q * len(data)))]


def bench_assistant(*, requests: int = 1000, concurrency: int = 8, functions_dir: Path = Path("functions"),
                    reuse_state_dir: Path | None = None, max_seconds: float = 60.0) -> int:
    from lscloud.auth import dev_keys, issue_token

    if requests < 1 or concurrency < 1:
        raise BenchError("--requests and --concurrency must be at least 1")
    for name in ("assistant", "procedures", "directory"):
        if not (functions_dir / name / "func.yaml").is_file():
            raise BenchError(f"no {name} function in {functions_dir}")
    cases = yaml.safe_load((functions_dir / "assistant" / "function" / "data" / "eval.yaml").read_text(encoding="utf-8"))
    questions = [c[0] for part in ("tuning", "holdout") for c in cases[part]]

    with local_cloud(functions_dir.resolve(), reuse_state_dir,
                     only=("assistant", "procedures", "directory", "hello")) as cloud:
        settings = cloud_settings(cloud)
        private_key = dev_keys(settings.state_dir)[0]
        fns = cloud["functions"]
        for needed in ("assistant", "procedures", "hello"):
            if needed not in fns:
                raise BenchError(f"the cloud does not run {needed!r} (functions: {', '.join(fns)})")
        callers = itertools.count()

        def auth() -> dict:
            return {"Authorization": "Bearer " + issue_token(private_key, role="citizen",
                                                             sub=f"bench-{next(callers):06d}")}

        gw = cloud["gateway"]["url"] + "/assistant"
        # 1. accuracy, one question at a time, after a few not counted: the first requests after a
        # start open connections (bench → gateway → function → store) that every later one reuses
        client = httpx.Client(trust_env=False, timeout=30.0)
        for _ in range(WARM_UP):
            client.post(f"{gw}/v1/messages", json={"session": uuid.uuid4().hex, "text": WARM_UP_TEXT}, headers=auth())
        header, used = auth(), 0
        scores = {}
        for part in ("tuning", "holdout"):
            s = {"n": 0, "top1": 0, "top3": 0, "intent": 0, "ms": []}
            for question, expected, intent in cases[part]:
                if used == PER_CALLER:
                    header, used = auth(), 0
                used += 1
                r = client.post(f"{gw}/v1/messages", json={"session": uuid.uuid4().hex, "text": question}, headers=header)
                if r.status_code != 200:
                    raise BenchError(f"asking {question!r}: HTTP {r.status_code} {r.text[:200]}")
                a = r.json()
                got = [c["procedure"] for c in a["candidates"]]
                s["n"] += 1
                s["ms"].append(r.elapsed.total_seconds() * 1000)
                s["top1"] += (got[:1] == [expected]) if expected else a["intent"] == "status"
                s["top3"] += (expected in got[:3]) if expected else a["intent"] == "status"
                s["intent"] += a["intent"] == intent
            scores[part] = s
        client.close()

        # 2. load, against the bare function and raw S3 in the same run
        objects = ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                              settings.s3_region, max_pool=max(32, concurrency * 2))
        key = f"bench-assistant/{uuid.uuid4().hex}.json"
        objects.put(settings.bucket, key, b'{"text": "' + b"x" * 1500 + b'"}', content_type="application/json")

        def asking(base: str):
            def make():
                c = httpx.Client(trust_env=False, timeout=30.0)
                qs = itertools.cycle(questions[int(uuid.uuid4().int % len(questions)):] + questions)
                state = {"header": auth(), "used": 0}

                def call():
                    if state["used"] == PER_CALLER:
                        state["header"], state["used"] = auth(), 0
                    state["used"] += 1
                    r = c.post(f"{base}/v1/messages", json={"session": uuid.uuid4().hex, "text": next(qs)},
                               headers=state["header"])
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:120]}")

                return call

            return make

        targets = [("assistant via gateway", asking(gw)),
                   ("assistant direct", asking(fns["assistant"]["direct_url"])),
                   ("hello direct (bare func-python)", http_call(f"{fns['hello']['direct_url']}/")),
                   ("S3 GET, boto3 (1.5 KiB)", s3_call(objects, settings.bucket, key))]
        print(f"… {len(questions)} questions; {requests} requests per target, concurrency {concurrency}", flush=True)
        results: list[LoadResult] = []
        for name, make in targets:
            run_load(name, make, min(50, requests), min(concurrency, 4), 15)
            results.append(run_load(name, make, requests, concurrency, max_seconds))
            print(f"  measured {name}: {results[-1].rps:.0f} req/s", flush=True)

    print()
    print(f"lscloud bench assistant — evaluation set through the gateway, one question at a time (after {WARM_UP} "
          f"not counted), {os.cpu_count()} CPU(s)")
    print(f"{'part':<8} {'n':>4}  {'top-1':>6}  {'top-3':>6}  {'intent':>6}  {'p50 ms':>7}  {'p99 ms':>7}")
    for part, s in scores.items():
        print(f"{part:<8} {s['n']:>4}  {s['top1'] / s['n']:6.1%}  {s['top3'] / s['n']:6.1%}  {s['intent'] / s['n']:6.1%}  "
              f"{_pct(s['ms'], 0.5):7.2f}  {_pct(s['ms'], 0.99):7.2f}")
    by = {r.name: r for r in results}
    hello, s3 = by["hello direct (bare func-python)"], by["S3 GET, boto3 (1.5 KiB)"]
    width = max(len(r.name) for r in results)
    print()
    print(f"load: {requests} requests per target, concurrency {concurrency}")
    print(f"{'target'.ljust(width)}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}  {'rps vs hello':>12}  "
          f"{'p50 vs S3':>9}")
    for r in results:
        print(f"{r.name.ljust(width)}  {r.rps:8.0f}  {r.pct(0.5):7.2f}  {r.pct(0.99):7.2f}  {r.errors:6d}  "
              f"{(r.rps / hello.rps if hello.rps else float('nan')):11.2f}×  "
              f"{(r.pct(0.5) / s3.pct(0.5) if s3.pct(0.5) else float('nan')):8.1f}×"
              + (f"  ({r.first_error})" if r.errors else ""))
    return 1 if any(r.ok == 0 for r in results) else 0
