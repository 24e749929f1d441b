"""Operators (and auditors, reading): partner banks, cash in and out of points, the sweep, dead
letters, the ledger's check and settlements."""

from __future__ import annotations

from flask import Blueprint, g

from lscloud import deadletters, errors
from lscloud.auth import allow, principal
from lscloud.idempotency import REPLAYED_HEADER
from lscloud.web import (app_state, if_match_version, page_params, query_params, responds, takes_if_match,
                         validate_body, versioned_json)

from .. import banks, cash, journal, sweep, webhooks
from ..transfers import iso, now
from .common import BANK, DAY, FORMAT, POINT, answer, offices, settlement_response

bp = Blueprint("softatm_operators", __name__)


@bp.post("/v1/banks")
@allow("operator")
@validate_body("softatm/bank-register.json")
@responds("softatm/bank.json", status=201,
          headers={REPLAYED_HEADER: "true on a resend of the same registration (the bank as registered)"})
def register_bank():
    """Register a partner bank: code, name, webhook URL, one or two HMAC keys, limits. A resend of the
    same registration answers the bank again; the code with other details is a 409 naming the fields."""
    data, replayed = banks.register(app_state().settings, g.body, iso(now()))
    return answer(data, 201, replayed)


@bp.get("/v1/banks")
@allow("operator", "auditor")
@responds("softatm/bank-list.json")
def list_banks():
    """Registered banks (key ids and fingerprints only)."""
    items = banks.list_all()
    return answer({"items": items, "total": len(items), "next_page_token": None})


KEY_SLOT = 'schema("softatm/key-rotation.json#/properties/key_id"):key_id'
"""A bank's key slot, as a rotation names it ("1" or "2")."""
VERSIONED = {"headers": {"ETag": "The bank's version: send it in If-Match to change this version only"}}


@bp.get(f"/v1/banks/<{BANK.format('code')}>")
@allow("operator", "auditor")
@responds("softatm/bank.json", **VERSIONED)
def get_bank(code):
    """One bank (key ids and fingerprints only), with its version as the ETag."""
    data, version = banks.read(code)
    return versioned_json(banks.public(data), version)


@bp.patch(f"/v1/banks/<{BANK.format('code')}>")
@allow("operator")
@takes_if_match(required=True)   # where a bank's webhooks go decides who receives its customers' numbers
@validate_body("softatm/bank-change.json")
@responds("softatm/bank.json", **VERSIONED)
def change_bank(code):
    """Change a bank's name, webhook URL or limits (a JSON merge patch, RFC 7396; a limit not named
    keeps its value), at the version read: ``If-Match`` (the ETag of a read) is required (428 without
    it, 412 once the bank changed since)."""
    return versioned_json(*banks.change(app_state().settings, code, g.body, iso(now()), principal().sub,
                                       if_match_version()))


@bp.post(f"/v1/banks/<{BANK.format('code')}>/keys")
@allow("operator")
@validate_body("softatm/key-rotation.json")
@responds("softatm/bank.json")
def rotate_key(code):
    """Put a new secret in key slot 1 or 2 (the slot's old secret stops working at once), and/or with
    ``sign_webhooks: true`` sign our webhooks with that slot from now on (once the bank verifies it).
    The slot that signs our webhooks takes a new secret only with ``sign_webhooks: true`` (409)."""
    if "secret" not in g.body and not g.body.get("sign_webhooks"):
        raise errors.Invalid.at("/secret", "a new secret, or sign_webhooks: true to sign with the slot's key",
                                "Cần khóa mới, hoặc sign_webhooks: true để ký bằng khóa đang có trong khe.")
    return answer(banks.rotate(app_state().settings, code, g.body["key_id"], g.body.get("secret"), iso(now()),
                               g.body.get("sign_webhooks", False)))


@bp.delete(f"/v1/banks/<{BANK.format('code')}>/keys/<{KEY_SLOT}>")
@allow("operator")
@responds("softatm/bank.json")
def remove_key(code, key_id):
    """Empty key slot 1 or 2: its key stops verifying the bank's requests at once (the other replicas
    within LSCLOUD_PEER_FRESH_S). Not the slot that signs our webhooks, nor the bank's only key (409)."""
    return answer(banks.remove_key(app_state().settings, code, key_id, iso(now()), principal().sub))


def _cash(kind: str, code: str):
    point = offices().soft_atm_point(code)
    data, replayed = cash.operation(kind, g.body["id"], point, g.body["amount_vnd"], principal().sub)
    return answer({k: v for k, v in data.items() if k != "request"}, 200 if replayed else 201, replayed)


@bp.post(f"/v1/points/<{POINT}>/cash-deliveries")
@allow("operator")
@validate_body("softatm/cash-operation.json")
@responds("softatm/cash-movement.json", status=201,
          also={200: "A resend of the same id and body: the body of the first answer (Idempotent-Replayed: true)"})
def deliver_cash(code):
    """Record cash delivered from VNPost's vault to a point (raises its float)."""
    return _cash("delivery", code)


@bp.post(f"/v1/points/<{POINT}>/cash-collections")
@allow("operator")
@validate_body("softatm/cash-operation.json")
@responds("softatm/cash-movement.json", status=201,
          also={200: "A resend of the same id and body: the body of the first answer (Idempotent-Replayed: true)"})
def collect_cash(code):
    """Record cash collected from a point back to the vault."""
    return _cash("collection", code)


@bp.post("/v1/sweep")
@allow("operator")
@responds("softatm/sweep.json")
def run_sweep():
    """Expire unreserved transfers past their expiry and finish any consequences a crash left undone."""
    return answer(sweep.sweep())


@bp.get("/v1/webhooks/dead-letters")
@allow("operator")
@responds("softatm/dead-letter-list.json")
@query_params(*page_params(default_limit=100, max_limit=1000),
              ("state", "Only open (not yet sent again) or settled ones", {"type": "string", "enum": ["open", "settled"]}))
def dead_letters():
    """Webhooks to banks the platform gave up on (dead-lettered), oldest first."""
    items, token = webhooks.dead_letters(g.query["limit"], g.query["page_token"] or None, g.query["state"])
    return answer({"items": items, "total": len(items), "next_page_token": token})


@bp.post(f"/v1/webhooks/dead-letters/<{deadletters.LETTER}>/redeliver")
@allow("operator")
@responds("softatm/dead-letter.json")
def redeliver_dead_letter(letter):
    """Send a dead-lettered webhook again now (after its cause is fixed) and settle it; one the
    transfer has moved past is settled without sending. Repeating it answers the settlement."""
    view, replayed = webhooks.redeliver(letter)
    return answer(view, 200, replayed)


@bp.get("/v1/ledger/verify")
@allow("operator", "auditor")
@responds("softatm/ledger-verification.json")
@query_params(("full", "Replay every journal from its first entry, not from the last verification",
               {"type": "boolean", "default": False}))
def verify_ledger():
    """Check the ledger's invariants over every point's journal: what it grew since the last
    verification (each point's checkpoint, kept by a verification that found nothing wrong), or
    all of it (``full``)."""
    report = journal.verify(full=bool(g.query["full"]))
    return answer({k: v for k, v in report.items() if k != "checkpoints"})


@bp.get(f"/v1/settlements/<{BANK.format('bank')}>/<{DAY}>")
@allow("operator", "auditor")
@responds("softatm/settlement.json", media={"text/csv": None})
@query_params(FORMAT)
def staff_settlement(bank, day):
    """A bank's settlement for a day (operators' copy)."""
    banks.get(bank)
    return settlement_response(bank, day)
