"""Load the directory's reference data into the store: ``seed(runtime) -> counts``.

Run by ``lscloud up`` / ``lscloud seed`` (once per data version, keyed on
:func:`seed_fingerprint`) and by tests. Items are written before the per-kind snapshots,
so a list never names an item whose own document is missing. Writes are unconditional
(``overwrite=True``): this is reference data with one writer, and re-seeding must replace
what an older version of the data left.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from . import catalog
from .models import ITEM_MODELS, DirectorySnapshot

_WRITERS = 8  # parallel PUTs: ~230 small objects, bound by round trips rather than bandwidth


def seed_fingerprint() -> str:
    """sha256 of the seed data (package units + curated files); changes whenever they do."""
    return catalog.fingerprint()


fingerprint = seed_fingerprint  # the name the local cloud's seed runner looks for


def _item(kind: str, item: dict):
    model, fields = ITEM_MODELS[kind]
    return model(item["code"], data=item, **{f: item[f] for f in fields})


def seed(runtime) -> dict:
    """Write every item and every snapshot to the store of ``runtime`` (installed by the seed runner, or
    by the test calling this); return counts per kind."""
    data = catalog.build()
    fp = catalog.fingerprint(data)
    items = [_item(kind, item) for kind, values in data.items() for item in values]
    with ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="directory-seed") as pool:
        list(pool.map(lambda m: m.save(overwrite=True), items))
        snapshots = [DirectorySnapshot(kind, items=values, fingerprint=fp, digest=catalog.digest(values),
                                       size=len(values)) for kind, values in data.items()]
        list(pool.map(lambda s: s.save(overwrite=True), snapshots))
    counts = {kind: len(values) for kind, values in data.items()}
    return {**counts, "fingerprint": fp}
