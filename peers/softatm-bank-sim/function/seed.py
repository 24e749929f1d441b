"""Register the simulated bank with the soft ATM (local cloud only), so it works out of the box.

Runs through the soft ATM's own registry code (its banks module, same store and bucket locally):
code ``simbank``, the sim's two keys (created once under the state dir), webhook URL through the
gateway. Re-run whenever the keys or the gateway address change (that is the fingerprint).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from lscloud import config, peers

from . import books, signing


def fingerprint() -> str:
    s = config.load()
    return hashlib.sha256(json.dumps([signing.keys(s.state_dir),
                                      peers.peer_url("softatm-bank-sim", s)]).encode()).hexdigest()


def seed(runtime) -> dict:
    """Register the bank in the store of ``runtime`` (installed by the seed runner) and open its accounts."""
    # a test peer may take this shortcut into the soft ATM's registry; a function never would
    from functions.softatm.function import banks

    s = runtime.settings
    body = {"code": signing.CODE, "name": "Simulated bank (local cloud)", "keys": signing.keys(s.state_dir),
            "webhook_url": peers.peer_url("softatm-bank-sim", s) + "/webhooks",
            "limits": {"per_transaction_vnd": 50_000_000, "per_customer_day_vnd": 5_000_000_000}}
    out = banks.upsert(s, body, datetime.now(timezone.utc).isoformat())
    books.open_accounts()
    return {"bank": out["code"], "keys": [k["fingerprint"] for k in out["keys"]], "accounts": len(books.ACCOUNTS)}
