"""Transfers in the store: creation, admission, transitions, settlement of their consequences, sweep.

The transfer document decides (written under If-Match, so a transition happens once); the ledger
and the indexes follow (written create-only with ids derived from the transfer, so a repeat
writes nothing new). :func:`settle` brings the consequences of a document's current state into
being — movements, indexes, events — and then records ``notified = state``; it runs after every
transition, again on access when a crash left it undone, and from the sweep for every open
transfer. A withdrawal is *admitted* (daily limit counted, cash set aside with a ``hold``) before
anyone else hears of it; the admitting run holds a fence (``admit_by``): it never appends the hold
after that time, and nobody else declares the transfer unadmitted before ``admit_by`` + grace.
"""

from __future__ import annotations

import logging
import os
import random
import time
from datetime import timedelta
from typing import Callable

from lscloud import events as ce
from lscloud import runtime
from lscloud.resends import IdReused, changed_fields
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey

from . import ledger, telemetry as tm
from .ledger import Head
from .models import (BankDay, BankSettled, CashOperation, CustomerDay, JournalEntry, JournalHead, OpenTransfer,
                     PointSeen, Transfer)
from .transfers import (ABORTED, COMMITTED, DEPOSIT, FINAL, RECEIVED, RESERVED, WITHDRAWAL, TransferError, check,
                        event_data, expired, iso, local_day, micros, now, parse_iso, view)

log = logging.getLogger("softatm.records")
SOURCE = "/softatm"
RETRIES = 40


def expiry_s() -> int:
    return int(os.environ.get("SOFTATM_EXPIRY_S", "300"))


def admit_window_s() -> float:
    return float(os.environ.get("SOFTATM_ADMIT_WINDOW_S", "20"))


ADMIT_GRACE_S = 10.0


def float_low_vnd() -> int:
    return int(os.environ.get("SOFTATM_FLOAT_LOW_VND", "10000000"))


# -- the ledger in the store ----------------------------------------------------------------------

class StoreJournal:
    """:class:`ledger.Journal` over the object store: entries create-only, the head under If-Match."""

    def read_head(self, point):
        try:
            item = JournalHead.get(point)
        except DoesNotExist:
            return Head(), None
        return Head.from_dict(item.head), item

    def save_head(self, point, head, token):
        item = token if token is not None else JournalHead(point)
        item.head = head.as_dict()
        try:
            item.save()
        except ConditionalCheckFailed:
            pass  # someone saved a later head (or will): readers roll forward anyway
        tm.float_seen(point, head.balances.get(ledger.cash(point), 0), head.balances.get(ledger.held(point), 0))

    def read_entry(self, point, seq):
        try:
            return JournalEntry.get(point, f"{seq:012d}").entry
        except DoesNotExist:
            return None

    def append(self, point, seq, entry):
        try:
            JournalEntry(point, f"{seq:012d}", entry=entry).save()
        except ConditionalCheckFailed:
            return False
        return True


JOURNAL = StoreJournal()


def _seen_point(point: str) -> None:
    try:
        PointSeen("points", point).save()
    except ConditionalCheckFailed:
        pass


def points() -> list[str]:
    out, token = [], None
    while True:
        page = PointSeen.query("points", limit=500, page_token=token)
        out += [p.point for p in page]
        token = page.page_token
        if not token:
            return out


def float_of(point: str) -> dict:
    b = ledger.balances(JOURNAL, point)
    return {"point": point, "cash_vnd": b.get(ledger.cash(point), 0), "held_vnd": b.get(ledger.held(point), 0)}


def move(kind: str, point: str, amount: int, *, ref: str, bank: str | None = None, since_seq: int = 0):
    _seen_point(point)
    m = ledger.movement(kind, point, amount, ref=ref, bank_code=bank, at=iso(now()))
    before = ledger.balances(JOURNAL, point).get(ledger.cash(point), 0) if kind in ("hold", "collection") else None
    done = ledger.apply(JOURNAL, m, since_seq=since_seq)
    if done.new:
        tm.movement(kind)
        after = done.balances.get(ledger.cash(point), 0)
        if before is not None and before >= float_low_vnd() > after:
            publish([event("float.low", {"point": point, "cash_vnd": after, "threshold_vnd": float_low_vnd()},
                            subject=point, id=f"{point}.{done.seq}.float-low")])
    return done


# -- events ---------------------------------------------------------------------------------------

def event(fact: str, data: dict, *, subject: str | None = None, id: str | None = None) -> dict:
    return ce.new_event(f"vn.langson.softatm.{fact}.v1", SOURCE, data, subject=subject, id=id)


def publish(evts: list[dict]) -> None:
    """Publish to JetStream; raises if NATS does not confirm (settle then stays undone and is retried)."""
    bus = runtime.current().bus
    for e in evts:
        bus.publish(e)


# -- documents ------------------------------------------------------------------------------------

def load(tid: str) -> Transfer:
    try:
        return Transfer.get(tid)
    except (DoesNotExist, InvalidKey):
        raise TransferError("not-found", "No transfer with this id is visible to you.", status=404) from None


def mutate(tid: str, op: Callable[[dict], object], retries: int = RETRIES) -> tuple[Transfer, object]:
    """Read-modify-write under If-Match; ``op`` mutates the fresh document (raise to refuse)."""
    for attempt in range(retries + 1):
        item = load(tid)
        doc = item.data
        result = op(doc)
        item.data, item.state = doc, doc["state"]
        try:
            item.save()
            return item, result
        except ConditionalCheckFailed:
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))
    raise TransferError("concurrent-update", "The transfer kept changing while this request ran; retry it.",
                        status=409, retry_after=1)


def open_key(doc: dict) -> str:
    return f"{micros(parse_iso(doc['expires_at'])):016d}_{doc['id']}"


# -- creation and admission -----------------------------------------------------------------------

def create(req: dict, *, point: dict, bank: dict) -> tuple[dict, bool]:
    """Create (or find again) the transfer ``req``; returns (doc, replayed). Admission follows."""
    tid = req["id"]
    try:
        existing = Transfer.get(tid)
    except DoesNotExist:
        existing = None
    if existing is not None:
        return resend(existing.data, "create", req), True
    at = now()
    head = ledger.roll_forward(JOURNAL, point["code"])[0]
    doc = {**req, "state": RECEIVED, "point": point["code"], "unit_code": point.get("unit_code"),
           "created_at": iso(at), "day": local_day(at), "expires_at": iso(at + timedelta(seconds=expiry_s())),
           "admit_by": iso(at + timedelta(seconds=admit_window_s())), "admitted": False, "no_hold": False,
           "journal_from": head.seq, "notified": None, "requests": {"create": req}, "answers": {},
           "limits": dict(bank["limits"]), "reserved_at": None, "committed_at": None, "aborted_at": None,
           "abort_reason": None, "bank_reference": None}
    try:
        OpenTransfer("open", open_key(doc), transfer_id=tid).save()   # first: the sweep finds it whatever happens
    except ConditionalCheckFailed:
        pass
    try:
        Transfer(tid, state=RECEIVED, bank=req["bank"], point=point["code"], data=doc).save()
    except ConditionalCheckFailed:  # a concurrent first send
        return resend(Transfer.get(tid).data, "create", req), True
    tm.transfer(doc["kind"], "created")
    return admit(tid), False


def resend(doc: dict, action: str, req: dict) -> dict:
    """The transfer again for a resend of ``action``; another body is refused naming fields, never values
    (the first request may be another teller's customer)."""
    diff = changed_fields(doc["requests"].get(action), req)
    if diff:
        raise IdReused(diff, key=doc["id"])
    return doc


def admit(tid: str) -> dict:
    """Count the daily limit and set the cash aside (withdrawals), within the admission fence."""
    doc = load(tid).data
    if doc["admitted"] or doc["state"] != RECEIVED:
        return settle(tid)
    if now() > parse_iso(doc["admit_by"]):
        return settle(tid)  # too late for us: the sweep decides from the journal
    reason = _count_daily(doc)
    if reason is None and doc["kind"] == WITHDRAWAL:
        if now() > parse_iso(doc["admit_by"]):
            return settle(tid)
        try:
            move("hold", doc["point"], doc["amount_vnd"], ref=tid, bank=doc["bank"], since_seq=doc["journal_from"])
        except ledger.Insufficient as exc:
            reason = "insufficient-float"
            log.info("withdrawal %s refused: %s", tid, exc)
    if reason is None:
        def mark(d):
            if d["state"] == RECEIVED:
                d["admitted"] = True
        mutate(tid, mark)
        _index_day(doc)
    else:
        def refuse(d):
            if d["state"] == RECEIVED and not d["admitted"]:
                d.update(state=ABORTED, aborted_at=iso(now()), abort_reason=reason, no_hold=True)
                d["answers"]["create"] = {"problem": reason}
        mutate(tid, refuse)
    return settle_quietly(tid)


def daily_key(doc: dict) -> str:
    """The :class:`CustomerDay` counting ``doc``'s customer's transfers of its kind on its day."""
    return f"{doc['bank']}_{doc['kind']}_{_customer(doc)}_{doc['day']}"


def _count_daily(doc: dict) -> str | None:
    key = daily_key(doc)
    limit = int(doc["limits"]["per_customer_day_vnd"])
    refused = []

    def add(item: CustomerDay):
        refused.clear()
        used = item.used or {}
        if doc["id"] in used:
            return
        if sum(used.values()) + doc["amount_vnd"] > limit:
            refused.append(True)
            return
        used[doc["id"]] = doc["amount_vnd"]
        item.used = used

    for _ in range(RETRIES):
        try:
            item = CustomerDay.get(key)
        except DoesNotExist:
            item = CustomerDay(key, used={})
        add(item)
        if refused:
            return "daily-limit"
        try:
            item.save()
            return None
        except ConditionalCheckFailed:
            continue
    raise TransferError("concurrent-update", "Too many concurrent transfers for this customer; retry.", retry_after=1)


def _uncount_daily(doc: dict) -> None:
    key = daily_key(doc)

    def drop(item: CustomerDay):
        item.used = {k: v for k, v in (item.used or {}).items() if k != doc["id"]}

    try:
        item = CustomerDay.get(key)
        if doc["id"] in (item.used or {}):
            CustomerDay.update(key, None, drop, retries=RETRIES)
    except DoesNotExist:
        pass


def _customer(doc: dict) -> str:
    from .transfers import customer_key

    return customer_key(doc["bank"], doc.get("account"), doc.get("phone"))


def _index_day(doc: dict) -> None:
    try:
        BankDay(f"{doc['bank']}_{doc['day']}", f"{micros(parse_iso(doc['created_at'])):016d}_{doc['id']}",
                transfer_id=doc["id"]).save()
    except ConditionalCheckFailed:
        pass


# -- transitions ----------------------------------------------------------------------------------

def act(tid: str, action: str, req: dict, *, visible: Callable[[dict], bool], reason: str | None = None,
        bank_reference: str | None = None) -> tuple[dict, bool]:
    """Apply ``action`` (reserve, reject, confirm, commit, abort) with resend detection; (doc, replayed)."""
    doc = load(tid).data
    if not visible(doc):
        raise TransferError("not-found", "No transfer with this id is visible to you.", status=404)
    if action in doc["requests"]:
        return resend(doc, action, req), True
    if not doc["admitted"] and doc["state"] == RECEIVED:
        raise TransferError("not-ready", "The transfer is still being admitted; retry shortly.", status=409,
                            retry_after=2)
    if expired(doc, now()):
        expire(tid)

    def change(d):
        if action in d["requests"]:
            return "resend"
        if expired(d, now()):
            raise TransferError("expired", "The transfer expired before this request; it is aborted.",
                                current_state=d["state"])
        target = check(action, d)
        stamp = iso(now())
        d["state"] = target
        d["requests"][action] = req
        if target == RESERVED:
            d["reserved_at"] = stamp
            d["bank_reference"] = bank_reference
        elif target == COMMITTED:
            d["committed_at"] = stamp
            if bank_reference:
                d["bank_reference"] = bank_reference
        elif target == ABORTED:
            d["aborted_at"], d["abort_reason"] = stamp, reason or action
        return target

    item, result = mutate(tid, change)
    if result == "resend":
        return resend(item.data, action, req), True
    tm.transfer(item.data["kind"], item.data["state"])
    return settle_quietly(tid), False


def expire(tid: str) -> dict:
    def change(d):
        if expired(d, now()) and d["admitted"]:
            d.update(state=ABORTED, aborted_at=iso(now()), abort_reason="expired")
    item, _ = mutate(tid, change)
    if item.data["state"] == ABORTED and item.data["abort_reason"] == "expired":
        tm.transfer(item.data["kind"], "expired")
    return settle(tid)


# -- consequences ---------------------------------------------------------------------------------

def settle(tid: str) -> dict:
    """Make the ledger, indexes and events match the transfer's state; then record ``notified``."""
    for _ in range(RETRIES):
        doc = load(tid).data
        if doc["notified"] == doc["state"] and (doc["state"] in FINAL or doc["admitted"]):
            return doc
        if not doc["admitted"] and doc["state"] == RECEIVED:
            return doc  # admission (or the sweep, after the fence) moves it on
        amount, point, bank = doc["amount_vnd"], doc["point"], doc["bank"]
        since = doc["journal_from"]
        evts = []
        if doc["kind"] == WITHDRAWAL and not doc["no_hold"]:
            move("hold", point, amount, ref=tid, bank=bank, since_seq=since)
            if doc["state"] == COMMITTED:
                move("payout", point, amount, ref=tid, bank=bank, since_seq=since)
            elif doc["state"] == ABORTED:
                move("release", point, amount, ref=tid, bank=bank, since_seq=since)
        elif doc["kind"] == DEPOSIT and doc["state"] == COMMITTED:
            move("intake", point, amount, ref=tid, bank=bank, since_seq=since)
        if doc["state"] == ABORTED:
            _uncount_daily(doc)
        if doc["state"] == COMMITTED:
            day = local_day(parse_iso(doc["committed_at"]))
            try:
                BankSettled(f"{bank}_{day}", tid).save()
            except ConditionalCheckFailed:
                pass
        if not doc["no_hold"]:
            _index_day(doc)
            evts.append(event(f"transfer.{doc['state'].lower()}", event_data(doc), subject=tid,
                              id=f"{tid}.{doc['state']}"))
        else:  # refused at admission: the bank never heard of it; the IOC counts it
            evts.append(event("transfer.aborted", event_data(doc), subject=tid, id=f"{tid}.{doc['state']}"))
        publish(evts)
        state = doc["state"]

        def mark(d):
            if d["state"] == state:
                d["notified"] = state
        try:
            item, _ = mutate(tid, mark, retries=2)
        except TransferError:
            continue
        if item.data["state"] != state:
            continue  # it moved on meanwhile: settle the new state too
        if state in FINAL:
            try:
                OpenTransfer("open", open_key(doc)).delete()
            except (DoesNotExist, ConditionalCheckFailed):
                pass
        return item.data
    raise TransferError("concurrent-update", "The transfer kept changing; retry.", retry_after=1)


def sweep(limit: int = 1000) -> dict:
    """Expire what is past its expiry, decide unadmitted transfers after their fence, settle the rest."""
    counts = {"expired": 0, "settled": 0, "unadmitted": 0, "orphans": 0, "errors": 0}
    at = now()
    for entry in OpenTransfer.query("open", limit=limit):
        try:
            try:
                doc = Transfer.get(entry.transfer_id).data
            except DoesNotExist:
                # the index is written before the document: an index a minute past its expiry is an orphan
                if micros(at) - int(entry.entry.split("_", 1)[0]) > 60 * 1_000_000:
                    entry.delete()
                    counts["orphans"] += 1
                continue
            if not doc["admitted"] and doc["state"] == RECEIVED:
                if at > parse_iso(doc["admit_by"]) + timedelta(seconds=ADMIT_GRACE_S):
                    _decide_unadmitted(doc)
                    counts["unadmitted"] += 1
                continue
            if expired(doc, at):
                expire(doc["id"])
                counts["expired"] += 1
            elif doc["notified"] != doc["state"]:
                settle(doc["id"])
                counts["settled"] += 1
        except Exception:  # noqa: BLE001 - one bad transfer does not stop the sweep
            log.exception("sweep: transfer %s", entry.transfer_id)
            counts["errors"] += 1
    return counts


def _decide_unadmitted(doc: dict) -> None:
    """After the fence: the journal says whether the hold happened (withdrawals); decide accordingly."""
    held = doc["kind"] == DEPOSIT
    if doc["kind"] == WITHDRAWAL:
        head = ledger.roll_forward(JOURNAL, doc["point"])[0]
        held = ledger.find(JOURNAL, doc["point"], f"{doc['id']}:hold", doc["journal_from"], head) is not None
    if held:
        _count_daily(doc)

        def mark(d):
            if d["state"] == RECEIVED:
                d["admitted"] = True
        mutate(doc["id"], mark)
        _index_day(doc)
    else:
        def refuse(d):
            if d["state"] == RECEIVED and not d["admitted"]:
                d.update(state=ABORTED, aborted_at=iso(now()), abort_reason="not-admitted", no_hold=True)
                d["answers"]["create"] = {"problem": "not-admitted"}
        mutate(doc["id"], refuse)
    settle(doc["id"])


def settle_quietly(tid: str) -> dict:
    """:func:`settle` after a committed decision: a failure (NATS down) is left to the sweep."""
    try:
        return settle(tid)
    except TransferError:
        raise
    except Exception:  # noqa: BLE001
        log.warning("settle of %s failed; the sweep will finish it", tid, exc_info=True)
        return load(tid).data


def get(tid: str) -> dict:
    """The transfer, with the lazy checks: expiry, and consequences a crash left undone."""
    doc = load(tid).data
    if doc["admitted"] and expired(doc, now()):
        return expire(tid)
    if doc["notified"] != doc["state"] and (doc["admitted"] or doc["state"] in FINAL):
        try:
            return settle(tid)
        except Exception:  # noqa: BLE001 - a read never fails on a repair; the sweep retries
            log.warning("settle of %s on read failed", tid, exc_info=True)
    return doc


# -- cash deliveries and collections ----------------------------------------------------------------

def cash_operation(kind: str, op_id: str, point: dict, amount: int, by: str) -> tuple[dict, bool]:
    """A delivery or collection: the id is claimed first (create-only), then the movement follows.

    Everything that can refuse the request outright is checked before the claim: a claimed id
    is a promise that the movement (or a recorded refusal) follows.
    """
    try:
        ledger.movement(kind, point["code"], amount, ref=op_id)
    except ValueError as exc:
        raise TransferError("validation-failed", str(exc), status=422, field="/amount_vnd") from None
    req = {"id": op_id, "kind": kind, "point": point["code"], "amount_vnd": amount}
    head = ledger.roll_forward(JOURNAL, point["code"])[0]
    data = {"request": req, "id": op_id, "kind": kind, "point": point["code"], "amount_vnd": amount, "by": by,
            "journal_from": head.seq, "at": iso(now())}
    replayed = False
    try:
        CashOperation(op_id, data=data).save()
    except ConditionalCheckFailed:
        data = CashOperation.get(op_id).data
        diff = changed_fields(data["request"], req)
        if diff:
            raise IdReused(diff, key=op_id) from None
        replayed = True
    if data.get("refused"):
        raise TransferError(data["refused"]["code"], data["refused"]["message"], status=409)
    if kind == "delivery" and not replayed:
        total = head.balances.get(ledger.cash(point["code"]), 0) + head.balances.get(ledger.held(point["code"]), 0)
        limit = point.get("cash_float_limit_vnd")
        if limit and total + amount > limit:
            return _refuse_cash(op_id, "float-limit", f"The point may hold at most {limit} VND; this delivery "
                                f"would make {total + amount} VND.")
    try:
        move(kind, point["code"], amount, ref=op_id, since_seq=data["journal_from"])
    except ledger.Insufficient as exc:
        return _refuse_cash(op_id, "insufficient-float", str(exc))
    publish([event(f"cash.{'delivered' if kind == 'delivery' else 'collected'}",
                   {"operation_id": op_id, "point": point["code"], "amount_vnd": amount}, subject=point["code"],
                   id=f"{op_id}.{kind}")])
    return data, replayed


def _refuse_cash(op_id: str, code: str, message: str):
    item = CashOperation.get(op_id)
    item.data = {**item.data, "refused": {"code": code, "message": message}}
    try:
        item.save()
    except ConditionalCheckFailed:
        pass
    raise TransferError(code, message, status=409)


__all__ = ["create", "act", "settle", "sweep", "get", "view", "cash_operation", "float_of", "points", "JOURNAL",
           "RESERVED"]
