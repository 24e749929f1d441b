"""Soaks: open-loop load for minutes on end, its figures and its CPU minute by minute, and the idle
cloud's CPU beside them.

Apart from the closed-loop rounds (``bench_load``) because a soak asks another question: not how
fast a path goes, but whether it keeps going as the day's data grows (a p99 or a CPU per call that
climbs); any benchmark with a sustained load (border, soft ATM) runs it the same way.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from .bench_cpu import CpuMeter, biggest, per_op_ms
from .bench_load import LoadResult

SOAK_IDLE_S = 20.0   # the cloud with no load, before a soak (idle_cpu_ms)


@dataclass
class SoakMinute:
    minute: int
    sent: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)
    first_error: str | None = None
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """ms of CPU per call by process (:func:`per_op_ms`) over the minute, when measured."""

    def pct(self, q: float) -> float:
        return LoadResult("", latencies=self.latencies).pct(q)


def run_soak(make_call: Callable[[], Callable[[], None]], *, per_minute: int, minutes: int, workers: int,
             on_minute: Callable[[SoakMinute], None] | None = None,
             cpu: CpuMeter | None = None, minute_s: float = 60.0) -> list[SoakMinute]:
    """Open-loop load: a call every ``60 / per_minute`` s for ``minutes``, whatever the answers take.

    A call's latency counts from when it was due, not from when a worker was free, so a server
    falling behind shows in the figures instead of slowing the load down (no coordinated omission).
    (``minute_s``: how long a "minute" is, for a test.)

    ``cpu``: each minute's CPU per call, by process, from a sample as its first call is due to one
    as the next minute's is (the last minute's: once every call has answered). The load is open,
    so a minute's CPU is its calls' (give or take the ones in flight at its edges): a path whose
    cost grows with the day's data shows as a column that climbs, where the p99 alone cannot say
    which process it is.
    """
    interval = minute_s / per_minute
    total = per_minute * minutes
    buckets = [SoakMinute(m + 1) for m in range(minutes)]
    lock = threading.Lock()
    local = threading.local()

    def one(due: float, bucket: SoakMinute) -> None:
        if not hasattr(local, "call"):
            local.call = make_call()
        try:
            local.call()
            ok, err = True, None
        except Exception as exc:  # noqa: BLE001 - counted and reported
            ok, err = False, f"{type(exc).__name__}: {exc}"[:200]
        took = time.perf_counter() - due
        with lock:
            bucket.sent += 1
            if ok:
                bucket.latencies.append(took)
            else:
                bucket.errors += 1
                bucket.first_error = bucket.first_error or err

    marks: list[dict] = []

    def mark(minute: int) -> None:
        """Close ``minute``'s CPU (the sample that opens the next one opens nothing after the last)."""
        marks.append(cpu.sample())
        if minute >= 0:
            buckets[minute].cpu_ms = per_op_ms(CpuMeter.spent(marks[-2], marks[-1]), per_minute)

    start = time.perf_counter()
    with ThreadPoolExecutor(workers, thread_name_prefix="soak") as pool:
        futures, reported = [], 0
        for i in range(total):
            due = start + i * interval
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            if cpu is not None and i % per_minute == 0:
                mark(i // per_minute - 1)
            futures.append(pool.submit(one, due, buckets[min(minutes - 1, i // per_minute)]))
            # a minute is reported once its calls have all answered
            while on_minute and reported < minutes and (reported + 1) * per_minute <= len(futures) and \
                    all(f.done() for f in futures[reported * per_minute:(reported + 1) * per_minute]):
                on_minute(buckets[reported])
                reported += 1
        for f in futures:
            f.result()
        if cpu is not None:
            mark(minutes - 1)
        while on_minute and reported < minutes:
            on_minute(buckets[reported])
            reported += 1
    return buckets


def idle_cpu_ms(meter: CpuMeter, *, seconds: float, per_minute: int) -> dict[str, float]:
    """What the cloud spends with no load (the clock's ticks, heartbeats, the store's own upkeep),
    as ms of CPU per call at ``per_minute`` calls a minute (:func:`per_op_ms`).

    A soak's minutes cost more CPU per call than the same cloud's full-speed rounds (a withdrawal:
    65–83 ms against 41, stop 38), and :func:`print_soak_summary` says by how much. A fixed cost
    spread over fewer calls would explain some of it; measured, it was 3.5 ms a withdrawal at 600
    a minute, so most of the gap is not that. The rest is what any server does: a request that
    arrives alone costs more CPU than one among many (its threads wake for it alone, no work is
    shared). A raw PUT to weed cost weed 3.2–3.7 ms of CPU at 10 a second (2.6–3.0 with its idle
    share taken out) and 0.65–0.73 ms at full speed, and the Python client 0.7 against 0.2 (stop
    39). So CPU per call measured at full speed is a lower bound for a cloud that is mostly quiet."""
    before = meter.sample()
    time.sleep(seconds)
    return per_op_ms(CpuMeter.spent(before, meter.sample()), max(1, round(seconds * per_minute / 60.0)))


def soak_after_idle(make_call: Callable[[], Callable[[], None]], meter: CpuMeter, *, per_minute: int, minutes: int,
                    concurrency: int, what: str, idle_s: float = SOAK_IDLE_S,
                    minute_s: float = 60.0) -> tuple[list[SoakMinute], dict[str, float]]:
    """A benchmark's soak: the cloud idle for ``idle_s`` (:func:`idle_cpu_ms`), then ``per_minute``
    calls a minute for ``minutes`` (:func:`run_soak`), each minute printed as it ends. ``what``
    names the calls (``withdrawals``). Returns the minutes and the idle cloud's CPU per call."""
    print(f"… soak: the cloud idle for {idle_s:g} s, then {per_minute} {what} a minute for "
          f"{minutes} minute(s), open loop", flush=True)
    idle = idle_cpu_ms(meter, seconds=idle_s, per_minute=per_minute)
    soaked = run_soak(make_call, per_minute=per_minute, minutes=minutes, workers=max(concurrency, 64),
                      on_minute=print_soak_minute, cpu=meter, minute_s=minute_s)
    return soaked, idle


def print_soak_minute(m: SoakMinute) -> None:
    print(f"  minute {m.minute:3d}  sent {m.sent:6d}  errors {m.errors:4d}  p50 {m.pct(0.5):8.1f} ms  "
          f"p99 {m.pct(0.99):8.1f} ms" + _soak_cpu(m) + (f"  ({m.first_error})" if m.first_error else ""),
          flush=True)


def _soak_cpu(m: SoakMinute) -> str:
    """`` CPU 62.7 ms a call (weed 21.4, softatm 17.8, …)``: the minute's total and its four biggest processes."""
    if "total" not in m.cpu_ms:
        return ""
    return f"  CPU {m.cpu_ms['total']:6.1f} ms a call ({biggest(m.cpu_ms, 4)})"


def print_soak_summary(soaked: list[SoakMinute], what: str, idle: dict[str, float] | None = None,
                       rounds_ms: float | None = None) -> None:
    """A soak's errors, its minutes again, and how its p99 (and its CPU per call) moved from the
    first minute to the last; ``idle``: the cloud's CPU with no load, per call (:func:`idle_cpu_ms`);
    ``rounds_ms``: the CPU a call cost the same cloud in its full-speed rounds, to say how much
    more a call costs at the soak's rate."""
    errors = sum(m.errors for m in soaked)
    p99s = [m.pct(0.99) for m in soaked if m.latencies]
    print(f"soak: {what} for {len(soaked)} minute(s); {errors} errors")
    for m in soaked:
        print_soak_minute(m)
    if p99s:
        print(f"p99 per minute from {min(p99s):.1f} to {max(p99s):.1f} ms (last / first minute "
              f"{p99s[-1] / p99s[0]:.2f}×)")
    cpus = [m.cpu_ms["total"] for m in soaked if m.cpu_ms.get("total")]
    if cpus:
        print(f"CPU per call from {min(cpus):.1f} to {max(cpus):.1f} ms (last / first minute "
              f"{cpus[-1] / cpus[0]:.2f}×)")
        if rounds_ms:
            print(f"the same cloud's full-speed rounds: {rounds_ms:.1f} ms a call; a minute of the soak "
                  f"{min(cpus) / rounds_ms:.2f}–{max(cpus) / rounds_ms:.2f}× that")
    if idle and "total" in idle:
        print(f"of which the cloud spends {idle['total']:.1f} ms a call idle, at this rate ({biggest(idle, 4)})")
