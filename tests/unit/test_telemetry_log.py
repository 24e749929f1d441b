"""The local span log: bounded on disk by rotation, written whole-line by several threads and processes
at once, and read back from its end or as a stream, never all of it in memory."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import orjson
import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from lscloud import cli, config, telemetry
from lscloud.local.trace_profile import profile

ROOT = Path(__file__).resolve().parents[2]
RESOURCE = Resource({SERVICE_NAME: "log-test"})
SECOND = 1_000_000_000
T0 = 1_750_000_000 * SECOND


def span(trace: int, span_id: int, name: str, start: int, end: int, parent: int | None = None,
         kind: SpanKind = SpanKind.INTERNAL, **attributes) -> ReadableSpan:
    return ReadableSpan(
        name=name, context=SpanContext(trace, span_id, is_remote=False, trace_flags=TraceFlags(1)),
        parent=SpanContext(trace, parent, is_remote=False) if parent else None, resource=RESOURCE,
        attributes=attributes, kind=kind, start_time=start, end_time=end)


def batch(writer: int, seq: int) -> list[ReadableSpan]:
    """Three spans that say who wrote them and when, padded to some 2 KB together."""
    trace = (writer << 32) | (seq + 1)
    return [span(trace, (writer << 32) | (seq * 3 + k + 1), f"w{writer} s{seq} k{k}", T0 + seq, T0 + seq + 1,
                 writer=writer, seq=seq, pad="x" * 500) for k in range(3)]


# a writer process: python -c WRITER path writer batches max_bytes keep tests/unit gate-folder
WRITER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[6])
from test_telemetry_log import batch
from lscloud.telemetry import JsonLinesSpanExporter
path, (writer, batches, max_bytes, keep) = sys.argv[1], map(int, sys.argv[2:6])
gate = Path(sys.argv[7])
exporter = JsonLinesSpanExporter(path, max_bytes=max_bytes, keep=keep)
(gate / f"ready{writer}").touch()
while not (gate / "go").exists():   # both start writing together
    time.sleep(0.001)
seq = 0
try:
    # at least `batches`, then on until the other has written as many: the last files hold both
    while seq < batches or not all((gate / f"done{w}").exists() for w in (0, 1)):
        assert exporter.export(batch(writer, seq)).name == "SUCCESS"
        seq += 1
        if seq == batches:
            (gate / f"done{writer}").touch()
finally:   # a writer that failed lets the other stop too
    (gate / f"done{writer}").touch()
(gate / f"last{writer}").write_text(str(seq))
"""


def check_log(path: Path, batches: dict[int, int], max_bytes: int, keep: int) -> None:
    """``keep`` rotated files and the current one, none past the bound, every line whole, and of
    each writer (its number of batches in ``batches``) the latest batches, all of them, in order:
    nothing went into a file after it was rotated away."""
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == [path.name] + [f"{path.name}.{n}" for n in range(1, keep + 1)]
    seqs: dict[int, list[int]] = {w: [] for w in batches}
    for name in telemetry.trace_files(path):
        data = Path(name).read_bytes()
        assert len(data) <= max_bytes and data.endswith(b"\n")
        for line in data.splitlines():
            record = json.loads(line)   # a torn or interleaved line would not parse
            if record["name"].endswith("k0"):
                seqs[record["attributes"]["writer"]].append(record["attributes"]["seq"])
    for writer, got in seqs.items():
        assert got and got == list(range(got[0], batches[writer])), f"writer {writer}: {got}"


def test_rotation_under_concurrent_threads_keeps_n_files_of_whole_lines(tmp_path):
    path, max_bytes, keep = tmp_path / "traces.jsonl", 16_384, 2
    # two exporters (as two processes would have) and two threads on each
    exporters = [telemetry.JsonLinesSpanExporter(path, max_bytes=max_bytes, keep=keep) for _ in range(2)]
    failures = []
    together = threading.Barrier(4)

    def write(writer: int) -> None:
        for seq in range(150):
            together.wait()   # the four race for every batch
            if exporters[writer % 2].export(batch(writer, seq)) != telemetry.SpanExportResult.SUCCESS:
                failures.append(writer)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    check_log(path, dict.fromkeys(range(4), 150), max_bytes, keep)


def test_rotation_under_two_processes_keeps_n_files_of_whole_lines(tmp_path):
    (tmp_path / "log").mkdir()
    path, max_bytes, keep = tmp_path / "log" / "traces.jsonl", 16_384, 3
    env = {**config.environ(), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), "500", str(max_bytes), str(keep),
                               str(Path(__file__).parent), str(tmp_path)], env=env) for w in range(2)]
    try:
        while not all((tmp_path / f"ready{w}").exists() for w in range(2)):
            if any(p.poll() is not None for p in procs):   # one died before it was ready: let the other end
                for w in range(2):
                    (tmp_path / f"done{w}").touch()
                break
            time.sleep(0.01)
    finally:
        (tmp_path / "go").touch()
        codes = [p.wait() for p in procs]
    assert codes == [0, 0]
    check_log(path, {w: int((tmp_path / f"last{w}").read_text()) for w in range(2)}, max_bytes, keep)


def test_a_bound_smaller_than_before_drops_what_it_no_longer_keeps(tmp_path):
    path = tmp_path / "traces.jsonl"
    wide = telemetry.JsonLinesSpanExporter(path, max_bytes=4_096, keep=4)
    for seq in range(8):
        wide.export(batch(1, seq))
    assert len(telemetry.trace_files(path)) == 5
    narrow = telemetry.JsonLinesSpanExporter(path, max_bytes=4_096, keep=1)
    narrow.export(batch(1, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.jsonl", "traces.jsonl.1"]


def test_a_forked_child_writes_the_log_too(tmp_path):
    path = tmp_path / "traces.jsonl"
    exporter = telemetry.JsonLinesSpanExporter(path, max_bytes=1 << 20, keep=1)
    pid = os.fork()
    if pid == 0:   # the child: its copy of the exporter's lock was let go at the fork
        os._exit(0 if exporter.export(batch(2, 0)) == telemetry.SpanExportResult.SUCCESS else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert exporter.export(batch(1, 0)) == telemetry.SpanExportResult.SUCCESS
    assert len(telemetry.read_trace_file(path)) == 6


def test_the_bound_and_the_rotated_files_kept_are_settings():
    s = config.load({"LSCLOUD_TRACE_FILE_MAX_BYTES": "1048576", "LSCLOUD_TRACE_FILE_KEEP": "3"})
    assert (s.trace_file_max_bytes, s.trace_file_keep) == (1_048_576, 3)
    assert config.load(s.env_vars()) == s   # a function process gets them too
    assert config.Settings().trace_file_max_bytes == 256 * 1_048_576 and config.Settings().trace_file_keep == 2
    with pytest.raises(config.ConfigError, match="LSCLOUD_TRACE_FILE_MAX_BYTES"):
        config.load({"LSCLOUD_TRACE_FILE_MAX_BYTES": "100"})
    with pytest.raises(config.ConfigError, match="LSCLOUD_TRACE_FILE_KEEP"):
        config.load({"LSCLOUD_TRACE_FILE_KEEP": "0"})


def test_setup_bounds_the_span_log(tmp_path):
    path = tmp_path / "bounded.jsonl"
    telemetry.setup(config.Settings(service="log-test", trace_file=str(path), trace_file_max_bytes=65_536,
                                    trace_file_keep=1))
    for i in range(300):
        with telemetry.tracer().start_as_current_span(f"padded {i}", attributes={"pad": "y" * 600}):
            pass
        if i % 20 == 19:
            telemetry.force_flush()   # a batch of 20 spans: some 18 KB
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bounded.jsonl", "bounded.jsonl.1"]
    assert all(os.path.getsize(f) <= 65_536 for f in telemetry.trace_files(path))


def request(trace: int, at: int, took_ms: int = 9) -> list[ReadableSpan]:
    """A request's spans as its processes write them: its store call first, the SERVER span (which
    ends last) after."""
    return [span(trace, trace * 10 + 2, "S3.PutObject", at + 1_000_000, at + 5_000_000, parent=trace * 10 + 1,
                 kind=SpanKind.CLIENT, **{"aws.s3.key": "softatm-open/x.json", "pad": "z" * 400}),
            span(trace, trace * 10 + 1, "POST /v1/withdrawals", at, at + took_ms * 1_000_000, kind=SpanKind.SERVER,
                 pad="z" * 400)]


def test_traces_n_shows_the_newest_traces_across_a_rotation(tmp_path, capsys):
    path = tmp_path / "traces.jsonl"
    exporter = telemetry.JsonLinesSpanExporter(path, max_bytes=2_500, keep=2)   # three lines a file
    for t in range(1, 15):
        store, server = request(t, T0 + t * SECOND)
        exporter.export([store])
        exporter.export([server])
    # the log was rotated, and the newest request's store call went into the rotated file
    newest = f"{14:032x}"

    def lines(name: str) -> list[tuple[str, str]]:
        return [(s["trace_id"], s["name"]) for s in map(json.loads, (tmp_path / name).read_bytes().splitlines())]

    assert lines("traces.jsonl") == [(newest, "POST /v1/withdrawals")]
    assert lines("traces.jsonl.1") == [(f"{13:032x}", "S3.PutObject"), (f"{13:032x}", "POST /v1/withdrawals"),
                                       (newest, "S3.PutObject")]
    assert [t for t, _ in lines("traces.jsonl.2")] == [f"{11:032x}", f"{12:032x}", f"{12:032x}"]

    got = telemetry.newest_traces(path, 2)
    assert [(s["trace_id"], s["name"]) for s in got] == [
        (f"{13:032x}", "POST /v1/withdrawals"), (f"{13:032x}", "S3.PutObject"),
        (newest, "POST /v1/withdrawals"), (newest, "S3.PutObject")]
    assert cli.main(["--state-dir", str(tmp_path), "traces", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("trace ") == 2 and f"trace {newest}" in out and f"trace {13:032x}" in out
    assert out.count("S3.PutObject softatm-open") == 2
    # one trace, wherever its spans are
    assert cli.main(["--state-dir", str(tmp_path), "traces", "--trace-id", newest]) == 0
    assert capsys.readouterr().out.count("S3.PutObject") == 1
    # the profile reads the rotated files too
    assert cli.main(["--state-dir", str(tmp_path), "traces", "--where", "POST /v1/withdrawals"]) == 0
    assert "4 request(s)" in capsys.readouterr().out   # 11 to 14: the files kept hold their SERVER spans
    assert cli.main(["--state-dir", str(tmp_path / "none"), "traces"]) == 0
    assert "no spans in" in capsys.readouterr().err


def big_log(path: Path, traces: int) -> int:
    """A log of ``traces`` requests ten seconds apart (about 1.4 KB each), written as the exporter
    writes it; its size."""
    with open(path, "wb") as fh:
        for t in range(1, traces + 1):
            fh.write(b"".join(telemetry.span_json(s) for s in request(t, T0 + t * 10 * SECOND)))
    return path.stat().st_size


def peak_while(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    assert big_log(folder / "traces.jsonl", 15_000) > 20_000_000
    return folder


def test_the_newest_traces_are_read_from_the_end(big, capsys):
    """The log is 20 MB; reading the last two requests holds the block it reads (1 MiB) and little more."""
    got: list = []
    assert peak_while(lambda: got.extend(telemetry.newest_traces(big / "traces.jsonl", 2))) < 4_000_000
    assert {s["trace_id"] for s in got} == {f"{14_999:032x}", f"{15_000:032x}"} and len(got) == 4
    assert peak_while(lambda: cli.main(["--state-dir", str(big), "traces", "-n", "2"])) < 4_000_000
    assert capsys.readouterr().out.count("trace ") == 2


def test_the_log_is_streamed(big):
    spans = telemetry.iter_trace_file(big / "traces.jsonl")
    assert inspect.isgenerator(spans)
    first = next(spans)
    assert first["trace_id"] == f"{1:032x}" and first["name"] == "S3.PutObject"
    counted = [1]

    def rest():
        for _ in spans:
            counted[0] += 1

    assert peak_while(rest) < 2_000_000
    assert counted[0] == 30_000


def test_the_profile_holds_only_the_traces_still_open(big, capsys):
    """--where over 20 MB of requests: each is charged and forgotten once the log is past it."""
    found: list = []
    assert peak_while(lambda: found.append(profile(telemetry.iter_trace_file(big / "traces.jsonl"),
                                                   "POST /v1/withdrawals", skip=10))) < 4_000_000
    assert found[0].requests == 14_990 and found[0].took_ms == [9.0] * 14_990
    assert found[0].spans == {"log-test CLIENT S3.PutObject softatm-open": 14_990}
    assert cli.main(["--state-dir", str(big), "traces", "--where", "POST /v1/withdrawals"]) == 0
    assert "15000 request(s)" in capsys.readouterr().out


def test_the_streamed_profile_leaves_out_the_earliest_requests_as_warm_up():
    """The warm-up is the earliest requests by start, whatever order the log has them in and however
    far apart they are."""
    lines = []
    for t, minute in ((1, 50), (2, 10), (3, 30), (4, 40)):
        lines += [orjson.loads(telemetry.span_json(s)) for s in request(t, T0 + minute * 60 * SECOND, took_ms=t)]
    p = profile(iter(lines), "POST /v1/withdrawals", skip=2)
    assert p.requests == 2 and p.took_ms == [4.0, 1.0]   # requests 4 and 1, by their start
    assert p.spans == {"log-test CLIENT S3.PutObject softatm-open": 2}
