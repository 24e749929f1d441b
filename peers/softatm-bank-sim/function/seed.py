"""Register the simulated bank with the soft ATM (local cloud only), so it works out of the box.

Runs through the soft ATM's own registry code (its banks module, same store and bucket locally):
code ``simbank``, the sim's two keys (created once under the state dir), webhook URL through the
gateway. Re-run whenever the keys or the gateway address change (that is the fingerprint).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

from lscloud import config, peers, store
from lscloud.knative import load_function

from . import sim

SOFTATM = Path(__file__).resolve().parents[3] / "functions" / "softatm"


def fingerprint() -> str:
    s = config.load()
    return hashlib.sha256(json.dumps([sim.keys(s.state_dir), peers.peer_url("softatm-bank-sim", s)]).encode()).hexdigest()


def seed(runtime) -> dict:
    store.configure(runtime.objects, runtime.settings.bucket)
    s = runtime.settings
    banks = importlib.import_module(load_function(SOFTATM).__name__ + ".banks")
    body = {"code": sim.CODE, "name": "Simulated bank (local cloud)", "keys": sim.keys(s.state_dir),
            "webhook_url": peers.peer_url("softatm-bank-sim", s) + "/webhooks",
            "limits": {"per_transaction_vnd": 50_000_000, "per_customer_day_vnd": 5_000_000_000}}
    from datetime import datetime, timezone

    out = banks.upsert(s, body, datetime.now(timezone.utc).isoformat())
    sim.open_accounts()
    return {"bank": out["code"], "keys": [k["fingerprint"] for k in out["keys"]], "accounts": len(sim.ACCOUNTS)}
