"""Moving a table's items to the keys their model gives them now.

When a model's key changes shape — a hash key became a :class:`~.attributes.PseudonymAttribute`,
or the pseudonym key was rotated — the items written before still sit at their old keys.
:func:`rekey` walks the table once: for each item it computes the key the model gives it today
(from the attributes stored in the item itself, so the clear value is never needed from
elsewhere), writes the same bytes there create-only and deletes the old object only if it is
still the version that was copied. Running it again, or after a crash half-way, finishes the
job and changes nothing else: an item already at its key is left alone, and when the new key is
already taken (an earlier run, or a write by the new code) the old copy is simply removed.

Run it before the functions serve (``lscloud up`` runs each function's ``function/migrate.py``
once; ``lscloud migrate`` runs them against any store). Writers still using the old code would
race it, so in the cluster run it after the new version is deployed: new writes then already go
to the new keys, and lists are complete again when it finishes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from . import keys
from .errors import ConditionalCheckFailed, DoesNotExist, StoreError
from .model import Model

log = logging.getLogger(__name__)


@dataclass
class RekeyReport:
    """What one pass over a table did."""

    table: str
    seen: int = 0
    moved: int = 0
    already_there: int = 0
    changed_meanwhile: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def rekey(model: type[Model]) -> RekeyReport:
    """Move every item of ``model``'s table that is not at the key its attributes give it now."""
    table = model._concrete()
    objects, bucket = model._conn()
    key_re = model._key_re()
    report = RekeyReport(table)
    # the listing is paged lazily: items moved ahead of it are met again at their new key, and skipped
    for info in objects.list(bucket, keys.table_prefix(table)):
        if not key_re.fullmatch(info.key):
            continue  # not an item of this model
        report.seen += 1
        try:
            stored = objects.get(bucket, info.key)
        except DoesNotExist:
            continue
        item = model._parse(stored.body, stored.etag, info.key)
        target = item._key()
        if target == info.key:
            continue
        try:
            objects.put(bucket, target, stored.body, if_none_match=True)
            report.moved += 1
        except ConditionalCheckFailed:
            report.already_there += 1  # copied by an earlier run, or written anew since: keep that one
        try:
            objects.delete(bucket, info.key, if_match=stored.etag)
        except (ConditionalCheckFailed, DoesNotExist):
            # changed or removed since we read it: the next run looks at it again
            report.changed_meanwhile += 1
        except StoreError as exc:
            log.warning("rekey %s: old copy of an item not removed: %s", table, exc.cause)
            report.changed_meanwhile += 1
    return report


def copy_newest_first(old: type[Model], new: type[Model]) -> dict:
    """Give every item of ``old``, an index listed oldest first (range key ``<µs>_<rest>``), its twin
    in ``new``: the same attributes under the range key ``<newest_first(µs)>_<rest>``
    (:func:`keys.newest_first`). Create-only, so a run cut short is finished by the next and an item
    the new code wrote since is kept; ``old`` is left as it is (in a bucket under object lock its
    versions stay anyway)."""
    range_name = next(name for name, attr in new._attributes.items() if attr.is_range_key)
    copied = 0
    token = None
    while True:
        page = old.scan(limit=500, page_token=token)
        for item in page:
            at, _, rest = getattr(item, range_name).partition("_")
            values = {name: getattr(item, name) for name in new._attributes}
            values[range_name] = f"{keys.newest_first(int(at))}_{rest}"
            try:
                new(**values).save()
                copied += 1
            except ConditionalCheckFailed:
                pass   # copied by an earlier run, or written by the new code
        token = page.page_token
        if not token:
            return {"table": new._concrete(), "copied": copied}
