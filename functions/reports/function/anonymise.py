"""A reporter's personal data taken out of a report and out of every copy of it, the report kept.

What goes: the reporter's name, phone, e-mail and partner account (``reporter``), the link to their
account (``owner``, a pseudonym of their CCCD, in the document, its kept create and its audit
entries), and any CCCD, phone, e-mail or the reporter's name written in the free text — the
description, the address, the agencies' notes and reasons, a rating's comment, a transfer's reason,
in the document and in its audit entries (masked by :mod:`lscloud.redaction`'s patterns: ``[phone]``,
and ``[name]``). What stays serves the public: the place, the category, the agency, the states and
their times, the photos of the problem (re-encoded without EXIF when received, but a photo may show a
face or a number plate: a person has to look, nothing here can tell).

One report is done by conditional writes only: its audit entries (each under ``If-Match``), the
document through the function's aggregate, with an audit entry saying so (no values), and its
owner-index entries. A run cut short anywhere is finished by the next: the index entry a report was
found by goes last, and a report already done gets what of its round is missing.
"""

from __future__ import annotations

import re

from lscloud import erasure, redaction
from lscloud.aggregate import NoChange, delete_quietly, micros, save_quietly
from lscloud.statemachine import Actor, iso, now, parse_iso
from lscloud.store import DoesNotExist, InvalidKey

from . import owners
from .models import Report, ReportAudit, ReportOwner
from .reports import records

ACTION = "erase_contact"
ON_REQUEST, KEEP_PERIOD = "request", "keep-period"
REASON = {ON_REQUEST: "Đã xóa dữ liệu cá nhân của người phản ánh theo yêu cầu / reporter's personal data erased "
                      "on request",
          KEEP_PERIOD: "Đã xóa thông tin liên hệ của người phản ánh: hết thời hạn lưu / reporter's contact data "
                       "removed: its keep period ended"}
NAME = "[name]"
FREE_TEXT = ("description", "address", "rating_comment")


def names_of(doc: dict) -> list[str]:
    """The reporter's names as they may be written in free text, longest first."""
    r = doc.get("reporter") or {}
    full = " ".join(x for x in (r.get("last_name"), r.get("first_name")) if x)
    found = {n.strip() for n in (full, r.get("name"), r.get("first_name"), r.get("last_name")) if n}
    return sorted((n for n in found if len(n) >= 2), key=len, reverse=True)


def needles(doc: dict) -> list[str]:
    """The reporter's values as the function stored them anywhere (the answers kept for retries)."""
    r = doc.get("reporter") or {}
    out = [v for k, v in r.items() if k in ("phone", "email", "account_id", "device_id", "name") and v]
    for kind in owners.CONTACT:
        try:
            out.append(erasure.normalise(kind, r[kind])) if r.get(kind) else None
        except erasure.InvalidSubject:
            pass
    return sorted({str(v) for v in out})


def clean(value, names: list[str]):
    """Free text with every identifier-shaped value and the reporter's names masked; other values as
    they are, lists and objects walked."""
    if isinstance(value, list):
        return [clean(v, names) for v in value]
    if isinstance(value, dict):
        return {k: clean(v, names) for k, v in value.items()}
    if not isinstance(value, str) or not value:
        return value
    out = redaction.redact(value)
    for n in names:
        out = re.sub(rf"(?<!\w){re.escape(n)}(?!\w)", NAME, out, flags=re.IGNORECASE)
    return out


def erased(doc: dict) -> bool:
    return bool(doc.get("contact_erased"))


def _scrub_doc(doc: dict, names: list[str]) -> None:
    doc["reporter"], doc["owner"] = {}, None
    for f in FREE_TEXT:
        doc[f] = clean(doc.get(f), names)
    doc["attributes"] = clean(doc.get("attributes") or {}, names)
    for note in doc.get("notes") or []:
        note["text"] = clean(note.get("text"), names)
    for t in doc.get("transfers") or []:
        t["reason"] = clean(t.get("reason"), names)


def _scrub_move(data: dict, names: list[str], owner: str | None) -> dict:
    """An audit entry (or a kept transition) without the reporter: its reason and details masked,
    the reporter's own moves no longer linked to them."""
    out = {**data, "reason": clean(data.get("reason"), names), "details": clean(data.get("details") or {}, names)}
    actor = dict(data.get("actor") or {})
    if owner and actor.get("sub") == owner:
        actor.pop("sub")
    out["actor"] = actor
    return out


def scrub_trail(report_id: str, names: list[str], owner: str | None) -> int:
    """Mask the report's audit entries (each under ``If-Match``, read again on a lost race); how many
    changed."""
    changed = 0
    for entry in ReportAudit.query_all(report_id):
        if _scrub_move(entry.data, names, owner) == entry.data:
            continue

        def fix(item: ReportAudit) -> None:
            item.data = _scrub_move(item.data, names, owner)

        try:
            ReportAudit.update(report_id, entry.entry, fix)
            changed += 1
        except DoesNotExist:
            pass
    return changed


class _Clean(Exception):
    """Nothing to write: what was read is clean already."""


def _scrub_created(item: Report, names: list[str], owner: str | None) -> bool:
    """The receipt's transition the report keeps for a retry of its create (``created``: the
    reporter's pseudonym when signed in) masked under ``If-Match``; True when it wrote."""
    if not item.created or [_scrub_move(t, names, owner) for t in item.created] == item.created:
        return False

    def fix(r: Report) -> None:
        clean_ = [_scrub_move(t, names, owner) for t in r.created or []]
        if clean_ == (r.created or []):
            raise _Clean   # another run did it since our read: no version more
        r.created = clean_

    try:
        Report.update(item.id, None, fix)
    except _Clean:
        return False
    return True


def _audited(report_id: str, doc: dict, actor: Actor, details: dict | None) -> None:
    """The audit entry saying the data went (no values), keyed by the erasure's time alone: whichever
    run writes it, and however many writes the report had since, there is one."""
    done = doc["contact_erased"]
    at = parse_iso(done["at"])
    entry = {"action": ACTION, "from": doc["status"], "to": doc["status"], "fact": None, "at": done["at"],
             "actor": actor.as_dict(), "reason": REASON[done["why"]], "details": {"why": done["why"], **(details or {})}}
    save_quietly(ReportAudit(report_id, f"{micros(at):016d}_{0:06d}_50", data=entry))


def anonymise(report_id: str, why: str, actor: Actor, *, found_by: str | None = None,
              details: dict | None = None) -> dict | None:
    """Take the reporter's personal data out of one report and its copies (see the module).
    ``found_by``: the owner-index key it was found by (deleted last). Returns ``{"changed", "audit",
    "photos", "needles"}`` (``needles``: the values removed, for :func:`lscloud.erasure.forget_answers`;
    never for a report), or None when there is no such report."""
    agg = records()
    try:
        item = agg.get(report_id)
    except (DoesNotExist, InvalidKey):
        if found_by:
            delete_quietly(ReportOwner, found_by, report_id)
        return None
    doc = item.data
    names, owner, found = names_of(doc), doc.get("owner"), needles(doc)
    # computed from the values about to go: the other entries first, the one it was found by last
    for k in owners.keys_of(doc):
        if k != found_by:
            delete_quietly(ReportOwner, k, report_id)
    audit = scrub_trail(report_id, names, owner)
    # before the document: a run cut short after it would no longer know the pseudonym to take out
    if _scrub_created(item, names, owner):
        item = None
    at = parse_iso(iso(now()))   # as kept: the audit entry's key is the same when a re-run writes it

    def op(d: dict):
        if erased(d):
            raise NoChange
        _scrub_doc(d, names)
        d["contact_erased"] = {"at": iso(at), "why": why}
        return [], why

    out = agg.mutate(report_id, op, item=item)
    _audited(report_id, out.doc, actor, details)
    audit += scrub_trail(report_id, names, owner)   # a move made meanwhile
    if found_by:
        delete_quietly(ReportOwner, found_by, report_id)
    return {"changed": out.result is not None, "audit": audit, "photos": len(out.doc.get("photos") or []),
            "needles": found}
