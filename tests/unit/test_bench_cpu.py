"""Where a benchmark's CPU goes (`lscloud.local.bench_cpu`): real processes named by the roles of a
cloud's ``cloud.json``, their CPU between two samples, per operation, in the rows and the table."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from lscloud.local import bench_cpu
from lscloud.local.bench_load import LoadResult, base, merged, print_cpu, row, run_load

BURN = "import time\nwhile True:\n    t = time.process_time()\n    while time.process_time() - t < 0.2:\n        pass\n" \
       "    time.sleep(0.05)\n"


@pytest.fixture
def burner():
    """A process that keeps spending CPU, with a child that does too (it counts for its parent)."""
    code = ("import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {BURN!r}])\n" + BURN)
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc
    for child in psutil.Process(proc.pid).children(recursive=True):
        child.kill()
    proc.kill()
    proc.wait(5)


def test_processes_are_named_by_their_roles_and_children_count_for_their_parent(burner):
    cloud = {"pid": None, "processes": [{"role": "function:softatm", "pid": burner.pid},
                                        {"role": "weed", "pid": 999_999_999}]}   # gone: skipped, not an error
    import psutil

    meter = bench_cpu.CpuMeter(cloud)
    procs = [psutil.Process(burner.pid), *psutil.Process(burner.pid).children()]

    def own() -> list[float]:
        return [sum(p.cpu_times()[:2]) for p in procs]

    own_before = own()
    before = meter.sample()
    assert {role for role, _ in before.values()} == {"softatm", bench_cpu.CLIENT}
    assert sum(1 for role, _ in before.values() if role == "softatm") == 2   # the process and its child
    # until each has spent a visible share, however loaded the machine (no timed assertion)
    deadline = time.monotonic() + 60
    while min(b - a for a, b in zip(own_before, own())) < 0.3 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = meter.sample()
    spent = meter.spent(before, after)
    parent, child = (b - a for a, b in zip(own_before, own()))
    # the role's figure is what both spent between the samples: the child's counts for its parent
    assert spent["softatm"] > max(parent, child) + 0.2
    assert spent["softatm"] <= parent + child + 0.05
    assert "weed (S3)" not in spent


def test_a_process_started_between_samples_counts_from_zero_and_a_role_change_too():
    before = {1: ("softatm", 5.0), 2: ("gateway", 1.0)}
    after = {1: ("softatm", 5.5), 2: ("gateway", 1.25), 3: ("softatm", 0.25), 4: ("weed (S3)", 2.0)}
    assert bench_cpu.CpuMeter.spent(before, after) == {"softatm": 0.75, "gateway": 0.25, "weed (S3)": 2.0}
    # a pid reused by another role between the samples is not a negative figure
    assert bench_cpu.CpuMeter.spent({5: ("gateway", 9.0)}, {5: ("softatm", 1.0)}) == {"softatm": 1.0}


def test_per_operation_the_total_leaves_out_the_load_generator():
    ms = bench_cpu.per_op_ms({"weed (S3)": 1.4, "softatm": 1.2, bench_cpu.CLIENT: 0.5}, ops=100)
    assert list(ms) == ["weed (S3)", "softatm", bench_cpu.CLIENT, "total"]
    assert ms == {"weed (S3)": 14.0, "softatm": 12.0, bench_cpu.CLIENT: 5.0, "total": 26.0}
    assert bench_cpu.per_op_ms({"softatm": 1.0}, ops=0) == {}


def test_role_names():
    assert bench_cpu.role_name("function:softatm-bank-sim") == "softatm-bank-sim"
    assert bench_cpu.role_name("nats") == "nats-server"
    assert bench_cpu.role_name("weed") == "weed (S3)"


def test_run_load_measures_the_cpu_of_its_span_and_rows_carry_it(burner, capsys):
    meter = bench_cpu.CpuMeter({"processes": [{"role": "function:busy", "pid": burner.pid}]})

    def make():
        def call():
            t = time.process_time()
            while time.process_time() - t < 0.002:   # this thread's own CPU: the client's share
                pass
        return call

    r = run_load("busy path", make, 200, 2, 30, cpu=meter)
    assert r.ok == 200 and r.cpu_s["busy"] > 0 and r.cpu_s[bench_cpu.CLIENT] >= 0.2
    ms = r.cpu_ms_per_op()
    assert ms[bench_cpu.CLIENT] >= 1.0 and ms["total"] == ms["busy"]
    twice = merged("busy path", [r, r])
    assert twice.cpu_s["busy"] == pytest.approx(2 * r.cpu_s["busy"])
    out = row("busy path", r, base("raw", r), 1.0, "≤ 2", True)
    assert out["cpu_ms_per_op"] == ms and out["baseline"]["cpu_ms_per_op"] == ms
    assert "cpu_ms_per_op" not in row("unmeasured", LoadResult("x", ok=1, seconds=1.0), {}, None, "-", None)
    r.cpu_s["fork server"] = 0.0   # idle: no row
    print_cpu([r, LoadResult("unmeasured")])
    table = capsys.readouterr().out
    assert "where the CPU goes" in table and "busy" in table and "unmeasured" not in table and "fork" not in table
    lines = table.splitlines()
    rows = [line.split("  ")[0].strip() for line in lines[next(i for i, x in enumerate(lines) if x.startswith("process")) + 1:]]
    assert rows == ["busy", "total", bench_cpu.CLIENT]


class _Ticking:
    """A meter whose every sample finds weed 0.3 s and softatm 0.1 s further on (the bookkeeping of
    a soak's minutes; CpuMeter's own readings of real processes are tested above)."""

    def __init__(self):
        self.n = 0

    def sample(self):
        self.n += 1
        return {1: ("weed (S3)", 0.3 * self.n), 2: ("softatm", 0.1 * self.n), 3: (bench_cpu.CLIENT, 5.0 * self.n)}


def test_a_soak_reports_each_minutes_cpu_per_call(capsys):
    from lscloud.local.bench_soak import print_soak_minute, print_soak_summary, run_soak

    calls = []
    meter = _Ticking()
    soaked = run_soak(lambda: lambda: calls.append(1), per_minute=10, minutes=3, workers=2,
                      on_minute=print_soak_minute, cpu=meter, minute_s=0.2)
    assert len(calls) == 30 and meter.n == 4   # one sample as each minute starts, one after the last
    for m in soaked:
        # a sample apart: 0.3 s of weed over the minute's 10 calls is 30 ms a call; the client is the load
        assert m.cpu_ms == {"weed (S3)": 30.0, "softatm": 10.0, bench_cpu.CLIENT: 500.0, "total": 40.0}
    print_soak_summary(soaked, "10 calls a minute", rounds_ms=16.0)
    out = capsys.readouterr().out
    assert out.count("CPU   40.0 ms a call (weed (S3) 30.0, softatm 10.0)") == 6   # as each minute ends, and again
    assert "CPU per call from 40.0 to 40.0 ms (last / first minute 1.00×)" in out
    assert "the same cloud's full-speed rounds: 16.0 ms a call; a minute of the soak 2.50–2.50× that" in out


def test_a_soak_without_a_meter_prints_no_cpu(capsys):
    from lscloud.local.bench_soak import print_soak_minute, run_soak

    soaked = run_soak(lambda: lambda: None, per_minute=5, minutes=1, workers=1, on_minute=print_soak_minute,
                      minute_s=0.1)
    assert soaked[0].cpu_ms == {} and soaked[0].sent == 5
    assert "CPU" not in capsys.readouterr().out


def test_the_idle_cloud_is_measured_per_call_at_the_soaks_rate(capsys):
    from lscloud.local.bench_soak import idle_cpu_ms, print_soak_summary, run_soak

    # 0.3 s of weed over 0.2 s, at 600 calls a minute (2 calls in 0.2 s): 150 ms a call
    idle = idle_cpu_ms(_Ticking(), seconds=0.2, per_minute=600)
    assert idle == {"weed (S3)": 150.0, "softatm": 50.0, bench_cpu.CLIENT: 2500.0, "total": 200.0}
    soaked = run_soak(lambda: lambda: None, per_minute=5, minutes=1, workers=1, cpu=_Ticking(), minute_s=0.1)
    print_soak_summary(soaked, "5 calls a minute", idle)
    assert "of which the cloud spends 200.0 ms a call idle, at this rate (weed (S3) 150.0, softatm 50.0)" \
        in capsys.readouterr().out


def test_a_benchmarks_soak_measures_the_idle_cloud_then_its_minutes(capsys):
    from lscloud.local.bench_soak import soak_after_idle

    calls = []
    meter = _Ticking()
    soaked, idle = soak_after_idle(lambda: lambda: calls.append(1), meter, per_minute=10, minutes=2,
                                   concurrency=2, what="declarations", idle_s=0.2, minute_s=0.2)
    # idle: a sample apart over 0.2 s at 10 calls a minute (one call's worth), then the two minutes
    assert idle == {"weed (S3)": 300.0, "softatm": 100.0, bench_cpu.CLIENT: 5000.0, "total": 400.0}
    assert len(calls) == 20 and [m.sent for m in soaked] == [10, 10] and meter.n == 5
    assert all(m.cpu_ms["total"] == 40.0 for m in soaked)
    out = capsys.readouterr().out
    assert "… soak: the cloud idle for 0.2 s, then 10 declarations a minute for 2 minute(s), open loop" in out
    assert out.count("minute   ") == 2
