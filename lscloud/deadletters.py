"""Dead letters a function is told of: the events its subscriptions gave up on, kept in its bucket.

When a Trigger's retries are spent, or the subscriber answers a 4xx no retry can fix, Knative
Eventing sends the event to the Trigger's dead-letter sink with three CloudEvents extension
attributes added: ``knativeerrorcode`` (the last HTTP status), ``knativeerrordata`` (the last
answer's body, base64) and ``knativeerrordest`` (the subscriber's URL). The platform points each
function's Triggers at the function's own ``/events/dead-letters`` (``infra/components/function.py``;
the route is the runtime's, :mod:`lscloud.knative`), and the local dispatcher delivers there the same way after
keeping its record in ``<stream>_DLQ`` (:mod:`lscloud.delivery`). So a dead letter lands where
the people who can act on it look: the function's operators list it, and a function that can send
it again (a webhook after a bank fixed its address) settles it when it did.

The platform's own record (``<stream>_DLQ`` locally, its dead-letter channel in the cluster) is
not readable by a function: its NATS user may only publish its own events.

A dead letter is kept once per event (CloudEvents ``source`` + ``id``) and function: Knative retries
its sink too, and a repeat finds the record there. Records are ordered by the event's ``time`` and
kept :data:`RETENTION_S`, settled or not.

Each function keeps its letters apart (:func:`shelf`, and ``data.function``): in the local cloud every
function shares one bucket, and a list of every function's letters let an operator retry one through
the wrong function (two functions that gave up on one event kept one letter between them). Letters
kept before that, on the shared shelf (:data:`LEGACY_SHELF`), stay readable where they are: listed
first, and acted on, by the function whose they were (:func:`_legacy_mine`).

A dead letter is not always a failure: a delivery given up on (the dispatcher's timeout, a Knative
broker's; a paused function's requests wait in its backlog meanwhile) may still run to its end, and
its events-seen record (:func:`lscloud.runonce.events_seen_key`, :func:`lscloud.store.leases.completed`) says so.
Such a letter is settled when it is kept, or when it is listed, as done after all
(:data:`DONE_AFTER_ALL`, with the reason): kept for the record, not open. A ``repeat_safe``
handler keeps no such record: its letters stay as they are, since nothing says their event was done.

The record lives ``idempotency_ttl_s`` (a day), the letter a year: a letter kept open whose event
was then done, listed by nobody before the record went, would look open after it, and an operator's
retry would run its event twice. So a letter kept open leaves a watch beside its event's record
(:func:`lscloud.runonce.watch_key`, one create-only write, for dead letters only): before the sweep
deletes that record, it settles the letter done after all if the record says so
(:func:`_before_record_goes`), and the record expires as any other. An operator's retry reads the
record first too (:func:`finished`): one past its end but not swept yet still says the event was done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import urlparse

from . import events, metrics, runonce
from .errors import Conflict, NotFound
from .query import unissued_page_token
from .timestamps import iso
from .store import ConditionalCheckFailed, DoesNotExist, InvalidKey, Model, ResultPage, StoreError
from .store import attributes as A
from .store import keys

OPEN, SETTLED = "open", "settled"
RETENTION_S = 366 * 86_400
"""How long a dead letter is kept after it came, settled or not (the runtime's sweep deletes it then):
a year of what failed, for audit, without a bucket that only grows."""
LEGACY_SHELF = "letters"
"""Where every function's letters were kept, in one list, before each function's were kept apart."""
_READ_LIMIT = 1000   # records one filtered page reads at most
DONE_AFTER_ALL = "done_after_all"
"""The action of a letter settled by the runtime itself: its event's handler had finished it after all."""

log = logging.getLogger("lscloud.deadletters")


class DeadLetter(Model):
    """One event a subscription of this function gave up on. ``id``: ``<event time, µs>_<digest>``."""

    class Meta:
        table = "lscloud-dead-letters"
        ttl_max_s = RETENTION_S

    shelf = A.UnicodeAttribute(hash_key=True)
    id = A.UnicodeAttribute(range_key=True)
    state = A.UnicodeAttribute()
    data = A.JSONAttribute()
    expires_at = A.TTLAttribute()
    version = A.VersionAttribute()


LETTER = 'schema("lscloud/dead-letter-id.json", match=False):letter'
"""A route's dead letter argument (:mod:`lscloud.web.pathparams`): documented as :func:`letter_id`
makes one, routed whatever it holds, so another is the view's ``unknown-dead-letter``."""


def letter_id(event: dict[str, Any]) -> str:
    """A dead letter's id: the event's time (µs, so the list is in event order) and a digest of
    its ``source`` and ``id`` (so each event is kept once, and nothing it carries is in the key)."""
    when = metrics.event_time(event)
    micros = max(0, int(when * 1_000_000)) if when is not None else 0
    digest = hashlib.sha256(f"{event.get('source')}\n{event.get('id')}".encode()).hexdigest()[:20]
    return f"{micros:016d}_{digest}"


def _settings_and_name() -> tuple[Any, str]:
    """The current function's settings and name: the app serving the request, else the process's runtime."""
    from flask import has_app_context

    if has_app_context():
        from .context import app_state

        state = app_state()
        return state.settings, state.name
    from . import runtime

    settings = runtime.current().settings
    return settings, settings.service


def function_name() -> str:
    """The function whose letters these are (the one this process or request serves)."""
    return _settings_and_name()[1]


def shelf(function: str | None = None) -> str:
    """The hash key ``function``'s letters are kept under (default: the current function's)."""
    return f"{LEGACY_SHELF}/{function or function_name()}"


def _own_port() -> int | None:
    """The port this function is served on: the request's (None outside one)."""
    from flask import has_request_context, request

    raw = request.environ.get("SERVER_PORT") if has_request_context() else None
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _legacy_mine(letter: DeadLetter) -> bool:
    """Whether a letter kept on the shared shelf, before letters were kept per function, is the
    current function's. In the cluster a function's bucket is its own: all are. In the local cloud's
    one bucket, its stored ``destination`` (the subscriber's URL the dispatcher gave up on) says whose:
    ``http://127.0.0.1:<port>/events``, the port `lscloud up` serves the function on (kept across runs
    in the state dir) and the request came in on, or a host named after the function."""
    settings, name = _settings_and_name()
    if getattr(settings, "env", "local") != "local":
        return True
    dest = urlparse(str(letter.data.get("destination") or ""))
    if (dest.hostname or "").split(".")[0] == name:
        return True
    try:
        port = dest.port
    except ValueError:
        return False
    return port is not None and port == _own_port()


def keep(event: dict[str, Any], received_at: datetime | None = None, *,
         watch: bool = True) -> tuple[DeadLetter, bool]:
    """Keep a dead letter (the event as delivered to the sink) on the current function's shelf;
    ``(letter, created)``. A repeat of one already kept leaves it as it is (settled or not).
    ``watch``: the event's handler keeps an events-seen record (not a ``repeat_safe`` one's), so
    a letter kept open watches it (:func:`_watch`), unless its delivery was refused (a 4xx: the event
    was judged, no run of it goes on)."""
    failure = events.DeliveryFailure.of(event)
    original = {k: v for k, v in event.items() if k not in events.DEAD_LETTER_EXTENSIONS}
    came = received_at or datetime.now(timezone.utc)
    name = function_name()
    (finished,) = _finished([original])
    letter = DeadLetter(shelf=shelf(name), id=letter_id(original), state=OPEN if finished is None else SETTLED,
                        expires_at=came + timedelta(seconds=RETENTION_S),
                        data={"event": original, "status": failure.status, "error": failure.error,
                              "destination": failure.destination, "function": name,
                              "dead_lettered_at": iso(came, "auto"),
                              **({} if finished is None else {"settled": _done_after_all(finished)})})
    refused = failure.status is not None and 400 <= failure.status < 500 and failure.status not in (408, 429)
    if finished is None and watch and not refused:
        _watch(letter)   # first: a watch lost after the letter was saved, the sink's retry would find the letter
    try:
        kept = letter.save()
    except ConditionalCheckFailed:
        again = DeadLetter.get(letter.shelf, letter.id)
        return (again if finished is None or again.state != OPEN else _settle_finished(again, finished)), False
    if finished is not None:
        _log_settled(kept)
    return kept, True


def _watch(letter: DeadLetter) -> None:
    """Leave a watch of ``letter`` beside its event's events-seen record (there or still to come),
    create-only: the sweep then settles the letter before the record goes (:func:`_before_record_goes`)."""
    from . import store

    objects, bucket = store.connection()
    key = runonce.watch_key(runonce.events_seen_key(letter.data["function"], letter.data["event"]))
    try:
        objects.put(bucket, key, json.dumps({"shelf": letter.shelf, "id": letter.id}).encode(), if_none_match=True)
    except ConditionalCheckFailed:
        pass   # the sink told again: its first telling left it


def _before_record_goes(objects, bucket: str, key: str, body: bytes, watch_key: str) -> bool:
    """The sweep is about to delete the watched events-seen record at ``key`` (:func:`lscloud.runonce.watch`):
    the watching letter, if still open and the record completed, is settled done after all first; then
    the watch goes. False (the record is kept for a later sweep) while an operator's action holds the
    letter or the store does not answer."""
    from .store import leases

    try:
        watcher = json.loads(objects.get(bucket, watch_key).body)
        letter = DeadLetter.get(watcher["shelf"], watcher["id"])
    except (DoesNotExist, InvalidKey, ValueError, KeyError, TypeError):
        letter = None   # no watch, or its letter gone (past its year): nothing waits on the record
    try:
        record = json.loads(body)
    except ValueError:
        record = None
    done = isinstance(record, dict) and record.get("status") == leases.COMPLETED
    if letter is not None and letter.state == OPEN and done and _settle_finished(letter, record).state == OPEN:
        return False   # an operator's action holds it (and goes by the record), or the store did not answer
    try:
        objects.delete(bucket, watch_key)
    except DoesNotExist:
        pass
    return True


runonce.watch(runonce.EVENTS_SEEN, _before_record_goes)


def finished(event: dict[str, Any]) -> dict[str, Any] | None:
    """The events-seen record saying the current function's handler finished ``event``, past its end
    or not, else None (one GET): what a retry of its letter goes by before running it again."""
    return _finished([event])[0]


def _finished(events_: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """For each event, the events-seen record saying the current function's handler finished it,
    else None (not finished, still running, or a ``repeat_safe`` handler's: nothing says it was done).
    One GET each, sent together (:func:`lscloud.store.leases.completed`)."""
    if not events_:
        return []
    from . import store
    from .store import leases

    name = function_name()
    seen = [runonce.events_seen_key(name, event) for event in events_]
    objects, bucket = store.connection()
    done = leases.completed(objects, bucket, seen)
    return [done.get(key) for key in seen]


def _done_after_all(record: dict[str, Any]) -> dict[str, Any]:
    """The settlement of a letter whose event ``record`` (its events-seen record) says was done."""
    try:
        done_at = iso(datetime.fromtimestamp(float(record["done_at"]), timezone.utc))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        done_at = None
    return {"action": DONE_AFTER_ALL, "result": "done", "by": "lscloud", "at": iso(datetime.now(timezone.utc)),
            "done_at": done_at,
            "reason": "The function finished this event after all: its delivery was given up on (no answer in "
                      "time) while the run went on. Nothing to retry.",
            "reason_vi": "Chức năng đã xử lý xong sự kiện này: lần gửi bị bỏ dở (không có trả lời kịp thời) trong "
                         "khi việc xử lý vẫn tiếp tục. Không cần gửi lại."}


def _log_settled(letter: DeadLetter) -> None:
    # the warning that it was kept is logged too: this line says it is no failure after all
    log.info("dead letter %s settled: event %s (%s) was done after all", letter.id,
             letter.data["event"].get("id"), letter.data["event"].get("type"))


def _settle_finished(letter: DeadLetter, record: dict[str, Any]) -> DeadLetter:
    """``letter`` settled as done after all (:func:`_done_after_all`), or as it is now if it was
    settled meanwhile; left as it is while an operator's action holds it (the action settles it with
    what it did), or if the store does not answer (the next listing tries again)."""
    outcome = _done_after_all(record)

    def mark(item: DeadLetter) -> None:
        if item.state != OPEN:
            raise AlreadySettled.of(item)
        if _held(item):
            raise ActionInProgress()
        item.state = SETTLED
        item.data = _unheld(item.data) | {"settled": outcome}

    try:
        settled = DeadLetter.update(letter.shelf, letter.id, mark)
    except AlreadySettled:
        try:
            return DeadLetter.get(letter.shelf, letter.id)
        except StoreError:
            return letter
    except (ActionInProgress, StoreError):
        return letter
    _log_settled(settled)
    return settled


def _settled_if_finished(letters: list[DeadLetter]) -> list[DeadLetter]:
    """``letters``, each open one whose event its handler finished after all settled so: one read
    per open letter not held by an action, sent together."""
    waiting = [i for i, letter in enumerate(letters) if letter.state == OPEN and not _held(letter)]
    out = list(letters)
    for i, record in zip(waiting, _finished([letters[i].data["event"] for i in waiting])):
        if record is not None:
            out[i] = _settle_finished(letters[i], record)
    return out


def _legacy_token(page_token: str) -> bool:
    try:
        keys.decode_token(page_token, keys.hash_prefix(DeadLetter._concrete(), LEGACY_SHELF),
                          DeadLetter._key_re())
    except InvalidKey:
        return False
    return True


def page(limit: int = 100, page_token: str | None = None, *, state: str | None = None,
         types: tuple[str, ...] | None = None) -> ResultPage[DeadLetter]:
    """The current function's dead letters in event order (oldest first; those kept on the shared
    shelf before, first): only ``open`` or ``settled`` ones with ``state``, only events of ``types``
    with it. A page of rare matches may be short and still have a token. A ``page_token`` this
    listing did not issue is a :class:`lscloud.query.QueryError` naming it. An open letter whose event
    was done after all is settled so first (one read per open letter on the page, sent together)."""

    def where(letter: DeadLetter) -> bool:
        # an open letter is read for either state: it may turn out done after all, decided below
        return ((state is None or letter.state in (state, OPEN))
                and (types is None or letter.data["event"].get("type") in types))

    def legacy(letter: DeadLetter) -> bool:
        return where(letter) and _legacy_mine(letter)

    own = shelf()
    try:
        if page_token is None or _legacy_token(page_token):
            old = DeadLetter.query(LEGACY_SHELF, limit=limit, page_token=page_token, where=legacy,
                                   read_limit=_READ_LIMIT)
            if old.page_token or len(old) >= limit:
                # a full page that ended the old shelf still has a token: the next page goes on to the own shelf
                found = ResultPage(list(old), old.page_token or keys.encode_token(old[-1]._key()))
            else:
                rest = DeadLetter.query(own, limit=limit - len(old), where=None if state is None and types is None
                                        else where, read_limit=_READ_LIMIT)
                found = ResultPage(list(old) + list(rest), rest.page_token)
        else:
            found = DeadLetter.query(own, limit=limit, page_token=page_token,
                                     where=None if state is None and types is None else where, read_limit=_READ_LIMIT)
    except InvalidKey:
        raise unissued_page_token() from None
    letters = _settled_if_finished(list(found))
    return ResultPage([letter for letter in letters if state is None or letter.state == state], found.page_token)


def summary(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as the platform's operations staff see it for any function: the event's
    attributes, not its data (which only the function knows how to show), and why it failed."""
    event = letter.data["event"]
    return {"id": letter.id, "state": letter.state,
            "event": {k: event.get(k) for k in ("id", "type", "source", "subject", "time")},
            "status": letter.data.get("status"), "error": letter.data.get("error") or "",
            "dead_lettered_at": letter.data.get("dead_lettered_at"), "settled": letter.data.get("settled")}


class UnknownDeadLetter(NotFound):
    type, title, title_vi = "unknown-dead-letter", "No such dead letter", "Không có thư chết này"


class ActionInProgress(Conflict):
    """Another operator's action on this letter (or a delivery of its event) runs right now."""
    type, title, title_vi = "dead-letter-retry-in-progress", "Event in progress", "Sự kiện đang được xử lý"

    def __init__(self, detail: str = "This dead letter is being acted on right now; ask again in a moment.",
                 detail_vi: str = "Thư chết đang được xử lý; vui lòng thử lại sau giây lát."):
        super().__init__(detail, detail_vi=detail_vi, headers={"Retry-After": "2"})


ACTION_HOLD_S = 60.0
"""How long an operator's action holds a letter: others are told it is in progress meanwhile, and a
holder that died releases it by this bound."""


class AlreadySettled(Conflict):
    type, title, title_vi = "dead-letter-settled", "Dead letter already settled", "Thư chết đã được xử lý"

    @classmethod
    def of(cls, item: DeadLetter) -> "AlreadySettled":
        return cls("This dead letter was settled already.", detail_vi="Thư chết này đã được xử lý.",
                   settled=item.data.get("settled"))


def _unknown(letter: str) -> UnknownDeadLetter:
    return UnknownDeadLetter(f"No dead letter {letter[:64]!r}.", detail_vi="Không có thư chết với mã này.")


def _unheld(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without an action's hold (:func:`act`)."""
    return {k: v for k, v in data.items() if k != "acting"}


def _held(letter: DeadLetter) -> bool:
    """Whether an operator's action holds ``letter`` now (:func:`act`)."""
    acting = letter.data.get("acting")
    return bool(acting) and float(acting.get("until", 0)) > time.time()


def find(letter: str) -> DeadLetter:
    """One of the current function's dead letters by id (:class:`UnknownDeadLetter` if it has none,
    or the id cannot be one): another function's letter is not found."""
    try:
        return DeadLetter.get(shelf(), letter)
    except InvalidKey:
        raise _unknown(letter) from None
    except DoesNotExist:
        pass
    try:
        kept = DeadLetter.get(LEGACY_SHELF, letter)
    except (DoesNotExist, InvalidKey):
        raise _unknown(letter) from None
    if not _legacy_mine(kept):
        raise _unknown(letter)
    return kept


def _update(letter: str, mark: Callable[[DeadLetter], None]) -> DeadLetter:
    """``DeadLetter.update`` of the current function's letter ``letter``, on the shelf it is kept on."""
    return DeadLetter.update(find(letter).shelf, letter, mark)


def settle(letter: str, outcome: dict[str, Any]) -> DeadLetter:
    """Mark an open dead letter settled with ``outcome`` (who, when, what was done), once: a
    second settle of it, or one that lost a race to another, raises :class:`AlreadySettled`
    carrying the outcome recorded first."""

    def mark(item: DeadLetter) -> None:
        if item.state != OPEN:
            raise AlreadySettled.of(item)
        item.state = SETTLED
        item.data = _unheld(item.data) | {"settled": outcome}

    try:
        return _update(letter, mark)   # under If-Match: two settles never both win
    except (DoesNotExist, InvalidKey):
        raise _unknown(letter) from None


def act(letter_id: str, action: Callable[[DeadLetter], dict[str, Any]], *, by: str, at: str,
        types: tuple[str, ...] | None = None) -> tuple[DeadLetter, bool]:
    """Act on an open dead letter, then settle it with what was done: ``(letter, replayed)``.

    ``action(letter)`` does the work (runs the event again, sends a webhook again …) and answers
    what it did (``{"action": "retried", …}``), recorded with ``by`` and ``at``; if it raises, the
    letter stays open and the error is the caller's. A letter settled already is answered as it
    was settled (``replayed``), also when another operator's action settled it meanwhile: each
    letter is settled once, and the action's effects are the handler's to keep idempotent (the
    event id). While the action runs the letter is held (:data:`ACTION_HOLD_S` at most): another
    action on it meanwhile raises :class:`ActionInProgress` (409, ``Retry-After``) and does nothing.
    ``types``: only letters of these event types are this action's (others are 404).
    """
    letter = find(letter_id)
    if types is not None and letter.data["event"].get("type") not in types:
        raise UnknownDeadLetter(f"No dead letter {letter_id[:64]!r} of this kind.",
                                detail_vi="Không có thư chết loại này với mã này.")
    if letter.state != OPEN:
        return letter, True
    # held while the action runs: two operators at once would both act, and the one whose action
    # found the other's work done ("duplicate") could settle first, hiding what was done
    try:
        held = _hold(letter_id, by)
    except AlreadySettled:
        return find(letter_id), True
    try:
        outcome = {"at": at, "by": by, **action(held)}
    except BaseException:
        _release(letter_id)
        raise
    try:
        return settle(letter_id, outcome), False
    except AlreadySettled:
        return find(letter_id), True


def _hold(letter_id: str, by: str) -> DeadLetter:
    def mark(item: DeadLetter) -> None:
        if item.state != OPEN:
            raise AlreadySettled.of(item)
        if _held(item):
            raise ActionInProgress()
        item.data = {**item.data, "acting": {"by": by, "until": time.time() + ACTION_HOLD_S}}

    return _update(letter_id, mark)


def _release(letter_id: str) -> None:
    def mark(item: DeadLetter) -> None:
        item.data = _unheld(item.data)
    try:
        _update(letter_id, mark)
    except Exception:  # noqa: BLE001 - the hold ends by itself at its bound
        pass
