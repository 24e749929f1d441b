"""The communes' names beside their codes, for the wall's labels and a commune's card.

Figures stay keyed by the directory's five-digit code (what events carry and what the API's
``commune`` parameter takes); the names come from the directory (:func:`lscloud.communes.names`,
kept in memory and revalidated by ETag as every peer answer is). The IOC reads its sources
tolerantly, and so it reads the directory: when the directory does not answer, the answer goes out
without names (the wall shows the codes) and the directory is asked again after ``RETRY_S``, so a
directory that is down costs one failed call a minute, not one a request.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

from lscloud import communes, peers

RETRY_S = 60.0

log = logging.getLogger(__name__)


class CommuneNames:
    """The names one IOC replica shows. Two requests that find the names stale at once may both ask
    the directory (its answer is the same): nothing here needs a lock."""

    def __init__(self, settings):
        self.settings = settings
        self._failed_at: float | None = None
        self._last: dict[str, str] = {}

    def _all(self) -> dict[str, str]:
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_S:
            return self._last
        try:
            found = communes.names(peers.client(self.settings))
        except (peers.PeerError, KeyError, TypeError, ValueError) as exc:   # down, or answering off contract
            log.warning("commune names: the directory did not answer (%s); codes are shown", type(exc).__name__)
            self._failed_at = time.monotonic()
            return self._last
        self._last, self._failed_at = found, None
        return found

    def of(self, codes: Iterable[str]) -> dict[str, str]:
        """``{code: name}`` for those of ``codes`` the directory names (none when it does not answer)."""
        wanted = {c for c in codes if c}
        if not wanted:
            return {}
        known = self._all()
        return {c: known[c] for c in sorted(wanted) if c in known}
