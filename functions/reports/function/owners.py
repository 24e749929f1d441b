"""Whose reports: one reporter's reports found by a pseudonym of the phone, the e-mail or the CCCD
they filed them with (``ReportOwner``), so an erasure request reads those reports and no other.

The keys are pseudonyms (:mod:`lscloud.pseudonyms`) of the identifier as :func:`lscloud.erasure.normalise`
spells it, so ``0912 345 678`` given in the app and ``+84912345678`` given through Open311 are one
reporter. A signed-in citizen's CCCD (their token's subject) is already kept as the report's
``owner``, the pseudonym of that subject: it is their entry's key as it is.
"""

from __future__ import annotations

from lscloud import erasure, pseudonyms

from .models import ReportOwner
from .models import PSEUDONYM_PURPOSE

FORM = "{kind}:{value}"
"""What the pseudonym of a phone or an e-mail is taken of (the kind keeps a phone and a CCCD apart)."""
CONTACT = ("phone", "email")


def key(kind: str, value: str) -> str:
    """The index key of an identifier as a report holds it (raises InvalidSubject if it is not one)."""
    normal = erasure.normalise(kind, value)
    return pseudonyms.pseudonym(PSEUDONYM_PURPOSE, normal if kind == "cccd" else FORM.format(kind=kind, value=normal))


def key_for(subject: erasure.Subject) -> str:
    """The index key of an erasure request's subject (:meth:`lscloud.erasure.Subject.pseudonym`)."""
    return subject.pseudonym(PSEUDONYM_PURPOSE, "{value}" if subject.kind == "cccd" else FORM)


def keys_of(doc: dict) -> list[str]:
    """The keys a report is indexed under: its reporter's phone and e-mail, its owner."""
    found = set()
    reporter = doc.get("reporter") or {}
    for kind in CONTACT:
        if reporter.get(kind):
            try:
                found.add(key(kind, reporter[kind]))
            except erasure.InvalidSubject:
                pass   # not findable by a value that is not one (an Open311 client's free text)
    if doc.get("owner"):
        found.add(doc["owner"])
    return sorted(found)


def entries(doc: dict) -> list[ReportOwner]:
    """The report's owner-index entries (create-only, written with the report)."""
    return [ReportOwner(k, doc["id"]) for k in keys_of(doc)]


def reports_of(subject: erasure.Subject) -> list[str]:
    """The ids of the reports filed with the subject's identifier (a listing; nothing read)."""
    return ReportOwner.query_keys(key_for(subject))
