"""How long a closed report keeps its reporter's contact: ``REPORTS_CONTACT_KEEP_DAYS`` (default 365,
a placeholder until the province decides), counted from the report's last move while closed. The
contact is there to call the reporter back about their report; once it is closed and that long has
passed it serves no purpose (Law 91/2025/QH15, Art. 14(1): data is deleted when its purpose is
finished), so the clock's tick takes it out, as an erasure request would (:mod:`.anonymise`).

The tick reads no list of reports: the closed ones are indexed by the time of their last move
(``ClosedReport``, kept by every write of a report while it is closed), and a tick lists only the
entries past the period, at most :data:`PER_TICK` of them, oldest first; what is left waits for the
next tick. Each entry is deleted once its report is done (or was reopened, or closed again later:
it then has a newer entry), after the report's write, so a tick cut short is finished by the next,
and two replicas' ticks at once change each report once (its conditional write).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lscloud import config
from lscloud.aggregate import delete_quietly
from lscloud.statemachine import iso
from lscloud.store import DoesNotExist, InvalidKey

from .anonymise import KEEP_PERIOD, anonymise, erased
from .models import ClosedReport
from .states import CLOSED

PER_TICK = 20
"""Reports made anonymous per tick at most (a minute's tick stays short; a backlog drains over the next)."""


@dataclass(frozen=True)
class Settings:
    contact_keep_days: int = field(default=365, metadata={"min": 1})


def keep_days(platform: config.Settings | None = None) -> int:
    """``REPORTS_CONTACT_KEEP_DAYS`` (a bad value stops the start: the app reads it at start)."""
    if platform is None:
        from lscloud import runtime

        platform = runtime.current().settings
    return config.section(platform, Settings, service="reports").contact_keep_days


def sweep(at: datetime, *, days: int | None = None, limit: int = PER_TICK) -> dict:
    """Take the contact out of the closed reports whose last move is more than ``days`` (the
    setting) before ``at``: at most ``limit`` index entries read."""
    from lscloud.statemachine import Actor

    from .reports import records

    cutoff = iso(at - timedelta(days=days if days is not None else keep_days()))
    done = 0
    for entry in ClosedReport.query_keys("closed", range_between=(None, f"{cutoff}_~"), limit=limit):
        report_id = entry.rpartition("_")[2]
        try:
            doc = records().get(report_id).data
        except (DoesNotExist, InvalidKey):
            doc = None
        if doc is not None and doc["status"] in CLOSED and not erased(doc) and doc["updated_at"] <= cutoff:
            result = anonymise(report_id, KEEP_PERIOD, Actor("system"))
            done += bool(result and result["changed"])
        delete_quietly(ClosedReport, "closed", entry)
    return {"anonymised": done}
