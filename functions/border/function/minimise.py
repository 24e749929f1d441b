"""A finished declaration's health answers and driver's phone, minimised once kept long enough.

The answers serve the quarantine check at the gate, and the phone the calls and orders of a truck
still on its way: both purposes end with the declaration (exited, refused, cancelled, expired).
``BORDER_HEALTH_KEEP_DAYS`` later (:mod:`.settings`: room for an epidemiological follow-up), the
clock's tick reduces the health block to the gate's verdict and drops the phone
(:func:`.declarations.minimise`), under the declaration's conditional write, with an audit entry
that names what went and holds no value; the digests of the create's request go just before.

Finding them costs no listing of every declaration ever made: the final move writes a
:class:`~.models.HealthDue` entry (``indexes.health_due``, a side object of the aggregate's
write), keyed by the day and instant the declaration ended, so one listing in key order reads the
due ones first and stops at the first not due. An entry goes once its declaration is minimised.
Declarations that ended before this existed get theirs from the migration hook (:mod:`.migrate`).

Bounded (at most :data:`PER_TICK` a tick; the rest stays listed for the next), and repeat-safe:
two replicas on the same entries race on the declaration's ``If-Match``; the loser finds it
minimised and only finishes what follows (the audit entry, keyed by the write it follows, and the
entry's delete), so a declaration is minimised once.

No copy elsewhere holds the answers or the phone: audit entries hold moves and their reasons, not
the document; the other indexes hold ids, codes, plates and pseudonyms; events carry
:func:`.ledger.summary`; a traffic order and its event name its recipients without their phones
(:mod:`.traffic`: the notification gateway reads a phone from the declaration, so a minimised one is gone). Idempotency records keep an answer (with both) a day, well within the keep period.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lscloud import store
from lscloud.aggregate import NoChange, delete_quietly, micros
from lscloud.statemachine import iso, parse_iso
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey, Model, keys
from lscloud.store.retry import DEFAULT

from . import declarations, lifecycle
from .ledger import RECORDS
from .models import Declaration, HealthDue

log = logging.getLogger("border.minimise")

PER_TICK = 100
"""Declarations minimised at most per tick: a backlog (the migration's) is worked off across
ticks instead of one tick running past the next."""

ACTION = "minimise_health"
REASON = "health data minimised / đã tối giản dữ liệu sức khỏe"
REMOVED = {"removed": ["/health (answers)", "/driver/phone"], "kept": ["/health/verdict"]}


def due(before: datetime, limit: int = PER_TICK, model: type[Model] = HealthDue) -> list[tuple[str, str]]:
    """The keys ``(day, entry)`` of at most ``limit`` health entries of declarations that ended
    before ``before``, oldest first: one listing in key order, stopped at the first not due.
    ``model``: another index keyed the same way (``<local day>/<µs, 16 digits>_<id>``)."""
    objects, bucket = store.connection()
    prefix = keys.table_prefix(model.Meta.table)
    item = keys.item_key_re(model.Meta.table, with_range=True)
    stop = micros(before)
    found: list[tuple[str, str]] = []
    for o in objects.list(bucket, prefix, first_page=limit + 1):
        if not item.fullmatch(o.key):
            continue
        try:
            day, entry = (keys.decode_part(p) for p in o.key[len(prefix):-len(keys.SUFFIX)].split("/"))
            ended = int(entry[:16])
        except (InvalidKey, ValueError):
            continue   # not an entry this module wrote
        if ended > stop:
            break
        found.append((day, entry))
        if len(found) >= limit:
            break
    return found


def _state(doc: dict, at: datetime, keep: timedelta) -> str:
    ended = declarations.ended_at(doc)
    if ended is None:
        return "dropped"
    if declarations.minimised(doc):
        return "already"
    return "not-due" if parse_iso(ended) + keep > at else "due"


def _drop_stamp(declaration_id: str, at: datetime, keep: timedelta) -> Declaration:
    """The declaration, without the stamp of the request that created it once it is due: one keyed
    digest per field and one of the whole body, health answers and phone included (with the key, a
    yes/no answer is read back by trying both). It answered a resend of the create, which no client
    makes a month on: one now gets the 409 of an id already taken. Dropped before the document is
    minimised, so a minimised declaration's version is final (its audit entry is keyed by it)."""
    for attempt in range(DEFAULT.retries + 1):
        item = Declaration.get(declaration_id)
        if item.request is None or _state(item.data, at, keep) != "due":
            return item
        item.request = None
        try:
            return item.save()
        except ConditionalCheckFailed:
            if attempt < DEFAULT.retries:
                DEFAULT.pause(attempt)
    raise ConditionalCheckFailed(f"declaration {declaration_id} kept changing", key=declaration_id)


def minimise_one(day: str, entry: str, at: datetime, keep: timedelta) -> str:
    """Minimise the declaration of one health entry, if due at ``at``: ``minimised``, ``already``
    (by another run: what followed it is finished), ``not-due`` (the entry stays), or ``dropped``
    (no such declaration, or one not ended: the entry was not its to keep)."""
    declaration_id = entry.split("_", 1)[1]
    why = {}

    def op(doc: dict):
        why["it"] = _state(doc, at, keep)
        if why["it"] != "due":
            raise NoChange()
        declarations.minimise(doc, iso(at))
        return [], "minimised"

    try:
        out = RECORDS.mutate(declaration_id, op, item=_drop_stamp(declaration_id, at, keep))
    except (DoesNotExist, InvalidKey):
        why["it"] = "dropped"
        out = None
    result = out.result if out is not None and out.result else why["it"]
    if result in ("minimised", "already"):
        # keyed by the minimising write's time and version: a second run writes the same entry
        RECORDS.audit_only(out.item, ACTION, lifecycle.SYSTEM, at=parse_iso(out.doc["health"]["minimised_at"]),
                           details=REMOVED, reason=REASON)
    if result != "not-due":
        delete_quietly(HealthDue, day, entry)
    return result


def run(at: datetime, keep_days: int, limit: int = PER_TICK) -> dict:
    """Minimise what is due at ``at`` (at most ``limit`` declarations); the ids minimised, and those
    that failed (left listed: the next tick tries them again)."""
    keep = timedelta(days=keep_days)
    done: dict[str, list[str]] = {"minimised": [], "failed": []}
    for day, entry in due(at - keep, limit):
        try:
            if minimise_one(day, entry, at, keep) == "minimised":
                done["minimised"].append(entry.split("_", 1)[1])
        except Exception:  # noqa: BLE001 - one declaration's failure must not stop the others
            log.exception("minimising the health data of %s failed", entry)
            done["failed"].append(entry.split("_", 1)[1])
    return {k: v for k, v in done.items() if v}
