"""Declarations that can no longer happen, ended by the platform: the clock's tick moves them to
``expired`` (the machine's ``lapse``, actor ``system``, with a reason).

- a draft, or a submitted declaration with no booking, untouched for ``BORDER_STALE_DRAFT_DAYS``
  (its last move, decision, attachment or priority grant);
- a booked one (``queued``) whose slot ended ``BORDER_STALE_SLOT_HOURS`` ago with no truck in the
  yard.

They never ended before: the driver's health answers and phone, kept a keep period after the end
(:mod:`.minimise`), were kept for good, and the IOC counted them waiting. A lapse is a transition
like any other: its audit entry, its event (``declaration.expired``: the IOC's gauge drops it), the
indexes of live work dropped, and the health entry its write leaves, so that the keep period then
minimises it.

Found without listing every declaration, in two ways, each read in key order and stopped at the
first not due:

- :class:`~.models.StaleDue` entries, keyed by the instant to look at a declaration again. A draft
  gets one with its create; the sweep writes the others. Looked at, a declaration is lapsed if due,
  else given an entry at the instant it would be (a submitted one not booked: a day on at most, as
  a booking brings its end nearer), or none once it is past those states;
- the day index (written with every submit, so a submit writes nothing more): a cursor
  (:class:`~.models.StaleCursor`) walks it in key order, the days up to :data:`GRACE` ago, once,
  and gives each declaration still submitted or queued its entry (or lapses it).

The day index is walked from its first day, so submitted declarations made before this are found
too; drafts made before get their entry from :func:`add_draft_entries` (the migration's to call).

Bounded (at most :data:`PER_TICK` entries of each a tick; the rest waits for the next), and
repeat-safe: two replicas on one tick write the same create-only entries, race on the
declaration's ``If-Match`` (the loser finds it expired and does nothing) and on the cursor's (the
loser's is dropped: the entries it read again are the winner's).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lscloud import store
from lscloud.aggregate import NoChange, delete_quietly, save_all_quietly, save_quietly
from lscloud.statemachine import iso, parse_iso
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey, StoreUnavailable, keys
from lscloud.timestamps import parse_instant

from . import lifecycle, minimise, queue
from .indexes import DRAFT_FIRST_LOOK_S, stale_due
from .models import StaleCursor, StaleDue
from .ledger import RECORDS
from .models import DayIndex, Declaration
from .settings import Settings

log = logging.getLogger("border.lapse")

PER_TICK = 100
GRACE = timedelta(hours=1)
"""How long after a local day has ended the walk reads its day entries: a submit's entry is
written after its declaration, and a create cut off before it gets it from a later tick."""
RECHECK = timedelta(days=1)
"""How soon a submitted declaration not booked is looked at again: a booking made since may bring
its end nearer than the untouched days."""
CURSOR = "day-index"


def touched_at(doc: dict) -> datetime:
    """When anyone last did anything with the declaration: a move, an agency's decision, an
    attachment, a lane change, a priority grant."""
    times = [doc.get("updated_at"), doc.get("created_at"), (doc.get("priority") or {}).get("at")]
    times += [d.get("at") for d in (doc.get("decisions") or {}).values()]
    times += [a.get("at") for a in doc.get("attachments") or []]
    times += [r.get("at") for r in doc.get("risk_lane_history") or []]
    return max(t for t in map(parse_instant, times) if t is not None)


def stale_at(doc: dict, s: Settings) -> datetime | None:
    """When ``doc`` lapses if nothing moves it; None for a declaration past those states."""
    status = doc.get("status")
    if status == "queued":
        return queue.slot_start(doc["booking"]["slot"]) + timedelta(hours=1 + s.stale_slot_hours)
    if status in ("draft", "submitted"):
        return touched_at(doc) + timedelta(days=s.stale_draft_days)
    return None


def look_at(doc: dict, at: datetime, s: Settings) -> datetime | None:
    """When the sweep should look at ``doc`` again (at or before ``at``: lapse it now)."""
    due = stale_at(doc, s)
    if due is not None and doc["status"] == "submitted":
        return min(due, at + RECHECK)
    return due


def _reason(doc: dict, s: Settings) -> str:
    if doc["status"] == "queued":
        return (f"the booked slot ended {s.stale_slot_hours} h ago and the truck never reached the yard / "
                f"khung giờ đã đặt kết thúc {s.stale_slot_hours} giờ trước mà xe không vào bãi chờ")
    return (f"untouched for {s.stale_draft_days} days / không có thay đổi nào trong {s.stale_draft_days} ngày")


def lapse(declaration_id: str, at: datetime, s: Settings, item: Declaration | None = None) -> bool:
    """Move the declaration to ``expired`` if it is due at ``at`` (under its ``If-Match``); whether
    this call did."""
    def op(doc):
        due = stale_at(doc, s)
        if due is None or due > at:
            raise NoChange()
        why = _reason(doc, s)
        return [lifecycle.apply(doc, "lapse", lifecycle.SYSTEM, at=at, reason=why, details={"due": iso(due)})]

    return bool(RECORDS.mutate(declaration_id, op, item=item).transitions)


def take(declaration_id: str, at: datetime, s: Settings) -> str:
    """Look at one declaration: ``expired`` (by this call), ``later`` (an entry at the instant to
    look again), ``live`` (past the states that lapse, or gone, or expired by another run)."""
    try:
        item = Declaration.get(declaration_id)
    except (DoesNotExist, InvalidKey):
        return "live"
    when = look_at(item.data, at, s)
    if when is None:
        return "live"
    if when > at:
        save_quietly(stale_due(declaration_id, when))
        return "later"
    return "expired" if lapse(declaration_id, at, s, item) else "live"


def sweep(at: datetime, s: Settings, limit: int = PER_TICK) -> list[str]:
    """The entries due at ``at`` (at most ``limit``): each declaration looked at, then its entry
    dropped (after a new one is written: never lost); the ids expired. One that fails keeps its
    entry for the next tick."""
    expired = []
    for day, entry in minimise.due(at, limit, StaleDue):
        declaration_id = entry.split("_", 1)[1]
        try:
            if take(declaration_id, at, s) == "expired":
                expired.append(declaration_id)
        except Exception:  # noqa: BLE001 - one declaration's failure must not stop the others
            log.exception("looking at %s for its lapse failed", declaration_id)
            continue
        delete_quietly(StaleDue, day, entry)
    return expired


def walk(at: datetime, s: Settings, limit: int = PER_TICK) -> list[str]:
    """Read on the day index from the cursor, up to the days ended :data:`GRACE` before ``at`` (at
    most ``limit`` entries), each declaration taken as :func:`take` does; the ids expired. A store
    that fails stops the walk before the entry (the cursor stays), a declaration that cannot be
    read as one is logged and passed."""
    try:
        cursor = StaleCursor.get(CURSOR)
    except StaleCursor.DoesNotExist:
        cursor = StaleCursor(CURSOR, after="")
    objects, bucket = store.connection()
    prefix = keys.table_prefix(DayIndex.Meta.table)
    item = keys.item_key_re(DayIndex.Meta.table, with_range=True)
    stop = (at - GRACE).astimezone(queue.TZ).date().isoformat()
    expired, last, read = [], None, 0
    for o in objects.list(bucket, prefix, start_after=cursor.after or None, first_page=limit + 1):
        if read >= limit:
            break
        try:
            day, entry = (keys.decode_part(p) for p in o.key[len(prefix):-len(keys.SUFFIX)].split("/"))
        except (InvalidKey, ValueError):
            day = entry = None   # not an entry: passed
        if day is not None and item.fullmatch(o.key):
            if day >= stop:
                break
            try:
                declaration_id = DayIndex.get(day, entry).declaration_id
                if take(declaration_id, at, s) == "expired":
                    expired.append(declaration_id)
            except (StoreUnavailable, ConditionalCheckFailed):
                log.warning("the lapse walk stops before %s: the store failed", o.key)
                break
            except DoesNotExist:
                pass
            except Exception:  # noqa: BLE001 - a declaration that is not one must not stop the walk for good
                log.exception("the lapse walk passes %s", o.key)
        last, read = o.key, read + 1
    if last is not None:
        cursor.after = last
        try:
            cursor.save()
        except ConditionalCheckFailed:
            pass   # another replica walked the same entries and moved it first
    return expired


def run(at: datetime, s: Settings, limit: int = PER_TICK) -> list[str]:
    """The tick's part: the entries due, then the day index's next entries; the ids expired."""
    return sweep(at, s, limit) + walk(at, s, limit)



def add_draft_entries() -> dict:
    """A first-look entry for every draft stored before a draft's create wrote one (read once, every
    declaration: for the migration hook, :mod:`.migrate`; create-only, so a run again adds none)."""
    added, token = 0, None
    while True:
        page = Declaration.scan(limit=200, page_token=token)
        drafts = [d.data for d in page if d.data.get("status") == "draft"]
        added += sum(save_all_quietly(stale_due(d["id"], parse_iso(d["created_at"]) + timedelta(
            seconds=DRAFT_FIRST_LOOK_S)) for d in drafts))
        token = page.page_token
        if not token:
            return {"added": added}
