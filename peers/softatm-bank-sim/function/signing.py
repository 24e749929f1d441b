"""The simulated bank's HMAC keys and signatures: it checks our webhooks and signs its calls with them."""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from pathlib import Path

from dataclasses import dataclass

from lscloud import config
from lscloud.auth import sign_request

CODE = "simbank"  # the bank's code at the soft ATM
NAME = "softatm-bank-sim"  # the function's name: its app's, and the prefix of its nonces' keys


@dataclass(frozen=True)
class Faults:
    """A deliberate fault for the partner-bank kit's own tests (``SOFTATM_BANK_SIM_FAULT``):
    ``accept-any-signature`` verifies nothing (every webhook is taken as ours)."""

    fault: str = ""


def fault(settings) -> str:
    return config.section(settings, Faults).fault


def keys(state_dir) -> list[str]:
    """The sim's two HMAC keys, created once under <state dir>/keys (0600), shared with the seed hook."""
    path = Path(state_dir) / "keys" / "softatm-bank-sim.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        tmp = path.with_name(f".sim.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump([secrets.token_urlsafe(32), secrets.token_urlsafe(32)], f)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return json.loads(path.read_text())


def verify(settings, headers, path: str, raw: bytes) -> bool:
    """Whether a webhook to ``path`` was signed by the soft ATM with one of our keys, in the time window,
    with a nonce never seen before (remembered once the signature verifies, as the runtime remembers
    partners' nonces, :mod:`lscloud.nonces`: a replay is refused)."""
    if fault(settings) == "accept-any-signature":
        return True
    if not _signed(settings, headers, path, raw):
        return False
    from lscloud import nonces
    from lscloud.runtime import current

    return nonces.remember(current().bus, settings, NAME, CODE, headers["X-LSCloud-Nonce"],
                           int(headers["X-LSCloud-Timestamp"]))


def _signed(settings, headers, path: str, raw: bytes) -> bool:
    try:
        kid = int(headers.get("X-LSCloud-Key-Id", "0"))
        key = keys(settings.state_dir)[kid - 1]
        ts = headers["X-LSCloud-Timestamp"]
        if abs(time.time() - int(ts)) > settings.signature_window_s:
            return False
        mac = sign_request("POST", path, raw, CODE, kid, key, timestamp=int(ts),
                           nonce=headers["X-LSCloud-Nonce"])["X-LSCloud-Signature"]
        return hmac.compare_digest(mac, headers["X-LSCloud-Signature"])
    except (KeyError, ValueError, IndexError):
        return False


def signed_headers(settings, method: str, path: str, raw: bytes) -> dict[str, str]:
    """The headers of one of our calls to the soft ATM, signed with our first key."""
    return sign_request(method, path, raw, CODE, "1", keys(settings.state_dir)[0])
