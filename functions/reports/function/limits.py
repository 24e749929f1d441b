"""How often reports may be filed (issue 13, moderation): the ``REPORTS_*`` rate limits and the
limiters over :mod:`lscloud.ratelimit` that count them.

- A citizen (the token's subject, else the address the gateway saw: anonymous reporters too)
  files a few reports an hour on the app's ``/v1`` API; more is a flood, not a neighbourhood.
- An Open311 API key belongs to a partner application (FixMyStreet-style apps, a district's
  call centre) that posts for *many* citizens through one key, so its limit is per minute and
  generous: hundreds a minute is far above a province's real peak (a few thousand reports a
  day) yet stops a leaked key from flooding the queue.
- The Open311 caller (the address posting) is limited as well, so one client cannot spread a
  flood over many keys, nor guess keys without bound; it is by default as generous as a key,
  since a partner's server posting for its citizens is one address.
- Photos (``POST /v1/photos``, public, up to 8 MiB each, kept by their hash) are limited per caller
  like reports: by default as many as a caller's reports in a window can carry (5 each), so one
  client cannot fill the store.
- Open311's listings (``GET requests``, ``GET servicerequestupdates``) are public, and each lists the
  days of its window and reads up to 1,000 reports, so one client asking in a loop held the store
  and a CPU for everyone: by default 60 a minute per caller, far above a partner's polling
  (FixMyStreet asks every few minutes) and a citizen's page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config
from lscloud.ratelimit import Limiter

from .models import RateWindow

DAY_S = 86_400


@dataclass(frozen=True)
class Settings:
    citizen_limit: int = field(default=10, metadata={"min": 1})         # reports per caller per window
    citizen_window_s: int = field(default=3_600, metadata={"min": 1, "max": DAY_S})
    key_limit: int = field(default=300, metadata={"min": 1})            # Open311 posts per API key per window
    key_window_s: int = field(default=60, metadata={"min": 1, "max": DAY_S})
    open311_caller_limit: int = field(default=300, metadata={"min": 1})  # Open311 posts per address per window
    open311_caller_window_s: int = field(default=60, metadata={"min": 1, "max": DAY_S})
    photo_limit: int = field(default=50, metadata={"min": 1})          # photos per caller per window
    photo_window_s: int = field(default=3_600, metadata={"min": 1, "max": DAY_S})
    open311_list_limit: int = field(default=60, metadata={"min": 1})    # Open311 listings per caller per window
    open311_list_window_s: int = field(default=60, metadata={"min": 1, "max": DAY_S})


@dataclass(frozen=True)
class Limiters:
    """The function's limiters; subjects are scoped (``citizen:``, ``key:``, ``open311:`` …) so one
    window table holds them all without two limits sharing a counter."""

    citizen: Limiter
    key: Limiter
    open311_caller: Limiter
    photo: Limiter
    open311_list: Limiter

    def citizen_hit(self, caller: str) -> None:
        self.citizen.hit("citizen:" + caller)

    def key_hit(self, key_id: str) -> None:
        self.key.hit("key:" + key_id)

    def open311_caller_hit(self, caller: str) -> None:
        self.open311_caller.hit("open311:" + caller)

    def photo_hit(self, caller: str) -> None:
        self.photo.hit("photo:" + caller)

    def open311_list_hit(self, caller: str) -> None:
        self.open311_list.hit("open311-list:" + caller)


def limiters(platform: config.Settings) -> Limiters:
    """The limiters from the ``REPORTS_*`` settings (a bad value stops the start)."""
    own = config.section(platform, Settings, service="reports")
    return Limiters(citizen=Limiter(RateWindow, limit=own.citizen_limit, window_s=own.citizen_window_s),
                    key=Limiter(RateWindow, limit=own.key_limit, window_s=own.key_window_s),
                    open311_caller=Limiter(RateWindow, limit=own.open311_caller_limit,
                                           window_s=own.open311_caller_window_s),
                    photo=Limiter(RateWindow, limit=own.photo_limit, window_s=own.photo_window_s),
                    open311_list=Limiter(RateWindow, limit=own.open311_list_limit,
                                         window_s=own.open311_list_window_s))
