"""`lscloud bench all`: every benchmark in one go, one table of each path against its baseline
measured in the same run, and the goal it is held to (issue 11).

Each benchmark starts its own temporary local cloud (as when run alone) and reports its rows;
then the time `lscloud up` takes to bring every function to ready is measured. ``--json FILE``
writes the rows as a list of ``{"path", "rate_per_s", "p50_ms", "p99_ms", "baseline", "ratio",
"goal", "met"}`` for tracking. Figures on a shared machine move: compare ratios, not rates.

A path and its baseline are measured in turn ``--rounds`` times (A B, B A, A B …, the same number
of requests in all as one long pass): a row's ratio is the median of the rounds' ratios, and the
least and the most of them (``ratio_min``, ``ratio_max``, each in ``ratios``) say how far the
machine moved while it ran. A goal met by the median but not by every round is at its edge, and
the table says so.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from .bench import bench_border, bench_directory, bench_softatm, local_cloud
from .bench_cpu import biggest
from .bench_dossiers import bench_dossiers
from .bench_listing import bench_listing
from .bench_load import BenchError, row

UP_GOAL_S = 8.0


def measure_up(functions_dir: Path, runs: int) -> dict:
    """`lscloud up` (every function) to all ready, ``runs`` times: the median."""
    took = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with local_cloud(functions_dir.resolve(), None, only=()):
            took.append(time.perf_counter() - t0)
    median = statistics.median(took)
    return row("`lscloud up` to all ready", None, {"name": "goal", "seconds": UP_GOAL_S}, median / UP_GOAL_S,
               f"≤ {UP_GOAL_S:g} s (median of 3)", median <= UP_GOAL_S, p50_ms=round(median * 1000),
               runs=len(took))


def _cell(v, fmt: str) -> str:
    return format(v, fmt) if v is not None else "-".rjust(int(fmt.split(".")[0] or 0))


def _rounds(r: dict) -> str:
    if r.get("rounds", 0) < 2:
        return ""
    return f"{r['ratio_min']:.2f}–{r['ratio_max']:.2f}"


def print_table(rows: list[dict]) -> None:
    width = max(len(r["path"]) for r in rows)
    print()
    print(f"lscloud bench all — {os.cpu_count()} CPU(s); each path against its baseline measured in the same run, "
          f"in turn; ratio: the median of the rounds, then the least and the most")
    print(f"{'path'.ljust(width)}  {'per s':>8}  {'p50 ms':>8}  {'p99 ms':>8}  {'baseline':<48}  {'ratio':>7}  "
          f"{'rounds':>11}  {'met':>4}  goal")
    for r in rows:
        b = r["baseline"] or {}
        shown = b.get("name", "")
        if b.get("rate_per_s") is not None:
            shown += f" {b['rate_per_s']:.0f}/s"
        if b.get("p50_ms") is not None:
            shown += f" p50 {b['p50_ms']:.1f}"
        print(f"{r['path'].ljust(width)}  {_cell(r['rate_per_s'], '8.1f')}  {_cell(r['p50_ms'], '8.1f')}  "
              f"{_cell(r['p99_ms'], '8.1f')}  {shown[:48]:<48}  {_cell(r['ratio'], '7.2f')}  "
              f"{_rounds(r):>11}  {('yes' if r['met'] else 'no'):>4}  {r['goal']}")


def print_cpu_summary(rows: list[dict]) -> None:
    """Each measured path's CPU per operation (all the cloud's processes), its baseline's, and the
    processes that spend most of it: where to look first."""
    measured = [r for r in rows if r.get("cpu_ms_per_op")]
    if not measured:
        return
    width = max(len(r["path"]) for r in measured)
    print()
    print("where the CPU goes — ms of CPU per operation, every process of the cloud (not the bench client):")
    print(f"{'path'.ljust(width)}  {'path':>7}  {'baseline':>8}  {'×':>6}  the processes that spend most")
    for r in measured:
        ms = r["cpu_ms_per_op"]
        base = ((r.get("baseline") or {}).get("cpu_ms_per_op") or {}).get("total")
        times = f"{ms['total'] / base:6.1f}" if base else f"{'-':>6}"
        print(f"{r['path'].ljust(width)}  {ms['total']:7.2f}  {_cell(base, '8.2f')}  {times}  {biggest(ms, 3)}")


def bench_all(*, functions_dir: Path = Path("functions"), concurrency: int = 8, scale: float = 1.0,
              up_runs: int = 3, json_path: Path | None = None, only: tuple[str, ...] = (), rounds: int = 3) -> int:
    """Run the benchmarks (``only`` a subset: directory, border, softatm, dossiers, listing, up), each ``scale``
    times its default size with each path and its baseline in ``rounds`` rounds, and print (and
    write) the table."""
    def n(default: int) -> int:
        return max(1, int(default * scale))

    plan = [
        ("directory", lambda rows: bench_directory(requests=n(1000), concurrency=concurrency,
                                                   functions_dir=functions_dir, report=rows, rounds=rounds)),
        ("border", lambda rows: bench_border(requests=n(300), concurrency=concurrency, waiting=10_000,
                                             lookups=n(300), functions_dir=functions_dir, report=rows,
                                             rounds=rounds)),
        ("softatm", lambda rows: bench_softatm(requests=n(200), concurrency=concurrency, functions_dir=functions_dir,
                                               report=rows, rounds=rounds)),
        ("dossiers", lambda rows: bench_dossiers(requests=n(200), concurrency=concurrency, functions_dir=functions_dir,
                                                 report=rows, rounds=rounds)),
        ("listing", lambda rows: bench_listing(requests=n(400), concurrency=concurrency, functions_dir=functions_dir,
                                               report=rows, rounds=rounds)),
        ("up", lambda rows: rows.append(measure_up(functions_dir, up_runs))),
    ]
    unknown = set(only) - {name for name, _ in plan}
    if unknown:
        raise BenchError(f"no benchmark named {', '.join(sorted(unknown))}")
    if rounds < 1:
        raise BenchError("--rounds must be at least 1")
    rows: list[dict] = []
    failed = []
    for name, run in plan:
        if only and name not in only:
            continue
        print(f"=== {name}", flush=True)
        try:
            run(rows)
        except BenchError as exc:
            failed.append(name)
            print(f"✗ {name}: {exc}", flush=True)
    if rows:
        print_table(rows)
        print_cpu_summary(rows)
    if json_path is not None:
        json_path.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"✓ {len(rows)} rows written to {json_path}")
    if failed:
        print(f"✗ did not run: {', '.join(failed)}")
    return 1 if failed or not rows else 0
