"""Daily settlement per bank, and reconciliation of a bank's view against ours.

The settlement of a day lists every transfer of the bank *committed* that local day (Asia/Ho_Chi_Minh)
and the net position: withdrawals paid out for the bank minus deposits taken in for it (positive:
the bank owes the post-office network). It is written to the object store as JSON and CSV blobs
(content-addressed) and named by a ``SettlementReport``; a past day's report is final once written,
today's is provisional and rewritten on each request.

Reconciliation takes the bank's own list for a day (``id``, ``kind``, ``state``, ``amount_vnd``)
and lists every difference: a transfer only we have, one only the bank has, a different amount,
state or kind. Aborted transfers count on neither side (nothing moved).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import threading
from datetime import date, datetime, time, timedelta

from lscloud import resends, store
from lscloud.aggregate import side_pool
from lscloud.resends import IdReused
from lscloud.store import ConditionalCheckFailed, DoesNotExist
from lscloud.timestamps import YEARS
from lscloud.workdays import TZ

from . import telemetry as tm
from .models import BankSettled, Reconciliation, SettlementReport, Transfer
from .refusals import BadDay
from .transfers import COMMITTED, WITHDRAWAL, iso, now

FIELDS = ("id", "kind", "point", "amount_vnd", "account", "phone", "committed_at", "bank_reference")
DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
BLOBS = "softatm-settlements"


def check_day(text: str) -> str:
    """``text`` if it is a real calendar day written YYYY-MM-DD (``2026-02-30`` is not) that has come
    here, else BadDay. A day to come has nothing to settle, and each one asked for stored a report
    and two files (the year 9999's overflowed: a 500)."""
    try:
        if DAY_RE.fullmatch(text) and YEARS[0] <= date.fromisoformat(text).year and \
                date.fromisoformat(text) <= now().astimezone(TZ).date():
            return text
    except ValueError:
        pass
    raise BadDay()


KEPT = (*FIELDS, "state", "bank")
KEEP_DAYS = 2
"""Days of committed transfers a replica holds (:func:`_day`): a bank reconciles today and
yesterday. It held up to 50,000 transfers of any days, their account and phone numbers included,
for weeks."""

_settled_days: dict[str, dict[str, dict]] = {}   # local day -> transfer id -> the settlement's fields
_days_lock = threading.Lock()


def _day(day: str) -> dict[str, dict]:
    """What this replica read of ``day``'s committed transfers (the settlement's fields only). A
    committed transfer is final, so a copy is never stale: a bank that reconciles today every few
    minutes costs one listing and the reads of what committed since, not a read of every transfer
    of the day. Only the latest :data:`KEEP_DAYS` days are held (an older day asked for is read)."""
    with _days_lock:
        held = _settled_days.setdefault(day, {})
        while len(_settled_days) > KEEP_DAYS:
            del _settled_days[min(_settled_days)]
        return held


def _settled(tid: str, held: dict[str, dict]) -> dict | None:
    """The settlement's fields of transfer ``tid`` if it is committed (None: gone, or not committed)."""
    kept = held.get(tid)
    if kept is not None:
        return kept
    try:
        doc = Transfer.get(tid).data
    except DoesNotExist:
        return None
    if doc["state"] != COMMITTED:
        return None
    kept = held[tid] = {k: doc.get(k) for k in KEPT}
    return kept


def committed(bank: str, day: str) -> list[dict]:
    """The bank's transfers committed on the local ``day``, in commit order (the settlement's
    fields: :data:`KEPT`). The day's index is listed, never read entry by entry (its key is the
    transfer's id); the transfers not yet held are read at once."""
    tids = BankSettled.query_keys(f"{bank}_{day}")
    held = _day(day)
    docs = side_pool().map(lambda t: _settled(t, held), tids) if len(tids) > 1 else (_settled(t, held) for t in tids)
    out = [dict(d) for d in docs if d is not None and d["bank"] == bank]
    return sorted(out, key=lambda d: (d["committed_at"], d["id"]))


FINAL_AFTER = timedelta(minutes=15)
"""A day's report is final this long after its local midnight: a commit stamped just before it whose
index entry lands just after is still in it."""


def report(bank: str, day: str) -> dict:
    """The bank's settlement of local ``day``: the stored one once final, else made from the day's
    commits and stored. A provisional report kept while the day was still open is made again once
    the day is over (it was served as the day's for good, missing the day's later commits), and a
    provisional one never replaces a final one (both are written under a condition)."""
    final = now() >= datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), TZ) + FINAL_AFTER
    try:
        stored = SettlementReport.get(bank, day)
    except DoesNotExist:
        stored = None
    if stored is not None and stored.data.get("final"):
        return stored.data
    docs = committed(bank, day)
    paid = sum(d["amount_vnd"] for d in docs if d["kind"] == WITHDRAWAL)
    taken = sum(d["amount_vnd"] for d in docs if d["kind"] != WITHDRAWAL)
    rows = [{k: d.get(k) for k in FIELDS} for d in docs]
    body = {"bank": bank, "day": day, "final": final, "withdrawals_vnd": paid, "deposits_vnd": taken,
            "net_position_vnd": paid - taken, "count": len(rows), "transfers": rows}
    blobs = store.blobs(BLOBS)
    js = blobs.put(json.dumps(body, ensure_ascii=False, sort_keys=True).encode(), "application/json",
                   filename=f"settlement-{bank}-{day}.json")
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(FIELDS)
    for r in rows:
        w.writerow([r.get(k) if r.get(k) is not None else "" for k in FIELDS])
    w.writerow(["net_position_vnd", "", "", paid - taken, "", "", "", ""])
    cs = blobs.put(out.getvalue().encode(), "text/csv", filename=f"settlement-{bank}-{day}.csv")
    data = {**{k: v for k, v in body.items() if k != "transfers"}, "generated_at": iso(now()),
            "json_sha256": js.sha256, "csv_sha256": cs.sha256, "transfers": rows}
    item = stored or SettlementReport(bank, day)
    item.data = data
    try:
        item.save()   # create-only, or If-Match the version read
    except ConditionalCheckFailed:   # another request stored one meanwhile: the day's report is that
        return SettlementReport.get(bank, day).data
    return data


def csv_bytes(data: dict) -> bytes:
    return store.blobs(BLOBS).get(data["csv_sha256"])


def reconcile(bank: str, rec_id: str, day: str, theirs: list[dict]) -> tuple[dict, bool]:
    request = {"day": day, "transfers": theirs}
    req_hash = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    salt = f"softatm-reconciliation\n{bank}\n{rec_id}"
    def replay(existing: dict) -> tuple[dict, bool]:
        if existing["request_sha256"] != req_hash:
            first = existing.get("request_fields")
            raise IdReused(resends.changed(first, request, salt) if first else ["/transfers"], key=rec_id)
        return existing, True

    try:
        return replay(Reconciliation.get(bank, rec_id).data)
    except DoesNotExist:
        pass
    ours = {d["id"]: d for d in committed(bank, day)}
    mine = {t["id"]: t for t in theirs if t.get("state", COMMITTED) == COMMITTED}
    mismatches = []
    for tid in sorted(set(ours) | set(mine)):
        a, b = ours.get(tid), mine.get(tid)
        if a is None:
            mismatches.append({"transfer_id": tid, "problem": "only-bank", "ours": None, "theirs": b})
        elif b is None:
            mismatches.append({"transfer_id": tid, "problem": "only-ours",
                               "ours": {"kind": a["kind"], "amount_vnd": a["amount_vnd"], "state": a["state"]},
                               "theirs": None})
        else:
            for f in ("amount_vnd", "kind"):
                if b.get(f) != a.get(f):
                    mismatches.append({"transfer_id": tid, "problem": f"{f}-differs", "ours": a.get(f),
                                       "theirs": b.get(f)})
    ours_net = sum(d["amount_vnd"] * (1 if d["kind"] == WITHDRAWAL else -1) for d in ours.values())
    theirs_net = sum(int(t.get("amount_vnd", 0)) * (1 if t.get("kind") == WITHDRAWAL else -1) for t in mine.values())
    data = {"id": rec_id, "bank": bank, "day": day, "request_sha256": req_hash,
            "request_fields": resends.digests(request, salt), "submitted": len(theirs),
            "ours": len(ours), "matched": len(set(ours) & set(mine)) - len({m["transfer_id"] for m in mismatches
                                                                           if m["problem"].endswith("differs")}),
            "net_position_vnd": {"ours": ours_net, "theirs": theirs_net},
            "mismatches": mismatches, "ok": not mismatches, "at": iso(now())}
    try:
        Reconciliation(bank, rec_id, data=data).save()
    except ConditionalCheckFailed:   # a first send racing this one stored it: judged as any resend
        return replay(Reconciliation.get(bank, rec_id).data)
    if mismatches:
        tm.mismatches(bank, len(mismatches))
    return data, False
