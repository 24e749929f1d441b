"""The border gate's HTTP surface: thin routes over the domain (parse → domain → respond).

Who may call what is declared on every route (``@allow``); what a caller may see or move is
narrowed further by ownership (enterprises, drivers), the gate in the token's ``unit`` (yard and
gate operators, devices) and the ``agency`` claim (officers decide only their own step).
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, g, jsonify, request

from lscloud import outbox
from lscloud import events as ce
from lscloud import runtime
from lscloud.auth import allow, principal
from lscloud.identifiers import InvalidIdentifier
from lscloud.idempotency import idempotent
from lscloud.store import BlobStore, DoesNotExist, InvalidKey
from lscloud.query import Param, QueryError
from lscloud.web import (Problem, create_app as runtime_app, json_body, page_params, query_params, raw_body, responds,
                         validate_body)

from . import clearance, crossing, declarations, gates, i18n, lifecycle, metrics, queue, records, stats
from .device_events import PLATE_READ, WEIGHT_MEASURED
from .identifiers import normalise_plate, plate_key
from .lifecycle import Actor
from .models import CapacityOverride, Declaration, DeclarationCode, DayIndex, OwnerIndex, TrafficOrder, WorkItem

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
ROLES_READ = ("enterprise", "driver", "officer", "yard-operator", "gate-operator", "operator")
_DEVICE_EVENTS = {WEIGHT_MEASURED: "events/border/weight.measured.json", PLATE_READ: "events/border/plate.read.json"}
_ID_OK = "letters, digits, '-' and '_', 8-64 characters"
ATTACHMENT_KINDS = ("invoice", "packing-list", "phytosanitary-certificate", "health-certificate", "other")
GATE_PATTERN = f"^{gates.CODE_RE.pattern}$"


# -- problems ----------------------------------------------------------------------------------------

def _problem(exc: Exception) -> Problem:
    if isinstance(exc, lifecycle.IllegalTransition):
        vi = lifecycle.STATE_VI.get(exc.state, exc.state)
        return Problem(409, "illegal-transition", "Illegal transition",
                       f"Cannot {exc.action.replace('_', ' ')}: the declaration is {exc.state}.",
                       title_vi="Không thể chuyển trạng thái",
                       detail_vi=f"Không thể thực hiện thao tác: tờ khai {vi}.",
                       current_state=exc.state, action=exc.action, allowed_from=exc.allowed_from)
    if isinstance(exc, lifecycle.NotPermitted):
        # not "forbidden": that is the door's answer (a role the route does not admit)
        return Problem(403, "action-not-permitted", "Action not permitted", str(exc), title_vi="Không có quyền",
                       detail_vi="Bạn không được phép thực hiện thao tác này trên tờ khai.")
    if isinstance(exc, crossing.NotReleasable):
        return Problem(409, "not-releasable", "Release not possible yet", str(exc),
                       title_vi="Chưa thể thông quan",
                       detail_vi="Chưa đủ điều kiện thông quan: còn cơ quan chưa đồng ý hoặc đang tạm giữ.",
                       blockers=exc.blockers)
    if isinstance(exc, queue.QueueError):
        status = 409 if exc.code in ("slot-full", "no-slot") else 422
        return Problem(status, exc.code, "Booking not possible", str(exc), title_vi="Không đặt được lượt",
                       detail_vi="Không đặt được khung giờ này.", suggestions=exc.suggestions,
                       errors=[{"field": "/slot", "message": str(exc)}])
    if isinstance(exc, declarations.DeclarationInvalid):
        return Problem(422, "validation-failed", "Validation failed", f"{len(exc.errors)} field(s) are invalid.",
                       title_vi="Dữ liệu không hợp lệ", detail_vi=f"{len(exc.errors)} trường không hợp lệ.",
                       errors=exc.errors)
    if isinstance(exc, records.Conflict):
        return Problem(409, "conflict", "Conflict", str(exc), title_vi="Xung đột dữ liệu", detail_vi=str(exc))
    if isinstance(exc, gates.PeerNotFound):
        return Problem(422, "unknown-gate", "Unknown gate", str(exc), title_vi="Cửa khẩu không tồn tại",
                       detail_vi="Không có cửa khẩu đường bộ với mã này.",
                       errors=[{"field": "/gate", "message": "no road border gate with this code"}])
    if isinstance(exc, gates.PeerError):
        return Problem(503, "directory-unavailable", "Gate directory unavailable", str(exc),
                       title_vi="Không truy cập được danh mục cửa khẩu",
                       detail_vi="Danh mục cửa khẩu tạm thời không trả lời; vui lòng thử lại.",
                       headers={"Retry-After": "5"})
    raise exc


def _not_found(what: str = "declaration") -> Problem:
    return Problem(404, "not-found", f"{what.capitalize()} not found", f"No {what} with this id is visible to you.",
                   title_vi="Không tìm thấy", detail_vi="Không tìm thấy tờ khai (hoặc bạn không có quyền xem).")


def _bad(field: str, message: str) -> Problem:
    return Problem(422, "validation-failed", "Validation failed", message, title_vi="Dữ liệu không hợp lệ",
                   detail_vi=message, errors=[{"field": field, "message": message}])


# -- who is calling ----------------------------------------------------------------------------------

def _actor() -> Actor:
    p = principal()
    return Actor(p.role or "anonymous", p.sub, p.agency, p.unit)


def _gate_scoped(gate_code: str) -> None:
    """Yard and gate operators and devices act only at the gate in their token's ``unit``."""
    p = principal()
    if p.role in ("yard-operator", "gate-operator", "device") and p.unit != gate_code:
        raise Problem(403, "wrong-gate", "Not your gate", f"Your token is for gate {p.unit!r}, not {gate_code!r}.",
                      title_vi="Không phải cửa khẩu của bạn", detail_vi="Mã xác thực không dành cho cửa khẩu này.")
    if p.role == "officer" and p.unit and p.unit != gate_code:
        raise Problem(403, "wrong-gate", "Not your gate", f"Your token is for gate {p.unit!r}, not {gate_code!r}.",
                      title_vi="Không phải cửa khẩu của bạn", detail_vi="Mã xác thực không dành cho cửa khẩu này.")


def _can_see(doc: dict) -> bool:
    p = principal()
    if p.role == "enterprise":
        return doc["owner"] == p.sub
    if p.role == "driver":
        return doc["driver"]["id_number"] == (p.sub or "").upper()
    if p.role in ("yard-operator", "gate-operator"):
        return doc["gate"] == p.unit
    if p.role == "officer":
        return not p.unit or doc["gate"] == p.unit
    return p.role in ("operator", "auditor")


def _load(declaration_id: str) -> Declaration:
    try:
        decl = Declaration.get(declaration_id)
    except (DoesNotExist, InvalidKey):
        raise _not_found() from None
    if not _can_see(decl.data):
        raise _not_found()
    return decl


def _optional_body() -> dict:
    if not request.get_data(cache=True).strip():
        return {}
    body = json_body()
    if not isinstance(body, dict):
        raise _bad("", "the body must be a JSON object")
    return body


def _view(doc: dict) -> dict:
    out = copy.deepcopy(doc)
    out["allowed_actions"] = lifecycle.allowed_actions(doc["status"])
    out["pending_agencies"] = clearance.pending_agencies(doc)
    out["release_blockers"] = clearance.release_blockers(doc) if doc["status"] == "under_inspection" else []
    return out


def _answer(outcome: records.Outcome, status: int = 200):
    resp = jsonify(_view(outcome.doc))
    resp.status_code = status
    resp.headers["ETag"] = f'"{outcome.decl.version}"'
    return resp


def create_app(settings=None) -> Flask:
    app = runtime_app("border", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn digital border gate", "version": "1.0.0",
        "description": "One record per crossing: declarations, the gate queue, multi-agency clearance, "
                       "weighbridges, ANPR cameras and barriers."})
    cfg = app.extensions["lscloud"].settings
    import os

    call_minutes = int(os.environ.get("BORDER_CALL_MINUTES", queue.DEFAULT_CALL_MINUTES))

    def gate_info(code: str) -> dict:
        try:
            return gates.gate(cfg, code)
        except gates.PeerError as exc:
            raise _problem(exc) from None

    def run(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (lifecycle.IllegalTransition, lifecycle.NotPermitted, crossing.NotReleasable, queue.QueueError,
                declarations.DeclarationInvalid, records.Conflict, gates.PeerError) as exc:
            raise _problem(exc) from None
        except DoesNotExist:
            raise _not_found() from None
        except records.ConditionalCheckFailed:
            raise Problem(409, "concurrent-update", "Concurrent update",
                          "The declaration kept changing while this request ran; retry it.",
                          title_vi="Tờ khai đang được cập nhật", detail_vi="Tờ khai đang được cập nhật đồng thời; vui lòng thử lại.",
                          headers={"Retry-After": "1"}) from None

    # -- declarations ---------------------------------------------------------------------------------

    @app.post("/v1/declarations")
    @allow("enterprise")
    @validate_body("border/declaration-create.json")
    @idempotent(key_from=lambda body: body.get("id") if isinstance(body, dict) else None)
    @responds("border/declaration.json", status=201, headers={"ETag": "The declaration's version"})
    def create_declaration():
        """Create a declaration (draft, or submitted with `submit`, and booked with `booking`)."""
        body = g.body
        p = principal()
        owner_tax = p.sub if p.sub and p.sub.replace("-", "").isdigit() else None
        doc = run(declarations.normalise, body, owner_tax_code=owner_tax)
        doc["id"] = body["id"]
        gate = gate_info(body["gate"])
        if body.get("booking") and not body.get("submit"):
            raise _bad("/booking", "a booking needs submit: true")
        outcome = run(records.create, doc, _actor(), submit=bool(body.get("submit")), booking=body.get("booking"),
                      gate=gate, at=records.now())
        resp = _answer(outcome, 201)
        resp.headers["Location"] = f"/v1/declarations/{doc['id']}"
        return resp

    @app.get("/v1/declarations")
    @allow("enterprise", "driver")
    @responds("border/declaration.json", page=True)
    @query_params(*page_params(default_limit=20))
    def list_declarations():
        """Your own declarations (enterprise: yours; driver: those naming you), newest last."""
        p = principal()
        owner = f"ent:{p.sub}" if p.role == "enterprise" else f"drv:{(p.sub or '').upper()}"
        try:
            page = OwnerIndex.query(owner, limit=g.query["limit"], page_token=g.query["page_token"] or None)
        except InvalidKey:
            raise QueryError("page_token", "page_token is not one this list issued") from None
        items = []
        for entry in page:
            try:
                doc = Declaration.get(entry.declaration_id).data
            except DoesNotExist:
                continue
            if _can_see(doc):
                items.append(_view(doc))
        return jsonify({"items": items, "total": len(items), "next_page_token": page.page_token})

    @app.get("/v1/declarations/<declaration_id>")
    @allow(*ROLES_READ)
    @responds("border/declaration.json", headers={"ETag": "The declaration's version"})
    def get_declaration(declaration_id: str):
        """One declaration with what can happen next and who still has to decide."""
        decl = _load(declaration_id)
        return _answer(records.Outcome(decl))

    def _move(declaration_id: str, fn):
        _load(declaration_id)
        return _answer(run(fn))

    @app.post("/v1/declarations/<declaration_id>/submit")
    @allow("enterprise")
    @idempotent()
    @responds("border/declaration.json")
    def submit_declaration(declaration_id: str):
        """Submit a draft: agencies see it, customs' selectivity gives it a first risk lane."""
        return _move(declaration_id, lambda: records.submit(declaration_id, _actor()))

    @app.post("/v1/declarations/<declaration_id>/booking")
    @allow("enterprise", "operator")
    @validate_body("border/booking.json")
    @idempotent()
    @responds("border/declaration.json")
    def book_slot(declaration_id: str):
        """Book a slot: living queue (first free hour) or a reservation of a chosen hour."""
        decl = _load(declaration_id)
        gate = gate_info(decl.data["gate"])
        return _answer(run(records.book, declaration_id, _actor(), g.body, gate))

    @app.post("/v1/declarations/<declaration_id>/cancel")
    @allow("enterprise", "operator")
    @idempotent()
    @responds("border/declaration.json")
    def cancel_declaration(declaration_id: str):
        """Cancel before the truck is called (its seat is freed)."""
        reason = _optional_body().get("reason")
        at = records.now()
        return _move(declaration_id, lambda: records.mutate(
            declaration_id, lambda doc: [lifecycle.apply(doc, "cancel", _actor(), at=at, reason=reason)]))

    @app.post("/v1/declarations/<declaration_id>/arrival")
    @allow("yard-operator")
    @idempotent()
    @responds("border/declaration.json")
    def register_arrival(declaration_id: str):
        """Register the truck's arrival in the waiting area (it joins the yard queue)."""
        decl = _load(declaration_id)
        _gate_scoped(decl.data["gate"])
        return _answer(run(records.arrive, declaration_id, _actor(), decl.data["gate"]))

    @app.post("/v1/declarations/<declaration_id>/at-gate")
    @allow("gate-operator")
    @idempotent()
    @responds("border/declaration.json")
    def register_at_gate(declaration_id: str):
        """Register that a called truck reached the gate within its deadline."""
        decl = _load(declaration_id)
        _gate_scoped(decl.data["gate"])
        return _answer(run(records.reach_gate, declaration_id, _actor(), decl.data["gate"]))

    @app.post("/v1/declarations/<declaration_id>/decisions")
    @allow("officer")
    @validate_body("border/decision.json")
    @idempotent()
    @responds("border/declaration.json")
    def record_decision(declaration_id: str):
        """Record your agency's decision (pass / hold / refuse) — only your own agency's step."""
        p = principal()
        decl = _load(declaration_id)
        required = [r["agency"] for r in decl.data.get("required_agencies", [])]
        if p.agency not in required:
            raise Problem(403, "not-your-step", "Not your agency's step",
                          f"Agency {p.agency!r} has no step on this declaration (required: {', '.join(required)}).",
                          title_vi="Không phải bước của cơ quan bạn",
                          detail_vi="Cơ quan của bạn không tham gia kiểm tra tờ khai này.")
        _gate_scoped(decl.data["gate"])
        return _answer(run(records.record_decision, declaration_id, p.agency, g.body, _actor()))

    @app.get("/v1/declarations/<declaration_id>/decisions")
    @allow("enterprise", "officer", "operator", "auditor")
    @responds("border/decision-record.json", page=True)
    def list_decisions(declaration_id: str):
        """Every agency decision on the declaration, each its own record."""
        _load(declaration_id)
        items = records.decisions_of(declaration_id)
        return jsonify({"items": items, "total": len(items), "next_page_token": None})

    @app.post("/v1/declarations/<declaration_id>/risk-lane")
    @allow("officer")
    @validate_body("border/risk-lane.json")
    @idempotent()
    @responds("border/declaration.json")
    def route_risk_lane(declaration_id: str):
        """Customs sets or re-routes the risk lane (green / yellow / red); a re-route needs a reason."""
        _customs_only("route a risk lane")
        _load(declaration_id)
        at = records.now()
        actor = _actor()
        seen = {}

        def op(doc):
            seen["entry"] = crossing.assign_lane(doc, g.body["lane"], g.body.get("reason"), actor, at)
            return []

        try:
            out = run(records.mutate, declaration_id, op, events_after=lambda doc, _: [records.event(
                "risk-lane.routed", {**records.summary(doc), **seen["entry"]}, subject=doc["id"],
                id=f"{doc['id']}.lane.{len(doc['risk_lane_history'])}")])
        except ValueError as exc:
            raise _bad("/reason", str(exc)) from None
        records.audit_only(out.decl, "route_risk_lane", actor, at, seen["entry"], g.body.get("reason"))
        return _answer(out)

    @app.post("/v1/declarations/<declaration_id>/release")
    @allow("officer")
    @idempotent()
    @responds("border/declaration.json")
    def release_declaration(declaration_id: str):
        """Customs' final release: only when every other required agency passed and no hold is open."""
        _customs_only("release")
        decl = _load(declaration_id)
        _gate_scoped(decl.data["gate"])
        notes = _optional_body().get("notes")
        stored = records.decisions_of(declaration_id)
        at = records.now()

        def op(doc):
            records.reconcile_decisions(doc, stored)
            return [crossing.release(doc, _actor(), at, notes)]

        return _answer(run(records.mutate, declaration_id, op))

    def _customs_only(what: str) -> None:
        if principal().agency != "customs":
            raise Problem(403, "customs-only", "Customs only", f"Only customs may {what}.",
                          title_vi="Chỉ hải quan", detail_vi="Chỉ cơ quan hải quan được thực hiện thao tác này.")

    @app.post("/v1/declarations/<declaration_id>/priority")
    @allow("operator")
    @validate_body("border/priority.json")
    @idempotent()
    @responds("border/declaration.json")
    def grant_priority(declaration_id: str):
        """Grant the priority lane (perishable, emergency, diplomatic) with a reason."""
        _load(declaration_id)
        at = records.now()
        actor = _actor()
        grant = {"category": g.body["category"], "reason": g.body["reason"], "by": actor.sub, "at": lifecycle.iso(at)}
        before = {}
        granted = {}

        def op(doc):
            granted.clear()
            if doc["status"] in lifecycle.TERMINAL or doc["status"] in ("cleared",):
                raise lifecycle.IllegalTransition("grant_priority", doc["status"])
            if doc.get("priority"):
                raise records.NoChange()
            before["key"] = (doc.get("booking") or {}).get("queue_key")
            doc["priority"] = grant
            if doc["status"] == "in_yard" and before["key"]:
                doc["booking"]["queue_key"] = records.enqueue(doc, records.parse_arrival(before["key"]))
            granted["state"] = doc["status"]
            return []

        out = run(records.mutate, declaration_id, op, events_after=lambda doc, _: [records.event(
            "priority.granted", {**records.summary(doc), **grant}, subject=doc["id"], id=f"{doc['id']}.priority")])
        if granted:   # committed: an in_yard grant moves the truck from the normal to the priority lane
            metrics.priority_granted(out.doc, grant["category"], granted["state"])
        if before.get("key"):
            records.move_to_priority({"booking": {"queue_key": before["key"]}}, out.doc)
        if before:
            records.audit_only(out.decl, "grant_priority", actor, at, grant, g.body["reason"])
        return _answer(out)

    @app.post("/v1/declarations/<declaration_id>/attachments")
    @allow("enterprise")
    @raw_body("application/pdf", "image/png", "image/jpeg")
    @query_params(("kind", "What the document is.", {"type": "string", "default": "other", "enum": list(ATTACHMENT_KINDS)}),
                  ("filename", "The original file name (shown to officers).", {"type": "string", "maxLength": 200}))
    @idempotent(required=False)
    @responds("border/declaration.json", status=201)
    def add_attachment(declaration_id: str):
        """Attach a document (PDF, PNG, JPEG; stored content-addressed in the object store)."""
        from lscloud.store import BlobRejected

        decl = _load(declaration_id)
        kind = g.query["kind"]
        rt = runtime.current()
        try:
            ref = BlobStore(rt.objects, rt.settings.bucket, prefix="border-attachments").put(
                request.get_data(), request.mimetype, g.query["filename"])
        except BlobRejected as exc:
            raise _bad("", f"attachment refused: {exc.cause}") from None
        entry = {"kind": kind, **ref.to_dict(), "added_by": principal().sub, "at": lifecycle.iso(records.now())}

        def op(doc):
            if doc["status"] in lifecycle.TERMINAL:
                raise lifecycle.IllegalTransition("attach", doc["status"])
            if any(a["sha256"] == ref.sha256 and a["kind"] == kind for a in doc["attachments"]):
                raise records.NoChange()
            doc["attachments"].append(entry)
            return []

        out = run(records.mutate, decl.id, op)
        records.audit_only(out.decl, "attach", _actor(), records.now(), {"kind": kind, "sha256": ref.sha256})
        return _answer(out, 201)

    @app.get("/v1/declarations/<declaration_id>/audit")
    @allow("enterprise", "officer", "operator", "auditor")
    @responds("border/audit-entry.json", page=True)
    def get_audit(declaration_id: str):
        """The declaration's audit trail: who, which agency, when, why — oldest first."""
        _load(declaration_id)
        items = records.audit_trail(declaration_id)
        return jsonify({"items": items, "total": len(items), "next_page_token": None})

    @app.get("/v1/declarations/<declaration_id>/position")
    @allow(*ROLES_READ)
    @responds("border/position.json")
    def get_position(declaration_id: str):
        """The truck's place in the yard queue and why it is there."""
        decl = _load(declaration_id)
        return jsonify(_position(decl.data))

    def _position(doc: dict) -> dict:
        pos = records.position(doc, gate_info(doc["gate"])) if doc["status"] == "in_yard" else None
        return {"declaration_id": doc["id"], "code": doc["code"], "status": doc["status"],
                "slot": (doc.get("booking") or {}).get("slot"), "call": doc.get("call"), "queue": pos}

    @app.get("/v1/lookup")
    @allow("public")
    @responds("border/lookup.json", headers={"Content-Language": "vi, zh or en (Accept-Language)"})
    @query_params(Param("code", "The declaration code (e.g. LS7K3QZP9).", {"type": "string", "minLength": 1,
                                                                            "maxLength": 20}, required=True),
                  Param("plate", "The tractor or trailer plate.", {"type": "string", "minLength": 1, "maxLength": 20},
                        required=True))
    def driver_lookup():
        """A driver's status and queue position by declaration code + plate, in vi / zh / en."""
        lang = i18n.pick(request.headers.get("Accept-Language"))
        code = g.query["code"].strip().upper()
        plate = g.query["plate"]
        doc = None
        try:
            if len(code) <= 20 and code.isalnum():
                doc = Declaration.get(DeclarationCode.get(code).declaration_id).data
        except DoesNotExist:
            doc = None
        if doc is None or plate_key(plate) not in records.plate_keys(doc):
            resp = jsonify({"type": "https://errors.lscloud.langson.gov.vn/not-found", "status": 404,
                            "title": i18n.t("not_found", "en"), "detail": i18n.t("not_found", lang),
                            "title_vi": i18n.t("not_found", "vi"), "detail_vi": i18n.t("not_found", "vi")})
            resp.status_code = 404
            resp.mimetype = "application/problem+json"
            resp.headers["Content-Language"] = lang
            return resp
        pos = _position(doc)
        messages = [i18n.status(doc["status"], lang)]
        if pos["slot"]:
            messages.append(i18n.t("slot", lang, slot=queue.slot_label(pos["slot"])))
        q = pos["queue"]
        if q:
            messages.append(i18n.t("position", lang, position=q["position"], ahead=q["ahead"]))
            if q["expected_wait_minutes"] is not None:
                messages.append(i18n.t("wait", lang, minutes=q["expected_wait_minutes"]))
            messages.append(i18n.t("why", lang))
        if doc["status"] == "called" and doc.get("call"):
            local = datetime.fromisoformat(doc["call"]["deadline"].replace("Z", "+00:00")).astimezone(queue.TZ)
            messages.append(i18n.t("deadline", lang, deadline=local.strftime("%H:%M")))
        resp = jsonify({"language": lang, "declaration": declarations.for_driver(doc), "queue": q,
                        "status_text": messages[0], "messages": messages})
        resp.headers["Content-Language"] = lang
        resp.headers["Vary"] = "Accept-Language"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    # -- gates: board, calls, capacity, work lists --------------------------------------------------------

    @app.get("/v1/gates/<gate_code>/board")
    @allow("public")
    @responds("border/board.json")
    def queue_board(gate_code: str):
        """The public queue board: waiting trucks per direction and lane, current slot, expected wait."""
        gate = gate_info(gate_code)
        now = records.now()
        flows = {}
        for flow in ("in", "out"):
            keys_ = records.queue_keys(gate_code, flow)
            per_hour = queue.capacity(gate, flow, records.capacity_override(gate_code, flow))
            metrics.capacity_seen(gate_code, flow, per_hour)
            prio = sum(1 for k in keys_ if k.startswith(queue.LANE_PRIORITY + "_"))
            flows[flow] = {"waiting": len(keys_), "waiting_priority": prio, "waiting_normal": len(keys_) - prio,
                           "called": len(records.CallEntry.query(records.queue_name(gate_code, flow))),
                           "capacity_per_hour": per_hour,
                           "expected_wait_minutes": queue.expected_wait_minutes(len(keys_), per_hour)}
        return jsonify({"gate": gate_code, "name": gate.get("name"), "current_slot": queue.slot_of(now),
                        "open_now": queue.is_open(gate, queue.slot_of(now)), "flows": flows,
                        "at": lifecycle.iso(now)})

    @app.post("/v1/gates/<gate_code>/calls")
    @allow("gate-operator")
    @validate_body("border/calls.json")
    @idempotent()
    @responds("border/calls-result.json")
    def call_trucks(gate_code: str):
        """Call the next trucks of the yard queue (slot, then arrival); each gets a deadline."""
        _gate_scoped(gate_code)
        gate_info(gate_code)
        expired = records.sweep_calls(gate_code, g.body["flow"], _actor())
        called = records.call_next(gate_code, g.body["flow"], g.body.get("count", 1), _actor(), call_minutes)
        return jsonify({"called": [{"declaration_id": o.doc["id"], "code": o.doc["code"],
                                    "plate": o.doc["vehicle"]["tractor_plate"], "deadline": o.doc["call"]["deadline"]}
                                   for o in called],
                        "missed": [{"declaration_id": o.doc["id"], "status": o.doc["status"]} for o in expired]})

    @app.post("/v1/gates/<gate_code>/sweep")
    @allow("gate-operator", "operator")
    @idempotent(required=False)
    @responds("border/calls-result.json")
    def sweep_missed_calls(gate_code: str):
        """Apply missed call deadlines now (the platform clock's tick does it for every gate each minute)."""
        _gate_scoped(gate_code)
        missed = records.sweep_gate(gate_code, _actor())
        return jsonify({"called": [], "missed": [{"declaration_id": o.doc["id"], "status": o.doc["status"]}
                                                 for o in missed]})

    @app.put("/v1/gates/<gate_code>/capacity/<flow>")
    @allow("gate-operator", "operator")
    @validate_body("border/capacity.json")
    @responds("border/capacity-result.json")
    def override_capacity(gate_code: str, flow: str):
        """Override the hourly capacity of one direction (the directory's figure otherwise)."""
        if flow not in ("in", "out"):
            raise _bad("/flow", "flow is 'in' (China → Vietnam) or 'out' (Vietnam → China)")
        _gate_scoped(gate_code)
        gate = gate_info(gate_code)
        who = principal().sub or "unknown"

        def write():
            try:
                item = CapacityOverride.get(gate_code, flow)
            except DoesNotExist:
                item = CapacityOverride(gate_code, flow)
            item.per_hour, item.reason, item.by = g.body["per_hour"], g.body["reason"], who
            item.save()

        for _ in range(10):
            try:
                write()
                metrics.capacity_seen(gate_code, flow, g.body["per_hour"])
                break
            except records.ConditionalCheckFailed:
                continue
        outbox.publish([records.event("capacity.overridden", {"gate": gate_code, "flow": flow,
                                                                "per_hour": g.body["per_hour"], "reason": g.body["reason"],
                                                                "by": who, "directory_per_hour": queue.capacity(gate, flow)})])
        return jsonify({"gate": gate_code, "flow": flow, "per_hour": g.body["per_hour"],
                        "directory_per_hour": queue.capacity(gate, flow), "reason": g.body["reason"], "by": who})

    @app.get("/v1/gates/<gate_code>/worklist")
    @allow("officer")
    @responds("border/work-item.json", page=True)
    @query_params(*page_params(default_limit=50))
    def worklist(gate_code: str):
        """What waits for my agency at this gate, oldest first."""
        _gate_scoped(gate_code)
        agency = principal().agency
        if agency not in clearance.AGENCIES:
            raise Problem(403, "no-agency", "No border agency", "Your token names no border clearance agency.",
                          title_vi="Không có cơ quan", detail_vi="Mã xác thực không gắn với cơ quan kiểm soát cửa khẩu.")
        try:
            page = WorkItem.query(records.work_queue(gate_code, agency), limit=g.query["limit"],
                                  page_token=g.query["page_token"] or None)
        except InvalidKey:
            raise QueryError("page_token", "page_token is not one this list issued") from None
        items = [{"declaration_id": w.declaration_id, **w.summary} for w in page]
        return jsonify({"items": items, "total": len(items), "next_page_token": page.page_token})

    # -- traffic coordination orders ---------------------------------------------------------------------

    @app.post("/v1/traffic-orders")
    @allow("officer")
    @validate_body("border/traffic-order.json")
    @idempotent(key_from=lambda body: body.get("id") if isinstance(body, dict) else None)
    @responds("border/traffic-order-result.json", status=201)
    def issue_traffic_order():
        """Traffic police issue a coordination order (lệnh điều tiết) to the drivers concerned."""
        p = principal()
        if p.agency != "traffic-police":
            raise Problem(403, "traffic-police-only", "Traffic police only", "Only traffic police issue these orders.",
                          title_vi="Chỉ cảnh sát giao thông", detail_vi="Chỉ cảnh sát giao thông được ra lệnh điều tiết.")
        body = g.body
        gate_info(body["gate"])
        recipients = []
        if body.get("declaration_ids"):
            ids = body["declaration_ids"]
        else:
            ids = []
            for flow in ([body["flow"]] if body.get("flow") else ["in", "out"]):
                ids += [e.declaration_id for e in records.QueueEntry.query(records.queue_name(body["gate"], flow), limit=500)]
        for i in ids:
            try:
                doc = Declaration.get(i).data
            except (DoesNotExist, InvalidKey):
                continue
            if doc["gate"] == body["gate"] and doc["status"] not in lifecycle.TERMINAL:
                recipients.append({"declaration_id": doc["id"], "code": doc["code"],
                                   "plate": doc["vehicle"]["tractor_plate"], "driver_phone": doc["driver"]["phone"],
                                   "language": "vi" if doc["driver"]["nationality"] == "VN" else "zh"})
        order = {**body, "by": p.sub, "issued_at": lifecycle.iso(records.now()), "recipients": recipients}
        try:
            TrafficOrder(body["gate"], body["id"], data=order).save()
        except records.ConditionalCheckFailed:
            raise Problem(409, "conflict", "Order exists", f"Traffic order {body['id']!r} already exists.",
                          title_vi="Lệnh đã tồn tại", detail_vi="Lệnh điều tiết này đã tồn tại.") from None
        outbox.publish([records.event("traffic-order.issued", order, subject=body["id"], id=f"traffic-order.{body['id']}")])
        return jsonify(order), 201

    # -- gate devices --------------------------------------------------------------------------------

    @app.post("/v1/device-events")
    @allow("device")
    @raw_body()
    @responds("border/device-event-accepted.json", status=202)
    def ingest_device_event():
        """A gate device's CloudEvent (weighbridge reading, ANPR read): checked, then published to NATS."""
        p = principal()
        try:
            event = ce.from_http(dict(request.headers), request.get_data(cache=True))
        except ValueError as exc:
            raise Problem(400, "malformed-event", "Malformed CloudEvent", str(exc)[:300],
                          title_vi="Sự kiện không hợp lệ", detail_vi="Sự kiện CloudEvent không đúng định dạng.") from None
        schema = _DEVICE_EVENTS.get(event["type"])
        if schema is None:
            raise Problem(422, "unsupported-event-type", "Unsupported event type",
                          f"Devices send {', '.join(_DEVICE_EVENTS)}; got {event['type']!r}.",
                          title_vi="Loại sự kiện không được hỗ trợ", detail_vi="Thiết bị gửi loại sự kiện không được hỗ trợ.")
        data = event.get("data")
        errors = app.extensions["lscloud"].schemas.errors(schema, data)
        if errors:
            raise Problem(422, "validation-failed", "Validation failed", f"The event data does not match {schema}.",
                          title_vi="Dữ liệu không hợp lệ", detail_vi="Dữ liệu sự kiện không hợp lệ.",
                          errors=[{**e, "field": "/data" + e["field"]} for e in errors])
        if data["gate"] != p.unit:
            raise Problem(403, "wrong-gate", "Not your gate", f"This device belongs to gate {p.unit!r}.",
                          title_vi="Không phải cửa khẩu của thiết bị", detail_vi="Thiết bị không thuộc cửa khẩu này.")
        try:
            normalise_plate(data["plate"])
        except InvalidIdentifier:
            pass  # a misread is still a read: the barrier refuses it with the reason
        data = {**data, "device": p.sub}
        out = ce.new_event(event["type"], f"/border/devices/{records.safe(p.sub)}", data,
                           id=f"{p.sub}.{data['reading_id']}",
                           subject=data["reading_id"])
        outbox.publish([out])
        return jsonify({"id": out["id"], "type": out["type"], "accepted": True}), 202

    # -- figures and housekeeping ------------------------------------------------------------------------

    @app.get("/v1/stats")
    @allow("officer", "operator", "auditor")
    @responds("border/stats.json")
    @query_params(("from", "First local day, YYYY-MM-DD (default today).", {"type": "string", "format": "date"}),
                  ("to", "Last local day, YYYY-MM-DD (default = from; at most 31 days).", {"type": "string", "format": "date"}),
                  ("gate", "Only this gate (a gate code).", {"type": "string", "pattern": GATE_PATTERN, "maxLength": 64}))
    def get_stats():
        """Declared / cleared / exited per gate, direction and day; dwell and decision times; waiting; mismatches."""
        today = records.now().astimezone(queue.TZ).date()
        first = g.query["from"] or today
        last = g.query["to"] or first
        if not 0 <= (last - first).days <= 30:
            raise QueryError("to", "to is on or after from, at most 31 days later")
        gate_filter = g.query["gate"]
        ids = []
        day = first
        while day <= last:
            prefix = records.safe(gate_filter) + "_" if gate_filter else None
            ids += [e.declaration_id for e in DayIndex.query(day.isoformat(), range_prefix=prefix)]
            day += timedelta(days=1)
        docs = [d.data for d in records._pool.map(_get_or_none, ids) if d is not None]
        figures = stats.compute(docs)
        gates_seen = sorted({d["gate"] for d in docs} | ({gate_filter} if gate_filter else set()))
        figures["waiting"] = [{"gate": gc, "flow": flow, "waiting": len(records.queue_keys(gc, flow))}
                              for gc in gates_seen for flow in ("in", "out")]
        figures["from"], figures["to"] = first.isoformat(), last.isoformat()
        return jsonify(figures)

    @app.post("/v1/outbox/flush")
    @allow("operator")
    @idempotent(required=False)
    @responds("border/outbox-result.json")
    def flush_outbox():
        """Publish events NATS did not confirm at the time (kept in the outbox)."""
        return jsonify(outbox.flush())

    return app


def _get_or_none(declaration_id: str):
    try:
        return Declaration.get(declaration_id)
    except DoesNotExist:
        return None
