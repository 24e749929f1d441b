"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once per version of this file and pseudonym key by ``lscloud up`` (and ``lscloud migrate``;
in the cluster, the function's migration Job) before the function serves (:mod:`lscloud.serve`).

- The reports stored before the owner index get their entries (:mod:`.owners`), so an erasure
  request finds them too; a rotated pseudonym key runs this again and adds the entries under the
  new key (the old ones are left: their key can no longer be computed, and they name only report ids).
- The closed reports stored before the keep period's index get their entry (:mod:`.retention`).
- The moves made before the updates index get their entries from the trails, once (:mod:`.lists`:
  then ``GET servicerequestupdates`` of a window before the index reads no trail; it read up to
  1,000 reports' trails for anyone who asked).

Every entry is create-only: a run cut short, or run again, adds only what is missing.
"""

from __future__ import annotations

from lscloud.aggregate import save_all_quietly, side_pool
from lscloud.statemachine import now

from . import lists
from .models import Report, closed_entries
from .owners import entries

PAGE = 200


def migrate(runtime) -> dict:
    seen = owners = closed = 0
    began = now()
    backfill = lists.backfilled() is None   # the trails are read once, not again on a key's rotation
    token = None
    while True:
        page = Report.scan(limit=PAGE, page_token=token)
        mine, ended, ids = [], [], []
        for report in page:
            seen += 1
            mine += entries(report.data)
            ended += closed_entries(report.data)
            ids.append(report.data["id"])
        updates = [e for found in side_pool().map(lists.trail_entries, ids) for e in found] if backfill else []
        written = save_all_quietly(mine + ended + updates)
        owners += sum(written[:len(mine)])
        closed += sum(written[len(mine):len(mine) + len(ended)])
        token = page.page_token
        if not token:
            if backfill:
                lists.mark_backfilled(began)   # only once every report's trail is in: a run cut short says nothing
            return {"reports": seen, "owner_entries": owners, "closed_entries": closed}
