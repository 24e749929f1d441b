"""A dossier submitted and received: the checks a receiving clerk makes, then the receipt.

In order: who applies and through which channel (:mod:`.applicants`); the procedure and the
commune from the catalogue (:mod:`.catalog`); the procedure's required documents, each an uploaded
file (:mod:`.attachments`); the steps assigned to agencies and units, and — at the counter — that
the officer belongs to the unit that receives this procedure; the fees, and the agency that decides
(the commune's People's Committee for a commune procedure). Then the dossier is stored as received
with its receipt code, appointment date and tracking secret (:func:`.registry.create`).
"""

from __future__ import annotations

import secrets

from lscloud import errors, workdays
from lscloud.aggregate import Outcome, give_back, side_pool
from lscloud.statemachine import Actor, iso, now

from . import applicants, attachments, registry, workflow
from .catalog import Catalog
from .models import Dossier, DossierCode

# what a dossier keeps of its procedure: the catalogue may change, the dossier's terms do not
PROCEDURE_FIELDS = ("code", "name", "name_en", "field", "level", "agency", "online_mode", "processing_days",
                    "same_day_cutoff", "national_code")


class DocumentsMissing(errors.Invalid):
    type = "documents-missing"
    title, title_vi = "Documents missing", "Thiếu giấy tờ"


class NotYourCounter(errors.Forbidden):
    type = "not-your-counter"
    title, title_vi = "Not your counter", "Không phải bộ phận tiếp nhận của bạn"


WAIVED_NOTE = "Miễn khi nộp trực tuyến / waived for an online submission"
PER_PAGE_NOTE = ("Tính theo số trang, thu tại nơi chứng thực; không cộng vào tổng / per page: the amount depends "
                 "on the page count, paid where it is certified, not in the total")


def fees(procedure: dict, channel: str | None = None) -> list[dict]:
    """What the applicant is charged, fee by fee: ``amount_vnd`` is what counts towards the total.
    A fee the catalogue waives online is 0 for an online dossier (its catalogue amount kept as
    ``waived_vnd``); a per-page fee keeps its rate, marked ``per: page``, and is left out of the
    total: the dossier does not know the page count."""
    out = []
    for f in procedure.get("fees", []):
        fee = {"name": f["name"], "amount_vnd": int(f["amount_vnd"])}
        if f.get("per"):
            fee.update(amount_vnd=0, rate_vnd=int(f["amount_vnd"]), per=f["per"], note=PER_PAGE_NOTE)
            if f.get("max_vnd") is not None:
                fee["max_vnd"] = int(f["max_vnd"])
        elif f.get("waived_online") and channel == "online":
            fee.update(amount_vnd=0, waived_vnd=int(f["amount_vnd"]), note=WAIVED_NOTE)
        out.append(fee)
    return out


def processing_days_verified(procedure: dict) -> bool:
    """Whether the catalogue cites a checked source for the procedure's processing time."""
    return fact_verified(procedure, "processing_days")


def fees_verified(procedure: dict) -> bool:
    """Whether the catalogue cites a checked source for the procedure's fees."""
    return fact_verified(procedure, "fees")


def fact_verified(procedure: dict, fact: str) -> bool:
    return any(s.get("fact") == fact and s.get("verified") for s in procedure.get("sources") or [])


def deciding_agency(procedure: dict, unit_code: str) -> str:
    """The agency that decides: the commune's People's Committee for a commune procedure."""
    return f"ubnd-{unit_code}" if procedure["agency"] == "ubnd-xa" else procedure["agency"]


def check_documents(procedure: dict, documents: list[dict]) -> None:
    missing = workflow.check_documents(procedure, documents)
    if missing:
        raise DocumentsMissing(f"{len(missing)} document problem(s): " + "; ".join(e["message"] for e in missing),
                               detail_vi="Hồ sơ thiếu giấy tờ bắt buộc: "
                                         + "; ".join(e.get("name") or e["message"] for e in missing),
                               errors=missing)


def check_counter(steps: list[dict], actor: Actor) -> None:
    """An officer receives at the counter only the procedures their unit receives (the first step)."""
    if actor.kind == "officer" and not workflow.assigned_to(steps[0], actor):
        raise NotYourCounter(f"This procedure is received by {steps[0]['agency']}"
                             + (f" (unit {steps[0]['unit']})" if steps[0].get("unit") else "") + ".",
                             detail_vi="Thủ tục này do cơ quan khác tiếp nhận.")


def unnamed_files(sent: dict[str, dict], documents: list[dict]) -> None:
    """Every file sent with the dossier is one of its documents: 422 naming the others (a stray
    file is not stored)."""
    named = {str(d["sha256"]).lower() for d in documents}
    stray = [errors.field(f["part"].field, "no document names this file by its sha256")
             for digest, f in sent.items() if digest not in named]
    if stray:
        message = f"{len(stray)} file(s) not named by any document"
        raise errors.Invalid(message, detail_vi=f"{len(stray)} tệp không thuộc giấy tờ nào của hồ sơ", errors=stray)


def submit(body: dict, actor: Actor, catalog: Catalog, request: dict | None = None,
           files: list | None = None) -> Outcome[Dossier]:
    """Check and receive the dossier ``body`` (dossier-create.json) submitted by ``actor``;
    ``request`` is what the dossier keeps of the request (its idempotency stamp); ``files`` the
    documents sent with it (:class:`lscloud.web.FilePart`), named by sha256 in ``body`` as
    uploaded ones are.

    Files sent with it are stored beside the receipt code's reservation and the lookups of the
    uploaded ones, and all before the dossier: a dossier never names a file that is not stored.
    A failure after that leaves the stored files as an upload whose submission failed leaves its
    file (content-addressed: another dossier may name the same bytes), and gives the code back.
    A dossier already stored under that id raises the 409 of :func:`.registry.already_there`.
    """
    sent = attachments.checked(files or [])
    unnamed_files(sent, body["documents"])
    channel, applicant = applicants.resolve(actor, body)
    procedure = catalog.procedure(body["procedure"])
    unit = catalog.unit(body["unit"])
    check_documents(procedure, body["documents"])
    steps = workflow.plan_steps(procedure, unit["code"], catalog.agency_units(procedure))
    check_counter(steps, actor)
    # each fee the receipt shows says whether anyone checked the catalogue's amount
    checked = fees_verified(procedure)
    charged = [{**f, "verified": checked} for f in fees(procedure, channel)]
    # every check that needs no store is done; the receipt code is reserved while the files are
    # looked up (one round trip for both), and given back if one of them is missing
    code = side_pool().submit(registry.reserve_code, body["id"], now())
    storing = [side_pool().submit(attachments.keep, f) for f in sent.values()]
    try:
        documents = attachments.refs(body["documents"], "/documents", procedure, actor, now(), sent)
        for f in storing:
            f.result()
    except BaseException:
        for f in storing:  # nothing is given back before every write of this round has ended
            f.exception()
        give_back(DossierCode, code)
        raise
    kept = {k: procedure.get(k) for k in PROCEDURE_FIELDS}
    # the deadline a citizen is given rests on the catalogue's processing days: say if nobody checked them
    kept["processing_days_verified"] = processing_days_verified(procedure)
    kept["fees_verified"] = fees_verified(procedure)   # so is what the receipt charges
    doc = {"id": body["id"], "procedure": kept,
           "agency": deciding_agency(procedure, unit["code"]), "unit": unit["code"], "unit_name": unit.get("name"),
           "channel": channel, "applicant": applicant, "owner": applicants.owner(applicant),
           "documents": documents, "fees": charged, "fee_total_vnd": sum(f["amount_vnd"] for f in charged),
           "fees_paid": bool(body.get("fees_paid", False)), "note": body.get("note"),
           "received_by": {"sub": actor.sub, "agency": actor.agency, "unit": actor.unit}
           if actor.kind == "officer" else None,
           "steps": steps, "tracking_secret": secrets.token_hex(4).upper(), "created_at": iso(now())}
    return registry.create(doc, actor, now(), workdays.load(), code=code, request=request)
