"""What a soft ATM webhook asks of the bank: recorded first (deduped by event id), then queued."""

from __future__ import annotations

from lscloud.store import ConditionalCheckFailed

from .models import Record, Seen
from .worker import Worker


def on_webhook(worker: Worker, body: dict) -> None:
    """Record what the webhook asks of us (create-only by event id), then queue the work."""
    t = body["transfer"]
    tid = t["id"]
    try:
        Seen(body["event_id"]).save()
    except ConditionalCheckFailed:
        return  # a redelivery
    fact = body["type"].split(".")[4]

    def fn(item):
        d = item.data
        d["state"] = t["state"]
        d["committed_at"] = t.get("committed_at")
        if fact == "received":
            d["todo"] = "decide-withdrawal" if t["kind"] == "withdrawal" else "credit-deposit"
        elif fact == "committed" and t["kind"] == "withdrawal":
            d["todo"] = "finish-withdrawal"
        elif fact == "aborted":
            d["todo"] = "undo"
    first = Record(tid, data={"id": tid, "kind": t["kind"], "amount_vnd": t["amount_vnd"],
                              "account": t.get("account") or "", "state": t["state"], "todo": None})
    fn(first)
    try:
        first.save()   # the first webhook of a transfer records its work at once (create-only)
    except ConditionalCheckFailed:
        Record.update(tid, None, fn)
    worker.q.put(tid)
