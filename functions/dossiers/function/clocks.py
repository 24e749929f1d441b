"""The overdue sweep's index: what the sweep needs of each open dossier, held in one key.

An open dossier keeps one ``DossierClock`` entry whose key is its id and, after ``|``, its agency,
unit and procedure, status, deadline, the start of the pause its clock is stopped by, and its active
step (index, deadline, whether flagged overdue). The sweep (:mod:`.overdue`) computes the overdue gauge and finds
the steps past their deadline from the listing alone, and reads only the dossiers with a step to
flag or whose entries do not tell (none, more than one, a periodic check). It read every open
dossier every minute. The entry is written with every committed write of the dossier
(``Aggregate(side=...)``); one its state has left behind stays until the sweep finds two for one id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lscloud.statemachine import parse_iso

from . import deadlines
from .models import DossierClock
from .states import OPEN

BOX = "clock"
_NONE = "-"


@dataclass(frozen=True)
class Clock:
    """One open dossier as its entry says."""

    id: str
    agency: str
    unit: str                  # the figures' cell: agency, unit, procedure (overdue now)
    procedure: str
    status: str
    deadline: str
    paused_at: str | None      # the clock is stopped at this instant (waiting for a supplement)
    step: int | None           # the active step
    step_deadline: str | None
    step_flagged: bool

    def now(self, at: datetime) -> datetime:
        """The dossier's clock at ``at`` (:func:`.deadlines.open_clock`, as for the document)."""
        return deadlines.open_clock(self.status, self.paused_at, at)

    def overdue(self, at: datetime) -> bool:
        """:func:`.deadlines.is_overdue` of the dossier."""
        return self.now(at) > parse_iso(self.deadline)

    def step_due(self, at: datetime) -> bool:
        """Whether its active step is past its deadline and not flagged yet."""
        return (self.step is not None and self.step_deadline is not None and not self.step_flagged
                and self.now(at) > parse_iso(self.step_deadline))


def of(doc: dict) -> Clock | None:
    """The clock of an open dossier (None for a finished one: it keeps no entry)."""
    if doc["status"] not in OPEN:
        return None
    pause = deadlines.open_pause(doc)
    i = doc.get("current_step")
    step = doc["steps"][i] if i is not None else None
    active = step is not None and step["status"] == "active"
    return Clock(doc["id"], doc["agency"], doc["unit"], doc["procedure"]["code"], doc["status"], doc["deadline"],
                 pause["requested_at"] if pause else None, i if active else None,
                 step["deadline"] if active and step["deadline"] else None,
                 bool(active and step.get("overdue_flagged")))


def key(c: Clock) -> str:
    parts = (c.id, c.agency, c.unit, c.procedure, c.status, c.deadline, c.paused_at or _NONE,
             _NONE if c.step is None else str(c.step), c.step_deadline or _NONE, "1" if c.step_flagged else "0")
    return "|".join(parts)


def parse(entry: str) -> Clock | None:
    """The clock an entry's key holds (None: not one of ours)."""
    parts = entry.split("|")
    if len(parts) != 10:   # an entry of another layout: the sweep reads its dossier and keys it anew
        return None
    i, agency, unit, procedure, status, deadline, paused, step, step_deadline, flagged = parts
    try:
        return Clock(i, agency, unit, procedure, status, deadline, None if paused == _NONE else paused,
                     None if step == _NONE else int(step), None if step_deadline == _NONE else step_deadline,
                     flagged == "1")
    except ValueError:
        return None


def entries(doc: dict) -> list[DossierClock]:
    """The entry the dossier keeps now (none once it is finished): ``Aggregate(side=...)``."""
    c = of(doc)
    return [] if c is None else [DossierClock(BOX, key(c))]
