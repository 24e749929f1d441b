"""Event delivery tokens: the local dispatcher presents one per subscriber until it nears expiry (as
Knative's sender does with its OIDC token), and a function verifies a token it has seen lately
without checking its signature again — but never past its expiry, and never under other settings."""

from __future__ import annotations

import time

import jwt
import pytest

from lscloud import auth, config
from lscloud.auth import DELIVERY_TOKEN_TTL_S, issue_delivery_token, verify_delivery_token
from lscloud.delivery import LocalDeliveryTokens, Subscription
from lscloud.problems import Problem


def _sub(function: str) -> Subscription:
    return Subscription(function=function, name="all", types=("vn.langson.test.parcel.received.v1",),
                        url=f"http://127.0.0.1:9/{function}/events")


def test_one_token_per_subscriber_until_it_nears_expiry(tmp_path):
    now = [1_800_000_000.0]
    tokens = LocalDeliveryTokens(tmp_path, clock=lambda: now[0])
    border, again, softatm = tokens(_sub("border")), tokens(_sub("border")), tokens(_sub("softatm"))
    assert border == again and border != softatm
    claims = jwt.decode(border, options={"verify_signature": False})
    assert claims["aud"] == _sub("border").token_audience and claims["exp"] - claims["iat"] == DELIVERY_TOKEN_TTL_S
    now[0] += DELIVERY_TOKEN_TTL_S - LocalDeliveryTokens.RENEW_BEFORE_S - 1
    assert tokens(_sub("border")) == border           # still far enough from its expiry
    now[0] += 2
    assert tokens(_sub("border")) != border           # renewed before it expires


@pytest.fixture
def settings(tmp_path):
    return config.load({"K_SERVICE": "border", "LSCLOUD_STATE_DIR": str(tmp_path)})


def test_a_delivery_token_verified_lately_is_not_checked_again_but_its_expiry_is(settings, monkeypatch):
    private_pem, _ = auth.eventing_keys(settings.state_dir)
    token = issue_delivery_token(private_pem, "border", ttl_s=5)
    decoded, real = [], jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    for _ in range(3):
        assert verify_delivery_token(token, settings).role == auth.EVENTING
    assert len(decoded) == 1
    assert not any(token in repr(k) for k in auth._VERIFIED)

    now = time.time()
    monkeypatch.setattr(auth.time, "time", lambda: now + 5 + auth._LEEWAY_S + 1)   # remembered, but expired
    with pytest.raises(Problem) as expired:
        verify_delivery_token(token, settings)
    assert (expired.value.status, expired.value.type.rsplit("/", 1)[-1]) == (401, "token-expired") and len(decoded) == 1


def test_a_delivery_token_remembered_for_one_function_is_refused_by_another(settings):
    private_pem, _ = auth.eventing_keys(settings.state_dir)
    token = issue_delivery_token(private_pem, "border", ttl_s=60)
    assert verify_delivery_token(token, settings).role == auth.EVENTING
    with pytest.raises(Problem) as refused:   # its audience is another function's
        verify_delivery_token(token, settings.replace(service="softatm"))
    assert refused.value.status == 401
    with pytest.raises(Problem) as refused:   # the subject is no longer allowed here
        verify_delivery_token(token, settings.replace(events_subjects=("system:serviceaccount:ns:other",)))
    assert refused.value.status == 403


def test_a_refused_delivery_token_is_not_remembered(settings, tmp_path):
    stranger_pem, _ = auth.eventing_keys(tmp_path / "elsewhere")   # a key this function does not trust
    token = issue_delivery_token(stranger_pem, "border", ttl_s=60)
    for _ in range(2):
        with pytest.raises(Problem) as refused:
            verify_delivery_token(token, settings)
        assert (refused.value.status, refused.value.type.rsplit("/", 1)[-1]) == (401, "token-invalid")
