"""The platform clock's tick (``vn.langson.platform.clock.ticked.v1``, every minute), delivered by
the trigger to ``/events``: what the operators' ``POST /v1/gates/{gate}/sweep`` and
``POST /v1/outbox/flush`` do, for every gate, on a schedule; and every ten minutes it counts each
yard queue again (:func:`.tally.mend_all`), so a tally a crashed writer left behind is mended.

Idempotent: a missed call is applied once (the sweep moves a declaration only while it is still
``called`` past its deadline, under the declaration's conditional write); a re-published outbox
event keeps its id, so the stream stores it once. A tick that finds nothing due does nothing.
"""

from __future__ import annotations

import logging

from lscloud import outbox

from . import queueing, tally

log = logging.getLogger("border.schedule")

TICKED = "vn.langson.platform.clock.ticked.v1"


def on_tick(event: dict) -> dict:
    """Apply missed call deadlines at every gate, then re-publish what NATS did not confirm.

    An unconfirmed re-publish stays in the outbox for the next tick (not an error: retrying the
    tick would not help while NATS is away); a store failure raises, so the tick is redelivered."""
    missed = queueing.sweep_all_gates()
    flushed = outbox.flush()
    summary = {"missed": {gate: [o.doc["id"] for o in out] for gate, out in missed.items() if out},
               "outbox": flushed}
    at = (event.get("data") or {}).get("at")
    if isinstance(at, str) and tally.mend_due(at):
        summary["queues"] = tally.mend_all()
    if summary["missed"] or flushed["sent"] or flushed["failed"]:
        log.info("tick %s: %s", event.get("id"), summary)
    return summary
