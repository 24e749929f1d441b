"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once per version of this file and pseudonym key by ``lscloud up`` (and ``lscloud migrate``;
in the cluster, the function's migration Job) before the function serves (:mod:`lscloud.serve`).

- The reports stored before the owner index get their entries (:mod:`.owners`), so an erasure
  request finds them too; a rotated pseudonym key runs this again and adds the entries under the
  new key (the old ones are left: their key can no longer be computed, and they name only report ids).
- The closed reports stored before the keep period's index get their entry (:mod:`.retention`).

Every entry is create-only: a run cut short, or run again, adds only what is missing.
"""

from __future__ import annotations

from lscloud.aggregate import save_all_quietly

from .models import Report, closed_entries
from .owners import entries

PAGE = 200


def migrate(runtime) -> dict:
    seen = owners = closed = 0
    token = None
    while True:
        page = Report.scan(limit=PAGE, page_token=token)
        mine, ended = [], []
        for report in page:
            seen += 1
            mine += entries(report.data)
            ended += closed_entries(report.data)
        written = save_all_quietly(mine + ended)
        owners += sum(written[:len(mine)])
        closed += sum(written[len(mine):])
        token = page.page_token
        if not token:
            return {"reports": seen, "owner_entries": owners, "closed_entries": closed}
