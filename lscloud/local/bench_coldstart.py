"""`lscloud bench coldstart`: every function's cold start (spawn → ``/health/readiness`` 200) and
peak RSS, against the bare func-python ``hello`` measured in the same run (issue 11: ≤ 1.3× hello,
≤ 100 MB).

Knative scales a function from zero by starting a process exactly like this, and a citizen's
request waits for its readiness. Each function is spawned ``--runs`` times on a free port with the
environment `lscloud up` gives it (:func:`lscloud.local.supervisor.function_env`); the readiness it
reaches is the real one (the object store and NATS answer). The benchmark starts its own local cloud
(servers and ``hello`` only; data the functions seed is not needed to be ready) unless ``--reuse``.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from .. import manifest as manifests
from .bench import HELLO_DIR, ColdStart, cold_start, local_cloud
from .bench_load import BenchError, row
from .bytecode import compile_tree
from .cloud import cloud_settings

RATIO_GOAL = 1.3
RSS_GOAL_MB = 100.0


def bench_coldstart(*, runs: int = 3, functions: str = "", concurrency: int = 1,
                    functions_dir: Path = Path("functions"), reuse_state_dir: Path | None = None,
                    report: list | None = None) -> int:
    """See the module docstring. ``functions``: comma-separated names (default every function);
    ``report``: a list that gets one row per function for `lscloud bench all`."""
    if runs < 1:
        raise BenchError("--runs must be at least 1")
    found = manifests.discover([functions_dir])
    chosen = [n.strip() for n in functions.split(",") if n.strip()]
    unknown = sorted(set(chosen) - {m.name for m in found})
    if unknown:
        raise BenchError(f"no function named {', '.join(unknown)} in {functions_dir}")
    targets = [m for m in found if not chosen or m.name in chosen]
    hello = manifests.load(HELLO_DIR / "hello")
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("hello",)) as cloud:
        settings = cloud_settings(cloud)
        from lscloud.auth import dev_keys, eventing_keys

        settings = settings.replace(jwt_public_key=dev_keys(settings.state_dir)[1],
                                    events_public_key=eventing_keys(settings.state_dir)[1])
        # as after `lscloud up` started these functions: their bytecode is compiled (lscloud.local.bytecode)
        compile_tree([m.root for m in targets] + [functions_dir.resolve() / "__init__.py"])
        print(f"… cold starts, {runs} each: hello, then {len(targets)} function(s)", flush=True)
        base = cold_start(hello, settings, runs=runs, warm_requests=0)
        results: list[ColdStart] = []
        for m in targets:
            results.append(cold_start(m, settings, runs=runs, warm_requests=0))
            c = results[-1]
            print(f"  measured {m.name}: {statistics.median(c.ms):.0f} ms", flush=True)

    hello_ms = statistics.median(base.ms)
    width = max([len(c.name) for c in results] + [len("hello (baseline)")])
    print()
    print(f"lscloud bench coldstart — spawn → readiness 200, median of {runs}; {os.cpu_count()} CPU(s); "
          f"goal ≤ {RATIO_GOAL:g}× hello, peak RSS ≤ {RSS_GOAL_MB:g} MB")
    print(f"{'function'.ljust(width)}  {'median ms':>9}  {'min ms':>7}  {'max ms':>7}  {'vs hello':>8}  "
          f"{'peak RSS MB':>11}  {'met':>4}")
    print(f"{'hello (baseline)'.ljust(width)}  {hello_ms:9.0f}  {min(base.ms):7.0f}  {max(base.ms):7.0f}  "
          f"{'1.00×':>8}  {base.peak_rss / 1_048_576:11.1f}")
    for c in results:
        ms = statistics.median(c.ms)
        ratio = ms / hello_ms if hello_ms else None
        rss_mb = c.peak_rss / 1_048_576
        met = ratio is not None and ratio <= RATIO_GOAL and rss_mb <= RSS_GOAL_MB
        print(f"{c.name.ljust(width)}  {ms:9.0f}  {min(c.ms):7.0f}  {max(c.ms):7.0f}  "
              f"{(f'{ratio:.2f}×' if ratio else '-'):>8}  {rss_mb:11.1f}  {('yes' if met else 'no'):>4}")
        if report is not None:
            report.append(row(f"cold start {c.name}, spawn → readiness 200", None,
                              {"name": "cold start hello", "p50_ms": round(hello_ms, 1)}, ratio,
                              f"≤ {RATIO_GOAL:g}× hello, peak RSS ≤ {RSS_GOAL_MB:g} MB", met,
                              p50_ms=round(ms, 1), peak_rss_mb=round(rss_mb, 1)))
    return 0
