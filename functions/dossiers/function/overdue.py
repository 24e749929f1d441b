"""The overdue sweep: flag each active step past its deadline (one ``step.overdue`` event per step,
ever: the flag is set under the dossier's conditional write) and count the open dossiers past
theirs per agency for the overdue gauge. The platform clock's tick runs it every minute
(:mod:`.schedule`); operators may run it by hand."""

from __future__ import annotations

from datetime import datetime

from lscloud.statemachine import iso

from . import deadlines, metrics, registry, workflow
from .states import OPEN


def sweep(at: datetime) -> dict:
    per_agency: dict[str, int] = {}
    marked = 0
    for doc in registry.get_many(registry.open_ids()):
        if doc["status"] not in OPEN:
            continue
        per_agency.setdefault(doc["agency"], 0)
        if deadlines.is_overdue(doc, at):
            per_agency[doc["agency"]] += 1
        for s in deadlines.overdue_steps(doc, at):
            if s["status"] != "active" or s.get("overdue_flagged"):
                continue
            if registry.RECORDS.mutate(doc["id"], lambda d, i=s["index"]: workflow.flag_overdue(d, i, at)).transitions:
                marked += 1
    metrics.set_overdue(per_agency)
    return {"overdue_dossiers": sum(per_agency.values()), "by_agency": per_agency, "steps_flagged": marked,
            "at": iso(at)}
