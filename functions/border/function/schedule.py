"""The platform clock's tick (``vn.langson.platform.clock.ticked.v1``, every minute), delivered by
the trigger to ``/events``: what the operators' ``POST /v1/gates/{gate}/sweep`` does, for every
gate, on a schedule; every ten minutes it counts each yard queue again (:func:`.tally.mend_all`),
so a tally a crashed writer left behind is mended; it minimises the health data of declarations
ended ``BORDER_HEALTH_KEEP_DAYS`` before the tick's minute (:mod:`.minimise`, a bounded batch); and
it ends the declarations that can no longer happen (:mod:`.lapse`, a bounded batch: drafts and
submitted ones long untouched, bookings whose slot passed with no truck). After it, the runtime
publishes again what the outbox keeps (:func:`lscloud.knative.flush_outbox`).

Idempotent: a missed call is applied once (the sweep moves a declaration only while it is still
``called`` past its deadline, under the declaration's conditional write). A tick that finds nothing
due does nothing.
"""

from __future__ import annotations

import logging

from lscloud import clock, runtime
from lscloud.statemachine import now

from . import lapse, minimise, queueing, settings, tally

log = logging.getLogger("border.schedule")

TICKED = "vn.langson.platform.clock.ticked.v1"


def on_tick(event: dict) -> dict:
    """Apply missed call deadlines at every gate (and, every ten minutes, mend the queue tallies), then
    minimise what health data is due and end what can no longer happen. A store failure raises, so
    the tick is redelivered (one declaration's failure to be minimised or lapsed is logged and tried
    again at the next tick)."""
    missed = queueing.sweep_all_gates()
    summary = {"missed": {gate: [o.doc["id"] for o in out] for gate, out in missed.items() if out}}
    at = clock.tick_at(event)   # the runtime's reading of a tick's minute: None when it has none that reads
    if at is not None and tally.mend_due(at):
        summary["queues"] = tally.mend_all()
    # the tick's own minute, not the wall clock: a tick delivered late minimises nothing early
    border, at = settings.of(runtime.current().settings), at or now()
    minimised = minimise.run(at, border.health_keep_days)
    if minimised:
        summary["health"] = minimised
    lapsed = lapse.run(at, border)
    if lapsed:
        summary["expired"] = lapsed
    if summary["missed"] or minimised or lapsed:
        log.info("tick %s: %s", event.get("id"), summary)
    return summary
