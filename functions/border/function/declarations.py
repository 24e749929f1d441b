"""A declaration (tờ khai phương tiện) from its request body: identifiers checked and normalised,
the derived facts (flow, required agencies, first risk lane, declared gross weight) computed.

The body has already passed ``schemas/border/declaration-create.json``; this module adds what a
schema cannot say (plate shapes, the CCCD's province and birth year, the tax code's check digit,
HS chapters, the owner rule) and reports every problem at once as ``{"field", "message"}``.
"""

from __future__ import annotations

import re
import secrets
from datetime import date

from lscloud import errors
from lscloud.identifiers import InvalidIdentifier, normalise_tax_code, parse_cccd
from lscloud.workdays import local_day

from . import clearance, devices, lifecycle
from .identifiers import normalise_hs, normalise_plate

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"   # no I/L/O/0/1/U: read aloud at a gate
_PHONE_RE = re.compile(r"^\+?\d{8,15}$")


class DeclarationInvalid(errors.Invalid):
    """Every field of the declaration that breaks a rule, each named by its JSON pointer (422)."""

    def __init__(self, invalid: list[dict]):
        super().__init__(f"{len(invalid)} field(s) are invalid.", detail_vi=f"{len(invalid)} trường không hợp lệ.",
                         errors=invalid)


def new_code() -> str:
    """A short public code for the driver's lookup (e.g. ``LS7K3QZP9``)."""
    return "LS" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(7))


def _phone(value: str) -> str:
    raw = re.sub(r"[\s().-]", "", value)
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    elif raw.startswith("0"):
        raw = "+84" + raw[1:]
    if not _PHONE_RE.match(raw):
        raise InvalidIdentifier("a phone number has 8 to 15 digits (e.g. +84912345678, 0912345678)")
    return raw if raw.startswith("+") else "+" + raw


def normalise(body: dict, *, owner_tax_code: str | None = None, today: date | None = None) -> dict:
    """The declaration's parts, normalised; raises DeclarationInvalid listing every bad field."""
    bad: list[dict] = []

    def field(pointer: str, fn, value):
        try:
            return fn(value)
        except InvalidIdentifier as exc:
            bad.append({"field": pointer, "message": str(exc)})
            return value

    v = dict(body["vehicle"])
    tractor = field("/vehicle/tractor_plate", normalise_plate, v["tractor_plate"])
    if not isinstance(tractor, str):
        v["tractor_plate"], v["tractor_country"] = tractor.text, tractor.country
    if v.get("trailer_plate"):
        trailer = field("/vehicle/trailer_plate", normalise_plate, v["trailer_plate"])
        if not isinstance(trailer, str):
            v["trailer_plate"], v["trailer_country"] = trailer.text, trailer.country

    d = dict(body["driver"])
    d["phone"] = field("/driver/phone", _phone, d["phone"])
    d["id_number"] = d["id_number"].strip().upper()
    if d["id_type"] == "cccd":
        if d["nationality"] != "VN":
            bad.append({"field": "/driver/id_type", "message": "a CCCD is issued to Vietnamese citizens only"})
        cccd = field("/driver/id_number", lambda x: parse_cccd(x, today), d["id_number"])
        if not isinstance(cccd, str):
            d["cccd"] = {"province": cccd.province, "sex": cccd.sex, "birth_year": cccd.birth_year}
    elif not re.fullmatch(r"[A-Z0-9]{6,20}", d["id_number"]):
        bad.append({"field": "/driver/id_number", "message": "a passport or border pass number has 6-20 letters/digits"})

    e = dict(body["enterprise"])
    e["tax_code"] = field("/enterprise/tax_code", normalise_tax_code, e["tax_code"])
    if owner_tax_code and not errors_for(bad, "/enterprise/tax_code"):
        if e["tax_code"].split("-")[0] != owner_tax_code.split("-")[0]:
            bad.append({"field": "/enterprise/tax_code",
                           "message": "an enterprise declares only under its own tax code"})

    goods = []
    for i, line in enumerate(body["goods"]):
        g = dict(line)
        g["hs_code"] = field(f"/goods/{i}/hs_code", normalise_hs, g["hs_code"])
        g.setdefault("perishable", False)
        goods.append(g)

    flow = clearance.flow_of(body["direction"])
    if flow == "in" and not body.get("health"):
        bad.append({"field": "/health", "message": "health quarantine answers are required when entering Vietnam"})
    if bad:
        raise DeclarationInvalid(sorted(bad, key=lambda x: x["field"]))

    doc = {
        "gate": body["gate"], "direction": body["direction"], "flow": flow,
        "expected_arrival": body["expected_arrival"], "vehicle": v, "driver": d, "enterprise": e,
        "goods": goods, "health": body.get("health"), "attachments": [],
    }
    doc["required_agencies"] = clearance.required_agencies(body["direction"], goods, v.get("tractor_country", "VN"))
    doc["declared_gross_kg"] = devices.declared_gross_kg(doc)
    return doc


def errors_for(bad: list[dict], pointer: str) -> bool:
    return any(e["field"] == pointer for e in bad)


PUBLIC_FIELDS = ("id", "code", "status", "gate", "direction", "flow")


def for_driver(doc: dict) -> dict:
    """What the public lookup shows: no names, IDs, phone numbers or goods values."""
    return {k: doc.get(k) for k in PUBLIC_FIELDS} | {
        "tractor_plate": doc["vehicle"]["tractor_plate"],
        "slot": (doc.get("booking") or {}).get("slot"),
        "call_deadline": (doc.get("call") or {}).get("deadline"),
        "holds": sorted(doc.get("holds", {})),
    }


# -- minimising what only the gate needed ------------------------------------------------------------

HEALTH_AGENCY = "health-quarantine"
HEALTH_VERDICTS = {"pass": "cleared", "hold": "held-for-quarantine", "refuse": "refused"}
"""What the health quarantine's last decision made of the answers, kept once they are gone."""


def ended_at(doc: dict) -> str | None:
    """When a finished declaration reached its final state (None for one still live)."""
    if doc.get("status") not in lifecycle.TERMINAL:
        return None
    return doc.get("timestamps", {}).get(doc["status"]) or doc.get("updated_at")


def minimised(doc: dict) -> bool:
    health = doc.get("health")
    return isinstance(health, dict) and health.get("minimised") is True


def health_verdict(doc: dict) -> str:
    """The gate's verdict on the driver's health: the quarantine's last decision; ``not-judged`` when
    it never decided (cancelled, expired, refused before), ``not-declared`` when no answers were asked
    (a truck leaving Vietnam)."""
    decision = (doc.get("decisions") or {}).get(HEALTH_AGENCY)
    if decision:
        return HEALTH_VERDICTS.get(decision["decision"], decision["decision"])
    return "not-judged" if doc.get("health") else "not-declared"


def minimise(doc: dict, at: str) -> None:
    """Reduce ``doc`` to what outlives the gate: the health block becomes its verdict and the day it
    was minimised, the driver's phone goes. Values are dropped, never masked: a mask of a fever
    answer still tells it."""
    doc["health"] = {"minimised": True, "verdict": health_verdict(doc), "answered": bool(doc.get("health")),
                     "minimised_at": at}
    doc["driver"] = {k: v for k, v in doc["driver"].items() if k != "phone"}


def minimised_note(doc: dict) -> dict:
    """What a reader of a minimised declaration is told in place of the health answers."""
    # the province's day: from 00:00 to 07:00 here the UTC date is the day before
    day = local_day(doc["health"]["minimised_at"])
    # the same words after the follow-up period (the tick) and after the driver's erasure request
    return {"message": f"The driver's health answers and phone number were deleted on {day}, after the "
                       "declaration ended (its follow-up period passed, or the driver asked); only the gate's "
                       "verdict is kept.",
            "message_vi": f"Các câu trả lời khai báo y tế và số điện thoại của lái xe đã được xóa ngày {day}, "
                          "sau khi tờ khai kết thúc (hết thời hạn theo dõi, hoặc theo yêu cầu của lái xe); chỉ giữ "
                          "kết luận kiểm dịch tại cửa khẩu."}
