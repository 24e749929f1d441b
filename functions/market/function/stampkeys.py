"""The province's stamp-signing key: loaded from its secret, or made once for the local cloud.

The private key signs stamp codes (:mod:`.stampcode`); its public half is published
(``GET /market/v1/stamp-keys``, a JWK set) so any phone can check a code without asking us.
In the cluster ``MARKET_STAMP_KEY`` must hold it (a cluster secret: the start fails without
it); locally one is created once per state dir, readable only by its owner.
"""

from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lscloud.config import ConfigError

from . import stampcode

_lock = threading.Lock()


@dataclass(frozen=True)
class StampKeys:
    private: Ed25519PrivateKey
    index: int

    @property
    def public(self) -> dict[int, Ed25519PublicKey]:
        return {self.index: self.private.public_key()}

    def jwks(self) -> dict:
        """The published keys as a JWK set (RFC 8037: OKP / Ed25519), ``kid`` = the key index."""
        keys = []
        for index, key in sorted(self.public.items()):
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            keys.append({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": str(index),
                         "x": base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")})
        return {"keys": keys}


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
    """The key from ``settings.stamp_key``; locally, when unset, the state dir's own key."""
    if settings.stamp_key.strip():
        key = _parse(settings.stamp_key.strip(), "MARKET_STAMP_KEY")
    elif platform.env == "local":
        key = _local_key(platform.state_dir)
    else:
        raise ConfigError("MARKET_STAMP_KEY is required in the cluster (the province's Ed25519 stamp key, PEM)")
    return StampKeys(key, settings.stamp_key_index)


def describe_format() -> dict:
    """What a verifier needs besides the key: how a code is laid out."""
    return {"alphabet": "RFC 4648 base32, no padding, case-insensitive", "characters": stampcode.CODE_CHARS,
            "bytes": {"0": "format (high nibble, 1) and key index (low nibble)",
                      "1-6": "batch id", "7-10": "serial (big-endian)",
                      "11-74": "Ed25519 signature over bytes 0-10"},
            "signature": "Ed25519 (RFC 8032)"}
