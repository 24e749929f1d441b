"""The one-stop shop's HTTP surface (hồ sơ): thin routes over :mod:`.workflow` and :mod:`.records`.

Who may call is declared on every route (``@allow``); what a caller may see or move is narrowed by
ownership (citizens and businesses: their own dossiers), the token's ``agency`` and ``unit``
(officers: the dossiers with a step assigned to their agency and unit, and only that step), and the
``agency`` claim alone for supervisors (their whole agency).
"""

from __future__ import annotations

import copy
import hmac
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, g, jsonify, request

from lscloud import outbox
from lscloud import runtime
from lscloud.auth import allow, principal
from lscloud.identifiers import InvalidIdentifier, normalise_tax_code, parse_cccd
from lscloud.idempotency import idempotent
from lscloud.store import BlobRejected, BlobStore, ConditionalCheckFailed, DoesNotExist, InvalidKey
from lscloud.query import Param, QueryError
from lscloud.web import (Problem, body_limit, create_app as runtime_app, json_body, page_params, query_params, raw_body,
                         responds, validate_body)

from lscloud import workdays

from . import catalog, records, stats, workflow
from .models import DayIndex, Dossier, DossierCode, OwnerIndex, Rating, WorkIndex
from .workflow import Actor

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
APPLICANTS = ("citizen", "enterprise")
READERS = ("citizen", "enterprise", "officer", "supervisor", "operator", "auditor")
FILES_PREFIX = "dossiers-files"
FILE_TYPES = ("application/pdf", "image/png", "image/jpeg")
_RECEIVED_RE = re.compile(r"_(\d{16})_")
AGENCY_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


# -- problems ----------------------------------------------------------------------------------------

def _bad(field: str, message: str, errors: list | None = None, kind: str = "validation-failed") -> Problem:
    return Problem(422, kind, "Validation failed", message, title_vi="Dữ liệu không hợp lệ", detail_vi=message,
                   errors=errors or [{"field": field, "message": message}])


def _not_found() -> Problem:
    return Problem(404, "not-found", "Dossier not found", "No dossier with this id is visible to you.",
                   title_vi="Không tìm thấy hồ sơ", detail_vi="Không tìm thấy hồ sơ (hoặc bạn không có quyền xem).")


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, workflow.IllegalTransition):
        vi = workflow.STATE_VI.get(exc.state, exc.state)
        return Problem(409, "illegal-transition", "Illegal transition",
                       f"{exc} (the dossier is {exc.state}).", title_vi="Không thể chuyển trạng thái",
                       detail_vi=f"Không thể thực hiện thao tác: hồ sơ {vi}.", current_state=exc.state,
                       action=exc.action, allowed_from=exc.allowed_from)
    if isinstance(exc, workflow.NotPermitted):
        return Problem(403, "not-your-step", "Not permitted", str(exc), title_vi="Không có quyền",
                       detail_vi="Bước xử lý này không được giao cho cơ quan/đơn vị của bạn.")
    if isinstance(exc, records.Conflict):
        return Problem(409, "conflict", "Conflict", str(exc), title_vi="Xung đột dữ liệu", detail_vi=str(exc))
    if isinstance(exc, catalog.PeerUnavailable):
        return Problem(503, "catalogue-unavailable", "Catalogue unavailable", str(exc),
                       title_vi="Danh mục tạm thời không truy cập được",
                       detail_vi="Danh mục thủ tục/đơn vị tạm thời không trả lời; vui lòng thử lại.",
                       headers={"Retry-After": "5"})
    if isinstance(exc, ConditionalCheckFailed):
        return Problem(409, "concurrent-update", "Concurrent update", "The dossier kept changing; retry.",
                       title_vi="Hồ sơ đang được cập nhật", detail_vi="Hồ sơ đang được cập nhật đồng thời; vui lòng thử lại.",
                       headers={"Retry-After": "1"})
    if isinstance(exc, ValueError):
        return _bad("", str(exc))
    raise exc


def run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (workflow.IllegalTransition, workflow.NotPermitted, records.Conflict, catalog.PeerUnavailable,
            ConditionalCheckFailed, ValueError) as exc:
        raise _problem(exc) from None
    except DoesNotExist:
        raise _not_found() from None


# -- who is calling -------------------------------------------------------------------------------

def _actor() -> Actor:
    p = principal()
    return Actor(p.role or "anonymous", p.sub, p.agency, p.unit)


def _can_see(doc: dict) -> bool:
    p = principal()
    if p.role in APPLICANTS:
        return doc["owner"] == p.sub
    if p.role == "officer":
        return any(s["agency"] == p.agency and (s.get("unit") is None or s["unit"] == p.unit) for s in doc["steps"])
    if p.role == "supervisor":
        return doc["agency"] == p.agency or any(s["agency"] == p.agency for s in doc["steps"])
    return p.role in ("operator", "auditor")


def _load(dossier_id: str) -> Dossier:
    try:
        d = Dossier.get(dossier_id)
    except (DoesNotExist, InvalidKey):
        raise _not_found() from None
    if not _can_see(d.data):
        raise _not_found()
    return d


def _view(doc: dict, at: datetime | None = None) -> dict:
    at = at or records.now()
    out = copy.deepcopy(doc)
    p = principal()
    if not (p.role in APPLICANTS and doc["owner"] == p.sub):
        out.pop("tracking_secret", None)
    clock = workflow.clock_now(doc, at)
    cal = workdays.load()
    deadline = workflow.parse(doc["deadline"])
    out["allowed_actions"] = workflow.allowed_actions(doc["status"])
    out["overdue"] = workflow.is_overdue(doc, at)
    out["overdue_steps"] = [s["code"] for s in workflow.overdue_steps(doc, at)]
    out["clock"] = {"running": doc["status"] in ("received", "processing"),
                    "elapsed_working_days": workdays.minutes_to_days(cal.between(workflow.parse(doc["clock_start"]), clock)
                                                                     - doc.get("paused_minutes", 0)),
                    "remaining_working_days": workdays.minutes_to_days(cal.between(clock, deadline)),
                    "late_by_working_days": workdays.minutes_to_days(cal.between(deadline, clock))}
    return out


def _answer(outcome: records.Outcome, status: int = 200):
    resp = jsonify(_view(outcome.doc))
    resp.status_code = status
    resp.headers["ETag"] = f'"{outcome.dossier.version}"'
    return resp


def _receipt(doc: dict) -> dict:
    local = workflow.parse(doc["received_at"]).astimezone(workdays.TZ)
    appointment = workflow.parse(doc["deadline"]).astimezone(workdays.TZ)
    return {"code": doc["code"], "dossier_id": doc["id"], "procedure": doc["procedure"]["code"],
            "procedure_name": doc["procedure"]["name"], "received_at": doc["received_at"],
            "received_at_local": local.isoformat(timespec="minutes"), "clock_start": doc["clock_start"],
            "processing_days": doc["procedure"]["processing_days"], "appointment_at": doc["deadline"],
            "appointment_local": appointment.isoformat(timespec="minutes"), "appointment_date": doc["appointment_date"],
            "calendar_provisional": doc["calendar_provisional"], "channel": doc["channel"],
            "documents": [{"code": d["code"], "name": d.get("name"), "sha256": d["sha256"]} for d in doc["documents"]],
            "fees": doc["fees"], "fee_total_vnd": doc["fee_total_vnd"],
            "tracking_secret": doc.get("tracking_secret"),
            "track_path": f"/dossiers/v1/track?code={doc['code']}&secret={doc.get('tracking_secret')}"}


def _optional_body() -> dict:
    if not request.get_data(cache=True).strip():
        return {}
    body = json_body()
    if not isinstance(body, dict):
        raise _bad("", "the body must be a JSON object")
    return body


def create_app(settings=None) -> Flask:
    app = runtime_app("dossiers", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn one-stop shop: dossiers (hồ sơ)", "version": "1.0.0",
        "description": "Dossiers of administrative procedures from submission to result: receipts with "
                       "appointment dates in working days, step-by-step processing across agencies, "
                       "supplements with the clock paused, overdue tracking and the IOC's figures."})
    cfg = app.extensions["lscloud"].settings

    def files() -> BlobStore:
        rt = runtime.current()
        return BlobStore(rt.objects, rt.settings.bucket, prefix=FILES_PREFIX, max_bytes=rt.settings.blob_max_bytes,
                         allowed_types=FILE_TYPES)

    def file_refs(items: list[dict], base: str, procedure: dict | None) -> list[dict]:
        """The referenced blobs as stored entries; errors[] for any that was never uploaded."""
        names = {d["code"]: d for d in (procedure or {}).get("documents", [])}
        store = files()
        errors, out = [], []
        for i, item in enumerate(items):
            try:
                head = store.objects.head(store.bucket, store.key_for(item["sha256"]))
            except (DoesNotExist, InvalidKey):
                errors.append({"field": f"{base}/{i}/sha256", "message": "no uploaded file with this sha256: "
                                                                           "POST it to /v1/attachments first"})
                continue
            out.append({"code": item["code"], "name": names.get(item["code"], {}).get("name"), "sha256": item["sha256"].lower(),
                        "size": head.size, "media_type": getattr(head, "content_type", None),
                        "filename": item.get("filename"), "added_by": principal().sub,
                        "added_at": workflow.iso(records.now())})
        if errors:
            raise _bad(base, f"{len(errors)} file(s) not found", errors)
        return out

    # -- files --------------------------------------------------------------------------------------

    @app.post("/v1/attachments")
    @allow("citizen", "enterprise", "officer")
    @raw_body(*FILE_TYPES)
    @body_limit(cfg.blob_max_bytes)  # files up to the blob limit, not the JSON limit
    @query_params(("filename", "The original file name.", {"type": "string", "maxLength": 200}))
    @idempotent(required=False)
    @responds("dossiers/attachment.json", status=201)
    def upload_attachment():
        """Upload a document (PDF, PNG, JPEG); reference it by sha256 in a dossier or a supplement."""
        try:
            ref = files().put(request.get_data(), request.mimetype, g.query["filename"])
        except BlobRejected as exc:
            raise _bad("", f"file refused: {exc.cause}") from None
        return jsonify({"sha256": ref.sha256, "size": ref.size, "media_type": ref.media_type,
                        "filename": ref.filename}), 201

    @app.get("/v1/dossiers/<dossier_id>/files/<sha256>")
    @allow(*READERS)
    @responds("dossiers/file-link.json")
    def file_link(dossier_id: str, sha256: str):
        """A short-lived download link for one of the dossier's documents or its result."""
        doc = _load(dossier_id).data
        known = {d["sha256"]: d for d in doc["documents"]}
        if doc.get("result"):
            known[doc["result"]["sha256"]] = doc["result"]
        entry = known.get(sha256.lower())
        if entry is None:
            raise Problem(404, "not-found", "File not found", "The dossier has no file with this sha256.",
                          title_vi="Không tìm thấy tệp", detail_vi="Hồ sơ không có tệp này.")
        ttl = runtime.current().settings.presign_ttl_s
        url = files().presigned_url(sha256.lower(), ttl, filename=entry.get("filename"))
        return jsonify({"sha256": sha256.lower(), "url": url, "expires_in_s": ttl})

    # -- submission -----------------------------------------------------------------------------------

    @app.post("/v1/dossiers")
    @allow("citizen", "enterprise", "officer")
    @validate_body("dossiers/dossier-create.json")
    @idempotent(key_from=lambda body: body.get("id") if isinstance(body, dict) else None)
    @responds("dossiers/dossier.json", status=201, headers={"ETag": "The dossier's version"})
    def submit_dossier():
        """Submit a dossier online (citizen, business) or at the counter for a citizen (officer); the
        answer carries the receipt: code, appointment date in working days, tracking secret."""
        body = g.body
        p = principal()
        actor = _actor()
        applicant = dict(body.get("applicant") or {})
        errors = []
        if p.role == "citizen":
            channel = body.get("channel", "online")
            if channel != "online":
                errors.append({"field": "/channel", "message": "a citizen submits online; counter and post are "
                                                               "recorded by the officer who receives the dossier"})
            if applicant.get("id_number") not in (None, p.sub):
                errors.append({"field": "/applicant/id_number", "message": "you submit in your own name"})
            applicant["id_number"] = p.sub
            applicant["kind"] = "citizen"
        elif p.role == "enterprise":
            channel = body.get("channel", "online")
            if channel != "online":
                errors.append({"field": "/channel", "message": "a business submits online"})
            applicant["tax_code"] = p.sub
            applicant["kind"] = "business"
        else:
            channel = body.get("channel")
            if channel not in ("counter", "post"):
                errors.append({"field": "/channel", "message": "an officer records counter or post"})
            if not applicant.get("id_number") and not applicant.get("tax_code"):
                errors.append({"field": "/applicant/id_number", "message": "the applicant's CCCD (or tax code) is required"})
            applicant["kind"] = "business" if applicant.get("tax_code") and not applicant.get("id_number") else "citizen"
        for key, parse in (("id_number", lambda v: parse_cccd(v).number), ("tax_code", normalise_tax_code)):
            if applicant.get(key):
                try:
                    applicant[key] = parse(applicant[key])
                except InvalidIdentifier as exc:   # a 12-digit tax code is checked as a CCCD: name the right field
                    errors.append({"field": f"/applicant/{key}", "message": str(exc)})
        if errors:
            raise _bad(errors[0]["field"], f"{len(errors)} field(s) are invalid", errors)
        try:
            procedure = catalog.procedure(cfg, body["procedure"])
        except catalog.PeerNotFound:
            raise _bad("/procedure", f"no procedure {body['procedure']!r} in the catalogue", kind="unknown-procedure") from None
        except catalog.PeerError as exc:
            raise _problem(catalog.PeerUnavailable(str(exc))) from None
        try:
            unit = catalog.unit(cfg, body["unit"])
        except catalog.PeerNotFound:
            raise _bad("/unit", f"no commune-level unit {body['unit']!r} in Lạng Sơn", kind="unknown-unit") from None
        except catalog.PeerError as exc:
            raise _problem(catalog.PeerUnavailable(str(exc))) from None
        missing = workflow.check_documents(procedure, body["documents"])
        if missing:
            raise Problem(422, "documents-missing", "Documents missing",
                          f"{len(missing)} document problem(s): " + "; ".join(e["message"] for e in missing),
                          title_vi="Thiếu giấy tờ", detail_vi="Hồ sơ thiếu giấy tờ bắt buộc: "
                          + "; ".join(e.get("name") or e["message"] for e in missing), errors=missing)
        documents = file_refs(body["documents"], "/documents", procedure)
        agency_units = {}
        for s in procedure["steps"]:
            if s["agency"] != "ubnd-xa" and s["agency"] not in agency_units:
                try:
                    agency_units[s["agency"]] = catalog.agency_unit(cfg, s["agency"])
                except catalog.PeerNotFound:
                    agency_units[s["agency"]] = None
                except catalog.PeerError as exc:
                    raise _problem(catalog.PeerUnavailable(str(exc))) from None
        steps = run(workflow.plan_steps, procedure, unit["code"], agency_units)
        if p.role == "officer" and not workflow.assigned_to(steps[0], actor):
            raise Problem(403, "not-your-counter", "Not your counter",
                          f"This procedure is received by {steps[0]['agency']}"
                          + (f" (unit {steps[0]['unit']})" if steps[0].get("unit") else "") + ".",
                          title_vi="Không phải bộ phận tiếp nhận của bạn",
                          detail_vi="Thủ tục này do cơ quan khác tiếp nhận.")
        agency = f"ubnd-{unit['code']}" if procedure["agency"] == "ubnd-xa" else procedure["agency"]
        fees = [{"name": f["name"], "amount_vnd": int(f["amount_vnd"])} for f in procedure.get("fees", [])]
        doc = {"id": body["id"], "procedure": {k: procedure.get(k) for k in ("code", "name", "name_en", "field", "level",
                                                                              "agency", "online_mode", "processing_days",
                                                                              "same_day_cutoff", "national_code")},
               "agency": agency, "unit": unit["code"], "unit_name": unit.get("name"), "channel": channel,
               "applicant": applicant, "owner": applicant.get("id_number") or applicant.get("tax_code"),
               "documents": documents, "fees": fees, "fee_total_vnd": sum(f["amount_vnd"] for f in fees),
               "fees_paid": bool(body.get("fees_paid", False)), "note": body.get("note"),
               "received_by": {"sub": p.sub, "agency": p.agency, "unit": p.unit} if p.role == "officer" else None,
               "steps": steps, "tracking_secret": secrets.token_hex(4).upper(), "created_at": workflow.iso(records.now())}
        outcome = run(records.create, doc, actor, records.now(), workdays.load())
        out = _view(outcome.doc)
        out["receipt"] = _receipt(outcome.doc)
        resp = jsonify(out)
        resp.status_code = 201
        resp.headers["ETag"] = f'"{outcome.dossier.version}"'
        resp.headers["Location"] = f"/v1/dossiers/{doc['id']}"
        return resp

    # -- reading ------------------------------------------------------------------------------------------

    @app.get("/v1/dossiers")
    @allow("citizen", "enterprise", "officer", "supervisor")
    @responds("dossiers/dossier.json", page=True)
    @query_params(*page_params(default_limit=20),
                  ("status", "Only dossiers in this state.", {"type": "string", "enum": list(workflow.STATES)}))
    def list_dossiers():
        """Your dossiers (citizen, business), your unit's (officer), your agency's (supervisor)."""
        p = principal()
        limit = g.query["limit"]
        token = g.query["page_token"] or None
        status = g.query["status"]
        try:
            if p.role in APPLICANTS:
                page = OwnerIndex.query(p.sub, limit=limit, page_token=token)
            elif p.role == "officer":
                page = None
                pages = [WorkIndex.query(p.agency or "-", range_prefix=f"{records.safe(p.unit or '-')}_", limit=100),
                         WorkIndex.query(p.agency or "-", range_prefix="__", limit=100)]
                entries = sorted((e for pg in pages for e in pg), key=lambda e: _RECEIVED_RE.search(e.entry).group(1))
                if token and not re.fullmatch(r"[0-9]{1,6}", token):  # "²".isdigit() is True, int("²") fails
                    raise InvalidKey("not a page token of this list")
                start = int(token) if token else 0
                chosen = entries[start:start + limit]
                next_token = str(start + limit) if start + limit < len(entries) else None
            else:
                page = WorkIndex.query(p.agency or "-", limit=limit, page_token=token)
        except InvalidKey:
            raise QueryError("page_token", "page_token is not one this list issued") from None
        if page is not None:
            chosen, next_token = list(page), page.page_token
        seen, ids = set(), []
        for e in chosen:
            if e.dossier_id not in seen:
                seen.add(e.dossier_id)
                ids.append(e.dossier_id)
        at = records.now()
        items = [_view(d, at) for d in records.get_many(ids) if _can_see(d) and (not status or d["status"] == status)]
        return jsonify({"items": items, "total": len(items), "next_page_token": next_token})

    @app.get("/v1/dossiers/<dossier_id>")
    @allow(*READERS)
    @responds("dossiers/dossier.json", headers={"ETag": "The dossier's version"})
    def get_dossier(dossier_id: str):
        """One dossier: state, steps with their deadlines, pauses, the clock, what can happen next."""
        return _answer(records.Outcome(_load(dossier_id)))

    @app.get("/v1/dossiers/<dossier_id>/receipt")
    @allow(*READERS)
    @responds("dossiers/receipt.json")
    def get_receipt(dossier_id: str):
        """The receipt (giấy tiếp nhận và hẹn trả kết quả): code, appointment, documents, fees."""
        doc = _load(dossier_id).data
        r = _receipt(doc)
        p = principal()
        if not (p.role in APPLICANTS and doc["owner"] == p.sub) and p.role != "officer":
            r["tracking_secret"] = None
            r["track_path"] = None
        return jsonify(r)

    @app.get("/v1/dossiers/<dossier_id>/audit")
    @allow(*READERS)
    @responds("dossiers/audit-entry.json", page=True)
    def get_audit(dossier_id: str):
        """The audit trail: every transition and change, who (agency, unit), when and why."""
        _load(dossier_id)
        items = records.audit_trail(dossier_id)
        return jsonify({"items": items, "total": len(items), "next_page_token": None})

    @app.get("/v1/track")
    @allow("public")
    @responds("dossiers/track.json")
    @query_params(Param("code", "The dossier code on the receipt (e.g. LS-261122-7K3QZP).",
                        {"type": "string", "minLength": 1, "maxLength": 32}, required=True),
                  Param("secret", "The tracking secret printed on the receipt.",
                        {"type": "string", "minLength": 1, "maxLength": 32}, required=True))
    def track():
        """Public tracking by receipt code + tracking secret: state, appointment, current step, what is
        missing. No personal data. A wrong code or secret answers the same 404."""
        code = g.query["code"].strip().upper()
        secret = g.query["secret"].strip().upper()
        doc = None
        try:
            if len(code) <= 32:
                doc = Dossier.get(DossierCode.get(code).dossier_id).data
        except (DoesNotExist, InvalidKey):
            doc = None
        if doc is None or not hmac.compare_digest(doc.get("tracking_secret", "").encode(), secret.encode()):
            raise Problem(404, "not-found", "Dossier not found", "No dossier with this code and secret.",
                          title_vi="Không tìm thấy hồ sơ", detail_vi="Không có hồ sơ với mã và mã tra cứu này.")
        at = records.now()
        step = workflow.active_step(doc)
        pause = workflow.open_pause(doc)
        return jsonify({"code": doc["code"], "status": doc["status"], "status_vi": workflow.STATE_VI[doc["status"]],
                        "procedure": doc["procedure"]["code"], "procedure_name": doc["procedure"]["name"],
                        "received_at": doc["received_at"], "appointment_at": doc["deadline"],
                        "appointment_date": doc["appointment_date"], "overdue": workflow.is_overdue(doc, at),
                        "current_step": {"code": step["code"], "name": step["name"], "agency": step["agency"],
                                         "deadline": step["deadline"]} if step else None,
                        "missing": pause["missing"] if pause else [], "message": pause["message"] if pause else None,
                        "result_ready": doc["status"] == "done", "finished_at": doc.get("finished_at"),
                        "denial_reason": (doc.get("denial") or {}).get("reason")})

    # -- the workflow ------------------------------------------------------------------------------------

    def move(dossier_id: str, op):
        _load(dossier_id)
        return _answer(run(records.mutate, dossier_id, op))

    def expect_step(doc: dict, body: dict, action: str) -> None:
        """A client naming the step it acts on gets 409 if the dossier moved on meanwhile."""
        want = body.get("step")
        step = workflow.active_step(doc)
        if want and (step is None or step["code"] != want):
            raise workflow.IllegalTransition(action, doc["status"],
                                             f"step {want!r} is not the active step (now: {step['code'] if step else 'none'})")

    @app.post("/v1/dossiers/<dossier_id>/start")
    @allow("officer")
    @idempotent()
    @responds("dossiers/dossier.json")
    def start_processing(dossier_id: str):
        """The receiving unit starts processing (the first step becomes active)."""
        at, cal = records.now(), workdays.load()
        return move(dossier_id, lambda doc: workflow.start(doc, _actor(), at, cal))

    @app.post("/v1/dossiers/<dossier_id>/steps/complete")
    @allow("officer")
    @validate_body("dossiers/step-complete.json")
    @idempotent()
    @responds("dossiers/dossier.json")
    def complete_step(dossier_id: str):
        """Complete your unit's active step; the next starts (liên thông when it is another agency's)."""
        at, cal = records.now(), workdays.load()

        def op(doc):
            expect_step(doc, g.body, "complete_step")
            return workflow.complete_step(doc, _actor(), at, cal, g.body.get("note"))

        return move(dossier_id, op)

    @app.post("/v1/dossiers/<dossier_id>/supplement-requests")
    @allow("officer")
    @validate_body("dossiers/supplement-request.json")
    @idempotent()
    @responds("dossiers/dossier.json")
    def request_supplement(dossier_id: str):
        """Ask the applicant for missing or corrected documents: the clock stops until they come."""
        at = records.now()

        def op(doc):
            expect_step(doc, g.body, "request_supplement")
            return workflow.request_supplement(doc, _actor(), at, g.body["missing"], g.body["message"])

        return move(dossier_id, op)

    @app.post("/v1/dossiers/<dossier_id>/supplements")
    @allow("citizen", "enterprise", "officer")
    @validate_body("dossiers/supplement.json")
    @idempotent()
    @responds("dossiers/dossier.json")
    def provide_supplement(dossier_id: str):
        """Provide the requested documents (the applicant online, or an officer at the counter): the
        clock restarts and every open deadline moves by the working time spent waiting."""
        doc = _load(dossier_id).data
        at, cal = records.now(), workdays.load()
        procedure = {"documents": [{"code": d["code"], "name": d.get("name")} for d in doc["documents"]]}
        documents = file_refs(g.body["documents"], "/documents", procedure)
        return move(dossier_id, lambda d: workflow.provide_supplement(d, _actor(), at, cal, documents))

    @app.post("/v1/dossiers/<dossier_id>/result")
    @allow("officer")
    @validate_body("dossiers/result.json")
    @idempotent()
    @responds("dossiers/dossier.json")
    def return_result(dossier_id: str):
        """The last step's unit returns the result document (uploaded first): the dossier is done."""
        _load(dossier_id)
        ref = file_refs([{"code": "result", "sha256": g.body["sha256"], "filename": g.body.get("filename")}],
                        "/result", None)[0]
        at = records.now()

        def op(doc):
            expect_step(doc, g.body, "finish")
            return workflow.finish(doc, _actor(), at, {k: ref[k] for k in ("sha256", "size", "media_type", "filename")},
                                   g.body.get("note"))

        return move(dossier_id, op)

    @app.post("/v1/dossiers/<dossier_id>/deny")
    @allow("officer")
    @validate_body("dossiers/deny.json")
    @idempotent()
    @responds("dossiers/dossier.json")
    def deny_dossier(dossier_id: str):
        """Deny the dossier with the reason the applicant will read (the active step's unit)."""
        at = records.now()

        def op(doc):
            expect_step(doc, g.body, "deny")
            return workflow.deny(doc, _actor(), at, g.body["reason"])

        return move(dossier_id, op)

    @app.post("/v1/dossiers/<dossier_id>/cancel")
    @allow("citizen", "enterprise")
    @idempotent()
    @responds("dossiers/dossier.json")
    def cancel_dossier(dossier_id: str):
        """The applicant withdraws the dossier, only before processing starts."""
        reason = _optional_body().get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
            raise _bad("/reason", "reason is a string of at most 1000 characters")
        at = records.now()
        return move(dossier_id, lambda doc: workflow.cancel(doc, _actor(), at, reason))

    @app.post("/v1/dossiers/<dossier_id>/rating")
    @allow("citizen", "enterprise")
    @validate_body("dossiers/rating.json")
    @idempotent(required=False)
    @responds("dossiers/rating-record.json", status=201)
    def rate_dossier(dossier_id: str):
        """The applicant rates the service once the dossier is finished (done or denied); once."""
        dossier = _load(dossier_id)
        doc = dossier.data
        p = principal()
        if doc["owner"] != p.sub:
            raise Problem(403, "not-your-dossier", "Not your dossier", "Only the applicant rates a dossier.",
                          title_vi="Không phải hồ sơ của bạn", detail_vi="Chỉ người nộp hồ sơ được đánh giá.")
        if doc["status"] not in ("done", "denied"):
            raise _problem(workflow.IllegalTransition("rate", doc["status"], "a dossier is rated once it is finished"))
        at = records.now()
        rating = {"dossier_id": doc["id"], "code": doc["code"], "score": g.body["score"],
                  "comment": g.body.get("comment"), "aspects": g.body.get("aspects", {}), "at": workflow.iso(at),
                  "procedure": doc["procedure"]["code"], "agency": doc["agency"]}
        try:
            Rating(doc["id"], data=rating).save()
        except ConditionalCheckFailed:
            raise Problem(409, "already-rated", "Already rated", "This dossier has already been rated.",
                          title_vi="Đã đánh giá", detail_vi="Hồ sơ này đã được đánh giá.") from None

        def op(d):
            d["rating"] = {"score": rating["score"], "at": rating["at"]}
            return [workflow.Transition("rate", d["status"], d["status"], "dossier.rated", _actor(), rating["at"],
                                        details={"score": rating["score"]})]

        try:
            run(records.mutate, doc["id"], op)
        except BaseException:  # the rating was claimed first: give it back so the retry can rate
            try:
                Rating(doc["id"]).delete()
            except (DoesNotExist, ConditionalCheckFailed):
                pass
            raise
        return jsonify(rating), 201

    # -- figures and housekeeping ------------------------------------------------------------------------

    @app.get("/v1/stats")
    @allow("supervisor", "operator", "ioc", "auditor")
    @responds("dossiers/stats.json")
    @query_params(("from", "First local day, YYYY-MM-DD (default: 30 days ago).", {"type": "string", "format": "date"}),
                  ("to", "Last local day, YYYY-MM-DD (default today; at most 366 days).", {"type": "string", "format": "date"}),
                  ("agency", "Only dossiers decided by this agency (a supervisor: always their own).",
                   {"type": "string", "pattern": AGENCY_PATTERN, "maxLength": 64}))
    def get_stats():
        """Received, resolved, on time / late, overdue now and online share per agency, commune and procedure."""
        at = records.now()
        today = at.astimezone(workdays.TZ).date()
        last = g.query["to"] or today
        first = g.query["from"] or last - timedelta(days=30)
        if not 0 <= (last - first).days <= 365:
            raise QueryError("to", "to is on or after from, at most 366 days later")
        p = principal()
        agency = p.agency if p.role == "supervisor" else g.query["agency"]
        received_ids, finished_ids = [], []
        d = first
        while d <= last:
            for e in DayIndex.query(d.isoformat()):
                (received_ids if e.entry.startswith("r_") else finished_ids).append(e.dossier_id)
            d += timedelta(days=1)
        received = records.get_many(received_ids)
        finished = records.get_many(finished_ids)
        open_docs = records.get_many(records.open_ids())
        if agency:
            received, finished, open_docs = ([x for x in docs if x["agency"] == agency]
                                             for docs in (received, finished, open_docs))
        figures = stats.compute(received, finished, open_docs, at)
        return jsonify({"from": first.isoformat(), "to": last.isoformat(), "agency": agency, "at": workflow.iso(at),
                        **figures})

    # years a calendar can speak of; outside them there is nothing (404), never a date error (500)
    @app.get("/v1/calendar/<int(min=1900, max=2999):year>")
    @allow("public")
    @responds("dossiers/calendar.json")
    def get_calendar(year: int):
        """The working-day calendar of a year: holidays and make-up Saturdays the deadlines use."""
        return jsonify(workdays.load().describe(year))

    @app.post("/v1/overdue/sweep")
    @allow("operator")
    @idempotent(required=False)
    @responds("dossiers/sweep-result.json")
    def sweep_overdue():
        """Flag steps past their deadline (one step.overdue event each) and refresh the overdue gauge;
        the platform clock's tick does it every minute."""
        return jsonify(records.sweep_overdue(records.now()))

    @app.post("/v1/outbox/flush")
    @allow("operator")
    @idempotent(required=False)
    @responds("dossiers/outbox-result.json")
    def flush_outbox():
        """Publish events NATS did not confirm at the time (kept in the outbox)."""
        return jsonify(outbox.flush())

    return app
