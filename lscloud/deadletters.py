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

A dead letter is kept once per event (CloudEvents ``source`` + ``id``): Knative retries its sink
too, and a repeat finds the record there. Records are ordered by the event's ``time`` and kept
:data:`RETENTION_S`, settled or not.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from . import events, metrics
from .errors import Conflict, NotFound
from .query import unissued_page_token
from .timestamps import iso
from .store import ConditionalCheckFailed, DoesNotExist, InvalidKey, Model, ResultPage
from .store import attributes as A

OPEN, SETTLED = "open", "settled"
RETENTION_S = 366 * 86_400
"""How long a dead letter is kept after it came, settled or not (the runtime's sweep deletes it then):
a year of what failed, for audit, without a bucket that only grows."""
_SHELF = "letters"
_READ_LIMIT = 1000   # records one filtered page reads at most


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


def keep(event: dict[str, Any], received_at: datetime | None = None) -> tuple[DeadLetter, bool]:
    """Keep a dead letter (the event as delivered to the sink); ``(letter, created)``. A repeat of
    one already kept leaves it as it is (settled or not)."""
    failure = events.DeliveryFailure.of(event)
    original = {k: v for k, v in event.items() if k not in events.DEAD_LETTER_EXTENSIONS}
    came = received_at or datetime.now(timezone.utc)
    letter = DeadLetter(shelf=_SHELF, id=letter_id(original), state=OPEN,
                        expires_at=came + timedelta(seconds=RETENTION_S),
                        data={"event": original, "status": failure.status, "error": failure.error,
                              "destination": failure.destination,
                              "dead_lettered_at": iso(came, "auto")})
    try:
        return letter.save(), True
    except ConditionalCheckFailed:
        return DeadLetter.get(_SHELF, letter.id), False


def page(limit: int = 100, page_token: str | None = None, *, state: str | None = None,
         types: tuple[str, ...] | None = None) -> ResultPage[DeadLetter]:
    """Dead letters in event order (oldest first): only ``open`` or ``settled`` ones with ``state``,
    only events of ``types`` with it. A page of rare matches may be short and still have a token.
    A ``page_token`` this listing did not issue is a :class:`lscloud.query.QueryError` naming it."""

    def where(letter: DeadLetter) -> bool:
        return (state is None or letter.state == state) and (types is None or letter.data["event"].get("type") in types)

    try:
        return DeadLetter.query(_SHELF, limit=limit, page_token=page_token,
                                where=None if state is None and types is None else where, read_limit=_READ_LIMIT)
    except InvalidKey:
        raise unissued_page_token() from None


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


def find(letter: str) -> DeadLetter:
    """One dead letter by id (:class:`UnknownDeadLetter` if there is none, or the id cannot be one)."""
    try:
        return DeadLetter.get(_SHELF, letter)
    except (DoesNotExist, InvalidKey):
        raise _unknown(letter) from None


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
        return DeadLetter.update(_SHELF, letter, mark)   # under If-Match: two settles never both win
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
        now = time.time()
        acting = item.data.get("acting")
        if acting and float(acting.get("until", 0)) > now:
            raise ActionInProgress()
        item.data = {**item.data, "acting": {"by": by, "until": now + ACTION_HOLD_S}}

    return DeadLetter.update(_SHELF, letter_id, mark)


def _release(letter_id: str) -> None:
    def mark(item: DeadLetter) -> None:
        item.data = _unheld(item.data)
    try:
        DeadLetter.update(_SHELF, letter_id, mark)
    except Exception:  # noqa: BLE001 - the hold ends by itself at its bound
        pass
