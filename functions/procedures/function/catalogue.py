"""The procedure catalogue, built from ``data/procedures.yaml`` and checked on the way.

:func:`build` returns ``{"fields": [...], "procedures": [...]}`` in the API's shape (without the
form templates' blob references, which :mod:`.seed` adds once the PDFs are stored). Every rule
the data must follow is checked here, with a message naming the procedure and the field, so a
typo in the YAML stops ``lscloud up`` instead of serving a broken catalogue.

Facts about Vietnam carry their source: each procedure lists ``sources`` (which fact, which
reference of the file's ``references``, verified or not, and a note) and must at least say how its
``national_code`` (mã TTHC on the National Public Service Portal, or null), its ``level``, its
``processing_days``, its ``online_mode``, its ``legal_basis`` and (when it charges any) its ``fees``
were checked. The answer resolves each source's reference so a reader sees the
document and its address; a deadline nobody checked is served with its ``verified: false`` source.
A fact nobody has checked yet is named in the procedure's ``unreviewed`` list instead and served as
the same ``{fact, verified: false, note}`` source, its note the file's ``unreviewed_notes`` entry for
that fact (what was and was not tried is the same for every such procedure, so it is written once).

A fee is ``{name, amount_vnd, waived_online, per, max_vnd}``: ``waived_online`` fees are not charged
for an online submission; a ``per: "page"`` fee is an amount per page (capped at ``max_vnd`` a copy
when the text caps it), which only the counter can total.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

import yaml

DATA = Path(__file__).parent / "data" / "procedures.yaml"

LEVELS = ("province", "commune")
ONLINE_MODES = ("full", "partial")
COMMUNE_COMMITTEE = "ubnd-xa"  # "the People's Committee of the dossier's commune-level unit"
RECEIVING_CENTRE = "public-service-centre"
CODE_RE = re.compile(r"^[A-Z]{2,5}(?:-[A-Z0-9]{1,8}){1,3}$")
NATIONAL_CODE_RE = re.compile(r"^[1-9]\.\d{6}$")   # mã TTHC without a province's suffix: 1.001193, 2.000635
HHMM_RE = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
FACTS = ("national_code", "level", "agency", "processing_days", "steps", "fees", "documents", "online_mode",
         "legal_basis", "results")
REQUIRED_FACTS = ("national_code", "level", "processing_days", "online_mode", "legal_basis")
REQUIRED_IF_CHARGED = "fees"     # a procedure that charges something says how its fees were checked
FEE_PER = ("page",)
REFERENCE_KINDS = ("official", "press", "third-party")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")

STEP_NAMES = {
    "receive": ("Tiếp nhận hồ sơ", "Receive the dossier"),
    "verify": ("Kiểm tra, xác minh hồ sơ", "Check and verify the dossier"),
    "appraise": ("Thẩm định hồ sơ", "Appraise the dossier"),
    "tax": ("Xác định nghĩa vụ tài chính", "Determine the financial obligations"),
    "sign": ("Phê duyệt, ký kết quả", "Approve and sign the result"),
}
_PROCEDURE_KEYS = {"code", "national_code", "name", "name_en", "field", "level", "agency", "online_mode",
                   "processing_days", "same_day_cutoff", "steps", "documents", "fees", "legal_basis", "results", "sources",
                   "unreviewed"}
_REFERENCE_KEYS = {"document", "issuer", "date", "url", "copy", "kind", "note"}
_SOURCE_KEYS = {"fact", "ref", "article", "verified", "note"}
_FEE_KEYS = {"name", "amount_vnd", "waived_online", "per", "max_vnd"}
_DOCUMENT_KEYS = {"code", "name", "name_en", "required", "copies", "form"}
_STEP_KEYS = {"code", "name", "name_en", "agency", "unit_level", "days"}


class CatalogueError(ValueError):
    """The catalogue data breaks a rule; the message names the procedure and the field."""


def _fail(where: str, message: str) -> CatalogueError:
    return CatalogueError(f"{DATA.name}: {where}: {message}")


def _text(where: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"must be non-empty text, got {value!r}")
    return value.strip()


def _half_days(where: str, value, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (value * 2) % 1 \
            or value < 0 or (value == 0 and not zero) or (value > 0 and zero):
        what = "0 (a same-day procedure)" if zero else "a positive number of working days in half days"
        raise _fail(where, f"must be {what}, got {value!r}")
    return float(value) if value % 1 else int(value)


def standard_steps(agency: str, level: str, days: int) -> list[dict]:
    """receive → appraise → sign at the deciding agency; province dossiers are received at the
    province's Public Administration Service Centre (the one-stop counter) and handed over."""
    receiver = RECEIVING_CENTRE if level == "province" else agency
    if days == 0:   # same day: both steps are due with the dossier
        plan = [("receive", receiver, 0), ("sign", agency, 0)]
    elif days <= 1:
        plan = [("receive", receiver, days / 2), ("sign", agency, days / 2)]
    else:
        sign = 1 if days >= 5 else 0.5
        plan = [("receive", receiver, 0.5), ("appraise", agency, days - 0.5 - sign), ("sign", agency, sign)]
    return [{"code": code, "agency": who, "unit_level": level, "days": d} for code, who, d in plan]


def _step(where: str, raw: dict, same_day: bool = False) -> dict:
    if not isinstance(raw, dict) or set(raw) - _STEP_KEYS:
        raise _fail(where, f"unknown keys {sorted(set(raw) - _STEP_KEYS) if isinstance(raw, dict) else raw!r}")
    code = _text(where + "/code", raw.get("code"))
    default_vi, default_en = STEP_NAMES.get(code, (None, None))
    if raw.get("unit_level") not in LEVELS:
        raise _fail(where + "/unit_level", f"must be one of {LEVELS}")
    agency = _text(where + "/agency", raw.get("agency"))
    if not SLUG_RE.match(agency):
        raise _fail(where + "/agency", f"{agency!r} is not an agency code")
    return {"code": code, "name": _text(where + "/name", raw.get("name", default_vi)),
            "name_en": _text(where + "/name_en", raw.get("name_en", default_en)),
            "agency": agency, "unit_level": raw["unit_level"],
            "days": _half_days(where + "/days", raw.get("days"), zero=same_day)}


def _document(where: str, raw: dict) -> dict:
    if not isinstance(raw, dict) or set(raw) - _DOCUMENT_KEYS:
        raise _fail(where, f"unknown keys {sorted(set(raw) - _DOCUMENT_KEYS) if isinstance(raw, dict) else raw!r} "
                           "(a comma in a flow mapping? quote the text)")
    code = _text(where + "/code", raw.get("code"))
    if not SLUG_RE.match(code):
        raise _fail(where + "/code", f"{code!r} must be lowercase letters, digits and dashes")
    if not isinstance(raw.get("required"), bool):
        raise _fail(where + "/required", "must be true or false")
    copies = raw.get("copies", 1)
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= 10:
        raise _fail(where + "/copies", f"must be a whole number from 1 to 10, got {copies!r}")
    form = raw.get("form")
    if form is not None and (not isinstance(form, list) or not form or not all(isinstance(f, str) and f for f in form)):
        raise _fail(where + "/form", "must be a list of field labels")
    doc = {"code": code, "name": _text(where + "/name", raw.get("name")),
           "name_en": _text(where + "/name_en", raw.get("name_en")), "required": raw["required"], "copies": copies,
           "template": None}
    if form:
        doc["form"] = list(form)  # consumed by the seed (becomes the template's PDF), not served
    return doc


def _fee(where: str, fee) -> dict:
    def amount(value) -> bool:
        return not isinstance(value, bool) and isinstance(value, int) and value >= 0

    if not isinstance(fee, dict) or not {"name", "amount_vnd"} <= set(fee) <= _FEE_KEYS or not amount(fee["amount_vnd"]):
        raise _fail(where, f"must be {{name, amount_vnd >= 0[, waived_online, per, max_vnd]}}, got {fee!r}")
    if not isinstance(fee.get("waived_online", False), bool):
        raise _fail(where + "/waived_online", "must be true or false")
    per, cap = fee.get("per"), fee.get("max_vnd")
    if per is not None and per not in FEE_PER:
        raise _fail(where + "/per", f"must be one of {FEE_PER} (omitted for a flat fee)")
    if cap is not None and (per is None or not amount(cap)):
        raise _fail(where + "/max_vnd", "caps a per-page fee only, in whole dong")
    return {"name": _text(where + "/name", fee["name"]), "amount_vnd": fee["amount_vnd"],
            "waived_online": fee.get("waived_online", False), "per": per, "max_vnd": cap}


def _procedure(raw: dict, fields: dict, references: dict, unreviewed_notes: dict) -> dict:
    code = raw.get("code") if isinstance(raw, dict) else None
    where = f"procedure {code!r}"
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise _fail(where + "/code", "must look like HT-KS or XD-GPXD (upper-case letters, digits, dashes)")
    unknown = set(raw) - _PROCEDURE_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)} (a comma in a flow mapping? quote the text)")
    if raw.get("field") not in fields:
        raise _fail(where + "/field", f"{raw.get('field')!r} is not a field code")
    level, mode = raw.get("level"), raw.get("online_mode")
    if level not in LEVELS:
        raise _fail(where + "/level", f"must be one of {LEVELS}")
    if mode not in ONLINE_MODES:
        raise _fail(where + "/online_mode", f"must be one of {ONLINE_MODES}")
    agency = _text(where + "/agency", raw.get("agency"))
    if (level == "commune") != (agency == COMMUNE_COMMITTEE):
        raise _fail(where + "/agency", f"a {level} procedure cannot be decided by {agency!r} (commune procedures "
                                       f"are decided by {COMMUNE_COMMITTEE!r}, the committee of the dossier's unit)")
    days = raw.get("processing_days")
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 90:
        raise _fail(where + "/processing_days", f"must be a whole number of working days 0..90, got {days!r}")
    cutoff = raw.get("same_day_cutoff")
    if (days == 0) != (cutoff is not None) or (cutoff is not None and not HHMM_RE.match(str(cutoff))):
        raise _fail(where + "/same_day_cutoff", "a same-day procedure (processing_days 0) needs its cut-off as "
                                                "HH:MM, and only it has one")
    steps_raw = raw.get("steps") or standard_steps(agency, level, days)
    steps = [_step(f"{where}/steps/{i}", s, same_day=days == 0) for i, s in enumerate(steps_raw)]
    if abs(sum(s["days"] for s in steps) - days) > 1e-9:
        raise _fail(where + "/steps", f"step days add up to {sum(s['days'] for s in steps)}, not {days}")
    if steps[-1]["agency"] != agency:
        raise _fail(where + "/steps", f"the last step must be at the deciding agency {agency!r}")
    docs = [_document(f"{where}/documents/{i}", d) for i, d in enumerate(raw.get("documents") or [])]
    if not docs or len({d["code"] for d in docs}) != len(docs):
        raise _fail(where + "/documents", "needs at least one document, codes unique")
    fees = [_fee(f"{where}/fees/{i}", fee) for i, fee in enumerate(raw.get("fees") or [])]
    lists = {}
    for key in ("legal_basis", "results"):
        values = raw.get(key)
        if not isinstance(values, list) or not values:
            raise _fail(f"{where}/{key}", "must be a non-empty list")
        lists[key] = [_text(f"{where}/{key}/{i}", v) for i, v in enumerate(values)]
        if any(not v[0].isupper() for v in lists[key]):  # "Luật Khám bệnh, chữa bệnh" split at its comma
            raise _fail(f"{where}/{key}", "an item starts in lower case: quote items that hold a comma")
    national = raw.get("national_code", "missing")
    if national is not None and not (isinstance(national, str) and NATIONAL_CODE_RE.match(national)):
        raise _fail(where + "/national_code", f"must be a national procedure code like 1.001193, or null, got {national!r}")
    sources = _sources(where, raw.get("sources"), references)
    sources += _unreviewed(where, raw.get("unreviewed"), unreviewed_notes, sources)
    _require(where, sources, fees)
    if national is None and any(x["fact"] == "national_code" and x["verified"] for x in sources):
        raise _fail(where + "/sources", "a missing national_code cannot be verified")
    f = fields[raw["field"]]
    return {"code": code, "national_code": national, "name": _text(where + "/name", raw.get("name")),
            "name_en": _text(where + "/name_en", raw.get("name_en")), "field": f["code"], "field_name": f["name"],
            "level": level, "agency": agency, "online_mode": mode, "documents": docs, "fees": fees,
            "processing_days": days, "same_day_cutoff": cutoff, "steps": steps, **lists, "sources": sources}


def _references(raw) -> dict:
    if not isinstance(raw, dict) or not raw:
        raise _fail("references", "must map reference keys to documents")
    out = {}
    for key, ref in raw.items():
        where = f"references/{key}"
        if not isinstance(ref, dict) or set(ref) - _REFERENCE_KEYS:
            raise _fail(where, f"unknown keys {sorted(set(ref) - _REFERENCE_KEYS) if isinstance(ref, dict) else ref!r}")
        if not SLUG_RE.match(str(key)) or not ref.get("document") or not (ref.get("url") or ref.get("copy")):
            raise _fail(where, "needs a slug key, a document and a url (or where a copy was read)")
        if ref.get("kind") not in REFERENCE_KINDS:
            raise _fail(where + "/kind", f"must be one of {REFERENCE_KINDS}")
        if ref.get("url") and not str(ref["url"]).startswith("https://"):
            raise _fail(where + "/url", "must be an https address")
        date = ref.get("date")
        out[key] = {"document": ref["document"], "issuer": ref.get("issuer"),
                    "date": date.isoformat() if hasattr(date, "isoformat") else date, "url": ref.get("url"),
                    "copy": ref.get("copy"), "kind": ref["kind"], "reference_note": ref.get("note")}
    return out


def _sources(where: str, raw, references: dict) -> list[dict]:
    """The procedure's ``sources`` with their references resolved; the required facts present."""
    if not isinstance(raw, list) or not raw:
        raise _fail(where + "/sources", f"must list how {', '.join(REQUIRED_FACTS)} were checked")
    out = []
    for i, src in enumerate(raw):
        at = f"{where}/sources/{i}"
        if not isinstance(src, dict) or set(src) - _SOURCE_KEYS:
            raise _fail(at, f"unknown keys {sorted(set(src) - _SOURCE_KEYS) if isinstance(src, dict) else src!r}")
        if src.get("fact") not in FACTS:
            raise _fail(at + "/fact", f"must be one of {FACTS}")
        if not isinstance(src.get("verified"), bool):
            raise _fail(at + "/verified", "must be true or false")
        ref = src.get("ref")
        if ref is not None and ref not in references:
            raise _fail(at + "/ref", f"{ref!r} is not a key of references")
        if src["verified"] and (ref is None or references[ref]["kind"] == "third-party"):
            raise _fail(at, "a verified fact names an official or press reference")
        if not src["verified"] and not (src.get("note") or "").strip():
            raise _fail(at + "/note", "an unverified fact says what was tried")
        out.append({"fact": src["fact"], "verified": src["verified"], "article": src.get("article"),
                    "note": src.get("note"), **(references[ref] if ref else {}), "ref": ref})
    return out


def _unreviewed_notes(raw) -> dict:
    """``unreviewed_notes``: for each fact, the note every procedure that lists it as unreviewed serves."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail("unreviewed_notes", "must map facts to the note served when they are unreviewed")
    for fact, note in raw.items():
        if fact not in FACTS:
            raise _fail(f"unreviewed_notes/{fact}", f"must be one of {FACTS}")
        _text(f"unreviewed_notes/{fact}", note)
    return {fact: note.strip() for fact, note in raw.items()}


def _unreviewed(where: str, raw, notes: dict, sources: list[dict]) -> list[dict]:
    """The procedure's ``unreviewed`` facts as ``verified: false`` sources in the shape :func:`_sources`
    returns, each with its shared note; a fact cannot be both unreviewed and sourced."""
    if raw is None:
        return []
    at = where + "/unreviewed"
    if not isinstance(raw, list) or not raw:
        raise _fail(at, f"must be a non-empty list of facts from {FACTS}")
    sourced = {s["fact"] for s in sources}
    out = []
    for fact in raw:
        if fact not in FACTS:
            raise _fail(at, f"{fact!r} is not one of {FACTS}")
        if fact not in notes:
            raise _fail(at, f"{fact!r} has no note in unreviewed_notes (say what was tried)")
        if fact in sourced:
            raise _fail(at, f"{fact!r} has a source entry too: a fact is either in sources or unreviewed")
        if any(x["fact"] == fact for x in out):
            raise _fail(at, f"{fact!r} is listed twice")
        out.append({"fact": fact, "verified": False, "article": None, "note": notes[fact], "ref": None})
    return out


def _require(where: str, sources: list[dict], fees: list) -> None:
    """Every fact a citizen is told has a source entry (verified or not): a fact with none would be
    served as if checked."""
    required = REQUIRED_FACTS + ((REQUIRED_IF_CHARGED,) if fees else ())
    missing = [f for f in required if f not in {x["fact"] for x in sources}]
    if missing:
        raise _fail(where + "/sources", f"must say how {', '.join(missing)} were checked")


@lru_cache(maxsize=1)
def _load() -> str:
    return DATA.read_text(encoding="utf-8")


def build() -> dict:
    """``{"fields": [...], "procedures": [...]}`` from the YAML, every rule checked."""
    raw = yaml.safe_load(_load())
    fields = {}
    for i, f in enumerate(raw.get("fields") or []):
        if not isinstance(f, dict) or set(f) != {"code", "name", "name_en"} or not SLUG_RE.match(str(f.get("code"))):
            raise _fail(f"fields/{i}", f"must be {{code, name, name_en}}, got {f!r}")
        if f["code"] in fields:
            raise _fail(f"fields/{i}", f"{f['code']!r} is listed twice")
        fields[f["code"]] = {"code": f["code"], "name": f["name"], "name_en": f["name_en"]}
    references = _references(raw.get("references"))
    notes = _unreviewed_notes(raw.get("unreviewed_notes"))
    procedures = [_procedure(p, fields, references, notes) for p in raw.get("procedures") or []]
    codes = [p["code"] for p in procedures]
    if len(set(codes)) != len(codes):
        raise _fail("procedures", f"codes listed twice: {sorted({c for c in codes if codes.count(c) > 1})}")
    counts = {code: sum(p["field"] == code for p in procedures) for code in fields}
    return {"fields": [{**f, "procedures": counts[f["code"]]} for f in fields.values()], "procedures": procedures}


def agencies_named(procedures: list[dict]) -> set[str]:
    """Every agency code the catalogue names (deciders and steps), ``ubnd-xa`` excluded."""
    out = {p["agency"] for p in procedures} | {s["agency"] for p in procedures for s in p["steps"]}
    return out - {COMMUNE_COMMITTEE}


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
