"""Brute-force protection for verification and sign-in: failed attempts counted in the store by
the kernel's limiter (:mod:`lscloud.ratelimit`), in fixed windows (``IDENTITY_WINDOW_S``).

Two subjects are counted for every mismatch:

- the *caller* (the token's subject, else the client address the gateway saw), so one client
  cannot try date after date for a number it knows;
- the *target* CCCD number, so many clients cannot share the guessing of one person's data
  (allowed twice the caller's limit, so one person's mistakes cannot lock the citizen out).

When a subject has reached its limit in the current window, the request is refused with 429
and ``Retry-After`` (the end of the window) *before* the registry is asked; only mismatches are
counted. Subjects are pseudonyms (keyed hashes: an unkeyed hash of a CCCD is quickly reversed),
so no CCCD number or address appears in an object key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lscloud import errors
from lscloud.ratelimit import Limiter

from .models import AttemptWindow


class TooManyMismatches(errors.TooManyRequests):
    """429 with Retry-After: the caller (``who="caller"``) or the number (``"target"``) has used up
    its window (or its counter is under such siege that the write could not get through)."""

    type = "too-many-mismatches"
    title, title_vi = "Too many failed verifications", "Xác thực sai quá nhiều lần"

    def __init__(self, retry_after_s: int, who: str):
        self.retry_after_s = retry_after_s
        self.who = who  # "caller" | "target"
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


class MismatchLimits:
    """The caller's and the number's limits: two kernel limiters over :class:`AttemptWindow`,
    their subjects scoped ``caller:`` / ``target:``."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.time):
        self.limits = limits
        self.caller = Limiter(AttemptWindow, limit=limits.max_mismatches, window_s=limits.window_s, clock=clock,
                              refuse=lambda s: TooManyMismatches(s, "caller"))
        self.target = Limiter(AttemptWindow, limit=limits.per_target, window_s=limits.window_s, clock=clock,
                              refuse=lambda s: TooManyMismatches(s, "target"))

    def check(self, caller: str, id_number: str) -> None:
        """Raise :class:`TooManyMismatches` if the caller or the number has used up this window."""
        self.caller.check("caller:" + caller)
        self.target.check("target:" + id_number)

    def record_mismatch(self, caller: str, id_number: str) -> dict[str, int]:
        """Count one mismatch for both subjects; returns the new counts."""
        return {"caller": self.caller.add("caller:" + caller), "target": self.target.add("target:" + id_number)}
