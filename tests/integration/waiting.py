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
