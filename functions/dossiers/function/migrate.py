"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once by ``lscloud up`` (and ``lscloud migrate``) before the function serves. The owner index
("my dossiers") used to be keyed by the applicant's CCCD in clear; it is keyed by its pseudonym now.
"""

from __future__ import annotations

from lscloud.store.rekey import rekey

from .models import OwnerIndex


def migrate(runtime) -> dict:
    return {"owners": rekey(OwnerIndex).as_dict()}
