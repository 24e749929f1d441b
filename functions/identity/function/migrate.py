"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once by ``lscloud up`` (and ``lscloud migrate``) before the function serves. The population
registry used to be keyed by the clear CCCD number; it is keyed by the number's pseudonym now.
Attempt counters need nothing: the old ones expire within two windows.
"""

from __future__ import annotations

from lscloud.store.rekey import rekey

from .models import RegisteredCitizen


def migrate(runtime) -> dict:
    return {"population": rekey(RegisteredCitizen).as_dict()}
