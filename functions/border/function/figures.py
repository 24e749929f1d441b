"""The IOC's figures from the store: the declarations submitted on the days asked (the day index),
computed by :mod:`.stats`, and the trucks waiting now at the gates they crossed."""

from __future__ import annotations

from datetime import date, timedelta

from lscloud.query import QueryError
from lscloud.statemachine import now

from . import indexes, ledger, queue, queueing, stats
from .models import DayIndex

MAX_DAYS = 31


def figures(first: date | None, last: date | None, gate: str | None) -> dict:
    """Figures from ``first`` to ``last`` (local days; default today, at most 31), optionally of one gate."""
    first = first or now().astimezone(queue.TZ).date()
    last = last or first
    if not 0 <= (last - first).days < MAX_DAYS:
        raise QueryError("to", "to is on or after from, at most 31 days later")
    prefix = indexes.safe(gate) + "_" if gate else None
    ids = []
    day = first
    while day <= last:
        ids += [e.declaration_id for e in DayIndex.query(day.isoformat(), range_prefix=prefix)]
        day += timedelta(days=1)
    docs = ledger.docs(ids)
    out = stats.compute(docs)
    gates_seen = sorted({d["gate"] for d in docs} | ({gate} if gate else set()))
    out["waiting"] = [{"gate": gc, "flow": flow, "waiting": len(queueing.waiting(gc, flow))}
                      for gc in gates_seen for flow in queueing.FLOWS]
    out["from"], out["to"] = first.isoformat(), last.isoformat()
    return out
