"""The daily limit per customer, bank and kind: one counter document per local day.

A counter lists the transfers it counts (``{transfer id: amount}``), so counting is idempotent (a
transfer already listed is not counted twice) and an abort takes exactly its own amount out. The
customer is a pseudonym (:func:`.transfers.customer_key`): no account or phone number in a key.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from lscloud.store import DoesNotExist
from lscloud.store.recent import RecentItems
from lscloud.workdays import TZ

from .models import COUNTER_KEPT_DAYS, CustomerDay
from .transfers import customer_key

# the counters as this process last wrote them: a count starts from there, without a read
_COUNTERS: RecentItems[CustomerDay] = RecentItems(CustomerDay, max_items=4096)


class _Decided(Exception):
    """Counting decided without a write: ``counted`` already, or not (over the limit)."""

    def __init__(self, counted: bool):
        super().__init__(counted)
        self.counted = counted


def daily_key(doc: dict) -> str:
    """The :class:`CustomerDay` counting ``doc``'s customer's transfers of its kind on its day."""
    return f"{doc['bank']}_{doc['kind']}_{customer_key(doc['bank'], doc.get('account'), doc.get('phone'))}_{doc['day']}"


def _ends(day: str) -> datetime:
    """When a counter of local ``day`` expires (:data:`.models.COUNTER_KEPT_DAYS`)."""
    return datetime.combine(date.fromisoformat(day) + timedelta(days=COUNTER_KEPT_DAYS), time(), TZ)


def count(doc: dict) -> bool:
    """Count ``doc`` against its customer's limit; False (nothing counted) if it would go over.

    Written without a read (:class:`~lscloud.store.recent.RecentItems`): from the counter as this
    process last wrote it (under If-Match), or else as the day's first (create-only, what a
    customer's one withdrawal of the day is); either write fails if the stored counter is otherwise.
    A counter goes back when a transfer is aborted, so a decision without a write ("over the
    limit", "counted already") made on the remembered copy is made again on the stored counter."""
    key, limit, amount = daily_key(doc), int(doc["limits"]["per_customer_day_vnd"]), doc["amount_vnd"]

    def add(item: CustomerDay) -> None:
        used = item.used or {}
        if doc["id"] in used:
            raise _Decided(True)
        if sum(used.values()) + amount > limit:
            raise _Decided(False)
        item.used = {**used, doc["id"]: amount}

    try:
        _COUNTERS.update(key, None, add, create=lambda: CustomerDay(key, used={}, expires_at=_ends(doc["day"])),
                         recheck=_Decided)
    except _Decided as decided:
        return decided.counted
    return True


def uncount(doc: dict) -> None:
    """Take an aborted transfer out of its day's counter (if it was counted), from the counter as
    this process last wrote it like :func:`count` (which then starts from the counter as it is)."""
    def drop(item: CustomerDay) -> None:
        used = item.used or {}
        if doc["id"] not in used:
            raise _Decided(False)
        item.used = {k: v for k, v in used.items() if k != doc["id"]}

    try:
        _COUNTERS.update(daily_key(doc), None, drop, recheck=_Decided)
    except (_Decided, DoesNotExist):
        pass  # a counter that kept changing raises: the settle that called us stays undone, the sweep retries


def counted(doc: dict) -> bool:
    """Whether ``doc`` is in its customer's counter of the day."""
    try:
        return doc["id"] in (CustomerDay.get(daily_key(doc)).used or {})
    except DoesNotExist:
        return False
