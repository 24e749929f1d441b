"""Races made to happen: threads switched every microsecond, started together."""

from __future__ import annotations

import sys
import threading
from typing import Callable


def at_once(work: Callable[[int], None], threads: int) -> list[BaseException]:
    """Run ``work(i)`` in ``threads`` threads started together, the interpreter switching between
    them every microsecond (a race that happens once in thousands of requests happens here in a few
    rounds); the exceptions they raised."""
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except Exception as exc:   # the race's outcome, asserted by the caller
            failures.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        running = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for t in running:
            t.start()
        for t in running:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return failures
