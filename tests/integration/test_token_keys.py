"""Bearer tokens verified against an identity provider's JWKS (the cluster's ``jwksUrl``), served by
a loopback server the tests take down or hang after a good fetch: the last good key set stays in
use through an outage (``LSCLOUD_JWKS_STALE_S``), one fetch runs at a time and nobody queues behind
it, configured PEM keys decide before any 503, and a token from the future says so."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from loopback_http import ok
from waiting import wait_for
from lscloud import auth, config
from lscloud.problems import Problem

pytestmark = pytest.mark.integration

ROUTE = "/platform/dead-letters"   # the ioc function's, for operators


class IdP:
    """What the JWKS endpoint does: ``up``, ``down`` (hangs up unanswered) or ``hang`` (answers
    once ``release`` is set)."""

    def __init__(self, serve):
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.body = json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "ES256"}]}).encode()
        self.mode, self.release = "up", threading.Event()
        self.server = serve(self.answer)
        self.url = self.server.url + f"/{uuid.uuid4().hex}/jwks"   # its own key ring

    def answer(self, method, path, headers, body):
        if self.mode == "down":
            return None
        if self.mode == "hang":
            self.release.wait(60)
        return ok(self.body)

    @property
    def fetches(self) -> int:
        return len(self.server.requests)

    def token(self, kid: str = "idp-1", **claims) -> str:
        now = int(time.time())
        c = {"sub": "op-1", "role": "operator", "iss": "lscloud-local", "aud": "lscloud", "iat": now, "exp": now + 600,
             "jti": uuid.uuid4().hex, **claims}   # a new jti: never one this replica verified lately
        return jwt.encode(c, self.key, algorithm="ES256", headers={"kid": kid})


@pytest.fixture
def idp(serve, monkeypatch):
    monkeypatch.setattr(auth, "JWKS_FRESH_S", 0.5)   # stands in for the 300 s freshness
    i = IdP(serve)
    yield i
    i.release.set()


def stale(ring, seconds: float) -> None:
    """Make the ring's set (and its last failure) ``seconds`` older than it is."""
    with ring.jwks._lock:
        ring.jwks._fetched -= seconds
        ring.jwks._failed -= seconds


def past_freshness() -> None:
    time.sleep(auth.JWKS_FRESH_S + 0.1)   # only ever later: the grace period is an hour


def test_an_idp_outage_leaves_the_last_good_keys_in_use_until_the_grace_ends(idp, start_function, caplog):
    f = start_function("ioc", jwt_public_key="", jwt_jwks_url=idp.url)
    c = f.app.test_client()

    def get(token):
        return c.get(ROUTE, headers={"Authorization": "Bearer " + token})

    assert get(idp.token()).status_code == 200 and idp.fetches == 1
    idp.mode = "down"
    past_freshness()
    caplog.set_level(logging.WARNING, logger="lscloud.auth")
    sent = idp.token()
    assert get(sent).status_code == 200 and idp.fetches == 2     # refetch failed: the last good set
    assert get(idp.token()).status_code == 200 and idp.fetches == 2   # no retry within JWKS_RETRY_S
    warned = [r for r in caplog.records if "could not be fetched" in r.getMessage()]
    assert len(warned) == 1 and sent not in caplog.text and idp.url in warned[0].getMessage()

    ring = auth._KeyRing.of("", idp.url, stale_s=config.Settings().jwks_stale_s)
    stale(ring, config.Settings().jwks_stale_s + auth.JWKS_RETRY_S)
    r = get(idp.token())
    assert r.status_code == 503 and r.get_json()["type"].endswith("jwks-unavailable") and r.headers["Retry-After"]
    assert idp.fetches == 3 and len([r for r in caplog.records if "could not be fetched" in r.getMessage()]) == 1

    idp.mode = "up"
    stale(ring, auth.JWKS_RETRY_EMPTY_S)
    assert get(idp.token()).status_code == 200 and idp.fetches == 4


def test_a_hanging_idp_holds_one_fetch_and_nobody_queues_behind_it(idp, settings):
    s = settings.replace(jwt_public_key="", jwt_jwks_url=idp.url)
    assert auth.verify_token(idp.token(), s).sub == "op-1"
    idp.mode = "hang"
    past_freshness()
    first: list = []

    def fetching():
        try:
            first.append(auth.verify_token(idp.token(), s))
        except Problem as exc:
            first.append(exc)

    t = threading.Thread(target=fetching, daemon=True)
    t.start()
    wait_for(lambda: idp.fetches == 2, "the refetch to reach the hanging IdP")
    # while it hangs, others are answered from the set in hand, and start no fetch of their own
    others = [auth.verify_token(idp.token(), s) for _ in range(3)]
    assert [p.sub for p in others] == ["op-1"] * 3 and idp.fetches == 2
    idp.release.set()
    t.join(30)
    assert not t.is_alive() and getattr(first[0], "sub", None) == "op-1"


def test_unknown_key_ids_fetch_the_set_at_most_once_a_cooldown(idp, settings):
    s = settings.replace(jwt_public_key="", jwt_jwks_url=idp.url)
    auth.verify_token(idp.token(), s)
    for i in range(30):
        with pytest.raises(Problem) as refused:
            auth.verify_token(idp.token(kid=f"made-up-{i}"), s)
        assert refused.value.status == 401
    assert idp.fetches <= 2


def test_configured_pem_keys_decide_before_a_503(idp, settings, keys, tokens):
    idp.mode = "down"   # never fetched
    s = settings.replace(jwt_public_key=keys[1], jwt_jwks_url=idp.url)
    assert auth.verify_token(tokens.token("officer", "cb-1"), s).sub == "cb-1"
    with pytest.raises(Problem) as expired:
        auth.verify_token(auth.issue_token(keys[0], "cb-2", "officer", ttl_s=-120), s)
    assert expired.value.status == 401 and expired.value.type.endswith("token-expired")
    with pytest.raises(Problem) as undecided:   # signed by the IdP: only its keys could say
        auth.verify_token(idp.token(), s)
    assert undecided.value.status == 503 and undecided.value.type.endswith("jwks-unavailable")


def test_a_token_not_valid_yet_says_check_the_clock(settings, keys):
    now = int(time.time())
    early = jwt.encode({"sub": "cb-1", "role": "officer", "iss": "lscloud-local", "aud": "lscloud", "iat": now,
                        "nbf": now + 600, "exp": now + 1200},
                       keys[0], algorithm="ES256")
    with pytest.raises(Problem) as refused:
        auth.verify_token(early, settings.replace(jwt_public_key=keys[1]))
    p = refused.value
    assert p.status == 401 and "not valid yet" in p.detail and "clock" in p.detail
    assert "chưa có hiệu lực" in p.detail_vi


CLUSTER = {"LSCLOUD_ENV": "cluster", "K_SERVICE": "border", "LSCLOUD_PSEUDONYM_KEY": "k" * 40,
           "LSCLOUD_JWT_JWKS_URL": "https://keycloak.identity.svc/realms/ls/protocol/openid-connect/certs",
           "LSCLOUD_EVENTS_AUDIENCE": "x", "LSCLOUD_EVENTS_JWKS_URL": "https://kubernetes.default.svc/openid/v1/jwks",
           "LSCLOUD_EVENTS_SUBJECTS": "system:serviceaccount:lscloud:*"}


@pytest.mark.parametrize("name", ["LSCLOUD_JWT_JWKS_URL", "LSCLOUD_EVENTS_JWKS_URL"])
def test_a_cluster_takes_its_key_sets_over_https_only(name):
    assert config.load(CLUSTER).env == "cluster"
    with pytest.raises(config.ConfigError, match=name):
        config.load({**CLUSTER, name: CLUSTER[name].replace("https://", "http://")})
    local = config.load({name: "http://127.0.0.1:9/jwks"})   # the local cloud and tests: unchanged
    assert "http://127.0.0.1:9/jwks" in (local.jwt_jwks_url, local.events_jwks_url)


def test_the_grace_period_is_a_setting():
    assert config.load({}).jwks_stale_s == 3600
    assert config.load({"LSCLOUD_JWKS_STALE_S": "600"}).jwks_stale_s == 600
    with pytest.raises(config.ConfigError, match="LSCLOUD_JWKS_STALE_S"):
        config.load({"LSCLOUD_JWKS_STALE_S": "soon"})
