"""The border function's own settings, ``BORDER_*`` variables read and checked by
:func:`lscloud.config.section` (a bad value stops the start, naming the variable)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config

from .devices import DEFAULT_TOLERANCE
from .queue import DEFAULT_CALL_MINUTES

HEALTH_KEEP_DAYS = 30   # the province's decision to confirm (see Settings)
STALE_SLOT_HOURS = 24
STALE_DRAFT_DAYS = 30


@dataclass(frozen=True)
class Settings:
    """``BORDER_CALL_MINUTES``: how long a called truck has to reach the gate (0: a call is missed at
    once); ``BORDER_WEIGHT_TOLERANCE``: how far a weighbridge reading may stray from the declared
    gross weight (0.05 = 5 %); ``BORDER_HEALTH_KEEP_DAYS``: how many days a finished declaration
    keeps the driver's health answers and phone before they are minimised (:mod:`.minimise`).

    The health answers serve the quarantine check at the gate, which ends with the declaration (Law
    91/2025/QH15 art. 14: deleted once their purpose is met; Decree 13/2023/NĐ-CP: health data is
    sensitive). 30 days leaves an epidemiological follow-up the longest incubation period (14-21
    days) and a margin: a default the province has still to confirm, not a legal figure. At most a
    year, at least a day: never at the very end of the crossing, when an officer may still look.

    ``BORDER_STALE_SLOT_HOURS``: how long after its booked slot ended a truck that never reached
    the yard keeps its booking before the declaration lapses (``expired``, :mod:`.lapse`);
    ``BORDER_STALE_DRAFT_DAYS``: how many days a draft or a submitted declaration not booked may go
    untouched before it lapses. Both end a crossing that can no longer happen, so that its health
    answers and phone go a keep period later and it stops counting as waiting; a day's grace for a
    truck held up on the road, a month for paperwork. Defaults the province may change."""

    call_minutes: int = field(default=DEFAULT_CALL_MINUTES, metadata={"min": 0, "max": 24 * 60})
    weight_tolerance: float = field(default=DEFAULT_TOLERANCE, metadata={"min": 0.0, "max": 1.0})
    health_keep_days: int = field(default=HEALTH_KEEP_DAYS, metadata={"min": 1, "max": 366})
    stale_slot_hours: int = field(default=STALE_SLOT_HOURS, metadata={"min": 1, "max": 30 * 24})
    stale_draft_days: int = field(default=STALE_DRAFT_DAYS, metadata={"min": 1, "max": 366})


def of(platform: config.Settings) -> Settings:
    """The border section of the platform's settings."""
    return config.section(platform, Settings)
