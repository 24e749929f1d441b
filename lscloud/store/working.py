"""Working objects: what a function keeps only while it serves, in a bucket under object lock.

A bucket made with object lock and a default retention (the dossiers' legal records: ten years,
``infra/components/objectstore.py``) keeps *every version of every object* that long, whatever
deletes it: a delete only puts a marker on top. That is right for a record and wrong for the
machinery around it. An idempotency record (a whole answer, with the applicant's data), an
events-seen record, an outbox entry, an index entry of live work (the open dossiers, their clocks)
lives a day or until its work ends, and is written and deleted by the hundred thousand a year:
under the bucket's default each of those versions would be kept ten years, and every listing of
its prefix (the overdue sweep's, every minute) would step over all of them.

So each PUT of a working object into a locked bucket carries its own retention,
:data:`RETAIN_S` ahead, in the bucket's mode: S3 applies an explicit retention instead of the
bucket's default. Once it has passed, the bucket's lifecycle rules remove the object's old versions
and its delete marker as they do in any other bucket. A record (anything not declared working)
keeps the bucket's default.

Declared working: the runtime's run-once records (:mod:`lscloud.runonce`), every model with a TTL,
and a model whose ``Meta`` says ``working = True`` (the outbox; a function's indexes of live work).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

RETAIN_S = 86_400
"""How long a version of a working object is kept under object lock: a day, as long as the
lifecycle keeps a run-once record's old version anyway."""

MODES = ("governance", "compliance")

_prefixes: set[str] = set()
_lock = threading.Lock()
_frozen: tuple[str, ...] = ()


def declare(prefix: str) -> None:
    """Objects whose keys start with ``prefix`` (``"<table>/"``) are working objects."""
    global _frozen
    if not prefix or not prefix.endswith("/"):
        raise ValueError(f"a working prefix is a table's, ending in '/': {prefix!r}")
    with _lock:
        _prefixes.add(prefix)
        _frozen = tuple(sorted(_prefixes))


def prefixes() -> tuple[str, ...]:
    """Every declared working prefix, sorted."""
    return _frozen


def holds(key: str) -> bool:
    """Whether ``key`` is a working object's."""
    return key.startswith(_frozen) if _frozen else False


def lock_headers(mode: str, now: datetime | None = None) -> dict[str, str]:
    """The PUT headers that retain a working object's version :data:`RETAIN_S` in ``mode``."""
    if mode not in MODES:
        raise ValueError(f"object lock mode must be one of {MODES}, got {mode!r}")
    until = (now or datetime.now(timezone.utc)).astimezone(timezone.utc) + timedelta(seconds=RETAIN_S)
    return {"x-amz-object-lock-mode": mode.upper(),
            "x-amz-object-lock-retain-until-date": until.strftime("%Y-%m-%dT%H:%M:%SZ")}
