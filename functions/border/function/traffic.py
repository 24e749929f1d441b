"""Traffic coordination orders (lệnh điều tiết): traffic police tell the drivers concerned — named
declarations, or every truck waiting in a gate's yard queue — and notifiers take the event."""

from __future__ import annotations

from lscloud import errors, outbox
from lscloud.statemachine import Actor, iso, now
from lscloud.store import ConditionalCheckFailed

from . import i18n, ledger, lifecycle, queueing
from .models import TrafficOrder

# Each text goes out as one SMS. Vietnamese with diacritics and Chinese are sent in UCS-2: 70
# characters in a single part, 67 per part once split (the rest of each part is the concatenation
# header). Four parts is the most an order may take, per language: 4 x 67 = 268 characters.
SMS_PARTS = 4
UCS2_SINGLE, UCS2_PART = 70, 67
MAX_CHARS = SMS_PARTS * UCS2_PART
LANGUAGE_NAMES = {"zh": ("Chinese", "tiếng Trung"), "en": ("English", "tiếng Anh")}


class OrderExists(errors.Conflict):
    title, title_vi = "Order exists", "Lệnh đã tồn tại"


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
    """The order as its officer is answered and as it is stored: the recipients without their phone
    numbers, which only the notifiers that text the drivers need (its event alone carries them: a
    stored copy would outlive the crossings, and nothing reads it back)."""
    return {**order, "recipients": [{k: v for k, v in r.items() if k != "driver_phone"} for r in order["recipients"]]}


def issue(body: dict, actor: Actor) -> dict:
    """Store the order with its recipients (create-only: the id is the client's; their phones only in
    the event) and publish it;
    refused (422) when a recipient would get no text in his language (:func:`check_messages`)."""
    ids = body.get("declaration_ids") or queueing.waiting_declarations(
        body["gate"], [body["flow"]] if body.get("flow") else queueing.FLOWS)
    recipients = [{"declaration_id": doc["id"], "code": doc["code"], "plate": doc["vehicle"]["tractor_plate"],
                   "driver_phone": doc["driver"].get("phone"),
                   "language": i18n.of_nationality(doc["driver"]["nationality"])}
                  for doc in ledger.docs(ids)
                  if doc["gate"] == body["gate"] and doc["status"] not in lifecycle.TERMINAL]
    check_messages(body, recipients)
    order = {**body, "by": actor.sub, "issued_at": iso(now()), "recipients": recipients}
    try:
        TrafficOrder(body["gate"], body["id"], data=answer(order)).save()
    except ConditionalCheckFailed:
        raise OrderExists(f"Traffic order {body['id']!r} already exists.",
                          detail_vi="Lệnh điều tiết này đã tồn tại.") from None
    outbox.publish([ledger.RECORDS.fact("traffic-order.issued", order, subject=body["id"],
                                           id=f"traffic-order.{body['id']}")])
    return order
