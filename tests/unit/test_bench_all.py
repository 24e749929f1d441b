"""`lscloud bench all`'s rows and table, without servers: every row carries the fields the issue's
tracking reads, the ratio against the same run's baseline and whether the goal is met."""

from __future__ import annotations

import json

import pytest

from lscloud.local import bench_all
from lscloud.local.bench import BenchError, LoadResult, base, row

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


def test_an_unknown_benchmark_is_refused():
    with pytest.raises(BenchError, match="no benchmark named nope"):
        bench_all.bench_all(only=("nope",))
