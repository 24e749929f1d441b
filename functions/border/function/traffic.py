"""Traffic coordination orders (lệnh điều tiết): traffic police tell the drivers concerned — named
declarations, or every truck waiting in a gate's yard queue.

The ``traffic-order.issued`` event (:func:`event_data`) is on the stream every function reads, kept
30 days and its dead letter a year: it names the order (gate, flow, the texts in each language, when,
by whom as border's events name actors) and its recipients by declaration, code and language only.
The province's SMS/Zalo gateway (role ``notifier``) fetches the drivers' phones when it sends
(:func:`recipients`, ``GET /v1/traffic-orders/{gate}/{id}/recipients``), read from the declarations
at that moment: no phone is stored with the order or put in an event, so a declaration minimised
since (``BORDER_HEALTH_KEEP_DAYS``, :mod:`.minimise`) has none left anywhere. The plates stay in the
stored order and the officer's answer (border's own bucket: the police know the trucks by them).

The order is its own idempotency record (``in_record``): it keeps the issuing request's stamp, so the
officer's resend after a cut run is answered with the stored order and its event published again
(:func:`resend`), and its id reused with another body, by anyone, is the 409 naming the fields.

Issuing an order writes no declaration: an order holds until its ``valid_until`` (else
:data:`~.models.ORDER_KEPT_S`), listed while it holds among its gate's open orders (an entry of its own
lifetime; the order stays a record); the driver's lookup finds the orders naming its declaration
among those (:func:`shown`, read as they were at most
``LSCLOUD_PEER_FRESH_S`` ago, as a capacity override is). Declarations an earlier release wrote the
orders onto keep a ``traffic_orders`` member nothing reads (:func:`.ledger.view` leaves it out)."""

from __future__ import annotations

from datetime import datetime, timedelta

from lscloud import errors, events, freshness, outbox, resends, store
from lscloud.aggregate import save_quietly
from lscloud.statemachine import Actor, iso, now, parse_iso
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey

from . import i18n, ledger, lifecycle, queueing
from .models import ORDER_KEPT_S, OpenTrafficOrder, TrafficOrder

# Each text goes out as one SMS. Vietnamese with diacritics and Chinese are sent in UCS-2: 70
# characters in a single part, 67 per part once split (the rest of each part is the concatenation
# header). Four parts is the most an order may take, per language: 4 x 67 = 268 characters.
SMS_PARTS = 4
UCS2_SINGLE, UCS2_PART = 70, 67
MAX_CHARS = SMS_PARTS * UCS2_PART
LANGUAGE_NAMES = {"zh": ("Chinese", "tiếng Trung"), "en": ("English", "tiếng Anh")}


class OrderExists(errors.Conflict):
    title, title_vi = "Order exists", "Lệnh đã tồn tại"


class OrderNotFound(errors.NotFound):
    type = "traffic-order-not-found"
    title, title_vi = "Traffic order not found", "Không tìm thấy lệnh điều tiết"


def sms_chars(text: str) -> int:
    """The UCS-2 characters ``text`` takes in an SMS: UTF-16 code units (a character outside the
    Basic Multilingual Plane, an emoji or a rare CJK ideograph, takes two)."""
    return len(text.encode("utf-16-le")) // 2


def sms_parts(text: str) -> int:
    n = sms_chars(text)
    return 1 if n <= UCS2_SINGLE else -(-n // UCS2_PART)


def check_messages(body: dict, recipients: list[dict]) -> None:
    """Every recipient gets the order in a language he reads, each text within :data:`SMS_PARTS`
    parts; otherwise a 422 naming every field at fault (in English and Vietnamese, as the schema's)."""
    bad = []
    for lang in sorted({r["language"] for r in recipients} - {"vi"}):
        name = f"message_{lang}"
        if not body.get(name):
            en, vi = LANGUAGE_NAMES[lang]
            bad.append({"field": f"/{name}", "message": f"{name} is required: some drivers it goes to read {en}",
                        "message_vi": f"Cần nhập {name}: có lái xe nhận lệnh đọc {vi}"})
    for name in ("message_vi", "message_zh", "message_en"):
        n = sms_chars(body.get(name) or "")
        if n > MAX_CHARS:
            parts = sms_parts(body[name])
            bad.append({"field": f"/{name}",
                        "message": f"{name} takes {n} SMS characters ({parts} parts): at most {MAX_CHARS} "
                                   f"({SMS_PARTS} UCS-2 parts of {UCS2_PART})",
                        "message_vi": f"{name} dài {n} ký tự SMS ({parts} phần tin nhắn): tối đa {MAX_CHARS} ký tự "
                                      f"({SMS_PARTS} phần, mỗi phần {UCS2_PART} ký tự UCS-2)"})
    if bad:
        raise errors.Invalid("; ".join(e["message"] for e in bad), detail_vi="; ".join(e["message_vi"] for e in bad),
                             errors=bad)


def answer(order: dict) -> dict:
    """The order as its officer is answered and as it is stored: no recipient's phone (an order an
    older release stored still had them: :mod:`.migrate` strips those with this)."""
    return {**order, "recipients": [{k: v for k, v in r.items() if k != "driver_phone"} for r in order["recipients"]]}


ISSUED = "vn.langson.border.traffic-order.issued.v2"
"""v2: v1 carried each recipient's phone and plate; a v1 consumer (the notification gateway of an
earlier release) gets no event of this shape rather than one without the phones it relied on."""
EVENT_FIELDS = ("id", "gate", "flow", "kind", "message_vi", "message_zh", "message_en", "valid_until", "issued_at")
EVENT_RECIPIENT = ("declaration_id", "code", "language")


def event_data(order: dict, actor: Actor) -> dict:
    """The order as its event carries it: named fields only (a field added to the body later stays
    off the stream until it is named here), the recipients without plates, the issuer as border's
    events name an actor (:func:`.ledger.event_actor`)."""
    return {**{k: order[k] for k in EVENT_FIELDS if k in order}, "by": ledger.event_actor(actor).sub,
            "recipients": [{k: r[k] for k in EVENT_RECIPIENT} for r in order["recipients"]]}


def issue(body: dict, actor: Actor, request: dict | None = None) -> dict:
    """Store the order with its recipients (create-only: the id is the client's; ``request``: the
    issuing request's stamp, :func:`lscloud.idempotency.first_request`) and publish it; refused
    (422) when a recipient would get no text in his language (:func:`check_messages`), 409 when the
    id is taken (:func:`resend` then judges the request against the stored order)."""
    ids = body.get("declaration_ids") or queueing.waiting_declarations(
        body["gate"], [body["flow"]] if body.get("flow") else queueing.FLOWS)
    recipients = [{"declaration_id": doc["id"], "code": doc["code"], "plate": doc["vehicle"]["tractor_plate"],
                   "language": i18n.of_driver(doc)}
                  for doc in ledger.docs(ids)
                  if doc["gate"] == body["gate"] and doc["status"] not in lifecycle.TERMINAL]
    check_messages(body, recipients)
    at = now()
    order = {**body, "by": actor.sub, "issued_at": iso(at), "recipients": recipients}
    # listed for the drivers' lookups while it holds, written first: an order is never stored unlisted
    # (an entry whose order was refused names one that exists: the lookup reads the order itself)
    save_quietly(OpenTrafficOrder(body["gate"], body["id"], expires_at=holds_until(order)))
    try:
        TrafficOrder(body["gate"], body["id"], data=order, request=request).save()
    except ConditionalCheckFailed:
        raise OrderExists(f"Traffic order {body['id']!r} already exists.",
                          detail_vi="Lệnh điều tiết này đã tồn tại.") from None
    finally:   # this replica's drivers see it at once (or, its write unknown, as the store has it)
        _shown.drop((store.connection()[1], body["gate"]))
    _announce(order, actor)
    return order


def holds_until(order: dict) -> datetime:
    """Until when the order holds: its ``valid_until``, else :data:`~.models.ORDER_KEPT_S` after it
    was issued."""
    until = order.get("valid_until")
    return parse_iso(until) if until else parse_iso(order["issued_at"]) + timedelta(seconds=ORDER_KEPT_S)


def _announce(order: dict, actor: Actor) -> None:
    """Publish the order: after its write, and again for its resend (a run cut between them left the
    drivers untold). The event keeps its id, so JetStream and consumers drop a repeat."""
    outbox.publish([events.new_event(ISSUED, ledger.RECORDS.source, event_data(order, actor), subject=order["id"],
                                     # an order's id is its gate's: the same id at two gates is two orders
                                     id=f"traffic-order.{order['gate']}.{order['id']}")])


REQUEST_FIELDS = ("id", "gate", "flow", "kind", "declaration_ids", "message_vi", "message_zh", "message_en",
                  "valid_until")
"""The request body's members as the stored order keeps them (schemas/border/traffic-order.json)."""


def resend(body: dict, actor: Actor, judge) -> dict | None:
    """The stored order a refused issue is the resend of, announced again (:func:`_announce`), or
    None when there is none. ``judge`` is :func:`lscloud.idempotency.resent` (the same officer's
    other body: its 409 naming the fields); the id reused by another officer, or with another body
    under an order kept without its request's stamp, is the same 409 (field names, never values)."""
    try:
        item = TrafficOrder.get(body["gate"], body["id"])
    except (DoesNotExist, InvalidKey):
        return None
    order = item.data
    if not judge(item.request):
        differ = resends.changed_fields({k: order[k] for k in REQUEST_FIELDS if k in order}, body)
        if item.request is not None or differ or order.get("by") != actor.sub:
            raise resends.IdReused(differ)
    _announce(order, actor)
    return order


def recipients(gate_code: str, order_id: str) -> dict:
    """Whom the order at ``gate_code`` goes to, each with the driver's phone as the declaration holds
    it now (``None``: minimised since, or the declaration is gone), for the gateway that texts them."""
    try:
        order = TrafficOrder.get(gate_code, order_id).data
    except (DoesNotExist, InvalidKey):
        raise OrderNotFound(f"No traffic order {order_id!r} at gate {gate_code!r}.",
                            detail_vi=f"Không có lệnh điều tiết {order_id!r} tại cửa khẩu {gate_code!r}.") from None
    docs = {doc["id"]: doc for doc in ledger.docs([r["declaration_id"] for r in order["recipients"]])}

    def one(r: dict) -> dict:
        doc = docs.get(r["declaration_id"])
        # an order stored before recipients had a language: the driver's, as issuing judges it now
        language = r.get("language") or (i18n.of_driver(doc) if doc else "vi")
        return {"declaration_id": r["declaration_id"], "code": r["code"], "language": language,
                "driver_phone": doc["driver"].get("phone") if doc else None}

    return {"id": order["id"], "gate": order["gate"], "recipients": [one(r) for r in order["recipients"]]}


TOLD = ("id", "kind", "message_vi", "message_zh", "message_en", "issued_at", "valid_until")
"""What of an order the lookup holds in memory and tells: nothing of its recipients but their ids."""

# (bucket, gate) -> the gate's orders that held when this replica last read them
_shown = freshness.Revalidating(256)


def as_shown(order: dict) -> dict:
    """The stored ``order`` as the lookup holds it (:data:`TOLD`): until when it holds (``until``),
    its recipients' declaration ids (``to``)."""
    return {**{k: order[k] for k in TOLD if k in order}, "until": iso(holds_until(order)),
            "to": frozenset(r["declaration_id"] for r in order["recipients"])}


def _holding_at(gate_code: str) -> list[dict]:
    # the gate's open entries (an expired one not swept yet does no harm: its order is judged by itself)
    at, held = now(), []
    for order_id in OpenTrafficOrder.query_keys(gate_code, expired_too=True):
        try:
            order = TrafficOrder.get(gate_code, order_id).data
        except DoesNotExist:   # its order's create was refused or cut: nothing to tell
            continue
        if holds_until(order) > at:
            held.append(as_shown(order))
    return held


def shown(gate_code: str, fresh_s: float) -> list[dict]:
    """The orders at the gate that held when read, at most ``fresh_s`` ago (the platform's bound for
    reference data, ``LSCLOUD_PEER_FRESH_S``): one listing of the gate's orders per bound, whatever
    the number of drivers asking; an order issued on this replica shows at once, on another within
    the bound. Each with its recipients' declaration ids (``to``), for :func:`open_for`."""
    _, bucket = store.connection()
    return _shown.get((bucket, gate_code), lambda _etag: ("read", _holding_at(gate_code), fresh_s))


def told_to(doc: dict, lang: str, fresh_s: float) -> list[dict]:
    """:func:`open_for` the declaration ``doc`` among its gate's orders (:func:`shown`); a finished
    declaration has none left to obey, and its gate's orders are not read for it."""
    if doc["status"] in lifecycle.TERMINAL:
        return []
    return open_for(doc, lang, shown(doc["gate"], fresh_s))


def open_for(doc: dict, lang: str, orders: list[dict]) -> list[dict]:
    """The orders among ``orders`` (:func:`shown`) naming the declaration ``doc`` that still hold,
    newest first, each as its driver reads it: kind, the text in ``lang`` (else in the language the
    driver was texted in, else Vietnamese), when. Nothing of the other drivers the order went to; a
    finished declaration has none left to obey."""
    if doc["status"] in lifecycle.TERMINAL:
        return []
    at = now()
    out = []
    for order in orders:
        if doc["id"] not in order["to"] or parse_iso(order["until"]) <= at:
            continue
        until = order.get("valid_until")
        said = next(x for x in (lang, i18n.of_driver(doc), "vi") if order.get(f"message_{x}"))
        out.append({"id": order["id"], "kind": order["kind"], "language": said, "message": order[f"message_{said}"],
                    "issued_at": order["issued_at"], "valid_until": until})
    return sorted(out, key=lambda o: o["issued_at"], reverse=True)


def holding(orders: list[dict]) -> dict | None:
    """The hold among ``orders`` (:func:`open_for`) the driver must obey now: the newest order that
    says to hold or to proceed, if it is a hold (a later ``proceed`` lifts it)."""
    latest = next((o for o in orders if o["kind"] in ("hold", "proceed")), None)
    return latest if latest and latest["kind"] == "hold" else None
