"""The daily limit per customer, bank and kind: one counter document per local day.

A counter lists the transfers it counts (``{transfer id: amount}``), so counting is idempotent (a
transfer already listed is not counted twice) and an abort takes exactly its own amount out. The
customer is a pseudonym (:func:`.transfers.customer_key`): no account or phone number in a key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store.retry import DEFAULT

from .models import CustomerDay
from .transfers import customer_key

KEPT = 4096
"""Counters a process remembers as it last wrote them (a few hundred bytes each)."""
_written: OrderedDict[str, CustomerDay] = OrderedDict()
_lock = threading.Lock()


def _remembered(key: str) -> CustomerDay | None:
    with _lock:
        return _written.pop(key, None)   # taken: a concurrent count of the same customer reads the store


def _remember(key: str, item: CustomerDay) -> None:
    with _lock:
        _written[key] = item
        while len(_written) > KEPT:
            _written.popitem(last=False)


def daily_key(doc: dict) -> str:
    """The :class:`CustomerDay` counting ``doc``'s customer's transfers of its kind on its day."""
    return f"{doc['bank']}_{doc['kind']}_{customer_key(doc['bank'], doc.get('account'), doc.get('phone'))}_{doc['day']}"


def count(doc: dict) -> bool:
    """Count ``doc`` against its customer's limit; False (nothing counted) if it would go over.

    The first attempt writes without reading: from the counter as this process last wrote it
    (under If-Match), or else as the day's first (create-only, what a customer's one withdrawal of
    the day is). Either write fails if the stored counter is otherwise; anything but a successful
    write (a refusal included) is decided again from the counter as stored."""
    key, limit, amount = daily_key(doc), int(doc["limits"]["per_customer_day_vnd"]), doc["amount_vnd"]

    def counted_in(item: CustomerDay) -> bool | None:
        """True or False when ``item`` decides; None when it was written (``doc`` counted)."""
        used = item.used or {}
        if doc["id"] in used:
            return True
        if sum(used.values()) + amount > limit:
            return False
        item.used = {**used, doc["id"]: amount}
        item.save()   # If-Match what was read or remembered; create-only for a new counter
        _remember(key, item)
        return None

    unread = _remembered(key) or CustomerDay(key, used={})
    if doc["id"] not in (unread.used or {}):
        try:
            if counted_in(unread) is None:
                return True
        except ConditionalCheckFailed:
            pass
    # a refusal, "counted already", or a lost write: decided by the counter as stored

    def attempt() -> bool:
        decided = counted_in(_stored(key))
        return True if decided is None else decided

    return DEFAULT.run(attempt)


def _stored(key: str) -> CustomerDay:
    try:
        return CustomerDay.get(key)
    except DoesNotExist:
        return CustomerDay(key, used={})   # saved create-only: a racing first counter makes us read again


def uncount(doc: dict) -> None:
    """Take an aborted transfer out of its day's counter (if it was counted)."""
    def drop(item: CustomerDay):
        item.used = {k: v for k, v in (item.used or {}).items() if k != doc["id"]}

    key = daily_key(doc)
    try:
        if doc["id"] in (CustomerDay.get(key).used or {}):
            CustomerDay.update(key, None, drop)
    except DoesNotExist:
        pass  # a counter that kept changing raises: the settle that called us stays undone, the sweep retries


def counted(doc: dict) -> bool:
    """Whether ``doc`` is in its customer's counter of the day."""
    try:
        return doc["id"] in (CustomerDay.get(daily_key(doc)).used or {})
    except DoesNotExist:
        return False
