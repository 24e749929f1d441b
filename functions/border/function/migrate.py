"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once by ``lscloud up`` (and ``lscloud migrate``) before the function serves. The owner index
("my declarations") used to be keyed by the driver's ID or passport number and the enterprise's
tax code in clear; it is keyed by their pseudonyms now.
"""

from __future__ import annotations

from lscloud.store.rekey import rekey

from .models import OwnerIndex


def migrate(runtime) -> dict:
    return {"owners": rekey(OwnerIndex).as_dict()}
