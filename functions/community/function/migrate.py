"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once per version of this file and pseudonym key by ``lscloud up`` (and ``lscloud migrate``;
in the cluster, the function's migration Job) before the function serves (:mod:`lscloud.serve`).

- The rosters written before the member index (:class:`.models.TeamByMember`) get their entries,
  one per member, keyed by the pseudonym the roster holds, so an erasure request finds those
  rosters too (:mod:`.erase`).

Every entry is create-only: a run cut short, or run again, adds only what is missing.
"""

from __future__ import annotations

from lscloud.aggregate import save_all_quietly

from .models import Team
from .teams import by_member

PAGE = 200


def migrate(runtime) -> dict:
    seen = added = 0
    token = None
    while True:
        page = Team.scan(limit=PAGE, page_token=token)
        seen += len(page)
        added += sum(save_all_quietly([entry for team in page for entry in by_member(team.data)]))
        token = page.page_token
        if not token:
            return {"teams": seen, "member_entries": added}
