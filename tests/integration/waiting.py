"""Waiting for an observable fact instead of sleeping a guessed time: the deadline only keeps a
failing test from hanging, nothing is timed."""

from __future__ import annotations

import time


def wait_for(check, what: str, deadline_s: float = 45.0, *, alive=None, every_s: float = 0.05):
    """``check()``'s first truthy value, asked every ``every_s``; AssertionError naming ``what`` after
    ``deadline_s``, or as soon as ``alive()`` (when given) says the thing waited on has died."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        if alive is not None and not alive():
            raise AssertionError(f"gave up waiting for {what}: the thing we wait on has died")
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


def clear_of_a_window_edge(window_s: int, need_s: float = 10.0) -> None:
    """Wait out the current fixed rate-limit window (:mod:`lscloud.ratelimit`: windows start at
    multiples of ``window_s`` since the epoch) when fewer than ``need_s`` seconds are left in it.
    Counts made across an edge fall into two windows, and a test that expects a refusal finds none
    (identity's, CI at 68ecc5d, 11:10 UTC)."""
    left = window_s - time.time() % window_s
    if left < need_s:
        time.sleep(left + 0.5)
