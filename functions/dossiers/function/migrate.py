"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once by ``lscloud up`` (and ``lscloud migrate``) before the function serves.

- The owner index ("my dossiers") used to be keyed by the applicant's CCCD in clear; it is keyed by
  its pseudonym now.
- "My dossiers" is listed newest first from ``OwnerRecent``; the dossiers received before it have
  their entry there copied from ``OwnerIndex``.
"""

from __future__ import annotations

from lscloud.store.rekey import copy_newest_first, rekey

from .models import OwnerIndex, OwnerRecent


def migrate(runtime) -> dict:
    return {"owners": rekey(OwnerIndex).as_dict(), "owners_newest_first": copy_newest_first(OwnerIndex, OwnerRecent)}
