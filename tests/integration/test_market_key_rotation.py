"""A province rotates its stamp-signing key: the stamps already printed under the old key still scan
authentic. The old key's public half stays published (``status: retired``) and accepted, never
signing; new batches are the new key's; a code naming an index that is neither stays ``unknown-key``;
a setting that would make one index mean two keys stops the start. Real weed mini + nats-server; each
"revision" of the function is a start with its own settings, as a rollout makes it."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jsonschema import Draft202012Validator

from digital_support import ok
from market_support import PRODUCER
from lscloud.config import ConfigError

from functions.market.function import stampcode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = 1, 2
SETTING = "MARKET_STAMP_RETIRED_KEYS"


def pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def x(key: Ed25519PrivateKey) -> str:
    """The key's public half as its JWK's ``x`` (and the setting's ``index:x``)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def valid(schema: str, doc: dict) -> list[str]:
    s = json.loads((ROOT / "schemas" / "market" / schema).read_text(encoding="utf-8"))
    return [e.message for e in Draft202012Validator(s).iter_errors(doc)]


@pytest.fixture
def signing():
    """The province's stamp keys, old and new (``keys`` is the conftest's token key pair)."""
    return {OLD: Ed25519PrivateKey.generate(), NEW: Ed25519PrivateKey.generate()}


@pytest.fixture
def revision(start_function, peers):
    """``revision(key, index, retired=None)``: the market started with that signing key (the previous
    revision stopped first, as a rollout replaces it); the same bucket and stream throughout."""
    running = []

    def start(key: Ed25519PrivateKey, index: int, retired: str | None = None):
        while running:
            running.pop().stop()
        env = {"MARKET_STAMP_KEY": pem(key), "MARKET_STAMP_KEY_INDEX": str(index)}
        if retired is not None:
            env[SETTING] = retired
        fn = start_function("market", peer_url_template=peers.template, function_env=env)
        running.append(fn)
        return fn.app.test_client()

    return start


def printed(client, tokens, count: int = 5) -> tuple[str, list[str]]:
    """A lot and the codes of a batch issued for it now (what goes on the products)."""
    prod = tokens("producer", PRODUCER)
    body = {"product": "Hồi Văn Quan", "unit": "bao 5 kg", "harvested_on": "2025-08-20",
            "origin": {"commune": "06463", "plot": "VQ-02"}}
    lot = ok(client.post("/v1/lots", json=body, headers={**prod, "Idempotency-Key": uuid.uuid4().hex}), 201)["id"]
    batch = ok(client.post(f"/v1/lots/{lot}/stamps", json={"count": count},
                           headers={**prod, "Idempotency-Key": uuid.uuid4().hex}), 201)
    return lot, batch["codes"]


def scan(client, code: str) -> dict:
    answer = ok(client.get(f"/v1/stamps/{code}"))
    assert valid("scan.json", answer) == [], answer
    return answer


def test_stamps_printed_before_a_rotation_scan_authentic_under_the_retired_key(revision, signing, tokens):
    """Key 1 signs a batch; the province rotates to key 2 and lists key 1 as retired: the old stamp
    scans authentic, naming the retired key (the old code answered ``unknown-key``: every genuine
    product printed before the rotation reported not authentic); a new batch is signed by key 2;
    the published set holds both, the signing one marked, and verifies both offline."""
    before = revision(signing[OLD], OLD)
    _, old_codes = printed(before, tokens)
    first = scan(before, old_codes[0])
    assert first["authentic"] is True

    after = revision(signing[NEW], NEW, f"{OLD}:{x(signing[OLD])}")
    again = scan(after, old_codes[0])
    assert again["authentic"] is True, again
    assert again["key"] == {"kid": str(OLD), "status": "retired"}
    assert first["key"] == {"kid": str(OLD), "status": "current"}         # before the rotation, the same key
    assert again["stamp"]["serial"] == 0 and again["scans"]["count"] == 2     # the same stamp's record

    _, new_codes = printed(after, tokens)
    assert stampcode.decode(new_codes[3]).key_index == NEW
    assert stampcode.verify(new_codes[3], {NEW: signing[NEW].public_key()}).serial == 3
    fresh = scan(after, new_codes[3])
    assert fresh["authentic"] is True and fresh["key"] == {"kid": str(NEW), "status": "current"}

    published = ok(after.get("/v1/stamp-keys"))
    assert valid("stamp-keys.json", published) == []
    assert [(k["kid"], k["status"], k["x"]) for k in published["keys"]] == [
        (str(NEW), "current", x(signing[NEW])), (str(OLD), "retired", x(signing[OLD]))]
    assert all("d" not in k and k["use"] == "sig" for k in published["keys"])
    offline = {int(k["kid"]): Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(k["x"] + "="))
               for k in published["keys"]}
    assert stampcode.verify(old_codes[4], offline).serial == 4
    assert stampcode.verify(new_codes[4], offline).serial == 4


def test_a_retired_key_verifies_only_what_it_signed_and_unknown_indexes_stay_unknown(revision, signing, tokens):
    """The retired key is one more verifier, not a wildcard: a code under an index neither current nor
    retired is ``unknown-key``; the new key's signature under the retired index is ``bad-signature``.
    The published set of the previous revision, pasted whole, is a setting too."""
    before = revision(signing[OLD], OLD)
    _, old_codes = printed(before, tokens)
    was_published = before.get("/v1/stamp-keys").get_data(as_text=True)

    after = revision(signing[NEW], NEW, was_published)
    assert scan(after, old_codes[1])["key"] == {"kid": str(OLD), "status": "retired"}
    batch = stampcode.decode(old_codes[1]).batch
    stranger = Ed25519PrivateKey.generate()
    assert scan(after, stampcode.encode(stranger, 7, batch, 1))["reason"] == "unknown-key"
    assert scan(after, stampcode.encode(signing[NEW], OLD, batch, 1))["reason"] == "bad-signature"
    assert [k["kid"] for k in ok(after.get("/v1/stamp-keys"))["keys"]] == [str(NEW), str(OLD)]


def test_without_the_retired_setting_every_stamp_printed_before_is_unknown(revision, signing, tokens):
    """Why the setting matters: a rotation that does not list the old key tells every buyer of a
    genuine product printed before it that the province never signed it."""
    before = revision(signing[OLD], OLD)
    _, old_codes = printed(before, tokens)
    after = revision(signing[NEW], NEW)
    lost = scan(after, old_codes[0])
    assert lost["authentic"] is False and lost["reason"] == "unknown-key" and "key" not in lost
    assert [k["kid"] for k in ok(after.get("/v1/stamp-keys"))["keys"]] == [str(NEW)]


def test_a_retired_setting_that_would_make_an_index_ambiguous_stops_the_start(revision, signing):
    other = Ed25519PrivateKey.generate()
    private_jwk = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": str(OLD), "x": x(signing[OLD]),
                                        "d": "not-for-a-config-map"}]})
    for retired, why in (
            (f"{NEW}:{x(other)}", "MARKET_STAMP_KEY_INDEX"),                       # the signing index
            (f"{OLD}:{x(signing[NEW])}", "MARKET_STAMP_KEY itself"),                 # the signing key, renumbered
            (f"{OLD}:{x(signing[OLD])},{OLD}:{x(other)}", "two different public keys"),
            (f"{OLD}:{x(signing[OLD])[:20]}", "public key"),
            (f"16:{x(signing[OLD])}", "0-15"),
            (x(signing[OLD]), "index:public-key"),
            ('{"keys": [', "not JSON"),
            (private_jwk, "private key")):
        with pytest.raises(ConfigError, match=SETTING) as refused:
            revision(signing[NEW], NEW, retired)
        assert why in str(refused.value), (retired, str(refused.value))
    # the same key listed twice under its index is no ambiguity
    client = revision(signing[NEW], NEW, f"{OLD}:{x(signing[OLD])} {OLD}:{x(signing[OLD])}=")
    assert len(ok(client.get("/v1/stamp-keys"))["keys"]) == 2
