"""Outbound webhooks to banks, delivered by the platform's event machinery.

The soft ATM subscribes (func.yaml) to its own ``transfer.received``, ``transfer.committed`` and
``transfer.aborted`` events; the dispatcher (Knative Eventing in the cluster) brings each one to
``/events`` with its durable consumer, retries with backoff and dead letter. The handler here
POSTs the bank's webhook, signed with the runtime's partner scheme (:func:`lscloud.auth.sign_request`,
the bank's own key) and carrying the event id for the bank's dedupe:

- the bank answers 2xx: delivered (the event is acknowledged). No events-seen record is kept
  (:func:`lscloud.knative.repeat_safe`): a redelivery sends the webhook again with the same event
  id, which banks dedupe by (docs/partner-banks.md), so the bank's effect still happens once;
- 5xx, 429, a timeout, no connection: the handler answers 503, so the event is retried later;
- 401 or 403 within :data:`KEY_SETTLE_S` of our signing key's change (put in, or switched to): the
  bank may not have loaded it yet, so it is retried too (then dead-lettered, naming the key);
- any other 4xx: no retry can fix it, the handler answers 422 and the event is dead-lettered;
  so is a webhook to an address no call can be made to (one registered before addresses were
  checked): an operator corrects it with ``PATCH /v1/banks/{code}``.

A dead-lettered webhook comes back to this function (:mod:`lscloud.deadletters`): operators list
them, and once the cause is fixed send one again (:func:`redeliver`), which settles it.

Events carry no customer data; the webhook body is built from the transfer document here, so the
customer's account and ID number travel only to their bank. The document is the copy this replica
wrote when it is in the event's state (the first delivery, as a rule), else the stored one.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from lscloud import deadletters, http_client, knative, runtime
from lscloud.auth import sign_request
from . import banks, telemetry as tm
from .documents import written
from .models import Transfer
from .transfers import RECEIVED, now, shown_expiry
from .refusals import BankRefused, BankUnavailable, BankUnreachable, NoSigningKey, TransferUnreadable, UnknownBank

log = logging.getLogger("softatm.webhooks")
RECEIVED_TYPE = "vn.langson.softatm.transfer.received.v1"
TYPES = (RECEIVED_TYPE, "vn.langson.softatm.transfer.committed.v1", "vn.langson.softatm.transfer.aborted.v1")
TIMEOUT_S = 5.0
DEADLINE_S = 8.0
"""A bank's whole answer: before the platform's delivery gives up (10 s) and sends the event again,
so a bank that dribbles its answer never holds a handler past the redelivery."""
# one per process: its connections to each bank are kept alive between webhooks
CLIENT = http_client.Client(timeout_s=TIMEOUT_S, deadline_s=DEADLINE_S)
KEY_SETTLE_S = 24 * 3600
"""How long after our webhooks' signing key changed a bank's 401/403 is taken for a bank that has
not loaded the key yet: retried, not dead-lettered at once."""


def signing_changed_lately(bank: dict) -> str | None:
    """When our webhooks to ``bank`` took their key, if less than :data:`KEY_SETTLE_S` ago."""
    slot = next((k for k in bank["keys"] if k["key_id"] == bank["signing_key_id"]), {})
    since = max(filter(None, (slot.get("added_at"), bank.get("signing_since"))), default=None)
    if since is None:
        return None
    return since if (now() - datetime.fromisoformat(since)).total_seconds() < KEY_SETTLE_S else None


def body_for(event: dict, doc: dict) -> dict:
    transfer = {k: doc.get(k) for k in ("id", "kind", "state", "bank", "point", "amount_vnd", "account",
                                        "phone", "customer_id_number", "created_at", "committed_at", "aborted_at",
                                        "abort_reason", "bank_reference")}
    # as GET shows it: the stored expires_at stays the bank's deadline whichever revision reserved it
    transfer["expires_at"] = shown_expiry(doc)
    return {"event_id": event["id"], "type": event["type"], "time": event.get("time"), "transfer": transfer}


def _transfer_of(event: dict) -> dict:
    """The transfer an event is about: this replica's copy in the event's state, else the stored one."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    tid = data.get("transfer_id")
    held = written(tid, data.get("state")) if isinstance(tid, str) else None
    try:
        return held.data if held is not None else Transfer.get(tid).data
    except Exception:  # noqa: BLE001
        raise TransferUnreadable(f"transfer {tid!r} not readable", retry_after_s=2) from None


def deliver(event: dict, doc: dict | None = None) -> None:
    """The ``/events`` handler for transfer facts: send the bank its webhook (about ``doc``, the
    transfer, when the caller has read it already)."""
    if doc is None:
        doc = _transfer_of(event)
    if doc.get("no_hold") and event["type"].endswith("aborted.v1"):
        return  # refused at admission: the bank never heard of it
    settings = runtime.current().settings
    try:
        bank = banks.get(doc["bank"])
    except UnknownBank:  # not registered (yet, or being re-registered): a 503, retried (five deliveries, then a dead letter)
        raise BankUnavailable(f"bank {doc['bank']!r} is not registered", retry_after_s=2) from None
    kid, secret = banks.signing_key(settings, bank)
    if not secret:
        tm.webhook(doc["bank"], "no_key")
        raise NoSigningKey(f"bank {doc['bank']} has no usable key")
    raw = json.dumps(body_for(event, doc), ensure_ascii=False, separators=(",", ":")).encode()
    url = bank["webhook_url"]
    try:
        path = http_client.parse_url(url).target   # signed as the client sends it
    except http_client.BadUrl as exc:   # registered before addresses were checked: it stays unusable
        tm.webhook(doc["bank"], "bad_url")
        raise BankRefused(f"{doc['bank']}: its webhook address is unusable ({exc.message})") from None
    headers = sign_request("POST", path, raw, doc["bank"], kid, secret)
    headers.update({"Content-Type": "application/json", "X-LSCloud-Event-Id": event["id"]})
    try:
        # the span names the bank's host, not its URL: a webhook address may carry the bank's token
        resp = CLIENT.post(url, raw, headers=headers)
    except (http_client.NoAnswer, ValueError) as exc:
        tm.webhook(doc["bank"], "unreachable")
        cause = exc.__cause__ or exc
        raise BankUnreachable(f"{doc['bank']}: {cause.__class__.__name__}", retry_after_s=2) from None
    if 200 <= resp.status_code < 300:
        tm.webhook(doc["bank"], "delivered")
        return
    if resp.status_code >= 500 or resp.status_code == 429:
        tm.webhook(doc["bank"], "retry")
        raise BankUnavailable(f"{doc['bank']} answered {resp.status_code}", retry_after_s=2)
    if resp.status_code in (401, 403):   # the operator sees which key the bank refused
        signed = f"{doc['bank']} answered {resp.status_code} to a webhook signed with key {kid} " \
                 f"({banks.fingerprint(secret)})"
        since = signing_changed_lately(bank)
        if since is not None:
            tm.webhook(doc["bank"], "retry")
            raise BankUnavailable(f"{signed}, our signing key since {since}: the bank may not hold it yet",
                                  retry_after_s=30)
        tm.webhook(doc["bank"], "refused")
        raise BankRefused(signed)
    tm.webhook(doc["bank"], "refused")
    raise BankRefused(f"{doc['bank']} answered {resp.status_code}")


def dead_letter_view(letter: deadletters.DeadLetter) -> dict:
    """A dead-lettered webhook as operators see it: the platform's summary (:func:`lscloud.deadletters.summary`)
    and the transfer it is about (events carry no customer data)."""
    data = letter.data["event"].get("data")
    return {**deadletters.summary(letter), "transfer_id": data.get("transfer_id") if isinstance(data, dict) else None}


def dead_letters(limit: int, page_token: str | None, state: str | None) -> tuple[list[dict], str | None]:
    """Webhooks the platform gave up on, oldest first, and the next page's token."""
    found = deadletters.page(limit, page_token, state=state, types=TYPES)
    return [dead_letter_view(letter) for letter in found], found.page_token


def send_again(letter: deadletters.DeadLetter) -> dict:
    """A dead-lettered webhook sent again, now (:func:`lscloud.deadletters.act`'s action): what was done.

    It goes as any delivery does (:func:`deliver`: signed, the same event id, which the bank
    dedupes by), so sending it twice is harmless. A webhook announcing a transfer that is no longer
    RECEIVED is not sent (the bank is told its final state by that state's own webhook): ``skipped``.
    A delivery that fails again raises its refusal (the bank's answer) and the letter stays open.
    """
    event = letter.data["event"]
    doc = _transfer_of(event)   # read once: to judge, and to build the webhook from
    if event["type"] == RECEIVED_TYPE and doc.get("state") != RECEIVED:
        return {"action": "skipped", "reason": f"the transfer is {doc.get('state')}"}
    deliver(event, doc)
    return {"action": "redelivered"}


def redeliver(letter_id: str) -> tuple[dict, bool]:
    """Send a dead-lettered webhook again (:func:`send_again`, through the platform's
    :func:`lscloud.knative.retry`) and settle it: ``(view, replayed)``. An operator does this after
    the cause is fixed (the bank's address or key, its outage); a letter settled already is
    answered as it was settled."""
    letter, replayed = knative.retry(letter_id, types=TYPES)
    return dead_letter_view(letter), replayed
