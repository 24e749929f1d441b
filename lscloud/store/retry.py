"""The one retry policy for optimistic writes: how often a lost conditional write is tried again.

Every read-modify-write in the project (``Model.update``, :mod:`lscloud.aggregate`, a journal
head) reads, changes and writes under ``If-Match``; a lost race reads again. Under contention the
retries back off with full jitter (a random pause up to an exponentially growing cap) so that
writers spread out instead of colliding again in step.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from .errors import ConditionalCheckFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """``retries`` more attempts after the first, pausing up to ``min(cap_s, base_s * 2**n)``."""

    retries: int = 40
    base_s: float = 0.005
    cap_s: float = 0.2

    def pause(self, attempt: int) -> None:
        """Sleep before retry number ``attempt`` (0-based)."""
        time.sleep(random.uniform(0, min(self.cap_s, self.base_s * 2 ** min(attempt, 16))))

    def run(self, attempt_once: Callable[[], T]) -> T:
        """Call ``attempt_once`` until it does not raise ConditionalCheckFailed, at most
        ``retries + 1`` times; then the last ConditionalCheckFailed propagates."""
        for attempt in range(self.retries + 1):
            try:
                return attempt_once()
            except ConditionalCheckFailed:
                if attempt == self.retries:
                    raise
                self.pause(attempt)
        raise AssertionError("unreachable")


DEFAULT = Backoff()
"""The project's policy: 40 retries, 5 ms doubling to a 200 ms cap (a few seconds in all under heavy
contention on one document, which is what a request can wait)."""
