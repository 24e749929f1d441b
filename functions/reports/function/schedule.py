"""The platform clock's tick (``vn.langson.platform.clock.ticked.v1``, every minute): flag the open
reports past their deadline (one ``report.overdue`` event each, ever); the runtime then publishes
again what the outbox keeps (:func:`lscloud.knative.flush_outbox`). A store failure raises, so the
tick is redelivered."""

from __future__ import annotations

import logging

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
    if swept["flagged"]:
        log.info("tick %s: %d report(s) flagged overdue", event.get("id"), swept["flagged"])
    return {"overdue": swept}
