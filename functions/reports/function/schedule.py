"""The platform clock's tick (``vn.langson.platform.clock.ticked.v1``, every minute): flag the open
reports past their deadline (one ``report.overdue`` event each, ever) and re-publish what NATS did
not confirm. A store failure raises, so the tick is redelivered."""

from __future__ import annotations

import logging

from lscloud import outbox
from lscloud.statemachine import now

from . import queries, reports

log = logging.getLogger("reports.schedule")

TICKED = "vn.langson.platform.clock.ticked.v1"


def sweep(at) -> dict:
    flagged = 0
    for doc in queries.get_many(queries.open_ids()):
        if not doc.get("overdue") and doc["deadline"] <= reports.iso(at) and reports.flag_overdue(doc["id"], at):
            flagged += 1
    return {"flagged": flagged}


def on_tick(event: dict) -> dict:
    swept = sweep(now())
    flushed = outbox.flush()
    if swept["flagged"] or flushed["sent"] or flushed["failed"]:
        log.info("tick %s: %d report(s) flagged overdue, outbox %s", event.get("id"), swept["flagged"], flushed)
    return {"overdue": swept, "outbox": flushed}
