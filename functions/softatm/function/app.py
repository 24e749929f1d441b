"""The soft ATM's HTTP surface: tellers, operators, and partner banks (signed requests).

Tellers act only at the point in their token's ``unit``; a bank sees only its own transfers
(anything else is "not found"); operators register banks, move cash in and out of points, run the
sweep and read dead letters; auditors read.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from flask import Flask, Response, g, jsonify, request

from lscloud import runtime
from lscloud.auth import allow, principal
from lscloud.peers import PeerClient, PeerError, PeerNotFound, path as peer_path
from lscloud.query import Param, QueryError
from lscloud.resends import IdReused
from lscloud.web import Problem, create_app as runtime_app, query_params, responds, validate_body

from . import banks, ledger, records, settlement, transfers, webhooks
from .models import BankDay
from .transfers import TransferError

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
POINT_RE = re.compile(r"^bd-(?:\d{2}|\d{5})$")
DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
FORMAT = ("format", "json (default) or csv", {"type": "string", "enum": ["json", "csv"], "default": "json"})
MAX_PERIOD_DAYS = 31
READERS = ("teller", "operator", "auditor")


def is_day(text: str) -> bool:
    """A real calendar day written YYYY-MM-DD (``2026-02-30`` is not)."""
    from datetime import date

    try:
        return bool(DAY_RE.fullmatch(text)) and bool(date.fromisoformat(text))
    except ValueError:
        return False


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, TransferError):
        extra = dict(exc.extra)
        errors = extra.pop("errors", None) or ([{"field": exc.field, "message": str(exc)}] if exc.field else [])
        headers = {"Retry-After": str(extra.pop("retry_after"))} if "retry_after" in extra else {}
        titles = {"illegal-transition": ("Illegal transition", "Không thể chuyển trạng thái"),
                  "insufficient-float": ("Not enough cash at the point", "Điểm không đủ tiền mặt"),
                  "daily-limit": ("Daily limit reached", "Vượt hạn mức trong ngày"),
                  "not-found": ("Transfer not found", "Không tìm thấy giao dịch")}
        title, title_vi = titles.get(exc.code, (exc.code.replace("-", " ").capitalize(), "Không thực hiện được"))
        return Problem(exc.status, exc.code, title, str(exc), title_vi=title_vi, detail_vi=title_vi + ".",
                       errors=errors, headers=headers, **extra)
    if isinstance(exc, banks.BankError):
        return Problem(exc.status, exc.code, exc.code.replace("-", " ").capitalize(), str(exc),
                       errors=[{"field": exc.field, "message": str(exc)}] if exc.field else [])
    if isinstance(exc, ledger.Insufficient):
        return Problem(409, "insufficient-float", "Not enough cash at the point", str(exc),
                       title_vi="Điểm không đủ tiền mặt", detail_vi="Điểm giao dịch không đủ tiền mặt.")
    raise exc


def run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except IdReused as exc:
        raise exc.problem() from None
    except (TransferError, banks.BankError, ledger.Insufficient) as exc:
        raise _problem(exc) from None


def _answer(body, status=200, replayed=False):
    resp = jsonify(body)
    resp.status_code = status
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


def create_app(settings=None) -> Flask:
    if settings is None:
        settings = runtime.current().settings
    app = runtime_app("softatm", schemas_dir=SCHEMAS_DIR, settings=settings,
                      partner_keys=lambda partner: banks.key_slots(settings, partner),
                      openapi={"title": "Lạng Sơn soft ATM", "version": "1.0.0",
                               "description": "Cash-in / cash-out at post offices for partner banks: two-phase "
                                              "transfers, a double-entry ledger, settlement and reconciliation."})
    peers = PeerClient(settings)

    def point_info(code: str | None) -> dict:
        if not code or not POINT_RE.match(code):
            raise Problem(403, "no-point", "No soft ATM point", "Your token names no post-office point (unit).",
                          title_vi="Không có điểm giao dịch", detail_vi="Mã xác thực không gắn với điểm bưu điện.")
        try:
            office = peers.get_json("directory", peer_path("/v1/post-offices", code))
        except PeerNotFound:
            raise Problem(404, "unknown-point", "Unknown point", f"No post office {code}.") from None
        except PeerError as exc:
            raise Problem(503, "directory-unavailable", "Directory unavailable", str(exc),
                          headers={"Retry-After": "5"}) from None
        if not office.get("soft_atm"):
            raise Problem(409, "not-a-soft-atm", "Not a soft ATM point", f"{code} does not offer the soft ATM.",
                          title_vi="Điểm không cung cấp ATM mềm", detail_vi="Điểm bưu điện này không có ATM mềm.")
        return office

    def teller_point() -> dict:
        return point_info(principal().unit)

    def staff_sees(doc: dict) -> bool:
        p = principal()
        return p.role in ("operator", "auditor") or (p.role == "teller" and p.unit == doc["point"])

    def bank_sees(doc: dict) -> bool:
        return doc["bank"] == principal().partner

    def bank_of(code: str) -> dict:
        return run(banks.get, code)

    # -- tellers ------------------------------------------------------------------------------------

    def create(kind: str):
        req = run(transfers.normalise_create, g.body, kind)
        point = teller_point()
        bank = bank_of(req["bank"])
        limit = int(bank["limits"]["per_transaction_vnd"])
        if req["amount_vnd"] > limit:
            raise Problem(422, "transaction-limit", "Above the per-transaction limit",
                          f"{req['bank']} allows at most {limit} VND per transaction.",
                          title_vi="Vượt hạn mức mỗi giao dịch", detail_vi=f"Tối đa {limit} VND mỗi giao dịch.",
                          errors=[{"field": "/amount_vnd", "message": f"at most {limit}"}])
        doc, replayed = run(records.create, req, point=point, bank=bank)
        if doc["point"] != point["code"]:
            raise IdReused(["/id"], key=req["id"], detail="This id belongs to a transfer at another point.",
                           message="used by a transfer at another point",
                           message_vi="đã được dùng cho giao dịch ở điểm khác").problem()
        problem = (doc.get("answers") or {}).get("create", {}).get("problem")
        if problem:
            status = 409
            msg = {"insufficient-float": "The point does not hold enough cash for this withdrawal.",
                   "daily-limit": "The customer's daily limit with this bank would be exceeded.",
                   "not-admitted": "The transfer could not be admitted in time."}.get(problem, problem)
            p = _problem(TransferError(problem, msg, status=status, transfer=transfers.view(doc)))
            if replayed:
                p.headers["Idempotent-Replayed"] = "true"
            raise p
        return _answer(transfers.view(doc), 201, replayed)

    @app.post("/v1/withdrawals")
    @allow("teller")
    @validate_body("softatm/transfer-create.json")
    @responds("softatm/transfer.json", status=201)
    def create_withdrawal():
        """Create a withdrawal (cash-out) at the teller's point; the bank is asked to reserve."""
        return create(transfers.WITHDRAWAL)

    @app.post("/v1/deposits")
    @allow("teller")
    @validate_body("softatm/transfer-create.json")
    @responds("softatm/transfer.json", status=201)
    def create_deposit():
        """Create a deposit (cash-in) at the teller's point; the bank is asked to confirm."""
        return create(transfers.DEPOSIT)

    @app.post("/v1/withdrawals/<tid>/commit")
    @allow("teller")
    @validate_body("softatm/commit.json")
    @responds("softatm/transfer.json")
    def commit_withdrawal(tid):
        """Confirm that the reserved cash was handed over: the withdrawal is committed."""
        doc, replayed = run(records.act, tid, "commit", g.body, visible=staff_sees)
        return _answer(transfers.view(doc), 200, replayed)

    @app.post("/v1/transfers/<tid>/abort")
    @allow("teller", "operator")
    @validate_body("softatm/abort.json")
    @responds("softatm/transfer.json")
    def abort_transfer(tid):
        """Abort a transfer that is not final (the only way out of RESERVED besides commit)."""
        doc, replayed = run(records.act, tid, "abort", g.body, visible=staff_sees, reason=g.body["reason"])
        return _answer(transfers.view(doc), 200, replayed)

    @app.get("/v1/transfers/<tid>")
    @allow(*READERS)
    @responds("softatm/transfer.json")
    def get_transfer(tid):
        """A transfer (tellers: their point's)."""
        doc = run(records.get, tid)
        if not staff_sees(doc):
            raise _problem(TransferError("not-found", "No transfer with this id is visible to you.", status=404))
        return _answer(transfers.view(doc))

    @app.get("/v1/points/<code>/float")
    @allow(*READERS)
    @responds("softatm/float.json")
    def get_float(code):
        """Cash at a point: free cash and cash held for withdrawals in flight."""
        p = principal()
        if p.role == "teller" and p.unit != code:
            raise Problem(403, "wrong-point", "Not your point", "Your token is for another point.")
        if not POINT_RE.match(code):
            raise Problem(404, "unknown-point", "Unknown point", f"No point {code!r}.")
        return _answer(records.float_of(code))

    # -- operators ----------------------------------------------------------------------------------

    @app.post("/v1/banks")
    @allow("operator")
    @validate_body("softatm/bank-register.json")
    @responds("softatm/bank.json", status=201)
    def register_bank():
        """Register a partner bank: code, name, webhook URL, one or two HMAC keys, limits."""
        return _answer(run(banks.register, settings, g.body, transfers.iso(transfers.now())), 201)

    @app.get("/v1/banks")
    @allow("operator", "auditor")
    def list_banks():
        """Registered banks (key ids and fingerprints only)."""
        items = banks.list_all()
        return _answer({"items": items, "total": len(items), "next_page_token": None})

    @app.get("/v1/banks/<code>")
    @allow("operator", "auditor")
    @responds("softatm/bank.json")
    def get_bank(code):
        """One bank (key ids and fingerprints only)."""
        return _answer(banks.public(bank_of(code)))

    @app.post("/v1/banks/<code>/keys")
    @allow("operator")
    @validate_body("softatm/key-rotation.json")
    @responds("softatm/bank.json")
    def rotate_key(code):
        """Put a new secret in key slot 1 or 2; the slot's old secret stops working at once."""
        bank_of(code)
        return _answer(run(banks.rotate, settings, code, g.body["key_id"], g.body["secret"],
                           transfers.iso(transfers.now()), g.body.get("sign_webhooks", True)))

    def cash(kind: str, code: str):
        point = point_info(code)
        data, replayed = run(records.cash_operation, kind, g.body["id"], point, g.body["amount_vnd"], principal().sub)
        return _answer({k: v for k, v in data.items() if k != "request"}, 200 if replayed else 201, replayed)

    @app.post("/v1/points/<code>/cash-deliveries")
    @allow("operator")
    @validate_body("softatm/cash-operation.json")
    def deliver_cash(code):
        """Record cash delivered from VNPost's vault to a point (raises its float)."""
        return cash("delivery", code)

    @app.post("/v1/points/<code>/cash-collections")
    @allow("operator")
    @validate_body("softatm/cash-operation.json")
    def collect_cash(code):
        """Record cash collected from a point back to the vault."""
        return cash("collection", code)

    @app.post("/v1/sweep")
    @allow("operator")
    def sweep():
        """Expire unreserved transfers past their expiry and finish any consequences a crash left undone."""
        return _answer(records.sweep())

    @app.get("/v1/webhooks/dead-letters")
    @allow("operator")
    @query_params(("limit", "How many, 1 to 1000 (default 100)",
                   {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}))
    def dead_letters():
        """Webhooks to banks that were given up on (dead-lettered)."""
        items = webhooks.dead_letters(settings, g.query["limit"])
        return _answer({"items": items, "total": len(items), "next_page_token": None})

    @app.get("/v1/ledger/verify")
    @allow("operator", "auditor")
    def verify_ledger():
        """Replay every point's journal and check the ledger's invariants."""
        return _answer(ledger.verify(records.JOURNAL, records.points()))

    @app.get("/v1/settlements/<bank>/<day>")
    @allow("operator", "auditor")
    @query_params(FORMAT)
    def staff_settlement(bank, day):
        """A bank's settlement for a day (operators' copy)."""
        bank_of(bank)
        return settlement_answer(bank, day)

    def settlement_answer(bank: str, day: str):
        if not is_day(day):
            raise Problem(400, "bad-day", "Bad day", "The day is a calendar date, YYYY-MM-DD.",
                          title_vi="Ngày không hợp lệ", detail_vi="Ngày phải là ngày có thật, dạng YYYY-MM-DD.",
                          errors=[{"field": "day", "message": "a calendar date, YYYY-MM-DD"}])
        data = settlement.report(bank, day)
        if g.query["format"] == "csv":
            return Response(settlement.csv_bytes(data), mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="settlement-{bank}-{day}.csv"'})
        return _answer(data)

    # -- banks (signed) -----------------------------------------------------------------------------

    def bank_act(tid: str, action: str, kind: str):
        body = g.body
        def visible(doc):
            return bank_sees(doc) and (action == "abort" or doc["kind"] == kind)
        doc, replayed = run(records.act, tid, action, body, visible=visible, reason=body.get("reason"),
                            bank_reference=body.get("bank_reference"))
        return _answer(transfers.view(doc), 200, replayed)

    @app.post("/v1/bank/withdrawals/<tid>/reserve")
    @allow(partner=True)
    @validate_body("softatm/bank-action.json")
    @responds("softatm/transfer.json")
    def bank_reserve(tid):
        """The bank reserved the customer's funds: the teller may now hand over the cash."""
        return bank_act(tid, "reserve", transfers.WITHDRAWAL)

    @app.post("/v1/bank/withdrawals/<tid>/reject")
    @allow(partner=True)
    @validate_body("softatm/bank-action.json")
    @responds("softatm/transfer.json")
    def bank_reject_withdrawal(tid):
        """The bank refuses the withdrawal (customer not authenticated, no funds …)."""
        return bank_act(tid, "reject", transfers.WITHDRAWAL)

    @app.post("/v1/bank/deposits/<tid>/confirm")
    @allow(partner=True)
    @validate_body("softatm/bank-action.json")
    @responds("softatm/transfer.json")
    def bank_confirm_deposit(tid):
        """The bank credited the account: the deposit is committed and the point's float grows."""
        return bank_act(tid, "confirm", transfers.DEPOSIT)

    @app.post("/v1/bank/deposits/<tid>/reject")
    @allow(partner=True)
    @validate_body("softatm/bank-action.json")
    @responds("softatm/transfer.json")
    def bank_reject_deposit(tid):
        """The bank refuses the deposit (the teller hands the cash back)."""
        return bank_act(tid, "reject", transfers.DEPOSIT)

    @app.post("/v1/bank/transfers/<tid>/abort")
    @allow(partner=True)
    @validate_body("softatm/bank-action.json")
    @responds("softatm/transfer.json")
    def bank_abort(tid):
        """Explicitly abort a transfer that is not final (e.g. a reserved withdrawal the customer cancelled)."""
        return bank_act(tid, "abort", "")

    @app.get("/v1/bank/transfers/<tid>")
    @allow(partner=True)
    @responds("softatm/transfer.json")
    def bank_get(tid):
        """One of the bank's transfers."""
        doc = run(records.get, tid)
        if not bank_sees(doc):
            raise _problem(TransferError("not-found", "No transfer with this id is visible to you.", status=404))
        return _answer(transfers.view(doc))

    @app.get("/v1/bank/transfers")
    @allow(partner=True)
    @query_params(Param("from", "First local day, YYYY-MM-DD", {"type": "string", "format": "date"}, required=True),
                  ("to", "Last local day, YYYY-MM-DD (default: from; at most 31 days)", {"type": "string", "format": "date"}))
    def bank_list():
        """The bank's transfers created in a period of local days (at most 31)."""
        from datetime import timedelta

        d0 = g.query["from"]
        d1 = g.query["to"] or d0
        if not 0 <= (d1 - d0).days <= MAX_PERIOD_DAYS:
            raise QueryError("to", f"to is on or after from, at most {MAX_PERIOD_DAYS} days later")
        items = []
        bank = principal().partner
        day = d0
        while day <= d1:
            token = None
            while True:
                page = BankDay.query(f"{bank}_{day.isoformat()}", limit=500, page_token=token)
                for entry in page:
                    try:
                        items.append(transfers.view(records.load(entry.transfer_id).data))
                    except TransferError:
                        continue
                token = page.page_token
                if not token:
                    break
            day += timedelta(days=1)
        return _answer({"items": items, "total": len(items), "next_page_token": None})

    @app.get("/v1/bank/settlements/<day>")
    @allow(partner=True)
    @query_params(FORMAT)
    def bank_settlement(day):
        """The bank's daily settlement: net position and every transfer committed that day."""
        return settlement_answer(principal().partner, day)

    @app.post("/v1/bank/reconciliations")
    @allow(partner=True)
    @validate_body("softatm/reconciliation.json")
    def bank_reconcile():
        """Submit the bank's view of a day; every mismatch with ours is listed."""
        b = g.body
        data, replayed = run(settlement.reconcile, principal().partner, b["id"], b["day"], b["transfers"])
        return _answer(data, 200 if replayed else 201, replayed)

    _start_sweeper(app)
    return app


def _start_sweeper(app: Flask) -> None:
    """A background sweep every SOFTATM_SWEEP_S seconds (0: off; the cluster uses a ping source)."""
    period = float(os.environ.get("SOFTATM_SWEEP_S", "0"))
    if period <= 0:
        return
    stop = threading.Event()

    def loop():
        while not stop.wait(period):
            try:
                records.sweep()
            except Exception:  # noqa: BLE001
                pass

    threading.Thread(target=loop, name="softatm-sweeper", daemon=True).start()
    app.extensions["softatm_sweeper"] = stop
