"""Load the local population registry into the store: ``seed(runtime) -> counts``.

Run by ``lscloud up`` / ``lscloud seed`` once per data version (:func:`fingerprint`) and by
tests. In the cluster there is nothing to seed: the registry is the national database.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from lscloud import pseudonyms

from . import citizens
from .models import RegisteredCitizen

_WRITERS = 8
# the cluster asks the national population database (HttpRegistry): these generated citizens are
# for the local cloud only, never seeded into a cluster's bucket (lscloud.manifest.seeds_in_cluster)
CLUSTER = False


def fingerprint() -> str:
    """The data's version, and the pseudonym key it is keyed under: rows seeded under another key are
    not found by this one, so a changed key seeds again (the migration re-keys them too)."""
    data = [c.to_dict() for c in citizens.all_citizens()]
    return (hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
            + ":" + pseudonyms.key_id())


def seed(runtime) -> dict:
    """Write every citizen to the store of ``runtime`` (installed by the seed runner, or by the test calling this)."""
    people = citizens.all_citizens()
    items = [RegisteredCitizen(c.id_number, data=c.to_dict()) for c in people]
    with ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="identity-seed") as pool:
        list(pool.map(lambda m: m.save(overwrite=True), items))
    return {"citizens": len(items), "known": len(citizens.KNOWN), "fingerprint": fingerprint()}
