"""The province's stamp-signing key: loaded from its secret, or made once for the local cloud.

The private key signs stamp codes (:mod:`.stampcode`); its public half is published
(``GET /market/v1/stamp-keys``, a JWK set) so any phone can check a code without asking us.
In the cluster ``MARKET_STAMP_KEY`` must hold it (a cluster secret: the start fails without
it); locally one is created once per state dir, readable only by its owner.

A rotation (a new key under a new ``MARKET_STAMP_KEY_INDEX``) leaves every stamp already printed
signed by the old key, for as long as the product is on a shelf. So the old keys' public halves
stay published and accepted, *retired*: ``MARKET_STAMP_RETIRED_KEYS`` lists them (public keys, no
secret: a config map), and they never sign. A code names its key by index alone, so a setting that
gives an index two keys, or names the signing key's index or the signing key itself as retired,
stops the start.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lscloud.config import ConfigError

from . import stampcode

_lock = threading.Lock()


RETIRED_SETTING = "MARKET_STAMP_RETIRED_KEYS"
CURRENT, RETIRED = "current", "retired"
_PUBLIC_BYTES = 32
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]{43}=?")


@dataclass(frozen=True)
class StampKeys:
    private: Ed25519PrivateKey
    index: int
    # the public halves of the keys that signed before a rotation, by index: they verify, never sign
    retired: Mapping[int, Ed25519PublicKey] = field(default_factory=dict)

    @property
    def public(self) -> dict[int, Ed25519PublicKey]:
        return {**self.retired, self.index: self.private.public_key()}

    def status(self, index: int) -> str | None:
        """``current`` (signs new stamps), ``retired`` (verifies older ones) or None (not ours)."""
        return CURRENT if index == self.index else RETIRED if index in self.retired else None

    def jwks(self) -> dict:
        """The published keys as a JWK set (RFC 8037: OKP / Ed25519), ``kid`` = the key index, the
        signing key first. ``status`` is no member RFC 7517 registers: a generic JOSE library
        ignores it (RFC 7517 §4), and every key listed verifies the stamps that name its index."""
        keys = []
        for index, key in sorted(self.public.items(), key=lambda kv: (kv[0] != self.index, kv[0])):
            keys.append({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": str(index),
                         "x": _b64url(_raw(key)), "status": self.status(index)})
        return {"keys": keys}


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _public(text: object, where: str) -> Ed25519PublicKey:
    if not isinstance(text, str) or not _B64URL_RE.fullmatch(text):
        raise ConfigError(f"{where} must be an Ed25519 public key: its {_PUBLIC_BYTES} raw bytes in base64url "
                          "(43 characters A-Z a-z 0-9 - _)")
    try:
        return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(text.rstrip("=") + "="))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not an Ed25519 public key") from None


def _index(text: object, where: str) -> int:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,2}", text) or int(text) > 15:
        raise ConfigError(f"{where} must be a key index 0-15 (the kid of the published key), got {text!r}")
    return int(text)


def _from_jwks(raw: str) -> list[tuple[int, Ed25519PublicKey]]:
    """The keys of a JWK set: what ``GET /v1/stamp-keys`` published before the rotation, pasted."""
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"{RETIRED_SETTING} starts like a JWK set but is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ConfigError(f'{RETIRED_SETTING} must be a JWK set: {{"keys": [...]}}')
    out = []
    for i, jwk in enumerate(doc["keys"]):
        where = f"{RETIRED_SETTING}: keys[{i}]"
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ConfigError(f'{where} must be an Ed25519 key ("kty": "OKP", "crv": "Ed25519")')
        if "d" in jwk:
            # a config map is readable by anyone who may read the namespace's config
            raise ConfigError(f"{where} holds a private key (\"d\"): a retired key is its public half only")
        out.append((_index(jwk.get("kid"), f"{where}.kid"), _public(jwk.get("x"), f"{where}.x")))
    return out


def retired_keys(raw: str, current_index: int, current: Ed25519PublicKey) -> dict[int, Ed25519PublicKey]:
    """``MARKET_STAMP_RETIRED_KEYS``: ``index:key`` pairs separated by commas or spaces (the key: its
    32 raw bytes in base64url, the ``x`` of its JWK), or a JWK set. Each key is one the province
    signed with before, under that index; :class:`ConfigError` naming the setting otherwise."""
    raw = raw.strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        pairs = _from_jwks(raw)
    else:
        pairs = []
        for item in re.split(r"[\s,]+", raw):
            index, sep, key = item.partition(":")
            if not sep:
                raise ConfigError(f"{RETIRED_SETTING}: {item!r} is not index:public-key (e.g. 0:<43 characters>)")
            pairs.append((_index(index, f"{RETIRED_SETTING}: an entry's index"),
                          _public(key, f"{RETIRED_SETTING}: key {index}")))
    out: dict[int, Ed25519PublicKey] = {}
    for index, key in pairs:
        if index == current_index:
            raise ConfigError(f"{RETIRED_SETTING} lists key {index}, which is MARKET_STAMP_KEY_INDEX: the key "
                              "signing now is not retired (give the new key a new index)")
        if _raw(key) == _raw(current):
            raise ConfigError(f"{RETIRED_SETTING}: key {index} is MARKET_STAMP_KEY itself: a rotation needs a "
                              "new key, not only a new index")
        if index in out and _raw(out[index]) != _raw(key):
            raise ConfigError(f"{RETIRED_SETTING} gives key {index} two different public keys: a stamp names "
                              "its key by index alone, so one index is one key")
        out[index] = key
    return out


def _parse(pem: str, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ConfigError(f"{where} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where} must be an Ed25519 key")
    return key


def _local_key(state_dir: str) -> Ed25519PrivateKey:
    path = Path(state_dir) / "keys" / "market-stamp.pem"
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            tmp = path.with_name(f".market-stamp.{os.getpid()}.{threading.get_ident()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            try:
                os.link(tmp, path)      # another process may have made it first: keep theirs
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return _parse(path.read_text(encoding="ascii"), str(path))


def load(settings, platform) -> StampKeys:
    """The key from ``settings.stamp_key``; locally, when unset, the state dir's own key; and the
    retired keys of ``settings.stamp_retired_keys``."""
    if settings.stamp_key.strip():
        key = _parse(settings.stamp_key.strip(), "MARKET_STAMP_KEY")
    elif platform.env == "local":
        key = _local_key(platform.state_dir)
    else:
        raise ConfigError("MARKET_STAMP_KEY is required in the cluster (the province's Ed25519 stamp key, PEM)")
    retired = retired_keys(settings.stamp_retired_keys, settings.stamp_key_index, key.public_key())
    return StampKeys(key, settings.stamp_key_index, retired)


def describe_format() -> dict:
    """What a verifier needs besides the key: how a code is laid out."""
    return {"alphabet": "RFC 4648 base32, no padding, case-insensitive", "characters": stampcode.CODE_CHARS,
            "bytes": {"0": "format (high nibble, 1) and key index (low nibble)",
                      "1-6": "batch id", "7-10": "serial (big-endian)",
                      "11-74": "Ed25519 signature over bytes 0-10"},
            "signature": "Ed25519 (RFC 8032)",
            "keys": "kid is the key index of byte 0; status current signs new stamps, retired only verifies "
                    "stamps signed before a key rotation"}
