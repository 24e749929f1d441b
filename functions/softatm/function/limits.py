"""The daily limit per customer, bank and kind: one counter document per local day.

A counter lists the transfers it counts (``{transfer id: amount}``), so counting is idempotent (a
transfer already listed is not counted twice) and an abort takes exactly its own amount out. The
customer is a pseudonym (:func:`.transfers.customer_key`): no account or phone number in a key.
"""

from __future__ import annotations

from lscloud.store import DoesNotExist
from lscloud.store.retry import DEFAULT

from .models import CustomerDay
from .transfers import customer_key


def daily_key(doc: dict) -> str:
    """The :class:`CustomerDay` counting ``doc``'s customer's transfers of its kind on its day."""
    return f"{doc['bank']}_{doc['kind']}_{customer_key(doc['bank'], doc.get('account'), doc.get('phone'))}_{doc['day']}"


def count(doc: dict) -> bool:
    """Count ``doc`` against its customer's limit; False (nothing counted) if it would go over."""
    key, limit, amount = daily_key(doc), int(doc["limits"]["per_customer_day_vnd"]), doc["amount_vnd"]

    def attempt() -> bool:
        try:
            item = CustomerDay.get(key)
        except DoesNotExist:
            item = CustomerDay(key, used={})   # saved create-only: a racing first counter makes us read again
        used = item.used or {}
        if doc["id"] in used:
            return True
        if sum(used.values()) + amount > limit:
            return False
        item.used = {**used, doc["id"]: amount}
        item.save()
        return True

    return DEFAULT.run(attempt)


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
