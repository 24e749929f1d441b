"""The platform clock's tick (``vn.langson.platform.clock.ticked.v1``, every minute), delivered by
the trigger to ``/events``: what the operators' ``POST /v1/overdue/sweep`` does, on a schedule
(after it, the runtime publishes again what the outbox keeps: :func:`lscloud.knative.flush_outbox`).

Idempotent: a step is flagged overdue once ever (``overdue_flagged``, set under the dossier's
conditional write, one ``step.overdue`` event with a fixed id); the gauge is recomputed from the
dossiers each time.
"""

from __future__ import annotations

import logging

from lscloud.statemachine import now

from . import overdue

log = logging.getLogger("dossiers.schedule")

TICKED = "vn.langson.platform.clock.ticked.v1"


def on_tick(event: dict) -> dict:
    """Flag overdue steps and refresh the overdue gauge. A store failure raises, so the tick is
    redelivered. Repeat-safe: a step is flagged by a conditional write that finds it flagged
    already, and the clock entries are created only if missing, so a tick run twice, or two at
    once, flags each step once (func.py marks it :func:`lscloud.knative.repeat_safe`)."""
    swept = overdue.sweep(now())
    if swept["steps_flagged"]:
        log.info("tick %s: %d step(s) flagged overdue", event.get("id"), swept["steps_flagged"])
    return {"overdue": swept}
