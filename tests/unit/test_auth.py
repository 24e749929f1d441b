"""Bearer tokens, role checks, dev keys and the partner signature checks that need no store."""

from __future__ import annotations

import base64
import json
import os
import stat
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import jsonify

from lscloud import auth
from lscloud.auth import allow, dev_keys, issue_token, principal, sign_request
from lscloud.config import Settings
from lscloud.problems import TYPE_BASE
from lscloud.web import create_app

KEY1 = "vcb-key-one-0123456789abcdef"
KEY2 = "vcb-key-two-0123456789abcdef"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return dev_keys(tmp_path_factory.mktemp("state"))


@pytest.fixture
def settings(keys):
    return Settings().replace(jwt_public_key=keys[1], jwt_algorithms=("RS256", "ES256"),
                              partner_keys={"vcb": (KEY1, KEY2)}, signature_window_s=300)


@pytest.fixture
def app(settings):
    app = create_app("auth-test", settings=settings)

    def me():
        p = principal()
        return jsonify(sub=p.sub, role=p.role, agency=p.agency, unit=p.unit, partner=p.partner)

    for path, decl in {"/public": allow("public"), "/officers": allow("officer"),
                       "/people": allow("citizen", "officer"), "/bank": allow(partner=True),
                       "/bank-or-teller": allow("teller", partner=True)}.items():
        app.add_url_rule(path, path.strip("/"), decl(me), methods=["GET", "POST"])
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def problem(resp, status, slug):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json(force=True)
    assert body["type"] == TYPE_BASE + slug, body
    return body


# --- dev keys -----------------------------------------------------------------------------------


def test_dev_keys_created_once_private_and_reloaded(tmp_path):
    priv, pub = dev_keys(tmp_path)
    path = tmp_path / "keys" / "dev-es256.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert isinstance(serialization.load_pem_private_key(priv.encode(), None), ec.EllipticCurvePrivateKey)
    assert dev_keys(tmp_path) == (priv, pub)
    assert [p.name for p in (tmp_path / "keys").iterdir() if p.name.endswith(".tmp")] == []


def test_issued_token_carries_the_claims(keys):
    token = issue_token(keys[0], "u1", "officer", agency="so-tnmt", unit="20", kid="dev")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == "dev"
    claims = jwt.decode(token, keys[1], algorithms=["ES256"], audience="lscloud", issuer="lscloud-local")
    assert claims["sub"] == "u1" and claims["role"] == "officer" and claims["agency"] == "so-tnmt"
    assert claims["exp"] - claims["iat"] == 3600


# --- bearer tokens ------------------------------------------------------------------------------


def test_valid_token_gives_the_principal(client, keys):
    resp = client.get("/officers", headers=bearer(issue_token(keys[0], "u1", "officer", agency="ubnd", unit="20")))
    assert resp.status_code == 200
    assert resp.get_json() == {"sub": "u1", "role": "officer", "agency": "ubnd", "unit": "20", "partner": None}


def test_rsa_token_accepted_when_its_key_is_configured(app, settings):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    both = settings.replace(jwt_public_key=settings.jwt_public_key + pub)
    app.extensions["lscloud"].settings = both
    token = issue_token(priv, "u2", "citizen")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert app.test_client().get("/people", headers=bearer(token)).get_json()["sub"] == "u2"


def test_missing_token_is_401(client):
    body = problem(client.get("/officers"), 401, "token-missing")
    assert body["title_vi"]


def test_expired_token_is_401_expired(client, keys):
    token = issue_token(keys[0], "u1", "officer", ttl_s=-120)  # beyond the 30 s leeway
    resp = client.get("/officers", headers=bearer(token))
    problem(resp, 401, "token-expired")
    assert token not in resp.get_data(as_text=True)


def test_a_token_verified_lately_is_not_checked_again_but_its_expiry_is(app, client, keys, monkeypatch):
    token = issue_token(keys[0], "u-remembered", "officer", ttl_s=90)
    decoded, real = [], jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    for _ in range(3):
        assert client.get("/officers", headers=bearer(token)).get_json()["sub"] == "u-remembered"
    assert len(decoded) == 1
    # what is remembered holds no token text (its SHA-256 only)
    assert not any(token in repr(k) for k in auth._VERIFIED)

    now = time.time()
    monkeypatch.setattr(auth.time, "time", lambda: now + auth.VERIFIED_FRESH_S + 1)
    assert client.get("/officers", headers=bearer(token)).status_code == 200
    assert len(decoded) == 2            # past its freshness: verified in full again

    monkeypatch.setattr(auth.time, "time", lambda: now)
    short = issue_token(keys[0], "u-short", "officer", ttl_s=5)
    assert client.get("/officers", headers=bearer(short)).status_code == 200
    monkeypatch.setattr(auth.time, "time", lambda: now + 5 + 31)   # still remembered, past exp + leeway
    resp = client.get("/officers", headers=bearer(short))
    problem(resp, 401, "token-expired")
    assert len(decoded) == 3 and short not in resp.get_data(as_text=True)


def test_a_token_remembered_under_one_audience_is_checked_again_under_another(app, client, keys, settings):
    token = issue_token(keys[0], "u-elsewhere", "officer")
    assert client.get("/officers", headers=bearer(token)).status_code == 200
    app.extensions["lscloud"].settings = settings.replace(jwt_audience="another-api")
    problem(client.get("/officers", headers=bearer(token)), 401, "token-invalid")


def test_token_within_leeway_is_accepted(client, keys):
    token = issue_token(keys[0], "u1", "officer", ttl_s=-10)
    assert client.get("/officers", headers=bearer(token)).status_code == 200


def test_wrong_issuer_and_audience_are_refused(client, keys):
    body = problem(client.get("/officers", headers=bearer(issue_token(keys[0], "u1", "officer", issuer="evil"))),
                   401, "token-invalid")
    assert "issuer" in body["detail"]
    body = problem(client.get("/officers", headers=bearer(issue_token(keys[0], "u1", "officer", audience="other"))),
                   401, "token-invalid")
    assert "audience" in body["detail"]


def test_token_signed_by_another_key_is_refused(client):
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    body = problem(client.get("/officers", headers=bearer(issue_token(other, "u1", "officer"))), 401, "token-invalid")
    assert "signature" in body["detail"]


def _unsigned(claims: dict, alg: str) -> str:
    seg = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{seg({'alg': alg, 'typ': 'JWT'})}.{seg(claims)}."


def test_none_algorithm_is_refused(client):
    now = int(time.time())
    claims = {"sub": "x", "role": "officer", "iss": "lscloud-local", "aud": "lscloud", "exp": now + 60}
    problem(client.get("/officers", headers=bearer(_unsigned(claims, "none"))), 401, "token-invalid")


def test_hmac_with_the_public_key_is_refused(client, keys):
    # algorithm confusion: an HS256 token whose "secret" is the server's public key
    now = int(time.time())
    claims = {"sub": "x", "role": "officer", "iss": "lscloud-local", "aud": "lscloud", "exp": now + 60}
    import hashlib
    import hmac

    head_body = _unsigned(claims, "HS256")[:-1]
    sig = base64.urlsafe_b64encode(hmac.new(keys[1].encode(), head_body.encode(), hashlib.sha256).digest())
    token = head_body + "." + sig.rstrip(b"=").decode()
    problem(client.get("/officers", headers=bearer(token)), 401, "token-invalid")


def test_rs256_header_with_ec_key_is_refused(client, keys):
    token = issue_token(keys[0], "u1", "officer")
    head, body, sig = token.split(".")
    forged_head = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    problem(client.get("/officers", headers=bearer(f"{forged_head}.{body}.{sig}")), 401, "token-invalid")


def test_garbage_and_wrong_scheme_are_401(client):
    problem(client.get("/officers", headers=bearer("not-a-jwt")), 401, "token-invalid")
    problem(client.get("/officers", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "token-invalid")


def test_token_without_exp_is_refused(client, keys):
    key = serialization.load_pem_private_key(keys[0].encode(), None)
    token = jwt.encode({"sub": "x", "role": "officer", "iss": "lscloud-local", "aud": "lscloud"}, key, algorithm="ES256")
    body = problem(client.get("/officers", headers=bearer(token)), 401, "token-invalid")
    assert "exp" in body["detail"]


def test_token_living_longer_than_the_bound_is_refused(client, keys):
    ten_years = issue_token(keys[0], "u1", "officer", ttl_s=10 * 365 * 86400)
    body = problem(client.get("/officers", headers=bearer(ten_years)), 401, "token-lifetime")
    assert "43200" in body["detail"] and body["detail_vi"]
    thirteen_hours = issue_token(keys[0], "u1", "officer", ttl_s=13 * 3600)
    problem(client.get("/officers", headers=bearer(thirteen_hours)), 401, "token-lifetime")
    twelve_hours = issue_token(keys[0], "u1", "officer", ttl_s=12 * 3600)
    assert client.get("/officers", headers=bearer(twelve_hours)).status_code == 200


def test_a_token_issued_long_ago_is_refused_even_near_its_end(client, keys):
    # issued for ten years, nine years ago and a bit: exp - now is small, exp - iat is not
    key = serialization.load_pem_private_key(keys[0].encode(), None)
    now = int(time.time())
    claims = {"sub": "x", "role": "officer", "iss": "lscloud-local", "aud": "lscloud", "iat": now - 10 * 365 * 86400,
              "exp": now + 600}
    problem(client.get("/officers", headers=bearer(jwt.encode(claims, key, algorithm="ES256"))), 401, "token-lifetime")


def test_token_without_iat_is_refused(client, keys):
    key = serialization.load_pem_private_key(keys[0].encode(), None)
    claims = {"sub": "x", "role": "officer", "iss": "lscloud-local", "aud": "lscloud", "exp": int(time.time()) + 600}
    body = problem(client.get("/officers", headers=bearer(jwt.encode(claims, key, algorithm="ES256"))), 401,
                   "token-invalid")
    assert "iat" in body["detail"]


def test_the_lifetime_bound_is_a_setting(app, settings, keys):
    app.extensions["lscloud"].settings = settings.replace(jwt_max_lifetime_s=600)
    client = app.test_client()
    problem(client.get("/officers", headers=bearer(issue_token(keys[0], "u1", "officer", ttl_s=3600))), 401,
            "token-lifetime")
    assert client.get("/officers", headers=bearer(issue_token(keys[0], "u1", "officer", ttl_s=600))).status_code == 200
    from lscloud import config

    assert config.load({}).jwt_max_lifetime_s == 43_200
    assert config.load({"LSCLOUD_JWT_MAX_LIFETIME_S": "3600"}).jwt_max_lifetime_s == 3600
    for bad in ("59", "604801", "forever"):
        with pytest.raises(config.ConfigError, match="LSCLOUD_JWT_MAX_LIFETIME_S"):
            config.load({"LSCLOUD_JWT_MAX_LIFETIME_S": bad})


def test_the_dev_token_command_stays_within_the_bound(tmp_path, capsys):
    from lscloud import cli

    assert cli.main(["--state-dir", str(tmp_path), "token", "--role", "officer", "--ttl", str(10 * 365 * 86400)]) == 1
    assert "--ttl must be 1 to 43200" in capsys.readouterr().err
    assert cli.main(["--state-dir", str(tmp_path), "token", "--role", "officer", "--ttl", "43200"]) == 0


@pytest.mark.parametrize("role,path,status", [
    ("officer", "/officers", 200), ("citizen", "/officers", 403), ("citizen", "/people", 200),
    ("officer", "/people", 200), ("bank", "/people", 403), ("teller", "/bank-or-teller", 200),
    ("officer", "/bank-or-teller", 403), ("device", "/public", 200),
])
def test_roles(client, keys, role, path, status):
    resp = client.get(path, headers=bearer(issue_token(keys[0], "u1", role)))
    assert resp.status_code == status
    if status == 403:
        problem(resp, 403, "forbidden")


def test_public_route_ignores_bad_token_and_reads_good_one(client, keys):
    assert client.get("/public").get_json()["sub"] is None
    assert client.get("/public", headers=bearer("junk")).get_json()["sub"] is None
    assert client.get("/public", headers=bearer(issue_token(keys[0], "u9", "citizen"))).get_json()["sub"] == "u9"


def test_bearer_token_cannot_call_partner_only_route(client, keys):
    problem(client.get("/bank", headers=bearer(issue_token(keys[0], "u1", "bank"))), 401, "missing-header")


def test_access_declaration_is_readable(app):
    access = auth.access_of(app.view_functions["bank-or-teller"])
    assert access.roles == ("teller",) and access.partner is True


# --- partner signatures (the checks before the nonce is stored) ---------------------------------


def signed(method, path, body, key_id="1", key=KEY1, partner="vcb", **kw):
    return sign_request(method, path, body, partner, key_id, key, **kw)


def test_canonical_string_and_signature_are_stable():
    h = sign_request("post", "/v1/atm/withdrawals?x=1", b'{"a":1}', "vcb", "1", KEY1, timestamp=1700000000,
                     nonce="n" * 20)
    canonical = "\n".join(["POST", "/v1/atm/withdrawals?x=1", "1700000000", "n" * 20,
                           "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"])
    assert auth.canonical("post", "/v1/atm/withdrawals?x=1", "1700000000", "n" * 20, b'{"a":1}') == canonical
    import hashlib
    import hmac

    expected = base64.urlsafe_b64encode(hmac.new(KEY1.encode(), canonical.encode(), hashlib.sha256).digest())
    assert h["X-LSCloud-Signature"] == expected.rstrip(b"=").decode()
    assert h["X-LSCloud-Timestamp"] == "1700000000" and h["X-LSCloud-Key-Id"] == "1"


def test_tampered_body_is_bad_signature(client):
    h = signed("POST", "/bank", b'{"amount":100}')
    problem(client.post("/bank", data=b'{"amount":900}', headers=h, content_type="application/json"), 401,
            "bad-signature")


def test_other_path_or_method_is_bad_signature(client):
    problem(client.get("/bank?x=2", headers=signed("GET", "/bank?x=1", b"")), 401, "bad-signature")
    problem(client.get("/bank", headers=signed("DELETE", "/bank", b"")), 401, "bad-signature")


def test_wrong_key_is_bad_signature(client):
    problem(client.get("/bank", headers=signed("GET", "/bank", b"", key="some-other-key-0123456789")), 401,
            "bad-signature")
    # key 2's secret presented as key 1
    problem(client.get("/bank", headers=signed("GET", "/bank", b"", key_id="1", key=KEY2)), 401, "bad-signature")


def test_old_key_after_rotation_is_refused(app, settings):
    app.extensions["lscloud"].settings = settings.replace(partner_keys={"vcb": (KEY2, "vcb-key-three-0123456789ab")})
    problem(app.test_client().get("/bank", headers=signed("GET", "/bank", b"", key_id="1", key=KEY1)), 401,
            "bad-signature")


def test_unknown_partner_key_id_or_empty_slot_answer_as_a_wrong_signature(app, settings, caplog):
    """The old code answered ``unknown-key`` before the timestamp and signature were checked: a
    caller without a key learnt which partners and key slots exist. Now one answer for all; the
    reason is in the log (and on the span), never the key."""
    app.extensions["lscloud"].settings = settings.replace(partner_keys={"vcb": (KEY1, ""), "acb": (KEY2,)})
    client = app.test_client()

    def answer(**kw):
        body = problem(client.get("/bank", headers=signed("GET", "/bank", b"", **kw)), 401, "bad-signature")
        return {k: v for k, v in body.items() if k not in ("instance", "trace_id")}

    caplog.set_level("INFO", logger="lscloud.auth")
    wrong = answer(key="some-other-key-0123456789")
    assert answer(partner="nobody") == answer(key_id="3") == answer(key_id="2") == answer(partner="acb", key_id="2") \
        == wrong
    said = caplog.text
    assert "unknown partner" in said and "unknown key id" in said and "empty key slot" in said
    assert "does not verify" in said and KEY1 not in said and KEY2 not in said


def test_skewed_clock_is_stale_timestamp(client):
    old = int(time.time()) - 301
    problem(client.get("/bank", headers=signed("GET", "/bank", b"", timestamp=old)), 401, "stale-timestamp")
    future = int(time.time()) + 400
    problem(client.get("/bank", headers=signed("GET", "/bank", b"", timestamp=future)), 401, "stale-timestamp")


def test_missing_header_is_named(client):
    h = signed("GET", "/bank", b"")
    del h["X-LSCloud-Nonce"]
    body = problem(client.get("/bank", headers=h), 401, "missing-header")
    assert "X-LSCloud-Nonce" in body["detail"]
    assert client.get("/bank").status_code == 401


def test_the_signed_path_is_the_one_sent_whichever_server_tells_it(app):
    """The path as sent on the wire (decoded once by :func:`auth.canonical`), whether the runtime's
    ASGI bridge (``raw_path`` in the scope it keeps) or a WSGI server (``RAW_URI``) tells it; the
    decoded ``request.path`` went through a second decoding before."""
    from flask import request

    bridge = {"asgi.scope": {"raw_path": b"/bank/x%2532", "root_path": ""}, "RAW_URI": "/elsewhere"}
    with app.test_request_context("/bank/x%2532?a=%20b", environ_overrides=bridge):
        assert auth.signed_path(request) == "/bank/x%2532?a=%20b"
        assert auth.canonical("GET", auth.signed_path(request), "1", "n" * 16, b"").splitlines()[1] == "/bank/x%32?a=%20b"
    with app.test_request_context("/bank/x%2532"):   # Werkzeug's RAW_URI
        assert auth.signed_path(request) == "/bank/x%2532"
    with app.test_request_context("/bank/x%2532", environ_overrides={"RAW_URI": "", "REQUEST_URI": ""}):
        assert auth.canonical("GET", auth.signed_path(request), "1", "n" * 16, b"").splitlines()[1] == "/bank/x%32"


def test_the_partner_limit_refills_and_says_when_to_come_back():
    from lscloud.ratelimit import MemoryLimiter, RateLimited

    now = [1000.0]
    limiter = MemoryLimiter(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.hit("atm:vcb")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("atm:vcb")
    assert refused.value.headers["Retry-After"] == "20"   # one more each 60 / 3 s
    limiter.hit("atm:bidv")                                # each caller its own bucket
    now[0] += 20
    limiter.hit("atm:vcb")
    with pytest.raises(RateLimited):
        limiter.hit("atm:vcb")
