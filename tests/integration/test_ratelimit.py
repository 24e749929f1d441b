"""The kernel's per-caller rate limit (lscloud/ratelimit.py) against a real weed mini: counts shared
through the store, 429 with Retry-After beyond the limit, a new window starts afresh, concurrent hits
never lost, callers told apart by token subject or the last X-Forwarded-For entry."""

from __future__ import annotations

import threading

import pytest

from lscloud import ratelimit
from lscloud.store import Model, attributes as A

pytestmark = pytest.mark.integration


class Window(Model):
    class Meta:
        table = "t-rate-windows"
        ttl_max_s = 120

    subject = A.UnicodeAttribute(hash_key=True)
    window = A.UnicodeAttribute(range_key=True)
    hits = A.NumberAttribute(default=0)
    expires_at = A.TTLAttribute()


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_beyond_the_limit_is_a_429_with_the_seconds_left_in_the_window(rt):
    clock = Clock(1_800_000_010.0)   # 10 s into a 60 s window
    limiter = ratelimit.Limiter(Window, limit=3, window_s=60, clock=clock)
    assert [limiter.hit("ip:10.0.0.1") for _ in range(3)] == [1, 2, 3]
    with pytest.raises(ratelimit.RateLimited) as refused:
        limiter.hit("ip:10.0.0.1")
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "50"
    assert limiter.hit("ip:10.0.0.2") == 1           # another caller has its own count
    clock.t += 60                                     # the next window starts afresh
    assert limiter.hit("ip:10.0.0.1") == 1


def test_no_address_in_an_object_key(rt, object_store, bucket):
    ratelimit.Limiter(Window, limit=5, window_s=60).hit("ip:203.0.113.77")
    keys = [o.key for o in object_store.list(bucket, "t-rate-windows/")]
    assert keys and not any("203.0.113" in k for k in keys)


def test_concurrent_hits_are_all_counted(rt):
    limiter = ratelimit.Limiter(Window, limit=100, window_s=3600, clock=Clock(1_800_003_600.0))
    seen = []

    def hit():
        seen.append(limiter.hit("sub:c1"))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 9))


def test_the_caller_is_the_token_subject_else_the_last_forwarded_address():
    class Who:
        anonymous, id = False, "u-1"

    class Nobody:
        anonymous, id = True, None

    assert ratelimit.caller_subject(Who(), {}, "1.2.3.4") == "sub:u-1"
    assert ratelimit.caller_subject(Nobody(), {"X-Forwarded-For": "9.9.9.9, 10.1.1.1"}, "127.0.0.1") == "ip:10.1.1.1"
    assert ratelimit.caller_subject(None, {}, "127.0.0.1") == "ip:127.0.0.1"


def test_a_failure_limit_checks_before_and_counts_after_with_its_own_refusal(rt):
    class Mine(Exception):
        def __init__(self, retry_after_s):
            self.retry_after_s = retry_after_s

    clock = Clock(1_800_007_230.0)   # 30 s into a 60 s window
    target = ratelimit.Limiter(Window, limit=2, window_s=60, clock=clock, refuse=Mine)
    target.check("target:n1")                         # nothing counted yet
    assert target.peek("target:n1") == 0
    assert [target.add("target:n1") for _ in range(3)] == [1, 2, 3]   # add never refuses for the count
    with pytest.raises(Mine) as refused:
        target.check("target:n1")
    assert refused.value.retry_after_s == 30 and target.peek("target:n1") == 3
    target.check("target:n2")                         # another subject has its own count
    # a second limiter over the same model, another scope: counters never shared
    assert ratelimit.Limiter(Window, limit=5, window_s=60, clock=clock).peek("caller:n1") == 0


def test_a_callers_next_hit_on_this_replica_is_one_conditional_put(rt):
    from store_calls import counting

    limiter = ratelimit.Limiter(Window, limit=10, window_s=60, clock=Clock(1_800_010_000.0))
    with counting() as first:
        assert limiter.hit("sub:recent-1") == 1
    with counting() as second:
        assert limiter.hit("sub:recent-1") == 2
    assert (first["get"], first["put"]) == (0, 1)     # a new window's counter: written create-only, unread
    assert (second["get"], second["put"]) == (0, 1)   # the copy this replica wrote: If-Match, unread


def test_replicas_taking_turns_never_lose_a_hit(rt):
    clock = Clock(1_800_020_000.0)
    a, b = (ratelimit.Limiter(Window, limit=100, window_s=60, clock=clock) for _ in range(2))
    counts = [(a if i % 3 else b).hit("sub:recent-2") for i in range(12)]
    assert counts == list(range(1, 13))               # each stale copy lost its condition and was re-read
    assert a.peek("sub:recent-2") == 12


def test_a_copy_at_the_limit_refuses_without_a_write(rt):
    from store_calls import counting

    limiter = ratelimit.Limiter(Window, limit=2, window_s=60, clock=Clock(1_800_030_000.0))
    limiter.hit("sub:recent-3"), limiter.hit("sub:recent-3")
    with pytest.raises(ratelimit.RateLimited), counting() as calls:
        limiter.hit("sub:recent-3")
    assert calls["put"] == 0 and calls["get"] == 0
