"""The bank's side of the daily reconciliation: its records brought up to date, then its view of a day submitted."""

from __future__ import annotations

import queue
import secrets
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from .models import RECORDS, Account, Record


class Worker(Protocol):
    """What this module uses of the bank's worker (which calls it: so it is passed in, not imported)."""

    q: queue.Queue

    def call(self, method: str, path: str, body: dict | None = None) -> Any: ...


_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def records() -> dict:
    """Every transfer the bank has seen, and its accounts (balance, open holds)."""
    accounts = {a.number: {"balance": a.balance, "holds": {k: v for k, v in a.holds.items() if v}}
                for a in Account.scan()}
    return {"records": [r.data for r in Record.scan()], "accounts": accounts}


def _refresh(worker: Worker, record: Record) -> dict:
    """Ask the soft ATM for a transfer we have not seen finish; queue what its state now owes."""
    d = record.data
    resp = worker.call("GET", f"/v1/bank/transfers/{record.id}")
    if resp.status_code != 200:
        return d
    t = resp.json()

    def fn(item):
        item.data.update(state=t["state"], committed_at=t.get("committed_at"))
        if t["state"] == "ABORTED" and item.data.get("todo") is None:
            item.data["todo"] = "undo"
        if t["state"] == "COMMITTED" and item.data["kind"] == "withdrawal" and item.data.get("todo") is None:
            item.data["todo"] = "finish-withdrawal"
    d = Record.update(record.id, None, fn).data
    worker.q.put(record.id)
    return d


def refresh_and_reconcile(worker: Worker, day: str) -> dict:
    """Ask the soft ATM for every transfer we have not seen finish, then submit our view of ``day``."""
    mine = []
    for r in RECORDS.scan():
        d = r.data
        if d["state"] not in ("COMMITTED", "ABORTED") or not d.get("committed_at") and d["state"] == "COMMITTED":
            d = _refresh(worker, r)
        if d["state"] == "COMMITTED":
            mine.append({"id": d["id"], "kind": d["kind"], "amount_vnd": d["amount_vnd"], "state": "COMMITTED",
                         "committed_at": d.get("committed_at")})

    def local(s):
        return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(_TZ).strftime("%Y-%m-%d")
    today = [{k: v for k, v in m.items() if k != "committed_at"} for m in mine
             if m.get("committed_at") and local(m["committed_at"]) == day]
    resp = worker.call("POST", "/v1/bank/reconciliations",
                       {"id": f"sim-{day}-{secrets.token_hex(6)}", "day": day, "transfers": today})
    return {"status": resp.status_code, "result": resp.json(), "submitted": len(today),
            "net_vnd": sum(m["amount_vnd"] * (1 if m["kind"] == "withdrawal" else -1) for m in today)}
