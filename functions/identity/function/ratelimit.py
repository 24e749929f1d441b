"""Brute-force protection for verification and sign-in: failed attempts counted in the store.

Two subjects are counted for every mismatch, in fixed windows (``IDENTITY_WINDOW_S``):

- the *caller* (the token's subject, else the client address the gateway saw), so one client
  cannot try date after date for a number it knows;
- the *target* CCCD number, so many clients cannot share the guessing of one person's data
  (allowed twice the caller's limit, so one person's mistakes cannot lock the citizen out).

When a subject has reached its limit in the current window, the request is refused with 429
and ``Retry-After`` (the end of the window) *before* the registry is asked. Counters are
documents written with conditional requests (create-only, then ``If-Match``), so replicas
share them and concurrent mismatches are never lost. Subjects are pseudonyms (keyed hashes, an
unkeyed hash of a CCCD is quickly reversed): no CCCD number or address appears in an object key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from lscloud import errors
from lscloud.pseudonyms import pseudonym
from lscloud.store import ConditionalCheckFailed
from lscloud.store.retry import DEFAULT as RETRY

from .models import AttemptWindow


class RateLimited(errors.TooManyRequests):
    """429 with Retry-After: the caller (``who="caller"``), the number (``"target"``) or a counter
    under siege (``"contended"``) has used up its window."""

    type = "too-many-mismatches"
    title, title_vi = "Too many failed verifications", "Xác thực sai quá nhiều lần"

    def __init__(self, retry_after_s: int, who: str):
        self.retry_after_s = retry_after_s
        self.who = who  # "caller" | "target" | "contended"
        whose = "for this number" if who == "target" else "from you"
        super().__init__(f"Too many failed verifications ({whose}); retry after {retry_after_s} s.",
                         detail_vi=f"Xác thực sai quá nhiều lần; vui lòng thử lại sau {retry_after_s} giây.",
                         headers={"Retry-After": str(retry_after_s)})


@dataclass(frozen=True)
class Limits:
    max_mismatches: int = 5
    window_s: int = 900

    @property
    def per_target(self) -> int:
        return self.max_mismatches * 2


def subject(kind: str, value: str) -> str:
    return pseudonym(AttemptWindow.Meta.table, f"{kind}:{value}")


class Limiter:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.time):
        self.limits = limits
        self.clock = clock

    def _window(self) -> tuple[str, int, int]:
        now = int(self.clock())
        start = now - now % self.limits.window_s
        return f"{start:012d}", start, start + self.limits.window_s - now

    def _subjects(self, caller: str, id_number: str) -> list[tuple[str, str, int]]:
        return [("caller", subject("caller", caller), self.limits.max_mismatches),
                ("target", subject("target", id_number), self.limits.per_target)]

    def check(self, caller: str, id_number: str) -> None:
        """Raise :class:`RateLimited` if the caller or the number has used up this window."""
        window, _, remaining = self._window()
        for who, subj, limit in self._subjects(caller, id_number):
            try:
                count = AttemptWindow.get(subj, window).mismatches
            except AttemptWindow.DoesNotExist:
                continue
            if count >= limit:
                raise RateLimited(max(1, remaining), who)

    def record_mismatch(self, caller: str, id_number: str) -> dict[str, int]:
        """Count one mismatch for both subjects; returns the new counts."""
        window, start, _ = self._window()
        expires = datetime.fromtimestamp(start + 2 * self.limits.window_s, tz=timezone.utc)
        return {who: self._increment(subj, window, expires) for who, subj, _ in self._subjects(caller, id_number)}

    def _increment(self, subj: str, window: str, expires: datetime) -> int:
        def once() -> int:
            try:
                item = AttemptWindow.get(subj, window)
            except AttemptWindow.DoesNotExist:
                # create-only; if someone created it first, the retry reads theirs and adds ours
                AttemptWindow(subj, window, mismatches=1, expires_at=expires).save()
                return 1
            item.mismatches = int(item.mismatches) + 1
            item.save()  # If-Match the version we read
            return int(item.mismatches)

        try:
            return RETRY.run(once)
        except ConditionalCheckFailed:
            # so much contention on one subject is itself an attack: refuse rather than lose the count
            raise RateLimited(self.limits.window_s, "contended") from None
