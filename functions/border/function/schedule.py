"""The platform clock's tick (``vn.langson.platform.clock.ticked.v1``, every minute), delivered by
the trigger to ``/events``: what the operators' ``POST /v1/gates/{gate}/sweep`` does, for every
gate, on a schedule; and every ten minutes it counts each yard queue again (:func:`.tally.mend_all`),
so a tally a crashed writer left behind is mended. After it, the runtime publishes again what the
outbox keeps (:func:`lscloud.knative.flush_outbox`).

Idempotent: a missed call is applied once (the sweep moves a declaration only while it is still
``called`` past its deadline, under the declaration's conditional write). A tick that finds nothing
due does nothing.
"""

from __future__ import annotations

import logging

from lscloud import clock

from . import queueing, tally

log = logging.getLogger("border.schedule")

TICKED = "vn.langson.platform.clock.ticked.v1"


def on_tick(event: dict) -> dict:
    """Apply missed call deadlines at every gate (and, every ten minutes, mend the queue tallies). A
    store failure raises, so the tick is redelivered."""
    missed = queueing.sweep_all_gates()
    summary = {"missed": {gate: [o.doc["id"] for o in out] for gate, out in missed.items() if out}}
    at = clock.tick_at(event)   # the runtime's reading of a tick's minute: None when it has none that reads
    if at is not None and tally.mend_due(at):
        summary["queues"] = tally.mend_all()
    if summary["missed"]:
        log.info("tick %s: %s", event.get("id"), summary)
    return summary
