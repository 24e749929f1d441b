"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once by ``lscloud up`` (and ``lscloud migrate``) before the function serves.

- The owner index ("my dossiers") used to be keyed by the applicant's CCCD in clear; it is keyed by
  its pseudonym now.
- "My dossiers" is listed newest first from ``OwnerRecent``; the dossiers received before it have
  their entry there copied from ``OwnerIndex`` (create-only: a run cut short is finished by the next).
"""

from __future__ import annotations

from lscloud.aggregate import newest_first, save_quietly
from lscloud.store.rekey import rekey

from .models import OwnerIndex, OwnerRecent


def newest_first_owners() -> dict:
    """Give every ``OwnerIndex`` entry its ``OwnerRecent`` twin (the same dossier, the same
    receipt instant, keyed newest first)."""
    copied = 0
    token = None
    while True:
        page = OwnerIndex.scan(limit=500, page_token=token)
        for old in page:
            at, _, rest = old.entry.partition("_")   # <µs received>_<id>
            if save_quietly(OwnerRecent(old.owner, f"{newest_first(int(at))}_{rest}", dossier_id=old.dossier_id)):
                copied += 1
        token = page.page_token
        if not token:
            return {"copied": copied}


def migrate(runtime) -> dict:
    return {"owners": rekey(OwnerIndex).as_dict(), "owners_newest_first": newest_first_owners()}
