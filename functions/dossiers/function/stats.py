"""The IOC's figures: received, resolved, on time / late, overdue now and the online share, per
agency, commune (the dossier's unit) and procedure, over a period of local days.

- received: dossiers received in the period (by receipt day);
- resolved: dossiers finished in the period as done or denied (cancelled ones are neither);
  on_time / late split the resolved ones by their deadline (working days, pauses excluded);
- overdue_now: dossiers still open whose deadline has passed (the clock stops while waiting);
- online_share: online / received.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from . import workflow


def _row() -> dict:
    return {"received": 0, "received_online": 0, "resolved": 0, "on_time": 0, "late": 0, "overdue_now": 0,
            "cancelled": 0}


def _finish(row: dict) -> dict:
    row["online_share"] = round(row["received_online"] / row["received"], 4) if row["received"] else None
    row["on_time_share"] = round(row["on_time"] / row["resolved"], 4) if row["resolved"] else None
    return row


def compute(received: list[dict], finished: list[dict], open_docs: list[dict], now: datetime) -> dict:
    groups = {"agency": lambda d: d["agency"], "unit": lambda d: d["unit"], "procedure": lambda d: d["procedure"]["code"]}
    by = {g: defaultdict(_row) for g in groups}
    total = _row()

    def add(d, field_, n=1):
        total[field_] += n
        for g, key in groups.items():
            by[g][key(d)][field_] += n

    for d in received:
        add(d, "received")
        if d["channel"] == "online":
            add(d, "received_online")
    for d in finished:
        if d["status"] == "cancelled":
            add(d, "cancelled")
        elif d["status"] in ("done", "denied"):
            add(d, "resolved")
            add(d, "on_time" if d.get("on_time") else "late")
    for d in open_docs:
        if d["status"] in workflow.OPEN and workflow.is_overdue(d, now):
            add(d, "overdue_now")
    return {"total": _finish(total),
            **{f"by_{g}": [{g: k, **_finish(v)} for k, v in sorted(rows.items())] for g, rows in by.items()}}
