"""The gate queue (GoSwift-grade): hourly slots per gate and flow, three booking modes, an order
that is a sort key, calls with a deadline, and an explanation of every truck's place.

- **Slots** are the gate's opening hours in local time (Asia/Ho_Chi_Minh), ``YYYYMMDDHH``; each
  has a capacity per flow (the directory's ``export_per_hour`` / ``import_per_hour``, or an
  operator's override). A slot holds seats ``0 .. capacity-1``, each taken create-only, so no
  race can seat more trucks than the capacity.
- **Booking modes**: ``living`` (the first free slot from now or the expected arrival),
  ``reservation`` (a chosen hour, refused when full, with the next free hours suggested).
  The **priority** lane (perishable, emergency, diplomatic) is granted by an operator with a
  reason and puts the truck before every normal truck.
- **Order** of trucks waiting in the yard = the order of their queue keys
  ``<lane>_<slot>_<arrival µs>_<code>``: lane (priority first), then slot, then arrival time.
  A truck's position is the number of keys before its own.
- **Calls** give the truck ``call_minutes`` (default 20) to reach the gate; a missed call sends
  it back to the yard queue once (with a new arrival time), the second miss expires it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lscloud import errors
from lscloud.workdays import TZ

FLOWS = ("in", "out")   # "in" = China → Vietnam (import side), "out" = Vietnam → China
LANE_PRIORITY, LANE_NORMAL = "0", "1"
PRIORITY_CATEGORIES = ("perishable", "emergency", "diplomatic")
DEFAULT_CALL_MINUTES = 20
MAX_MISSED_CALLS = 1
HORIZON_HOURS = 7 * 24
_SLOT_RE = re.compile(r"^\d{10}$")
_KEY_RE = re.compile(r"^(?P<lane>[01])_(?P<slot>\d{10})_(?P<arrival>\d{16})_(?P<code>[A-Z0-9]+)$")


class QueueError(errors.DomainError):
    """A booking that cannot be made; ``code`` is stable (the problem type), ``suggestions`` lists
    free slots. A full slot or horizon is a 409 (try another slot), a bad request for one a 422."""

    title, title_vi = "Booking not possible", "Không đặt được lượt"
    CONFLICTS = frozenset({"slot-full", "no-slot"})

    def __init__(self, code: str, message: str, message_vi: str, suggestions: list[str] | None = None):
        super().__init__(message, detail_vi=message_vi, suggestions=suggestions or [],
                         errors=[{"field": "/slot", "message": message, "message_vi": message_vi}])
        self.code, self.suggestions = code, suggestions or []
        self.type, self.status = code, 409 if code in self.CONFLICTS else 422


# -- slots -------------------------------------------------------------------------------------------

def slot_of(t: datetime) -> str:
    """The slot (local hour) ``t`` falls in."""
    return t.astimezone(TZ).strftime("%Y%m%d%H")


def slot_start(slot: str) -> datetime:
    if not _SLOT_RE.match(slot or ""):
        raise bad_slot(slot)
    try:
        return datetime.strptime(slot, "%Y%m%d%H").replace(tzinfo=TZ)
    except ValueError:
        raise bad_slot(slot) from None


def bad_slot(slot) -> QueueError:
    return QueueError("bad-slot", f"{slot!r} is not a slot (YYYYMMDDHH, local time)",
                      f"{slot!r} không phải là khung giờ hợp lệ (dạng YYYYMMDDHH, giờ Việt Nam)")


def slot_label(slot: str) -> str:
    s = slot_start(slot)
    return f"{s:%Y-%m-%d %H}:00–{(s + timedelta(hours=1)):%H}:00"


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def is_open(gate: dict, slot: str) -> bool:
    """Whether the gate is open for the whole hour of ``slot``."""
    hours = gate.get("hours") or {}
    s = slot_start(slot)
    if hours.get("days") and s.isoweekday() not in hours["days"]:
        return False
    start = s.hour * 60
    return _minutes(hours.get("open", "00:00")) <= start and start + 60 <= _minutes(hours.get("close", "24:00"))


def slots_from(gate: dict, start: datetime, horizon_hours: int = HORIZON_HOURS):
    """Open slots from the hour of ``start`` on, for ``horizon_hours``."""
    first = start.astimezone(TZ).replace(minute=0, second=0, microsecond=0)
    for h in range(horizon_hours):
        slot = slot_of(first + timedelta(hours=h))
        if is_open(gate, slot):
            yield slot


def capacity(gate: dict, flow: str, override: int | None = None) -> int:
    """Trucks per hour for ``flow`` ("in" = import side, "out" = export side)."""
    if override is not None:
        return int(override)
    cap = gate.get("capacity") or {}
    return int(cap.get("import_per_hour" if flow == "in" else "export_per_hour") or 0)


def seat_key(n: int) -> str:
    return f"{n:04d}"


# -- order ------------------------------------------------------------------------------------------

def queue_key(lane: str, slot: str, arrival: datetime, code: str) -> str:
    """The sort key of a truck waiting in the yard: its lexicographic order IS the queue order."""
    if lane not in (LANE_PRIORITY, LANE_NORMAL):
        raise ValueError(f"bad lane {lane!r}")
    micros = int(arrival.timestamp() * 1_000_000)
    return f"{lane}_{slot}_{micros:016d}_{code}"


@dataclass(frozen=True)
class QueueKey:
    lane: str
    slot: str
    arrival_us: int
    code: str

    @property
    def arrival(self) -> datetime:
        return datetime.fromtimestamp(self.arrival_us / 1_000_000, timezone.utc)


def parse_key(key: str) -> QueueKey:
    m = _KEY_RE.match(key)
    if not m:
        raise ValueError(f"not a queue key: {key!r}")
    return QueueKey(m["lane"], m["slot"], int(m["arrival"]), m["code"])


def explain(mine: str, ahead: list[str], per_hour: int) -> dict:
    """Why a truck is where it is: who is ahead of it and by which rule, and the expected wait."""
    me = parse_key(mine)
    priority = earlier_slot = same_slot_earlier = 0
    for k in ahead:
        other = parse_key(k)
        if other.lane < me.lane:
            priority += 1
        elif other.slot < me.slot:
            earlier_slot += 1
        else:
            same_slot_earlier += 1
    return explain_counts(mine, priority, earlier_slot, same_slot_earlier, per_hour)


def explain_counts(mine: str, priority: int, earlier_slot: int, same_slot_earlier: int, per_hour: int) -> dict:
    """:func:`explain` from the number of trucks ahead by each rule (a queue's tally)."""
    me = parse_key(mine)
    ahead = priority + earlier_slot + same_slot_earlier
    return {
        "position": ahead + 1,
        "ahead": ahead,
        "ahead_by_rule": {"priority_lane": priority, "earlier_slot": earlier_slot,
                          "same_slot_arrived_earlier": same_slot_earlier},
        "lane": "priority" if me.lane == LANE_PRIORITY else "normal",
        "slot": me.slot,
        "arrived_at": me.arrival.isoformat().replace("+00:00", "Z"),
        "expected_wait_minutes": expected_wait_minutes(ahead, per_hour),
        "rules": ["priority lane before normal lane", "then earlier slot first", "then earlier arrival in the yard"],
    }


def expected_wait_minutes(ahead: int, per_hour: int) -> int | None:
    if per_hour <= 0:
        return None
    return int(round(ahead * 60 / per_hour))


def call_deadline(called_at: datetime, minutes: int = DEFAULT_CALL_MINUTES) -> datetime:
    return called_at + timedelta(minutes=minutes)


def after_missed_call(misses_before: int) -> str:
    """The action a missed call leads to: back to the yard queue once, then expiry."""
    return "miss_call" if misses_before < MAX_MISSED_CALLS else "expire"
