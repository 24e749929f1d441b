"""Waiting for an observable fact instead of sleeping a guessed time: the deadline only keeps a
failing test from hanging, nothing is timed."""

from __future__ import annotations

import time


def wait_for(check, what: str, deadline_s: float = 45.0):
    """``check()``'s first truthy value, asked every 50 ms; AssertionError naming ``what`` after
    ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
