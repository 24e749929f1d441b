"""One aggregate write: a document changed only by read-modify-write under its version, with its
audit trail and its events.

A stateful function (a declaration, a dossier, a transfer, a report …) keeps each record as one
document and changes it through :class:`Aggregate`:

- :meth:`Aggregate.mutate` reads the document, lets ``op(doc)`` change it (returning the
  :class:`~lscloud.statemachine.Transition` s it made), and writes it back under ``If-Match``;
  a lost race reads again and runs ``op`` on the fresh document (the project's one retry policy,
  :data:`lscloud.store.retry.DEFAULT`), so concurrent writers never overwrite each other and a
  rule is always checked against what the other writer did;
- after the committed write come the audit entries (create-only, keyed by time and the document's
  version, so a repeat writes nothing new) and the events (ids derived from the same version, so
  JetStream's dedupe drops a repeat; what NATS does not confirm waits in :mod:`lscloud.outbox`);
- the record's own indexes (``side=``: small create-only objects derived from the document) are
  written in that same concurrent round as the audit entries, so a write costs the record's own
  round trip plus one, however many indexes it keeps (:func:`save_all_quietly`);
- hooks carry what differs between functions: ``summary`` (what every event says of the
  document), ``after_commit`` (metrics), ``on_terminal`` (cleanup when the document
  reaches a terminal state), ``created_side`` (the indexes of a new record), ``events_after``
  per call (events that are not transitions).

Everything after the write is derived from the stored record alone — audit keys and event ids
from the version and each transition's time, event times from the transitions, indexes from the
document — so the round can be run again and writes nothing twice. A record that is its own
idempotency record (:mod:`lscloud.idempotency`, ``in_record``) keeps its create's transitions
(``created``): a resend that finds it still at its first version finishes the create's round
(:meth:`Aggregate.resend`), so a process that died, or a store that failed, between the record
and its round leaves nothing missing once the client retries.

A client that does not retry (it gave up, or came back with a new key or a changed body, a 409)
must not leave such a record half-created for good: without its indexes and events it is missing
from every list and unknown to every consumer. So the create of a model that keeps ``created``
writes, in the same concurrent round as the record (latency unchanged), an *unfinished-create
marker* (:class:`UnfinishedCreate`: ``unfinished-creates/<record table>/<µs>_<digest of the
record's key>``; it holds the record's object key, free of personal data by the keys' own rule, and
its create's first transition time), and deletes it behind the answer once the round has finished
(:attr:`Outcome.behind`; not waited for, so a create costs one PUT more and no round trip). The
deletes are batched (:meth:`lscloud.store.Model.delete_later`: one ``DeleteObjects`` per hundred
markers, sent from one background thread within a fifth of a second): a DELETE each was one more
request per create on a store the benchmarks keep busy. A marker left behind (the process died,
the store failed, the record was refused as a duplicate, its batch was lost) is taken up on the
platform clock's tick (:func:`finish_unfinished`, run by every function's runtime,
:mod:`lscloud.knative`) once older than :data:`UNFINISHED_SETTLE_S`, a bounded number per tick,
oldest first: the record read by its key; still at its first version and this create's (its first
transition at the marker's time) → the round is finished as a resend finishes it
(:meth:`Aggregate._finish_create`: one concurrent round of HEADs finds what is missing, and a round
found complete — a marker whose batched delete was lost — writes nothing, runs no hook, and only
publishes its events again under their ids); then, and when the record is absent (the create died
before it landed) or another's (a refused duplicate) or moved since (its create's indexes can no
longer be told from its document: left, and logged), the marker is deleted, a tick's markers of one
table in one batch. The repair is repeat-safe, so two replicas on one tick, or a create still in
flight past the settle time, only repeat create-only writes (found there) and events under their
ids (deduped); ``after_commit`` may then run twice. It finds a marker's aggregate by the record's
table (each one that keeps ``created`` registers itself when built): a function that builds its
aggregate only on first use repairs markers left by an earlier process once it has.

A keyless move answered by its request's own implicit idempotency record (:data:`IMPLICIT_ANSWER`)
names that record in what the record keeps of the move (``moved``), and the record's next write
deletes it beside its round: a client's retry of the move gets the first answer while the move is the
record's last, and the same request after the record moved on is a move of its own.

A domain whose facts must follow consequences of the write (a ledger movement before the bank
hears of a withdrawal) passes ``publish=False``: its transitions are still checked, written and
audited, and it publishes its own events once those consequences exist.

The document is the model's ``data`` attribute; ``mirror`` names document keys that are also
typed attributes of the model (``status``, ``owner`` …), copied on every write.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Generic, Iterable, Sequence, TypeVar

from . import events as ce
from . import outbox
from .errors import Conflict, DomainError, NotFound
from .runonce import IDEMPOTENCY
from .statemachine import Actor, StateMachine, Transition, iso, now, parse_iso
from .store import ConditionalCheckFailed, DoesNotExist, InvalidKey, Model, StoreError, attributes as A, connection
from .store.retry import DEFAULT, Backoff

log = logging.getLogger("lscloud.aggregate")

M = TypeVar("M", bound=Model)

# Side writes are one round trip each, mostly waiting on the store: the pool is wide enough that
# the indexes and audit entries of a few concurrent requests go out at once instead of queueing
# behind each other (8 workers made 8 concurrent declarations wait ~15 PUTs each).
class _InCallersContext(ThreadPoolExecutor):
    """A pool whose every call (``submit``, and ``map``, which submits) runs in a copy of the
    submitting thread's context: its span, so a side write's S3 span stays in the request's trace."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


_side = _InCallersContext(max_workers=32, thread_name_prefix="lscloud-side")


def side_pool() -> ThreadPoolExecutor:
    """The process's pool for side work that goes beside a request's own (indexes, audit entries,
    reads of many records); each call runs in the caller's context."""
    return _side


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent calls at once — the first in this thread, the others on :func:`side_pool`,
    each in the caller's context (its span, so the trace stays one) — and wait for all of them.

    Returns their results in order; if any raised, the first error (in call order) is raised once
    every call has finished, so nothing is still writing when the caller handles it. (Not from a
    side-pool thread: it would wait on its own pool.)"""
    if not calls:
        return []
    others = [_side.submit(c) for c in calls[1:]]
    try:
        first, error = calls[0](), None
    except BaseException as exc:  # noqa: BLE001 - raised after the others finished
        first, error = None, exc
    return [first, *_wait_all(others, error)]


def _wait_all(futures: list, error: BaseException | None = None) -> list:
    """Every future's result, in order; the first error (``error`` first) raised once all finished."""
    results = []
    for f in futures:
        try:
            results.append(f.result())
        except BaseException as exc:  # noqa: BLE001 - raised once every write has finished
            results.append(None)
            error = error or exc
    if error is not None:
        raise error
    return results


MOVED_REDO_S = 900
"""How long after a move a refused move finishes that move's round (:meth:`Aggregate._finish_moved`):
a client retries a request cut off within minutes; past this, its events went out (or never
will), and publishing them again could outlive the consumers' memory of having handled them."""


IMPLICIT_ANSWER: contextvars.ContextVar[str | None] = contextvars.ContextVar("lscloud_implicit_answer", default=None)
"""The object key of the implicit idempotency record that will answer the running request again, set
while a keyless move runs (:func:`lscloud.idempotency.idempotent`, ``implicit_s`` with ``move``). What
:meth:`Aggregate.mutate` keeps of the move (``moved``) names it, and the record's next write deletes
it: the first answer stands for a retry only while that move is still the record's last, so the
same request sent after the record came back (reopen, close, reopen; rate, reopen, rate) is a new
move, not the old answer."""


class NoChange(Exception):
    """Raised by an ``op`` that finds nothing to do: no write, no audit entry, no event."""


@dataclass
class Outcome(Generic[M]):
    """What one write did: the stored item, the transitions, and whatever ``op`` returned."""

    item: M
    transitions: list[Transition] = field(default_factory=list)
    result: Any = None
    behind: Future | None = field(default=None, repr=False, compare=False)
    """What of the write goes on behind the answer (a create's marker deleted), for a caller that
    must know it has ended (tests); nothing waits on it."""

    @property
    def doc(self) -> dict:
        return self.item.data

    @property
    def version(self) -> int:
        return int(self.item.version)

    @property
    def changed(self) -> bool:
        return bool(self.transitions)


def micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)



def audit_key(at: str, version: int, i: int) -> str:
    """The key of the audit entry of a write's ``i``-th transition (at ``at``, the record's ``version``
    after the write): an index that names an entry computes it as the write did."""
    return f"{micros(parse_iso(at)):016d}_{version:06d}_{i:02d}"


def event_id(prefix: str, record_id: str, version: int, i: int) -> str:
    """The id of the event of a write's ``i``-th transition of record ``record_id`` (``version`` after
    the write; ``prefix``: the aggregate's ``event_ids``): the same again for the same stored write,
    so a repeat is dropped as a duplicate, and in the record's order (:func:`event_seq`)."""
    return f"{prefix}{record_id}.{version}.{i}"


_EVENT_ID = re.compile(r"(.+)\.([0-9]{1,9})\.([0-9]{1,4})")


def event_seq(an_event_id: object, record_id: str) -> tuple[int, int] | None:
    """``(version, i)`` of an id :func:`event_id` formed for ``record_id`` (after any prefix a source
    shares among kinds, ``shop:``, not a record whose id merely ends like it): the order its record's
    moves were made in, finer than their times; None for an id of another form (a device's, a sweep's)."""
    m = _EVENT_ID.fullmatch(an_event_id) if isinstance(an_event_id, str) else None
    if m is None:
        return None
    record = m.group(1)
    if not record.endswith(record_id) or (len(record) > len(record_id) and record[-len(record_id) - 1].isalnum()):
        return None
    return int(m.group(2)), int(m.group(3))


def save_quietly(item: Model) -> bool:
    """Create ``item``; False (no error) if it is already there: the repeat of a committed write."""
    try:
        item.save()
        return True
    except ConditionalCheckFailed:
        return False


def save_all_quietly(items: Iterable[Model]) -> list[bool]:
    """Create every one of ``items`` at once (create-only, each its own conditional PUT on the side
    pool): True where written, False where already there (the repeat of a committed write).

    Every write is tried and waited for before the first other error is raised, so a retry finds
    exactly what is missing. Not to be called from a side-pool thread (it waits on that pool).
    """
    return _wait_all([_side.submit(save_quietly, item) for item in items])


def stored(item: Model) -> bool:
    """Whether ``item``'s key holds an object (one HEAD, nothing written)."""
    cls = type(item)
    return cls.exists(getattr(item, cls._hash_attr.name),
                      getattr(item, cls._range_attr.name) if cls._range_attr is not None else None)


def delete_quietly(model: type[Model], *key: Any) -> None:
    """Delete the item at ``key`` if it is there (an index a finished record no longer needs)."""
    try:
        model(*key).delete()
    except (DoesNotExist, ConditionalCheckFailed):
        pass


def give_back(model: type[Model], claim: Future) -> None:
    """Delete the ``model`` item a claim on :func:`side_pool` made beside the caller's work
    (``claim``'s result is its key: a unique code claimed create-only), once the claim has ended;
    nothing if it stored nothing. For a record that was not stored after all (refused, or a resend)."""
    try:
        key = claim.result()
    except Exception:  # noqa: BLE001 - nothing was claimed
        return
    delete_quietly(model, key)


UNFINISHED_SETTLE_S = 60.0
"""How old an unfinished-create marker must be before the clock's repair takes it up: a create
still under way (its record's PUT retried, its round in flight) is left to finish itself."""
UNFINISHED_BUDGET = 100
"""At most this many markers of one table are taken up per tick (the oldest): the tick stays
short, the next one goes on."""


class UnfinishedCreate(Model):
    """A create whose round may not have finished (see the module docstring)."""

    class Meta:
        table = "unfinished-creates"
        working = True   # machinery, deleted within moments: never a record (lscloud.store.working)

    records = A.UnicodeAttribute(hash_key=True)    # the record model's table
    entry = A.UnicodeAttribute(range_key=True)     # "<µs, 16 digits>_<digest of the record's key>": oldest first
    record = A.UnicodeAttribute()                  # the record's object key
    created_at = A.UnicodeAttribute(null=True)     # its create's first transition: tells its record from another's


_creators: dict[str, "Aggregate"] = {}   # record table -> the aggregate that finishes its creates
_creators_lock = threading.Lock()


def _mark(item: Model, at: datetime) -> UnfinishedCreate:
    """Store the marker of ``item``'s create (begun at ``at``)."""
    key = item._key()
    created = getattr(item, "created", None) or []
    marker = UnfinishedCreate(type(item)._table, f"{micros(at):016d}_{hashlib.sha256(key.encode()).hexdigest()[:32]}",
                              record=key, created_at=created[0]["at"] if created else None)
    return marker.save()


def _landed(marking: Future | None) -> None:
    """Wait for a marker's write to end (a create that failed hands its marker to the repair:
    nothing is still writing when the caller handles the error)."""
    if marking is None:
        return
    try:
        marking.result()
    except InvalidKey:
        pass   # the record's key is as invalid: nothing was stored
    except Exception as exc:  # noqa: BLE001 - the create's own error is the one that matters
        log.warning("an unfinished-create marker was not stored (%s): a record cut off now waits for a resend",
                    exc.__class__.__name__)


def _unmark(marking: Future | None) -> Future | None:
    """Hand a create's marker to the store's batched deletes once its write has ended, not waited
    for: the round it stood for is finished (or its create refused), so the answer does not wait on
    it, and a hundred creates' markers cost one ``DeleteObjects`` (:meth:`Model.delete_later`)
    instead of a DELETE each. One whose batch is lost
    (the process killed before it went) is the repair's: it finds that create's round complete,
    writes nothing, and deletes it. The future ends when its batch was sent (tests wait on it)."""
    if marking is None:
        return None
    conn = UnfinishedCreate._conn()   # this thread's store: the callback runs in the writer's thread
    gone: Future = Future()

    def when_stored(f: Future) -> None:
        try:
            deleting = f.result().delete_later(conn=conn)
        except BaseException as exc:  # noqa: BLE001 - not stored (the create's error tells), or left to the repair
            log.debug("an unfinished-create marker was not handed over for deletion: %s", exc.__class__.__name__)
            gone.set_result(None)
            return
        deleting.add_done_callback(lambda _: gone.set_result(None))

    # chained on the marker's own write, so no pool thread waits for another's work
    marking.add_done_callback(when_stored)
    return gone


class Aggregate(Generic[M]):
    """The write path of one kind of document (see the module docstring).

    ``model`` has a hash key (the record's id), a ``data`` JSONAttribute and a VersionAttribute
    ``version``; ``audit`` is a model ``audit(record_id, entry_key, data=...)`` (or None for no
    trail); ``source`` is the CloudEvents source of its events (``/border``); ``publish=False``
    leaves the transitions' events to the function (see the module docstring).

    ``event_ids``: what the ids of its events start with, for a kind of record that shares its
    source with another whose ids a client also chooses (a market's shops and lots): CloudEvents
    needs source + id unique, and a consumer drops a second event of that pair as a repeat.

    ``created_side(doc)``: the index objects of a new record, from its stored document alone (no
    clock, no request), created beside its audit entries by :meth:`create` and again, where
    missing, by :meth:`resend`. ``side(doc)``: index objects *every* committed write's document
    keeps (an entry whose key follows the document's state), created the same way after a create
    and after each :meth:`mutate`; an entry of an earlier state is the function's to clean. A model
    with JSON attributes ``request`` (the idempotency stamp) and ``created`` (kept by :meth:`create`:
    its transitions) can be answered by :meth:`resend`.

    ``event_actor(actor)``: the actor as each transition's *event* names it (:meth:`event`), for a
    function whose audit entries must keep who acted in clear (its own accountable record, in its
    own bucket) while the stream, read by other functions and kept with its dead letters long
    after, must not carry a person's identifier: typically a pseudonym for the kinds of actor whose
    subject is one (:meth:`lscloud.statemachine.Actor.pseudonymous`), the others as they are. The
    audit entries, what a record keeps of its moves and the transitions handed to hooks are left
    as they are; an event a function builds itself (:meth:`fact`, ``events_after``) is its own to
    mind. It must answer the same for the same actor (a re-run round publishes the same event).
    """

    def __init__(self, model: type[M], *, machine: StateMachine, source: str, audit: type[Model] | None = None,
                 summary: Callable[[dict], dict] | None = None, mirror: Sequence[str] = (),
                 after_commit: Callable[[Outcome], None] | None = None,
                 on_terminal: Callable[[dict], None] | None = None, backoff: Backoff = DEFAULT,
                 publish: bool = True, created_side: Callable[[dict], Iterable[Model]] | None = None,
                 side: Callable[[dict], Iterable[Model]] | None = None, event_ids: str = "",
                 event_actor: Callable[[Actor], Actor] | None = None):
        self.model = model
        self.machine = machine
        self.source = source
        self.audit = audit
        self.summary = summary or (lambda doc: {})
        self.mirror = tuple(dict.fromkeys((machine.state_field, *mirror)))
        self.after_commit = after_commit
        self.on_terminal = on_terminal
        self.backoff = backoff
        self.publish = publish
        self.created_side = created_side
        self.side = side
        self.keeps_created = "created" in model._attributes
        self.keeps_moved = "moved" in model._attributes
        self.event_ids = event_ids
        self.event_actor = event_actor
        if self.keeps_created:   # the clock's repair finds it by its records' table
            with _creators_lock:
                _creators[model._table] = self

    # -- reading ------------------------------------------------------------------------------------

    def get(self, record_id: str) -> M:
        """The stored record (``model.DoesNotExist`` if there is none)."""
        return self.model.get(record_id)

    def visible(self, record_id: str, can_see: Callable[[dict], bool]) -> M:
        """The record if the caller may see it; otherwise — and when there is none, or the id could
        not even be a key — the same 404, so a caller cannot probe for records that are not theirs."""
        try:
            item = self.model.get(record_id)
        except (DoesNotExist, InvalidKey):
            item = None
        if item is None or not can_see(item.data):
            raise NotFound(f"No {self.machine.noun} with this id is visible to you.",
                           detail_vi=f"Không tìm thấy {self.machine.noun_vi} (hoặc bạn không có quyền xem).")
        return item

    def trail(self, record_id: str) -> list[dict]:
        """The record's audit trail, oldest first."""
        if self.audit is None:
            return []
        return [{"entry": a.entry, **a.data} for a in self.audit.query(record_id)]

    # -- writing ------------------------------------------------------------------------------------

    def _sync(self, item: M, doc: dict) -> None:
        item.data = doc
        for name in self.mirror:
            setattr(item, name, doc.get(name))

    def create(self, item: M, transitions: Sequence[Transition], *,
               conflict: Conflict | None = None) -> Outcome[M]:
        """Store a new record create-only, then its trail, its indexes (``created_side``) and its
        events at once. The record keeps its transitions (``created``, when its model has it), so a
        resend can finish this round (:meth:`resend`).

        A record already at that id raises ``conflict`` (default: a 409 naming the id).

        Such a record's create also writes its unfinished-create marker beside it, and deletes it
        behind the answer (``behind``) once the round has finished (see the module docstring).
        """
        self._sync(item, item.data)
        marking = None
        if self.keeps_created:
            item.created = [_kept(t) for t in transitions]
            marking = _side.submit(_mark, item, now())
        try:
            item.save()
        except ConditionalCheckFailed:
            _unmark(marking)   # another's record: nothing of this create to finish
            raise conflict or Conflict(f"a {self.machine.noun} with this id already exists",
                                       detail_vi=f"Đã có {self.machine.noun_vi} với mã này.") from None
        except BaseException:
            _landed(marking)   # stored or not, the repair will tell
            raise
        out = Outcome(item, list(transitions))
        try:
            self.commit(out, [], side=self._created_side(item.data))
        except BaseException:
            _landed(marking)
            raise
        out.behind = _unmark(marking)
        return out

    def resend(self, record_id: str, judge: Callable[[dict | None], bool]) -> Outcome[M] | None:
        """The stored record a refused create is the resend of, or None (none there, or
        ``judge(record.request)`` says it is not this request's: :func:`lscloud.idempotency.resent`,
        which raises the 409 naming the fields for another body).

        A record still at its first version (nothing changed it since its create) gets its create's
        round finished before it is answered: the audit entries and indexes not stored are written
        (create-only; one concurrent round of HEADs finds them, so a complete record costs no
        write), and the events are published again under their ids (JetStream drops a repeat
        inside its duplicate window, consumers by id after it). ``after_commit`` runs when this
        wrote what the create had not."""
        try:
            item = self.model.get(record_id)
        except (DoesNotExist, InvalidKey):
            return None
        if not judge(getattr(item, "request", None)):
            return None
        if int(item.version) == 1 and getattr(item, "created", None) is not None:
            self._finish_create(item)
        return Outcome(item)

    def _finish_create(self, item: M) -> bool:
        return self._finish(Outcome(item, [_transition(t) for t in item.created]), self._created_side(item.data))

    def _repair(self, marker: UnfinishedCreate) -> str:
        """Take up one unfinished-create marker (:func:`finish_unfinished`): what was found; the
        marker is to be deleted unless the round could not be finished (``failed``)."""
        try:
            # the key a create of ours wrote, nothing else: a marker names a record of this table only
            item = self.model._load(marker.record) if self.model._key_re().fullmatch(marker.record) else None
        except StoreError as exc:
            log.warning("reading a record of %s for its unfinished create failed: %s", marker.records,
                        exc.__class__.__name__)
            return "failed"
        created = getattr(item, "created", None) if item is not None else None
        if item is None:
            found = "absent"
        elif created is None or (created[0]["at"] if created else None) != marker.created_at:
            found = "other"
        elif int(item.version) != 1:
            found = "moved"
            # its create's indexes can no longer be told from its document (nor would a resend finish it)
            log.warning("a record of %s moved before its create's round was finished (marker %s): left as it is",
                        marker.records, marker.entry)
        else:
            try:
                # a round found complete (the create finished; its marker's batched delete was lost)
                # costs its HEADs and its events again under their ids, and writes nothing
                found = "finished" if self._finish_create(item) else "complete"
            except Exception as exc:  # noqa: BLE001 - the marker stays for the next tick
                log.warning("finishing an unfinished create of %s failed: %s", marker.records,
                            exc.__class__.__name__)
                return "failed"
        return found

    def _finish_moved(self, record_id: str, refused: M,
                      side: Callable[[dict], Iterable[Model]] | None = None) -> None:
        """Finish the round of the record's last move (its audit entries, the indexes every write
        keeps, its events), should a process have died between that move's write and its round.
        The refused call's own ``side`` indexes too, when the last move was made by a call with the
        same ``side`` (its retry): another call's would be indexes of a move it did not make.

        Called where a move is refused (``op`` raised :class:`NoChange` or a Conflict, on
        ``refused``, the copy it was given): what a client's retry of a move cut off after its write
        meets, since the record has moved. Only a model that keeps its last move's transitions
        (``moved``) can; within the redo window the record is read again, as ``op`` may have
        changed the copy it refused. Costs one round of HEADs, on refusals only;
        a round found complete writes nothing, and its events go out again under their ids."""
        if not self.keeps_moved or not _recent(getattr(refused, "moved", None)):
            return   # judged on the copy in hand: op changes its document, never what it keeps of moves
        try:
            item = self.model.get(record_id)
        except (DoesNotExist, InvalidKey):
            return
        moved = getattr(item, "moved", None)
        if int(item.version) < 2 or not _recent(moved):
            return
        out = Outcome(item, [_transition(t) for t in moved])
        own = side is not None and moved[-1].get("side") == _side_name(side)
        self._finish(out, list(side(item.data)) if own else [])
        self._after_terminal(out)

    def _finish(self, out: Outcome[M], side: list[Model]) -> bool:
        """Write what of ``out``'s round is missing (one concurrent round of HEADs finds it) and
        publish its events again; ``after_commit`` when this wrote anything. Whether it did."""
        entries, evts = self._round(out)
        wanted = [*entries, *side, *self._every_side(out.doc)]
        checking = [_side.submit(stored, m) for m in wanted]
        try:
            outbox.publish(evts)
        except BaseException as exc:  # noqa: BLE001 - raised once the HEADs have ended
            _wait_all(checking, exc)
        missing = [m for m, there in zip(wanted, _wait_all(checking)) if not there]
        wrote = any(save_all_quietly(missing))
        if wrote and self.after_commit is not None:
            self.after_commit(out)
        return wrote

    def _created_side(self, doc: dict) -> list[Model]:
        return list(self.created_side(doc)) if self.created_side else []

    def _every_side(self, doc: dict) -> list[Model]:
        return list(self.side(doc)) if self.side else []

    def _apply(self, record_id: str, op: Callable[[dict], Any], guess: M | None):
        """(item, its document, what ``op`` answered, or how it refused: NoChange or a domain error),
        ``op`` run on ``guess`` and, if it refuses or skips there, on the record as stored: a copy
        that may be stale (another thread's write remembered after a newer one) decides a write,
        which its If-Match checks, never a refusal or a skip, which nothing would check."""
        while True:
            item = guess if guess is not None else self.model.get(record_id)
            doc = item.data
            try:
                return item, doc, op(doc), None
            except (NoChange, DomainError) as refusal:
                if guess is None:
                    return item, doc, None, refusal
                guess = None

    def mutate(self, record_id: str, op: Callable[[dict], Any], *,
               events_after: Callable[[dict, Any], list[dict]] | None = None,
               backoff: Backoff | None = None, item: M | None = None,
               side: Callable[[dict], Iterable[Model]] | None = None) -> Outcome[M]:
        """Read-modify-write one record under ``If-Match``.

        ``op(doc)`` changes the fresh document and returns the transitions it made (a list), or
        ``(transitions, result)``; raising :class:`NoChange` (or returning no transition and no
        result) skips the write. Domain errors raised by ``op`` pass through. After the write,
        ``events_after(doc, result)`` may add events that are not transitions.

        ``item``: the record as the caller just read (or wrote) it, to save the first read. Its
        ETag still guards the write, so a stale one only costs the re-read it saved; one ``op``
        refuses or skips is read again first. ``op`` may change its document in place, so the
        caller hands it over.

        ``side(doc)``: index objects of the committed document, created (create-only) in the same
        concurrent round as its audit entries (not called when nothing was written).
        """
        policy = backoff or self.backoff
        guess = item
        for attempt in range(policy.retries + 1):
            item, doc, out, refusal = self._apply(record_id, op, guess)
            guess = None
            if refusal is not None:
                if isinstance(refusal, (NoChange, Conflict)):
                    self._finish_moved(record_id, item, side)
                if isinstance(refusal, NoChange):
                    return Outcome(item)
                raise refusal
            transitions, result = out if isinstance(out, tuple) else (out or [], None)
            if not transitions and result is None:
                return Outcome(item)
            self._sync(item, doc)
            answer, earlier = IMPLICIT_ANSWER.get(), []
            if answer is not None and not self.keeps_moved:
                _answer_not_kept(self.model.__name__)
            if self.keeps_moved:
                # what this write replaces is what the item was read with: its If-Match says so
                earlier = [a for a in _answers(getattr(item, "moved", None)) if a != answer]
                item.moved = [_kept(t, side, answer) for t in transitions]
            try:
                item.save()
            except ConditionalCheckFailed:
                if attempt < policy.retries:
                    policy.pause(attempt)
                continue
            # beside the round, not after it: no round trip more on the answer's way
            withdrawing = _side.submit(_withdraw, earlier) if earlier else None
            outcome = Outcome(item, list(transitions), result)
            try:
                self.commit(outcome, events_after(doc, result) if events_after else [],
                            side=list(side(doc)) if side else ())
            finally:
                if withdrawing is not None:
                    withdrawing.result()
            return outcome
        raise ConditionalCheckFailed(f"{self.machine.noun} {record_id} kept changing: {policy.retries} retries",
                                     key=record_id)

    def commit(self, outcome: Outcome[M], extra_events: list[dict], side: Sequence[Model] = ()) -> None:
        """What follows a committed write: audit entries and ``side`` objects (all in flight at once,
        create-only), events, hooks (each repeat-safe)."""
        entries, evts = self._round(outcome)
        saving = [_side.submit(save_quietly, e) for e in (*entries, *side, *self._every_side(outcome.doc))]
        try:
            outbox.publish(evts + list(extra_events))
        except BaseException as exc:  # noqa: BLE001 - raised once every write has ended
            _wait_all(saving, exc)
        _wait_all(saving)
        if self.after_commit is not None:
            self.after_commit(outcome)
        self._after_terminal(outcome)

    def _after_terminal(self, outcome: Outcome[M]) -> None:
        """``on_terminal`` when ``outcome``'s moves brought the record to a terminal state."""
        if self.on_terminal is not None and self.machine.is_terminal(outcome.doc[self.machine.state_field]) and \
                any(self.machine.is_terminal(t.target) for t in outcome.transitions):
            self.on_terminal(outcome.doc)

    def _round(self, outcome: Outcome[M]) -> tuple[list[Model], list[dict]]:
        """The audit entries and events of ``outcome``'s transitions, each keyed by the record's
        version, its place and its transition's time: the same again for the same stored write."""
        doc, version = outcome.doc, outcome.version
        record_id = str(getattr(outcome.item, type(outcome.item)._hash_attr.name))
        entries, evts = [], []
        for i, t in enumerate(outcome.transitions):
            if self.audit is not None:
                entries.append(self.audit(record_id, audit_key(t.at, version, i), data=t.audit()))
            if self.publish:
                evts.append(self.event(t, doc, record_id, event_id(self.event_ids, record_id, version, i)))
        return entries, evts

    def event(self, t: Transition, doc: dict, subject: str, event_id: str) -> dict:
        """The CloudEvent of one transition: the document's summary plus what the move did, its
        actor as ``event_actor`` names it."""
        data = t.event_data()
        if self.event_actor is not None:
            data["actor"] = self.event_actor(t.actor).as_dict()
        # its time is the transition's, not the clock's: the same event again when a round is re-run
        return ce.new_event(t.type, self.source, {**self.summary(doc), **data}, subject=subject,
                            id=event_id, time=parse_iso(t.at))

    def fact(self, fact: str, data: dict, *, subject: str | None = None, id: str | None = None) -> dict:
        """A CloudEvent of this domain that is not a transition (``decision.recorded``)."""
        return ce.new_event(self.machine.event_type(fact), self.source, data, subject=subject, id=id)

    def audit_only(self, item: M, action: str, actor, *, at: datetime | None = None, details: dict | None = None,
                   reason: str | None = None, seq: int = 0) -> None:
        """An audit entry for a change that is not a transition (a risk lane, an attachment)."""
        if self.audit is None:
            return
        at = at or now()
        state = item.data[self.machine.state_field]
        entry = {"action": action, "from": state, "to": state, "fact": None, "at": iso(at),
                 "actor": actor.as_dict(), "reason": reason, "details": dict(details or {})}
        record_id = str(getattr(item, type(item)._hash_attr.name))
        save_quietly(self.audit(record_id, f"{micros(at):016d}_{int(item.version):06d}_{50 + seq:02d}", data=entry))


def _recent(moved: list | None) -> bool:
    """Whether a record's last move (``moved``) is within :data:`MOVED_REDO_S`."""
    return bool(moved) and (now() - parse_iso(moved[-1]["at"])).total_seconds() <= MOVED_REDO_S


@functools.lru_cache(maxsize=None)
def _answer_not_kept(model: str) -> None:
    """Say once per model that a keyless move wrote it without keeping its answer's key: the
    view's first answer then stands its whole implicit window, whatever moves the record after
    (:data:`IMPLICIT_ANSWER`; the model needs a ``moved`` attribute)."""
    log.error("a keyless move (idempotent(move=True)) wrote %s, which keeps no 'moved' attribute: its first "
              "answer is replayed for the whole implicit window even after the record moves on", model)


def _kept(t: Transition, side: Callable | None = None, answer: str | None = None) -> dict:
    """``t`` as a record keeps it (JSON) for :func:`_transition`, with the name of the call's own
    ``side`` (:meth:`Aggregate._finish_moved` writes those indexes only for that call's retry) and the
    key of the implicit record answering the call again (:data:`IMPLICIT_ANSWER`)."""
    kept = {"action": t.action, "source": t.source, "target": t.target, "fact": t.fact, "type": t.type,
            "actor": t.actor.as_dict(), "at": t.at, "reason": t.reason, "details": t.details}
    if side is not None:
        kept["side"] = _side_name(side)
    if answer is not None:
        kept["answer"] = answer
    return kept


def _answers(moved: list | None) -> list[str]:
    """The implicit records answering the moves ``moved`` again (:data:`IMPLICIT_ANSWER`)."""
    return list(dict.fromkeys(k["answer"] for k in moved or () if isinstance(k.get("answer"), str)))


def _withdraw(keys: list[str]) -> None:
    """Delete the implicit records ``keys``: their moves are no longer the record's last. Quietly: one
    left answers its request again until it expires, as before this was done."""
    objects, bucket = connection()
    for key in keys:
        if not key.startswith(IDEMPOTENCY.prefix):   # a record's own field names only such a key
            continue
        try:
            objects.delete(bucket, key)
        except StoreError as exc:
            log.warning("an implicit answer of a move was not withdrawn: %s", exc.__class__.__name__)


def _side_name(side: Callable) -> str:
    # the same in every replica and release that has the function where it is
    return f"{side.__module__}.{side.__qualname__}"


def _transition(kept: dict) -> Transition:
    return Transition(**{**{k: v for k, v in kept.items() if k not in ("side", "answer")},
                         "actor": Actor(**kept["actor"])})


def finish_unfinished(now_s: float | None = None, *, settle_s: float | None = None,
                      budget: int = UNFINISHED_BUDGET) -> dict[str, int]:
    """Take up the unfinished-create markers older than ``settle_s`` (default
    :data:`UNFINISHED_SETTLE_S`) at ``now_s`` (epoch seconds; the tick's minute, default the clock)
    of every aggregate built in this process that keeps ``created``, at most ``budget`` of each
    table, oldest first (see the module docstring). Returns how many were ``finished`` (what of a
    round was missing written), ``complete`` (nothing was missing: only the marker's delete had
    been lost), ``absent`` (no record), ``other`` (another create's record), ``moved`` (moved since
    its create) — each then deleted, a table's in one batch — and ``failed`` (kept for the next
    tick). Not from a side-pool thread (a round waits on that pool)."""
    now_s = time.time() if now_s is None else now_s
    settle_s = UNFINISHED_SETTLE_S if settle_s is None else settle_s
    newest = f"{max(0, int((now_s - settle_s) * 1_000_000)):016d}"
    counts = dict.fromkeys(("finished", "complete", "absent", "other", "moved", "failed"), 0)
    with _creators_lock:
        creators = sorted(_creators.items())
    for table, agg in creators:
        try:
            markers = UnfinishedCreate.query(table, range_between=(None, newest), limit=budget)
        except StoreError as exc:
            log.warning("listing unfinished creates of %s failed: %s", table, exc.__class__.__name__)
            counts["failed"] += 1
            continue
        taken = []
        for marker in markers:
            found = agg._repair(marker)
            counts[found] += 1
            if found != "failed":
                taken.append(marker)
        try:
            left = len(UnfinishedCreate.batch_delete(taken))
        except StoreError as exc:
            left = len(taken)
            log.warning("deleting unfinished-create markers of %s failed: %s", table, exc.__class__.__name__)
        if left:   # taken up again next tick: all of the above is repeat-safe
            log.warning("%d unfinished-create markers of %s were not deleted", left, table)
    if any(counts.values()):
        log.info("unfinished creates taken up: %s", {k: n for k, n in counts.items() if n})
    return counts
