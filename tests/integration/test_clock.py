"""The platform clock against the real nats-server: a tick per period on the stream, one tick per
period whoever publishes it (Nats-Msg-Id = the id derived from the period), a clean stop, and
``python -m lscloud.clock --once`` as the cluster's CronJob runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lscloud import clock
from lscloud.bus import SyncBus
from lscloud.delivery import tail
from waiting import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def ticks(settings) -> list[dict]:
    return [m["event"] for m in tail(settings, 200) if m["event"].get("type") == clock.TICKED]


@pytest.fixture
def bus(settings):
    b = SyncBus(settings).start()
    b.ensure_stream()
    yield b
    b.close()


def test_the_tick_event_names_its_period_and_is_the_same_all_minute():
    at = datetime(2026, 11, 22, 5, 18, 37, 250000, tzinfo=timezone.utc)
    e = clock.tick_event(at)
    assert e["type"] == "vn.langson.platform.clock.ticked.v1" and e["specversion"] == "1.0"
    assert e["data"] == {"period": "PT1M", "at": "2026-11-22T05:18:00Z"}
    assert e["id"] == "clock-PT1M-2026-11-22T05:18:00Z"
    assert clock.tick_event(at.replace(second=0, microsecond=0))["id"] == e["id"]
    assert clock.tick_event(at.replace(second=59))["id"] == e["id"]
    assert clock.tick_event(at + timedelta(minutes=1))["id"] != e["id"]
    import json

    from jsonschema import Draft202012Validator
    schema = json.loads((ROOT / "schemas" / "events" / "platform" / "clock.ticked.json").read_text())
    Draft202012Validator(schema).validate(e["data"])
    assert clock.iso_period(300) == "PT5M" and clock.iso_period(0.5) == "PT0.5S"


def test_one_tick_per_period_on_the_stream(settings, bus):
    period = 0.4
    seen = []
    c = clock.Clock(settings, period, on_tick=lambda e, seq: seen.append((e, seq))).start()
    try:
        wait_for(lambda: len(seen) >= 4, "four ticks", 60.0)
    finally:
        c.stop()
    stored = ticks(settings)
    ids = [e["id"] for e in stored]
    # what the clock says it published is exactly what the stream holds, each tick once
    assert ids == [e["id"] for e, _ in seen] and len(ids) == len(set(ids)) == c.published
    assert [seq for _, seq in seen] == sorted({seq for _, seq in seen})
    # each tick is the start of its own period: aligned on the period, never two in one period
    # (a slow machine may skip a period; the next tick does that period's work)
    starts = [datetime.fromisoformat(e["data"]["at"].replace("Z", "+00:00")).timestamp() for e in stored]
    assert all(abs(t / period - round(t / period)) < 1e-6 for t in starts), starts
    assert all(round((b - a) / period) >= 1 for a, b in zip(starts, starts[1:])), starts
    assert all(e["data"]["period"] == "PT0.4S" and e["source"] == clock.SOURCE for e in stored)
    assert [m["subject"] for m in tail(settings, 1)] == ["lscloud.platform.clock.ticked"]
    assert c.failed == 0


def test_ticks_of_the_same_minute_are_stored_once(settings, bus):
    at = datetime.now(timezone.utc).replace(second=5, microsecond=0)
    other = SyncBus(settings).start()   # a second publisher (another process, a retried Job)
    try:
        first, seq1 = clock.publish_tick(bus, at)
        second, seq2 = clock.publish_tick(other, at + timedelta(seconds=40))
        third, seq3 = clock.publish_tick(bus, at + timedelta(seconds=54))
    finally:
        other.close()
    assert first["id"] == second["id"] == third["id"]
    assert seq1 == seq2 == seq3
    assert [e["id"] for e in ticks(settings)] == [first["id"]]
    _, seq4 = clock.publish_tick(bus, at + timedelta(minutes=1))
    assert seq4 > seq1 and len(ticks(settings)) == 2


def test_stop_is_clean_and_final(settings, bus):
    # the clock reads an instant that starts a period: its next tick is a whole period (30 s) away
    start = clock.period_start(datetime.now(timezone.utc), 30.0)
    c = clock.Clock(settings, 30.0, now=lambda: start).start()
    wait_for(lambda: c.published == 1, "the first tick", 60.0)
    c.stop()
    # stop() did not wait for the next period: the thread is gone (stop joins for 15 s at most,
    # half a period), so nothing can publish after it, and only the first tick is on the stream
    assert not c.alive and c.published == 1
    assert [e["id"] for e in ticks(settings)] == [clock.tick_event(start, 30.0)["id"]]
    c.stop()  # twice is fine


def test_a_tick_nats_does_not_confirm_is_skipped_not_fatal(settings):
    dead = settings.replace(nats_url="nats://127.0.0.1:1")
    c = clock.Clock(dead, 0.2, bus=SyncBus(dead, publish_timeout=0.3, connect_timeout=0.3))
    assert c.tick() is None and c.failed == 1 and c.last_error


def test_period_from_the_environment():
    assert clock.period_env({}) == 60.0
    assert clock.period_env({"LSCLOUD_CLOCK_PERIOD_S": "0.5"}) == 0.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(Exception, match="LSCLOUD_CLOCK_PERIOD_S"):
            clock.period_env({"LSCLOUD_CLOCK_PERIOD_S": bad})


def test_python_m_lscloud_clock_once_publishes_the_minutes_tick(settings, bus):
    env = {**os.environ, "LSCLOUD_NATS_URL": settings.nats_url, "LSCLOUD_STREAM": settings.stream,
           "PYTHONPATH": str(ROOT)}
    env.pop("LSCLOUD_ENV", None)
    runs = [subprocess.run([sys.executable, "-m", "lscloud.clock", "--once"], env=env, capture_output=True,
                           text=True, timeout=60, cwd=str(ROOT)) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    stored = ticks(settings)
    # the two runs share the minute (one tick), unless they straddled a minute boundary
    assert 1 <= len(stored) <= 2 and len({e["id"] for e in stored}) == len(stored)
    assert all(e["data"]["period"] == "PT1M" for e in stored)
    assert any(stored[0]["id"] in r.stderr for r in runs)


def test_python_m_lscloud_clock_loops_until_sigterm(settings, bus):
    import signal

    env = {**os.environ, "LSCLOUD_NATS_URL": settings.nats_url, "LSCLOUD_STREAM": settings.stream,
           "PYTHONPATH": str(ROOT), "LSCLOUD_CLOCK_PERIOD_S": "0.3"}
    proc = subprocess.Popen([sys.executable, "-m", "lscloud.clock"], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(ticks(settings)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert len(ticks(settings)) >= 3 and "stopping" in err
