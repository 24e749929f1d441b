"""How often a caller may ask for Open311's listings (``GET requests``, ``GET servicerequestupdates``):
public, anonymous, and each one lists the days of its window and reads up to 1,000 reports, so
one client asking in a loop held the store and a CPU for everyone. Counted per caller (the token's
subject, else the address the gateway saw) by the runtime's limiter over the function's window
table, its subjects scoped ``open311-list:`` apart from :mod:`.limits`' counters.

``REPORTS_OPEN311_LIST_LIMIT`` / ``_WINDOW_S``: by default 60 a minute, far above a partner's
polling (FixMyStreet asks every few minutes) and a citizen's page."""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config
from lscloud.ratelimit import Limiter

from .limits import DAY_S
from .models import RateWindow


@dataclass(frozen=True)
class Settings:
    open311_list_limit: int = field(default=60, metadata={"min": 1})    # listings per caller per window
    open311_list_window_s: int = field(default=60, metadata={"min": 1, "max": DAY_S})


class ListLimiter:
    """The listings' limiter: :meth:`hit` counts one listing of ``caller`` or refuses it (429 with
    ``Retry-After``, in Open311's error format on its paths)."""

    def __init__(self, platform: config.Settings):
        own = config.section(platform, Settings, service="reports")   # a bad value stops the start
        self.limiter = Limiter(RateWindow, limit=own.open311_list_limit, window_s=own.open311_list_window_s)

    def hit(self, caller: str) -> None:
        self.limiter.hit("open311-list:" + caller)
