"""What the border routes share: the caller as an actor, the directory's gate, the function's
settings, a declaration answered with its version as the ETag, a page of items."""

from __future__ import annotations

from flask import current_app, jsonify

from lscloud.aggregate import Outcome
from lscloud.auth import principal
from lscloud.context import app_state
from lscloud.statemachine import Actor
from lscloud.web import versioned_json

from .. import gates, ledger, scopes, settings

GATE_CODE = 'schema("border/declaration-create.json#/properties/gate"):gate_code'
"""The route argument of a border gate's code, as a declaration names it (:mod:`lscloud.web.pathparams`)."""
FLOW = 'schema("border/flow.json", match=False):flow'
"""The route argument of a direction (``in``/``out``), as an order names it; the view's 400 names a wrong one."""
DECLARATION_ID = 'schema("border/declaration-create.json#/properties/id"):declaration_id'
"""The route argument of a declaration's client-chosen id, as its create names it (:mod:`lscloud.web.pathparams`)."""

DECLARATION = "border/declaration.json"
VERSIONED = {"ETag": "The declaration's version"}
GATE_PATTERN = f"^{gates.CODE_RE.pattern}$"


def actor() -> Actor:
    """The caller; an enterprise whose token's subject is no tax code is refused here (403), on
    every route and before any declaration is read, so the refusal says nothing of a record."""
    who = Actor.of(principal())
    scopes.own_tax_code(who)
    return who


def platform():
    """The platform's settings of this app (peers, bucket …)."""
    return app_state().settings


def own() -> settings.Settings:
    """The border function's own settings (checked at start)."""
    return current_app.config["BORDER"]


def gate(code: str) -> dict:
    """The directory's road gate ``code`` (422 unknown-gate, 503 when the directory is away)."""
    return gates.gate(platform(), code)


def visible(declaration_id: str) -> Outcome:
    """The declaration if the caller may see it, else 404."""
    return Outcome(ledger.visible(declaration_id, actor()))


def answer(out: Outcome, status: int = 200):
    return versioned_json(ledger.view(out.doc, actor()), out.version, status)


def page(items: list, next_page_token: str | None = None):
    return jsonify({"items": items, "total": len(items), "next_page_token": next_page_token})
