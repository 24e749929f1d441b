"""The platform clock's tick (``vn.langson.platform.clock.ticked.v1``, every minute): flag the open
reports past their deadline (one ``report.overdue`` event per handling round: a reopen starts a
new one), and take the reporter's contact out of the closed reports past its keep period
(:mod:`.retention`, a few a tick); the runtime then publishes again what the outbox keeps
(:func:`lscloud.knative.flush_outbox`). A store failure raises, so the tick is redelivered."""

from __future__ import annotations

import logging

from lscloud.aggregate import delete_quietly
from lscloud.statemachine import now
from lscloud.store import DoesNotExist, InvalidKey

from . import lists, reports, retention
from .models import DueReport

log = logging.getLogger("reports.schedule")

TICKED = "vn.langson.platform.clock.ticked.v1"


def sweep(at) -> dict:
    """Flag the open reports whose deadline has passed: only the due index's entries up to ``at`` are
    listed, and only their reports read."""
    lists.indexed()   # reports stored before the due index get their entries, once per process
    flagged = 0
    for entry in DueReport.query_keys("due", range_between=(None, f"{reports.iso(at)}_~")):
        report_id = entry.partition("_")[2]
        try:
            changed = reports.flag_overdue(report_id, at)   # its indexes then drop the entry
        except (DoesNotExist, InvalidKey):
            changed = False
        if changed:
            flagged += 1
        else:   # closed, flagged already, or gone: nothing is due under this entry
            delete_quietly(DueReport, "due", entry)
    return {"flagged": flagged}


def on_tick(event: dict) -> dict:
    """Flag the overdue reports, then anonymise the closed ones past the keep period. Repeat-safe:
    each report is changed by a conditional write that finds it done already, so a tick run twice,
    or two at once, changes it once (func.py marks it :func:`lscloud.knative.repeat_safe`)."""
    at = now()
    swept, kept = sweep(at), retention.sweep(at)
    if swept["flagged"] or kept["anonymised"]:
        log.info("tick %s: %d report(s) flagged overdue, %d past the contact keep period", event.get("id"),
                 swept["flagged"], kept["anonymised"])
    return {"overdue": swept, "contacts": kept}
