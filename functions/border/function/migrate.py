"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once by ``lscloud up`` (and ``lscloud migrate``) before the function serves.

- The owner index ("my declarations") used to be keyed by the driver's ID or passport number and
  the enterprise's tax code in clear; it is keyed by their pseudonyms now.
- The agencies' work lists used to hold one object per agency and declaration (``border-work``,
  ``<gate>_<agency>``); a declaration has one work item at its gate naming the agencies still to
  decide now (``border-worklist``). Each old object adds its agency to that work item, then goes
  (only if unchanged since read): a run cut short is finished by the next.
- The plate index was keyed by the plate itself; it is keyed by its pseudonym now.
- "My declarations" is listed newest first from ``OwnerRecent``; the declarations made before it
  have their entry there copied from ``OwnerIndex``.
"""

from __future__ import annotations

from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store.rekey import copy_newest_first, rekey

from .models import AgencyWorkItem, OwnerIndex, OwnerRecent, PlateIndex, WorkItem


def merge_work_lists() -> dict:
    moved = 0
    token = None
    while True:
        page = AgencyWorkItem.scan(limit=200, page_token=token)
        for old in page:
            gate, agency = old.queue.split("_", 1)   # gate codes hold no "_"

            def add(item: WorkItem, agency=agency) -> None:
                if agency not in item.agencies:
                    item.agencies = [*item.agencies, agency]

            try:
                WorkItem(gate, old.entry, declaration_id=old.declaration_id, summary=old.summary,
                         agencies=[agency]).save()
            except ConditionalCheckFailed:
                try:
                    WorkItem.update(gate, old.entry, add)
                except DoesNotExist:   # every agency decided meanwhile: nothing to add
                    pass
            try:
                old.delete()
            except (ConditionalCheckFailed, DoesNotExist):
                continue
            moved += 1
        token = page.page_token
        if not token:
            return {"moved": moved}


def migrate(runtime) -> dict:
    return {"owners": rekey(OwnerIndex).as_dict(), "plates": rekey(PlateIndex).as_dict(),
            "work_lists": merge_work_lists(),
            "owners_newest_first": copy_newest_first(OwnerIndex, OwnerRecent)}
