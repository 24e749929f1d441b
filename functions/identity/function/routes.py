"""The identity function's routes (all public).

- ``GET  /v1/cccd/{number}``       decode a CCCD number, or a problem naming the broken rule;
- ``POST /v1/verifications``       match / mismatch per field against the population registry
  (rate-limited per caller and per number);
- ``POST /v1/tokens/citizen``      local cloud only: a verified citizen's bearer token;
- ``POST /v1/tokens/officer``      local cloud only: an officer's / supervisor's bearer token
  for an agency and unit that exist in the directory.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, request

from lscloud.auth import allow, principal
from lscloud.ratelimit import caller_subject
from lscloud.web import responds, validate_body

from . import cccd
from .signin import TokenIssuer
from .verification import Verifier, claim_of

bp = Blueprint("identity", __name__)


def _verifier() -> Verifier:
    return current_app.extensions["identity.verifier"]


def _tokens() -> TokenIssuer:
    return current_app.extensions["identity.tokens"]


def _caller() -> str:
    """Who is asking, for the rate limit: the token's subject, else the client's address."""
    return caller_subject(principal(), request.headers, request.remote_addr)


# documented as the verification body's CCCD; a malformed one is decode's 422 naming it
@bp.get('/v1/cccd/<schema("identity/verification-request.json#/properties/id_number", match=False):number>')
@allow("public")
@responds("identity/cccd.json")
def decode_cccd(number: str):
    """Decode a CCCD number: province of birth registration, sex, century, birth year."""
    return cccd.decode(number)


@bp.post("/v1/verifications")
@allow("public")
@validate_body("identity/verification-request.json")
@responds("identity/verification.json", also={429: "Too many mismatches from this caller or for this number"})
def create_verification():
    """Check a citizen's ID number, full name and date of birth: match / mismatch per field."""
    return _verifier().verify(_caller(), claim_of(g.body)).to_dict()


@bp.post("/v1/tokens/citizen")
@allow("public")
@validate_body("identity/verification-request.json")
@responds("identity/token.json", status=201)
def citizen_token():
    """Local cloud only: a bearer token (role citizen, sub = CCCD) for verified citizen data."""
    return _tokens().citizen(_caller(), g.body), 201


@bp.post("/v1/tokens/officer")
@allow("public")
@validate_body("identity/officer-token-request.json")
@responds("identity/token.json", status=201)
def officer_token():
    """Local cloud only: a bearer token for an officer or supervisor of a directory agency and unit."""
    return _tokens().officer(g.body), 201
