"""The driver's lookup (public): a declaration found by its code and one of its plates, its status
and queue position told in the driver's language (vi, zh or en), the traffic police's orders to it
that still hold (a hold overrides what its status tells the driver to do), and nothing personal."""

from __future__ import annotations

from lscloud import errors
from lscloud.problems import Problem
from lscloud.statemachine import parse_iso
from lscloud.store import DoesNotExist

from . import declarations, gates, i18n, indexes, queue, traffic
from .identifiers import plate_key
from .models import Declaration, DeclarationCode

ASKED = ("code", "plate")
"""The lookup's query parameters, in the order its refusals name them."""


def spoken(lang: str) -> dict[str, str]:
    """The headers of an answer said in ``lang``, chosen by the asker's Accept-Language."""
    return {"Content-Language": lang, "Vary": "Accept-Language"}


class LookupNotFound(errors.NotFound):
    """No declaration with this code and plate, said in the asker's language (404)."""

    def __init__(self, lang: str):
        super().__init__(i18n.t("not_found", lang), detail_vi=i18n.t("not_found", "vi"), headers=spoken(lang))
        self.title, self.title_vi = i18n.t("not_found", "en"), i18n.t("not_found", "vi")


class LookupBadQuery(errors.InvalidParameter):
    """The code or the plate is missing or malformed, said in the asker's language (400): the driver
    is told what to type, not which JSON Schema keyword failed."""

    title, title_vi = "Invalid query parameter", "Tham số truy vấn không hợp lệ"

    def __init__(self, fields: list[str], lang: str):
        named = [f for f in ASKED if f in fields] or list(ASKED)
        sep = "；" if lang == "zh" else "; "
        super().__init__(sep.join(i18n.t(f"enter_{f}", lang) for f in named),
                         detail_vi="; ".join(i18n.t(f"enter_{f}", "vi") for f in named),
                         errors=[{"field": f, "message": i18n.t(f"enter_{f}", lang),
                                  "message_vi": i18n.t(f"enter_{f}", "vi")} for f in named], headers=spoken(lang))


def unavailable(problem: Problem, lang: str) -> Problem:
    """``problem`` (a 503: the store or the directory did not answer) said in the asker's language;
    its type, titles and Retry-After are kept."""
    return Problem(problem.status, problem.type, problem.title, i18n.t("busy", lang), title_vi=problem.title_vi,
                   detail_vi=i18n.t("busy", "vi"), errors=problem.errors,
                   headers={**problem.headers, **spoken(lang)}, **problem.extensions)


def normal_code(code: str) -> str:
    """A declaration code as the driver may type it (spaces around, lower case) as it is stored."""
    return code.strip().upper()


def find(code: str, plate: str, lang: str) -> dict:
    """The declaration with this code whose tractor or trailer plate is ``plate`` (else 404)."""
    code = normal_code(code)
    doc = None
    try:
        if len(code) <= 20 and code.isalnum():
            doc = Declaration.get(DeclarationCode.get(code).declaration_id).data
    except DoesNotExist:
        doc = None
    if doc is None or plate_key(plate) not in indexes.plate_keys(doc):
        raise LookupNotFound(lang)
    return doc


def gate_name(read_gate, lang: str) -> str | None:
    """The declaration's gate's name in ``lang`` (:func:`.gates.names`), from ``read_gate()`` (the
    directory's gate); None when the directory does not answer: a name is not worth the driver's
    status and place."""
    try:
        return gates.names(read_gate())[lang]
    except (gates.DirectoryUnavailable, gates.UnknownGate):
        return None


def answer(doc: dict, where: dict, lang: str, orders: list[dict] | None = None,
           gate_name: str | None = None) -> dict:
    """What the driver reads: the traffic police's orders that hold (``orders``:
    :func:`.traffic.open_for`), status, slot, queue position and why, the call's deadline. While a
    hold holds, it is the status text: a called truck is not told to go to the gate now."""
    orders = orders or []
    hold = traffic.holding(orders)
    # the hold first, then the other orders newest first
    told = [i18n.t(f"order_{o['kind']}", lang, message=o["message"])
            for o in sorted(orders, key=lambda o: o is not hold)]
    messages = [i18n.status(doc["status"], lang)]
    if where["slot"]:
        messages.append(i18n.t("slot", lang, slot=queue.slot_label(where["slot"])))
    q = where["queue"]
    if q:
        q = {**q, "rules": i18n.rules(lang)}
        messages.append(i18n.t("position", lang, position=q["position"], ahead=q["ahead"]))
        if q["expected_wait_minutes"] is not None:
            messages.append(i18n.t("wait", lang, minutes=q["expected_wait_minutes"]))
        messages.append(i18n.t("why", lang))
    if doc["status"] == "called" and doc.get("call"):
        local = parse_iso(doc["call"]["deadline"]).astimezone(queue.TZ)
        messages.append(i18n.t("deadline", lang, deadline=local.strftime("%H:%M")))
    # a hold takes the status's place: it, not the status ("called: go now"), says what to do now
    messages = told + messages[1:] if hold is not None else messages[:1] + told + messages[1:]
    return {"language": lang, "declaration": declarations.for_driver(doc), "gate_name": gate_name, "queue": q,
            "traffic_orders": orders, "status_text": messages[0], "messages": messages}
