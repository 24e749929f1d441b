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
- A finished declaration's health answers and driver's phone are minimised once kept
  ``BORDER_HEALTH_KEEP_DAYS`` (:mod:`.minimise`), found by the health entry its final move writes;
  those that ended before get theirs here (read once, every declaration: the tick never lists them).
- A draft left untouched lapses after ``BORDER_STALE_DRAFT_DAYS`` (:mod:`.lapse`), found by the
  first-look entry its create writes; the drafts stored before get theirs here.
- A traffic order kept its recipients' phones for good; the stored orders lose theirs (neither the
  order nor its event holds one now: the notification gateway reads them from the declarations).
"""

from __future__ import annotations

from lscloud.aggregate import save_all_quietly
from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.store.rekey import copy_newest_first, rekey

from . import indexes, lapse, traffic
from .models import AgencyWorkItem, Declaration, OwnerIndex, OwnerRecent, PlateIndex, TrafficOrder, WorkItem


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


def add_health_entries() -> dict:
    """A health entry for every finished declaration not minimised that has none (create-only: one
    its final move wrote, or a run before this one, stays as it is)."""
    added = 0
    token = None
    while True:
        page = Declaration.scan(limit=200, page_token=token)
        added += sum(save_all_quietly([e for d in page for e in indexes.health_due(d.data)]))
        token = page.page_token
        if not token:
            return {"added": added}


def strip_order_phones() -> dict:
    """Every stored traffic order without its recipients' phones (under ``If-Match``: an order
    changed meanwhile keeps its phones until the next run)."""
    stripped = 0
    token = None
    while True:
        page = TrafficOrder.scan(limit=200, page_token=token)
        for order in page:
            if any("driver_phone" in r for r in order.data.get("recipients", [])):
                order.data = traffic.answer(order.data)
                try:
                    order.save()
                except (ConditionalCheckFailed, DoesNotExist):
                    continue
                stripped += 1
        token = page.page_token
        if not token:
            return {"stripped": stripped}


def migrate(runtime) -> dict:
    return {"owners": rekey(OwnerIndex).as_dict(), "plates": rekey(PlateIndex).as_dict(),
            "work_lists": merge_work_lists(),
            "owners_newest_first": copy_newest_first(OwnerIndex, OwnerRecent),
            "health_entries": add_health_entries(), "order_phones": strip_order_phones(),
            "draft_entries": lapse.add_draft_entries()}
