"""The platform clock's tick (``vn.langson.platform.clock.ticked.v1``, every minute), delivered by
the trigger to ``/events``: what the operators' ``POST /v1/overdue/sweep`` and
``POST /v1/outbox/flush`` do, on a schedule.

Idempotent: a step is flagged overdue once ever (``overdue_flagged``, set under the dossier's
conditional write, one ``step.overdue`` event with a fixed id); the gauge is recomputed from the
dossiers each time; a re-published outbox event keeps its id, so the stream stores it once.
"""

from __future__ import annotations

import logging

from lscloud import outbox
from lscloud.statemachine import now

from . import overdue

log = logging.getLogger("dossiers.schedule")

TICKED = "vn.langson.platform.clock.ticked.v1"


def on_tick(event: dict) -> dict:
    """Flag overdue steps and refresh the overdue gauge, then re-publish what NATS did not confirm.

    An unconfirmed re-publish stays in the outbox for the next tick; a store failure raises, so the
    tick is redelivered."""
    swept = overdue.sweep(now())
    flushed = outbox.flush()
    if swept["steps_flagged"] or flushed["sent"] or flushed["failed"]:
        log.info("tick %s: %d step(s) flagged overdue, outbox %s", event.get("id"), swept["steps_flagged"], flushed)
    return {"overdue": swept, "outbox": flushed}
