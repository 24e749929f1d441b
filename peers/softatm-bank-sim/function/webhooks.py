"""What a soft ATM webhook asks of the bank: recorded first (deduped by event id), then queued."""

from __future__ import annotations

from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store.retry import DEFAULT

from .models import RECORDS, Record
from .worker import Worker


class _Seen(Exception):
    """The webhook's event id is in the record already: nothing to write."""


SEEN_KEPT = 8
"""Event ids a record remembers (a transfer has at most three webhooks: received, then committed or aborted)."""


def on_webhook(worker: Worker, body: dict) -> None:
    """Record what the webhook asks of us, then queue the work. The record keeps the ids of the
    webhooks it was written for, so a redelivery finds its id there and changes nothing: one write
    per webhook (the record, create-only the first time, under If-Match after), no separate
    "seen" record that could be written while the work it stands for is not."""
    t = body["transfer"]
    tid, event_id = t["id"], body["event_id"]
    fact = body["type"].split(".")[4]

    def apply(d: dict) -> bool:
        seen = d.get("events") or []
        if event_id in seen:
            return False
        d["events"] = (seen + [event_id])[-SEEN_KEPT:]
        d["state"] = t["state"]
        d["committed_at"] = t.get("committed_at")
        if fact == "received":
            d["todo"] = "decide-withdrawal" if t["kind"] == "withdrawal" else "credit-deposit"
        elif fact == "committed" and t["kind"] == "withdrawal":
            d["todo"] = "finish-withdrawal"
        elif fact == "aborted":
            d["todo"] = "undo"
        return True

    def change(item: Record) -> None:
        if not apply(item.data):
            raise _Seen   # in the copy, so in the store too: ids are only ever added

    def once():
        try:   # from the record as this process last wrote it, else read (its If-Match says if it was current)
            return RECORDS.update(tid, None, change)
        except DoesNotExist:   # (a later webhook whose "received" was lost: recorded all the same)
            return create()

    def create():
        first = Record(tid, data={"id": tid, "kind": t["kind"], "amount_vnd": t["amount_vnd"],
                                  "account": t.get("account") or "", "state": t["state"], "todo": None})
        apply(first.data)
        first.save()   # create-only: a record there already makes us read it
        RECORDS.keep(first)
        return first

    try:
        if fact == "received":   # a transfer's first webhook creates its record; a later one changes it
            try:
                item = create()
            except ConditionalCheckFailed:
                item = DEFAULT.run(once)
        else:
            item = DEFAULT.run(once)
    except _Seen:
        return   # a redelivery: its work was recorded (and queued) the first time
    worker.submit(tid, item)
