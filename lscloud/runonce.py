"""Records that end: what the runtime keeps for a while, and the sweep that deletes them once expired.

Every run-once record carries its own end, ``expires_at``: idempotent request records
(``idempotency/``, :mod:`lscloud.idempotency`), events already handled (``events-seen/``,
:mod:`lscloud.knative`), and the items of any model with a :class:`~lscloud.store.TTLAttribute`
(identity's rate-limit windows …), which register themselves. Partner nonces are no longer written
here: a JetStream key-value bucket keeps them and drops them itself (:mod:`lscloud.nonces`); the
``nonces/`` records written before that are still swept and expired (:data:`LEFTOVER_NONCES`).
Past ``expires_at`` nothing relies on a record any more; left alone they would pile up forever.

Two mechanisms delete them:

- :func:`sweep`, run by every function's runtime on the platform clock's tick (``/events``, see
  :mod:`lscloud.knative`): it lists each prefix, reads the records that may have expired, and
  deletes a record only if its own ``expires_at`` has passed, with ``If-Match`` on the ETag it read,
  so a record renewed meanwhile (a lease taken over, an outcome completed) is never deleted. Which
  records it reads is narrowed by the listing's ``LastModified``: a record is read once its kind's
  longest lifetime (:attr:`Kind.max_age_s`) has passed since its last write — an optimisation only;
  the decision is always the record's own ``expires_at``. Each sweep reads at most ``budget`` records,
  the longest unwritten first, so a backlog drains over the following ticks. A tick lists a kind
  only when :func:`due_kinds` says so (every 1/24 of its records' longest life, at least a minute,
  at most a day): a kind of 24-hour records was listed in full every minute to find the few a day
  past their end; now once an hour, so a record outlives its end by an hour at most (nothing reads
  it as alive: its own ``expires_at`` is what leases and readers go by).
- in the cluster, a bucket lifecycle rule per runtime prefix (:func:`lifecycle_configuration`, applied
  by ``infra/components/objectstore.py``) whose age must exceed :func:`longest_lifetime`: the store's
  own backstop should the sweep not run. SeaweedFS (``weed mini``, the local cloud) accepts lifecycle
  rules but turns them into a per-write TTL fixed when an object is written (seaweedfs#11183), so
  the local cloud relies on the sweep alone.

A record something else waits on carries a *watch* beside it (:func:`watch_key`, under the same
prefix): a dead letter of an event not known done when it was kept (:mod:`lscloud.deadletters`) must
learn whether its events-seen record completed before that record goes, else it looks open after
the record's TTL and an operator's retry runs the event twice. The sweep reads no watch on its own:
before it deletes a watched record it calls the hook of the record's kind (:func:`watch`), the
watch's key being known from the same listing (no request for a record nobody watches); a watch
whose record never came is deleted once it is older than any record of its kind lives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from .store import working

log = logging.getLogger("lscloud.runonce")

DEFAULT_BUDGET = 500
"""At most this many records are read per sweep: a tick stays quick, the next tick goes on."""
EVENT_LEASE_S = 30.0
"""How long a run of an event handler holds the event unless it renews its hold (:mod:`lscloud.knative`):
a run that died (OOM, SIGKILL) frees its event this long after its last renewal at most. It was 300 s
without renewal: the dispatcher's five deliveries (~4 s) and Knative's (~15 s) all found it held and
dead-lettered it, and an operator's retry was refused until it ended."""
EVENT_RENEW_EVERY_S = 10.0
"""How often a run still going renews its hold (:meth:`lscloud.store.leases.Lease.renewed`): two
renewals may fail in a row before the hold ends under a run that is alive."""
EVENT_HOLD_MAX_S = 900.0
"""A run still going after this long is presumed hung: its hold is no longer renewed, so that the event
can be taken over (Knative ends a function's request long before: ``timeoutSeconds``, 60 s)."""


def _epoch(value: Any) -> float:
    """``expires_at`` as epoch seconds: a number, or an ISO-8601 string (``TTLAttribute``)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is no time")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("a naive time")
        return parsed.timestamp()
    raise TypeError(f"not a time: {type(value).__name__}")


@dataclass(frozen=True)
class Kind:
    """Records under one key prefix that end at their own ``expiry_field``."""

    prefix: str
    what: str
    max_age_s: Callable[[Any], float]
    """The longest a record may live after its last write, from the settings (0: unknown, read every time)."""
    expiry_field: str = "expires_at"
    bucket: str | None = None   # None: the function's bucket
    owner: str = "lscloud"      # the module that declared it
    on_expiry: Callable[[Any, str, str], bool] | None = None
    """``(objects, bucket, key) -> done``: the work an expired record stands for, before it is
    deleted (an unclaimed upload's blob: :func:`lscloud.store.blobs.claimed_only`); False keeps the
    record for a later sweep."""

    def expires_at(self, body: bytes) -> float | None:
        """The record's end in epoch seconds, or None when it has none that can be read."""
        try:
            return _epoch(json.loads(body)[self.expiry_field])
        except (ValueError, TypeError, KeyError, OverflowError):
            return None


IDEMPOTENCY = Kind("idempotency/", "idempotent request records", lambda s: s.idempotency_ttl_s)
EVENTS_SEEN = Kind("events-seen/", "events already handled", lambda s: max(s.idempotency_ttl_s, EVENT_LEASE_S))
LEFTOVER_NONCES = Kind("nonces/", "partner request nonces written before they moved to NATS",
                       # they were remembered until timestamp + window + 60 s, a timestamp up to a window ahead
                       lambda s: 2 * s.signature_window_s + 60)
RUNTIME_KINDS = (LEFTOVER_NONCES, IDEMPOTENCY, EVENTS_SEEN)
"""The runtime's own run-once records (in every function's bucket that uses them)."""
for _kind in RUNTIME_KINDS:
    working.declare(_kind.prefix)   # never a record, in a bucket under object lock too


def events_seen_key(function: str, event) -> str:
    """Where ``function`` keeps its events-seen record of ``event`` (:mod:`lscloud.knative` takes
    and completes it; :mod:`lscloud.deadletters` reads it): source + id identify an event (the
    CloudEvents spec), hashed so no input walks the key space."""
    digest = hashlib.sha256(f"{event.get('source')}\n{event.get('id')}".encode()).hexdigest()
    fn = re.sub(r"[^a-z0-9-]", "-", function.lower()) or "function"
    return f"{EVENTS_SEEN.prefix}{fn}/{digest}.json"


WATCH_SUFFIX = ".watch.json"


def watch_key(key: str) -> str:
    """Where a watch of the record at ``key`` is kept: beside it (so one listing finds both)."""
    return key.removesuffix(".json") + WATCH_SUFFIX


def _watched_key(key: str) -> str:
    return key.removesuffix(WATCH_SUFFIX) + ".json"


WatchHook = Callable[[Any, str, str, bytes, str], bool]
"""``(objects, bucket, record_key, record_body, watch_key) -> done``: told that a watched record is
about to be deleted, it does what the watcher needs first and deletes the watch; False keeps the
record (and its watch) for a later sweep."""

_models: dict[str, Kind] = {}
_watch_hooks: dict[str, WatchHook] = {}
_lock = threading.Lock()


def watch(kind: Kind, hook: WatchHook) -> None:
    """Call ``hook`` before :func:`sweep` deletes a record of ``kind`` that has a watch
    (:func:`watch_key`); declared by the module that writes the watches (a registration, so that
    this module imports none of them)."""
    with _lock:
        _watch_hooks[kind.prefix] = hook


def _watch_hook(kind: Kind) -> WatchHook | None:
    with _lock:
        return _watch_hooks.get(kind.prefix)


def register_model(model) -> Kind:
    """Sweep the items of ``model`` (a Model with a TTLAttribute) past their TTL; called by the
    Model class itself. ``Meta.ttl_max_s`` may say how long an item lives after its last write."""
    ttl = model._ttl_attr
    meta = getattr(model, "Meta", None)
    longest = float(getattr(meta, "ttl_max_s", 0) or 0)
    return register(Kind(f"{model._table}/", f"{model.__name__} items", lambda s, _v=longest: _v, ttl.name,
                         model._bucket, model.__module__))


def register(kind: Kind) -> Kind:
    """Sweep the records under ``kind.prefix`` too (declared by the module that writes them)."""
    with _lock:
        _models[kind.prefix] = kind
    return kind


def kinds() -> tuple[Kind, ...]:
    """Everything :func:`sweep` looks at: the runtime's records and every registered model's."""
    with _lock:
        return RUNTIME_KINDS + tuple(sorted(_models.values(), key=lambda k: k.prefix))


def model_kinds(package: str) -> list[Kind]:
    """The registered models' kinds declared in ``package`` or below it."""
    with _lock:
        return sorted((k for k in _models.values() if k.owner == package or k.owner.startswith(package + ".")),
                      key=lambda k: k.prefix)


def longest_lifetime(settings) -> float:
    """The longest any runtime record lives after its last write, for these settings (seconds)."""
    return max(k.max_age_s(settings) for k in RUNTIME_KINDS)


def lifecycle_configuration(days: int) -> dict:
    """An S3 bucket lifecycle configuration expiring the runtime's records ``days`` after their last write."""
    return {"Rules": [{"ID": "expire-" + k.prefix.strip("/"), "Status": "Enabled", "Filter": {"Prefix": k.prefix},
                       "Expiration": {"Days": int(days)}} for k in RUNTIME_KINDS]}


def check_lifecycle_days(days: int, settings: Iterable[Any]) -> None:
    """ValueError unless ``days`` outlasts every runtime record under each of ``settings``."""
    longest = max((longest_lifetime(s) for s in settings), default=0.0)
    if not isinstance(days, int) or isinstance(days, bool) or days * 86_400 <= longest:
        raise ValueError(f"a lifecycle rule of {days!r} day(s) could delete run-once records before they expire: "
                         f"the longest lives {longest:g} s ({longest / 86_400:.2f} days) after its last write")


SWEEP_SHARE = 24
"""A kind is listed at most every 1/``SWEEP_SHARE`` of its records' longest life (:func:`due_kinds`)."""

_listed: dict[tuple[str, str], float] = {}   # (bucket, prefix) -> when this process last listed it all
_listed_lock = threading.Lock()


def sweep_every_s(kind: Kind, settings) -> float:
    """How often a tick lists ``kind``: 1/:data:`SWEEP_SHARE` of its records' longest life, between a
    minute (every tick) and a day; a kind whose lifetime is unknown, every tick."""
    try:
        longest = float(kind.max_age_s(settings))
    except Exception:  # noqa: BLE001 - unknown: every tick
        longest = 0.0
    return min(86_400.0, max(60.0, longest / SWEEP_SHARE))


def due_kinds(bucket: str, settings, now: float | None = None) -> list[Kind]:
    """The kinds (of :func:`kinds`) this process has not listed in ``bucket`` for :func:`sweep_every_s`."""
    now = time.time() if now is None else now
    with _listed_lock:
        # a little early: a tick a second late must not push the next listing a whole period out
        return [k for k in kinds() if now - _listed.get((k.bucket or bucket, k.prefix), float("-inf"))
                >= sweep_every_s(k, settings) - 5]


def listed(kinds_: Iterable[Kind], bucket: str, now: float | None = None) -> None:
    """Remember that ``kinds_`` were listed in full in ``bucket`` (:func:`due_kinds`)."""
    now = time.time() if now is None else now
    with _listed_lock:
        for k in kinds_:
            _listed[(k.bucket or bucket, k.prefix)] = now


@dataclass
class Report:
    """What one sweep did, per prefix: ``listed``, ``read``, ``deleted``, ``kept`` (not expired yet),
    ``changed`` (renewed or deleted since it was read), ``unreadable`` (no expiry to go by: deleted
    only once it is older than any record of its kind lives, as a lease would take it over)."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    exhausted: bool = False   # the budget ran out: the next sweep goes on

    def add(self, prefix: str, what: str, n: int = 1) -> None:
        c = self.counts.setdefault(prefix, {"listed": 0, "read": 0, "deleted": 0, "kept": 0, "changed": 0,
                                            "unreadable": 0})
        c[what] += n

    def total(self, what: str) -> int:
        return sum(c[what] for c in self.counts.values())


def sweep(objects, bucket: str, settings, *, kinds_: Iterable[Kind] | None = None, now: float | None = None,
          budget: int = DEFAULT_BUDGET) -> Report:
    """Delete the records of ``kinds_`` (default :func:`kinds`) whose ``expires_at`` has passed.

    ``objects`` is the :class:`~lscloud.store.ObjectStore`; ``now`` (epoch seconds) defaults to the
    clock. A record is deleted only if ``expires_at < now`` and only as it was read (``If-Match``).
    """
    from .store.errors import ConditionalCheckFailed, DoesNotExist

    now = time.time() if now is None else now
    report = Report()
    due: list[tuple[float, Kind, str, str, bool]] = []   # (last write, kind, bucket, key, outlived its kind)
    watches: dict[tuple[str, str], Any] = {}   # (bucket, watched record's key) -> the watch's ObjectInfo
    orphans: list[tuple[str, str, Any]] = []   # (prefix, bucket, ObjectInfo)
    for kind in (kinds() if kinds_ is None else tuple(kinds_)):
        where = kind.bucket or bucket
        try:
            longest = max(0.0, float(kind.max_age_s(settings)))
        except Exception:  # noqa: BLE001 - a kind whose lifetime cannot be told is read every time
            longest = 0.0
        hooked = _watch_hook(kind) is not None   # elsewhere a ".watch.json" is a record like any other
        records, watching = set(), {}
        for info in objects.list(where, kind.prefix):
            report.add(kind.prefix, "listed")
            if hooked and info.key.endswith(WATCH_SUFFIX):
                watching[_watched_key(info.key)] = info
                continue
            records.add(info.key)
            if info.last_modified is None or info.last_modified <= now - longest:   # else: too recent to have expired
                outlived = longest > 0 and info.last_modified is not None
                due.append((info.last_modified or 0.0, kind, where, info.key, outlived))
        watches.update(((where, key), info) for key, info in watching.items())
        # a watch whose record never came (its run never started, or failed and let it go): nothing to wait for
        orphans += [(kind.prefix, where, info) for key, info in watching.items() if key not in records
                    and longest > 0 and info.last_modified is not None and info.last_modified <= now - longest]
    for prefix, where, info in orphans:
        try:
            objects.delete(where, info.key, if_match=info.etag)
        except (ConditionalCheckFailed, DoesNotExist):
            continue
        report.add(prefix, "deleted")
    # the oldest first: when the budget runs out, the next sweep still gets to the rest
    due.sort(key=lambda d: d[0])
    report.exhausted = len(due) > budget
    for _, kind, where, key, outlived in due[:budget]:
        try:
            stored = objects.get(where, key)
        except DoesNotExist:
            continue
        report.add(kind.prefix, "read")
        end = kind.expires_at(stored.body)
        if end is None:
            report.add(kind.prefix, "unreadable")
            if not outlived:
                continue   # no expiry to go by, and no lifetime it has outlived: left alone
            end = now - 1  # not a record of ours (none lives that long): nothing can rely on it
        if end >= now:
            report.add(kind.prefix, "kept")
            continue
        if kind.on_expiry is not None and not kind.on_expiry(objects, where, key):
            report.add(kind.prefix, "kept")
            continue
        if (where, key) in watches and not _watch_done(kind, objects, where, key, stored.body):
            report.add(kind.prefix, "kept")
            continue
        try:
            objects.delete(where, key, if_match=stored.etag)
        except (ConditionalCheckFailed, DoesNotExist):
            report.add(kind.prefix, "changed")   # renewed or removed since we read it: not ours to delete
            continue
        report.add(kind.prefix, "deleted")
    if report.total("deleted") or report.total("unreadable"):
        log.info("swept expired records in %s: %s%s", bucket,
                 {p: c["deleted"] for p, c in report.counts.items() if c["deleted"]},
                 " (budget used up; the next sweep goes on)" if report.exhausted else "")
    return report


def _watch_done(kind: Kind, objects, bucket: str, key: str, body: bytes) -> bool:
    """Whether the watched record at ``key`` may go: its kind's hook has done what its watcher needs
    (:func:`watch`); a hook that fails keeps it for the next sweep."""
    hook = _watch_hook(kind)
    if hook is None:
        return False
    try:
        return bool(hook(objects, bucket, key, body, watch_key(key)))
    except Exception as exc:  # noqa: BLE001 - housekeeping: the next sweep tries again
        log.warning("the watch of %s was not dealt with: %s", key, exc.__class__.__name__)
        return False
