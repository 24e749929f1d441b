"""The identity function's HTTP surface.

- ``GET  /v1/cccd/{number}``       public: decode a CCCD number, or a problem naming the broken rule;
- ``POST /v1/verifications``       public: match / mismatch per field against the population registry
  (rate-limited per caller and per number);
- ``POST /v1/tokens/citizen``      public, local cloud only: a verified citizen's bearer token;
- ``POST /v1/tokens/officer``      public, local cloud only: an officer's / supervisor's bearer token
  for an agency and unit that exist in the directory.

In the cluster (``LSCLOUD_ENV=cluster``) the token routes answer 404: the province's identity
provider issues tokens there, and this function holds no signing key.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

from flask import Flask, g, request

from lscloud import peers
from lscloud.auth import allow, issue_token, principal
from lscloud.config import ConfigError
from lscloud.identifiers import InvalidIdentifier, parse_cccd
from lscloud.web import Problem, create_app as runtime_app, responds, validate_body

from .options import SIGNING_KEY_ENV, Options
from .population import HttpRegistry, PopulationRegistry, RegistryError, RegistryUnavailable, StoreRegistry
from .ratelimit import Limiter, Limits, RateLimited
from .verification import Claim, Verification, compare

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def make_registry(settings, options: Options) -> PopulationRegistry:
    """The national database's endpoint when configured; the seeded store registry locally."""
    if options.registry_url:
        return HttpRegistry(options.registry_url, options.registry_token, timeout_s=options.registry_timeout_s)
    if settings.env == "cluster":
        raise ConfigError("IDENTITY_REGISTRY_URL is required when LSCLOUD_ENV=cluster "
                          "(the national population database's verification endpoint)")
    return StoreRegistry()


def _caller() -> str:
    """Who is asking, for the rate limit: the token's subject, else the client's address.

    The gateway (locally) and the ingress (cluster) append the address they saw to
    X-Forwarded-For; only that last entry is trusted — earlier ones are the client's to forge.
    """
    who = principal()
    if not who.anonymous:
        return who.id
    forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
    return "ip:" + (forwarded[-1] if forwarded else (request.remote_addr or "unknown"))


def _claim(body: dict) -> Claim:
    errors = []
    try:
        parse_cccd(body["id_number"])
    except InvalidIdentifier as exc:
        errors.append({"field": "/id_number", "message": str(exc)})
    try:
        born = date.fromisoformat(body["date_of_birth"])
        if born > date.today():
            errors.append({"field": "/date_of_birth", "message": "the date of birth is in the future"})
    except ValueError:
        born = None
        errors.append({"field": "/date_of_birth", "message": "not a calendar date (YYYY-MM-DD)"})
    if errors:
        raise Problem(422, "validation-failed", "Validation failed", "; ".join(e["message"] for e in errors) + ".",
                      title_vi="Dữ liệu không hợp lệ", detail_vi="Số CCCD hoặc ngày sinh không hợp lệ.", errors=errors)
    return Claim(body["id_number"], body["full_name"], born)


def create_app(settings=None, options: Options | None = None, registry: PopulationRegistry | None = None) -> Flask:
    """The identity function's Flask app (``options`` default to the environment)."""
    app = runtime_app("identity", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn identity", "version": "1.0.0",
        "description": "CCCD decoding, verification of a citizen's data against the national population database "
                       "(match / mismatch per field, never the record), and sign-in tokens for the local cloud."})
    settings = app.extensions["lscloud"].settings
    options = options or Options.from_env()
    if options.token_ttl_s > settings.jwt_max_lifetime_s:
        raise ConfigError(f"IDENTITY_TOKEN_TTL_S ({options.token_ttl_s}) exceeds LSCLOUD_JWT_MAX_LIFETIME_S "
                          f"({settings.jwt_max_lifetime_s}): every function would refuse the tokens it issues")
    registry = registry or make_registry(settings, options)
    limiter = Limiter(Limits(options.max_mismatches, options.window_s))
    local = settings.env == "local"
    state: dict = {}
    lock = threading.Lock()

    def peer_client() -> peers.PeerClient:
        with lock:
            if "peers" not in state:
                state["peers"] = peers.PeerClient(settings)
            return state["peers"]

    def signing_key() -> str:
        if not local:
            raise Problem(404, "token-issuing-disabled", "Token issuing is disabled in the cluster",
                          "In the cluster bearer tokens come from the province's identity provider (JWKS); "
                          "this endpoint exists only in the local cloud and tests.",
                          title_vi="Không cấp mã xác thực trên cụm",
                          detail_vi="Trên cụm, mã xác thực do hệ thống định danh của tỉnh cấp.")
        with lock:
            if "key" not in state:
                path = options.signing_key_file
                try:
                    state["key"] = Path(path).read_text() if path else ""
                except OSError:
                    state["key"] = ""
            key = state["key"]
        if not key:
            raise Problem(503, "signing-key-missing", "No signing key",
                          f"The local cloud did not give this function a signing key ({SIGNING_KEY_ENV}).",
                          title_vi="Chưa có khóa ký", detail_vi="Chức năng chưa được cấp khóa ký mã xác thực.")
        return key

    def verify(claim: Claim) -> Verification:
        caller = _caller()
        try:
            limiter.check(caller, claim.id_number)
        except RateLimited as exc:
            raise _too_many(exc) from None
        try:
            record = registry.lookup(claim.id_number)
        except RegistryUnavailable:
            raise Problem(503, "registry-unavailable", "Population registry unavailable",
                          "The national population database did not answer; retry later.",
                          title_vi="Không kết nối được CSDL quốc gia về dân cư",
                          detail_vi="Cơ sở dữ liệu quốc gia về dân cư chưa phản hồi; vui lòng thử lại sau.",
                          headers={"Retry-After": "5"}) from None
        except RegistryError:
            raise Problem(502, "registry-error", "Population registry error",
                          "The national population database answered something unusable; operators are told.",
                          title_vi="Lỗi kết nối CSDL quốc gia về dân cư",
                          detail_vi="Cơ sở dữ liệu quốc gia về dân cư trả lời không hợp lệ.") from None
        result = compare(claim, record)
        if not result.match:
            try:
                limiter.record_mismatch(caller, claim.id_number)
            except RateLimited as exc:
                raise _too_many(exc) from None
        return result

    @app.get("/v1/cccd/<number>")
    @allow("public")
    @responds("identity/cccd.json")
    def decode_cccd(number: str):
        """Decode a CCCD number: province of birth registration, sex, century, birth year."""
        try:
            c = parse_cccd(number[:40])
        except InvalidIdentifier as exc:
            raise Problem(422, "invalid-cccd", "Invalid CCCD number", f"{number[:40]!r}: {exc}.",
                          title_vi="Số CCCD không hợp lệ", detail_vi=f"Số CCCD không hợp lệ: {exc}.",
                          errors=[{"field": "/number", "message": str(exc)}]) from None
        return {"number": c.number, "valid": True, "province_code": c.province_code, "province": c.province,
                "sex": c.sex, "century": c.century, "birth_year": c.birth_year}

    @app.post("/v1/verifications")
    @allow("public")
    @validate_body("identity/verification-request.json")
    @responds("identity/verification.json", also={429: "Too many mismatches from this caller or for this number"})
    def create_verification():
        """Check a citizen's ID number, full name and date of birth: match / mismatch per field."""
        return verify(_claim(g.body)).to_dict()

    @app.post("/v1/tokens/citizen")
    @allow("public")
    @validate_body("identity/verification-request.json")
    @responds("identity/token.json", status=201)
    def citizen_token():
        """Local cloud only: a bearer token (role citizen, sub = CCCD) for verified citizen data."""
        key = signing_key()
        claim = _claim(g.body)
        result = verify(claim)
        if not result.match:
            wrong = [f for f, v in result.fields.items() if v != "match"]
            raise Problem(401, "verification-failed", "Verification failed",
                          "The data do not match the national population database.",
                          title_vi="Xác thực không thành công",
                          detail_vi="Thông tin không khớp với Cơ sở dữ liệu quốc gia về dân cư.",
                          errors=[{"field": "/" + f, "message": "does not match"} for f in wrong])
        token = issue_token(key, claim.id_number, "citizen", ttl_s=options.token_ttl_s,
                            issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        return {"access_token": token, "token_type": "Bearer", "expires_in": options.token_ttl_s,
                "sub": claim.id_number, "role": "citizen"}, 201

    @app.post("/v1/tokens/officer")
    @allow("public")
    @validate_body("identity/officer-token-request.json")
    @responds("identity/token.json", status=201)
    def officer_token():
        """Local cloud only: a bearer token for an officer or supervisor of a directory agency and unit."""
        key = signing_key()
        body = g.body
        agency = _directory(peer_client(), "agencies", body["agency"], "/agency", "agency", "cơ quan")
        _directory(peer_client(), "units", body["unit"], "/unit", "unit", "đơn vị hành chính")
        if agency.get("kind") == "commune-committee" and agency.get("unit_code") != body["unit"]:
            raise Problem(422, "validation-failed", "Validation failed",
                          f"An officer of {body['agency']} works in unit {agency.get('unit_code')}, not {body['unit']}.",
                          title_vi="Dữ liệu không hợp lệ", detail_vi="Cán bộ UBND xã phải thuộc đơn vị của xã đó.",
                          errors=[{"field": "/unit", "message": f"must be {agency.get('unit_code')} for this agency"}])
        role, ttl = body.get("role", "officer"), int(body.get("ttl_s", options.token_ttl_s))
        if ttl > settings.jwt_max_lifetime_s:
            raise Problem(422, "validation-failed", "Validation failed",
                          f"Tokens may live at most {settings.jwt_max_lifetime_s} s here.",
                          title_vi="Dữ liệu không hợp lệ",
                          detail_vi=f"Mã xác thực chỉ được có hiệu lực tối đa {settings.jwt_max_lifetime_s} giây.",
                          errors=[{"field": "/ttl_s", "message": f"at most {settings.jwt_max_lifetime_s}"}])
        token = issue_token(key, body["officer_id"], role, agency=body["agency"], unit=body["unit"], ttl_s=ttl,
                            issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "sub": body["officer_id"],
                "role": role, "agency": body["agency"], "unit": body["unit"]}, 201

    return app


def _too_many(exc: RateLimited) -> Problem:
    return Problem(429, "too-many-mismatches", "Too many failed verifications",
                   f"Too many failed verifications ({'for this number' if exc.who == 'target' else 'from you'}); "
                   f"retry after {exc.retry_after_s} s.",
                   title_vi="Xác thực sai quá nhiều lần",
                   detail_vi=f"Xác thực sai quá nhiều lần; vui lòng thử lại sau {exc.retry_after_s} giây.",
                   headers={"Retry-After": str(exc.retry_after_s)})


def _directory(client: peers.PeerClient, kind: str, code: str, field: str, noun: str, noun_vi: str) -> dict:
    try:
        return client.get_json("directory", peers.path(f"/v1/{kind}", code))
    except peers.PeerUnavailable:
        raise Problem(503, "directory-unavailable", "Directory unavailable",
                      "The directory could not be asked; retry later.",
                      title_vi="Danh mục tạm thời không khả dụng", detail_vi="Không hỏi được danh mục; vui lòng thử lại sau.",
                      headers={"Retry-After": "5"}) from None
    except peers.PeerError:  # 404, or the directory refused the code outright
        raise Problem(422, "validation-failed", "Validation failed", f"No {noun} {code!r} in the directory.",
                      title_vi="Dữ liệu không hợp lệ", detail_vi=f"Không có {noun_vi} {code!r} trong danh mục.",
                      errors=[{"field": field, "message": f"no {noun} with this code in the directory"}]) from None
