"""`lscloud bench all`'s rows and table, without servers: every row carries the fields the issue's
tracking reads, the ratio against the same run's baseline and whether the goal is met."""

from __future__ import annotations

import json
import threading
import time

import pytest

from lscloud.local import bench_all
from lscloud.local.bench_load import BenchError, LoadResult, base, row, run_load

FIELDS = {"path", "rate_per_s", "p50_ms", "p99_ms", "baseline", "ratio", "goal", "met"}


def _load(name, rps, p50_s):
    return LoadResult(name, ok=int(rps), seconds=1.0, latencies=[p50_s] * int(rps))


def test_a_row_has_the_tracked_fields_and_its_baseline():
    decl, puts = _load("decl", 20, 0.4), _load("puts", 200, 0.02)
    r = row("border declaration", decl, base("S3 PUT", puts), puts.rps / decl.rps, "≤ 8 PUTs of time", False)
    assert FIELDS <= set(r)
    assert r["rate_per_s"] == 20 and r["p50_ms"] == 400 and r["ratio"] == 10
    assert r["baseline"] == {"name": "S3 PUT", "rate_per_s": 200, "p50_ms": 20}
    json.dumps(r)   # tracked as JSON


def test_the_table_and_the_json_file(tmp_path, capsys, monkeypatch):
    def fake(name, rows):
        rows.append(row(name, _load(name, 10, 0.1), base("raw", _load("raw", 100, 0.01)), 10.0, "≤ 8", False))

    monkeypatch.setattr(bench_all, "bench_directory", lambda **kw: fake("directory path", kw["report"]))
    monkeypatch.setattr(bench_all, "measure_up", lambda d, runs: row("`lscloud up` to all ready", None, {"name": "goal"},
                                                                     0.5, "≤ 8 s", True, p50_ms=4000))
    out = tmp_path / "bench.json"
    assert bench_all.bench_all(only=("directory", "up"), json_path=out) == 0
    rows = json.loads(out.read_text())
    assert [r["path"] for r in rows] == ["directory path", "`lscloud up` to all ready"]
    assert all(FIELDS <= set(r) for r in rows)
    table = capsys.readouterr().out
    assert "directory path" in table and "≤ 8" in table and " no " in table and "yes" in table


def test_the_cpu_summary_names_the_processes_that_spend_most(capsys):
    path = row("soft ATM", _load("w", 40, 0.2), {"name": "PUT", "cpu_ms_per_op": {"total": 1.25}}, 17.0, "≤ 20", True,
               cpu_ms_per_op={"weed (S3)": 17.1, "softatm": 14.3, "bank": 6.2, "gateway": 3.7, "bench client": 1.8,
                              "total": 41.3})
    bench_all.print_cpu_summary([path, row("up", None, {}, 0.5, "≤ 8 s", True)])
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("soft ATM")]
    assert "41.30" in line and "1.25" in line and "33.0" in line
    assert line.endswith("weed (S3) 17.1, softatm 14.3, bank 6.2") and "up" not in out.split("most")[1]


def test_an_unknown_benchmark_is_refused():
    with pytest.raises(BenchError, match="no benchmark named nope"):
        bench_all.bench_all(only=("nope",))


def test_a_path_and_its_baseline_are_measured_in_turn_and_the_median_round_decides(monkeypatch):
    """A B, B A, A B: each target gets its share of its requests per round, in all as many as asked;
    a round the machine slowed for one target alone (here the baseline's second round) moves that
    round's ratio only, and the row keeps the median with the least and the most."""
    from lscloud.local.bench_load import rate_ratio, rounds_row, run_alternated

    order, speed = [], {"path": [1.0, 1.0, 1.0], "base": [10.0, 2.0, 10.0]}

    def maker(name):
        def make():
            def call():
                order.append(name)
            return call
        return make

    def fake_run_load(name, make, requests, concurrency, max_seconds, cpu=None):
        call = make()
        for _ in range(requests):
            call()
        rnd = sum(1 for n in seen if n == name)
        seen.append(name)
        return LoadResult(name, ok=requests, seconds=requests / speed[name][rnd], latencies=[0.01] * requests)

    seen: list[str] = []
    import lscloud.local.bench_load as bench_mod

    monkeypatch.setattr(bench_mod, "run_load", fake_run_load)
    alternated = run_alternated([("path", maker("path"), 30), ("base", maker("base"), 300)], rounds=3,
                                concurrency=1, max_seconds=1)
    assert seen == ["path", "base", "base", "path", "path", "base"]
    assert order.count("path") == 30 and order.count("base") == 300
    assert alternated.merged["path"].ok == 30 and alternated.merged["base"].ok == 300
    ratios = alternated.ratios(lambda r: rate_ratio(r["base"], r["path"]))
    assert ratios == [10.0, 2.0, 10.0]
    r = rounds_row("path", alternated.merged["path"], base("base", alternated.merged["base"]), ratios, "≤ 8",
                   lambda x: x <= 8)
    assert (r["ratio"], r["ratio_min"], r["ratio_max"], r["rounds"], r["met"]) == (10.0, 2.0, 10.0, 3, False)
    assert rounds_row("path", None, {}, [7.0, 9.0, 7.5], "≤ 8", lambda x: x <= 8)["met"] is True
    assert rounds_row("path", None, {}, [], "≤ 8", lambda x: True)["met"] is False   # no round: nothing met


def test_the_table_shows_the_spread_of_the_rounds(capsys):
    r = row("border declaration", _load("decl", 20, 0.4), base("S3 PUT", _load("puts", 200, 0.02)), 7.9,
            "≤ 8 conditional PUTs of time", True, ratio_min=7.1, ratio_max=8.4, ratios=[7.1, 7.9, 8.4], rounds=3)
    bench_all.print_table([r])
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("border declaration")][0]
    assert "7.90" in line and "7.10–8.40" in line and " yes " in line


def test_rounds_below_one_are_refused():
    with pytest.raises(BenchError, match="--rounds"):
        bench_all.bench_all(only=("up",), rounds=0)


def test_run_load_times_the_calls_not_the_making_of_clients():
    """A path's client (an httpx.Client: about 26 ms of TLS context) is made before the clock starts,
    as a baseline's shared boto3 client is: the rate is the calls' alone."""
    made: list[float] = []
    lock = threading.Lock()

    def make():
        time.sleep(0.05)   # a slow client to make
        with lock:
            made.append(time.perf_counter())
        return lambda: None

    r = run_load("path", make, requests=40, concurrency=4, max_seconds=10)
    ended = time.perf_counter()
    assert r.ok == 40 and len(made) == 4
    assert r.seconds <= ended - max(made)   # the clock started after the last client was made


def test_run_load_reports_a_client_it_cannot_make_without_hanging():
    """The other threads wait at the barrier for every client: one that cannot be made must release
    them (and its error be the run's), or the bench would hang for good. Run in a thread, so that a
    hang is this test's failure and not the suite's."""
    calls, lock, raised = iter(range(100)), threading.Lock(), []

    def make():
        with lock:
            n = next(calls)
        if n == 2:
            raise ConnectionError("no route to the path")
        return lambda: None

    def run():
        try:
            run_load("path", make, requests=10, concurrency=4, max_seconds=10)
        except BaseException as exc:  # noqa: BLE001 - what the run raised is the assertion
            raised.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "run_load hung on a client it could not make"
    assert len(raised) == 1 and isinstance(raised[0], ConnectionError) and "no route" in str(raised[0])
