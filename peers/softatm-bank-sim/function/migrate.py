"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

The simulated bank's accounts used to be keyed by the clear account number; they are keyed by
its pseudonym now (run once by ``lscloud up`` before the seed opens any missing account).
"""

from __future__ import annotations

from lscloud.store.rekey import rekey

from .models import Account


def migrate(runtime) -> dict:
    return {"accounts": rekey(Account).as_dict()}
