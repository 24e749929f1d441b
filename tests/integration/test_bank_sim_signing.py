"""The simulated bank checks our webhooks as the partner-bank kit demands: a correct signature is
accepted once, the same signed request again (its nonce) is a replay and refused, a fresh signature
of the same webhook (our retry) is accepted, and the deliberate fault of the kit's tests accepts anything."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from lscloud.auth import sign_request
from lscloud.knative import load_function

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def signing(install):
    install()
    return importlib.import_module(load_function(ROOT / "peers" / "softatm-bank-sim").__name__ + ".signing")


def test_a_replayed_webhook_is_refused_and_a_retry_accepted(signing, settings):
    key = signing.keys(settings.state_dir)[0]
    raw = b'{"event_id":"t-1.1.0"}'
    headers = sign_request("POST", "/softatm-bank-sim/webhooks", raw, signing.CODE, "1", key)
    assert signing.verify(settings, headers, "/softatm-bank-sim/webhooks", raw) is True
    assert signing.verify(settings, headers, "/softatm-bank-sim/webhooks", raw) is False   # replay
    retry = sign_request("POST", "/softatm-bank-sim/webhooks", raw, signing.CODE, "1", key)
    assert signing.verify(settings, retry, "/softatm-bank-sim/webhooks", raw) is True
    tampered = sign_request("POST", "/softatm-bank-sim/webhooks", raw, signing.CODE, "1", key)
    assert signing.verify(settings, tampered, "/softatm-bank-sim/webhooks", raw + b" ") is False
    stale = sign_request("POST", "/softatm-bank-sim/webhooks", raw, signing.CODE, "1", key,
                         timestamp=int(time.time()) - settings.signature_window_s - 5)
    assert signing.verify(settings, stale, "/softatm-bank-sim/webhooks", raw) is False


def test_the_deliberate_fault_accepts_any_signature(signing, settings):
    faulty = settings.replace(service="softatm-bank-sim",
                              function_env={"SOFTATM_BANK_SIM_FAULT": "accept-any-signature"})
    assert signing.verify(faulty, {}, "/softatm-bank-sim/webhooks", b"{}") is True
    assert signing.verify(settings.replace(service="softatm-bank-sim"), {}, "/softatm-bank-sim/webhooks", b"{}") is False
