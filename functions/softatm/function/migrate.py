"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once by ``lscloud up`` (and ``lscloud migrate``) before the function serves. The daily-limit
counters (:class:`.models.CustomerDay`) used to be keyed by an unkeyed sha256 of the customer's
account or phone number, which anyone can reverse by trying numbers; they are keyed by a
pseudonym now. The old key cannot be turned into the new one, but every counter lists the
transfers it counts, and a transfer knows its customer: each counter is merged into the counter
at its new key (a union of transfer ids, so a repeat run adds nothing) and then removed.
"""

from __future__ import annotations

from lscloud.store import ConditionalCheckFailed, DoesNotExist

from .models import CustomerDay, Transfer
from .limits import daily_key


def migrate(runtime) -> dict:
    report = {"seen": 0, "moved": 0, "emptied": 0, "unknown_customer": 0}
    token = None
    while True:
        page = CustomerDay.scan(limit=200, page_token=token)
        for item in page:
            report["seen"] += 1
            _move(item, report)
        token = page.page_token
        if not token:
            return {"customer_days": report}


def _move(item: CustomerDay, report: dict) -> None:
    used = dict(item.used or {})
    target = None
    for tid in used:
        try:
            target = daily_key(Transfer.get(tid).data)
            break
        except DoesNotExist:
            continue
    if target == item.key:
        return
    if used and target is None:
        report["unknown_customer"] += 1  # no transfer left to say whose counter this is: keep it
        return
    if used:
        def merge(new: CustomerDay):
            new.used = {**(new.used or {}), **used}

        try:
            CustomerDay(target, used=used, expires_at=item.expires_at).save()   # create-only
        except ConditionalCheckFailed:
            CustomerDay.update(target, None, merge)
        report["moved"] += 1
    else:
        report["emptied"] += 1
    try:
        item.delete()  # only the version we read: a counter that changed meanwhile waits for the next run
    except (ConditionalCheckFailed, DoesNotExist):
        pass
