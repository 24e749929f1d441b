"""The simulated bank's own books and its behaviour, against the soft ATM's public API.

It behaves like a partner bank: it verifies our webhooks' signatures with its key, dedupes them
by event id, and answers through the signed bank endpoints — a withdrawal is reserved when the
account holds the amount (the money is put on hold) and rejected otherwise; a deposit is credited
and confirmed; a commit debits the hold for good; an abort releases it. Work is recorded first
(create-only) and done by a worker thread, so a webhook is acknowledged at once and nothing is lost
if the process dies: pending work is picked up again at start.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import queue
import secrets
import threading
import time
from pathlib import Path

import httpx

from lscloud import peers
from lscloud.auth import canonical, sign_request
from lscloud.store import ConditionalCheckFailed, DoesNotExist, Model, attributes as A

log = logging.getLogger("bank-sim")
CODE = "simbank"
ACCOUNTS = [f"99{n:08d}" for n in range(1, 21)]
OPENING_VND = 200_000_000


class Account(Model):
    """One customer account; keyed by the account number's pseudonym (no account number in a key)."""

    class Meta:
        table = "bank-sim-accounts"

    number = A.PseudonymAttribute(hash_key=True)
    balance = A.NumberAttribute()
    holds = A.JSONAttribute()
    version = A.VersionAttribute()


class Record(Model):
    """The bank's view of one soft ATM transfer."""

    class Meta:
        table = "bank-sim-records"

    id = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()
    version = A.VersionAttribute()


class Seen(Model):
    class Meta:
        table = "bank-sim-events"

    id = A.UnicodeAttribute(hash_key=True)


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


def open_accounts() -> None:
    for n in ACCOUNTS:
        try:
            Account(n, balance=OPENING_VND, holds={}).save()
        except ConditionalCheckFailed:
            pass


def verify(settings, headers, path: str, raw: bytes) -> bool:
    try:
        kid = int(headers.get("X-LSCloud-Key-Id", "0"))
        key = keys(settings.state_dir)[kid - 1]
        ts = headers["X-LSCloud-Timestamp"]
        if abs(time.time() - int(ts)) > settings.signature_window_s:
            return False
        mac = sign_request("POST", path, raw, CODE, kid, key, timestamp=int(ts),
                           nonce=headers["X-LSCloud-Nonce"])["X-LSCloud-Signature"]
        return hmac.compare_digest(mac, headers["X-LSCloud-Signature"]) and canonical is not None
    except (KeyError, ValueError, IndexError):
        return False


class Worker:
    def __init__(self, settings):
        self.settings = settings
        self.q: queue.Queue[str] = queue.Queue()
        self.http = httpx.Client(timeout=10, trust_env=False)
        self.busy: set[str] = set()
        self.busy_lock = threading.Lock()
        for i in range(8):  # a bank answers many webhooks at once; work per transfer is idempotent
            threading.Thread(target=self._run, name=f"bank-sim-worker-{i}", daemon=True).start()
        threading.Thread(target=self._rescan, name="bank-sim-rescan", daemon=True).start()

    def _rescan(self):
        while True:
            try:
                for r in Record.scan():
                    if r.data.get("todo"):
                        self.q.put(r.id)
            except Exception:  # noqa: BLE001
                pass
            time.sleep(5)

    def call(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        base = peers.peer_url("softatm", self.settings)
        full = base + path
        # the path as the function sees it (a gateway or Knative route strips its own prefix)
        h = sign_request(method, path, raw, CODE, "1", keys(self.settings.state_dir)[0])
        if raw:
            h["Content-Type"] = "application/json"
        return self.http.request(method, full, content=raw or None, headers=h)

    def _run(self):
        while True:
            tid = self.q.get()
            with self.busy_lock:
                if tid in self.busy:
                    continue   # another thread works on it; the rescan brings it back if needed
                self.busy.add(tid)
            try:
                self.process(tid)
            except Exception as exc:  # noqa: BLE001 - retried by the rescan
                log.warning("work on %s failed: %s", tid, exc)
            finally:
                with self.busy_lock:
                    self.busy.discard(tid)

    def process(self, tid: str) -> None:
        rec = Record.get(tid)
        d = rec.data
        todo = d.get("todo")
        if not todo:
            return
        if todo == "decide-withdrawal":
            ok = self._hold(d["account"], tid, d["amount_vnd"])
            path = f"/v1/bank/withdrawals/{tid}/{'reserve' if ok else 'reject'}"
            r = self.call("POST", path, {"bank_reference": f"SIM-{tid}"} if ok else {"reason": "insufficient funds"})
            if r.status_code >= 500 or r.status_code in (401, 429) or "Retry-After" in r.headers:
                raise RuntimeError(f"{path}: {r.status_code}")   # keep the hold; the rescan tries again
            if r.status_code != 200 and ok:
                # refused: expired or aborted meanwhile (release the hold) — unless our reservation
                # stands after all (a repeat of our own decision): then the commit or abort webhook
                # spends or releases the hold
                now_state = self.call("GET", f"/v1/bank/transfers/{tid}").json().get("state")
                if now_state == "COMMITTED":
                    self._settle_hold(d["account"], tid, paid=True)
                elif now_state == "ABORTED":
                    self._settle_hold(d["account"], tid, paid=False)
        elif todo == "credit-deposit":
            self._credit(d["account"], tid, d["amount_vnd"])
            r = self.call("POST", f"/v1/bank/deposits/{tid}/confirm", {"bank_reference": f"SIM-{tid}"})
            if r.status_code >= 500 or r.status_code in (401, 429):
                raise RuntimeError(f"confirm {tid}: {r.status_code}")
            if r.status_code != 200:
                self._credit(d["account"], tid, -d["amount_vnd"], undo=True)
        elif todo == "finish-withdrawal":
            self._settle_hold(d["account"], tid, paid=True)
        elif todo == "undo":
            if d["kind"] == "withdrawal":
                self._settle_hold(d["account"], tid, paid=False)
            else:
                self._credit(d["account"], tid, -d["amount_vnd"], undo=True)

        def done(item):
            if item.data.get("todo") == todo:
                item.data["todo"] = None
        Record.update(tid, None, done, retries=20)

    # -- the bank's books (idempotent per transfer) --

    def _hold(self, account: str, tid: str, amount: int) -> bool:
        result = []

        def fn(a):
            result.clear()
            if tid in a.holds:
                result.append(True)
            elif a.balance >= amount:
                a.balance -= amount
                a.holds = {**a.holds, tid: amount}
                result.append(True)
            else:
                result.append(False)
        try:
            Account.update(account, None, fn, retries=30)
        except DoesNotExist:
            return False
        return result[0]

    def _release(self, account: str, tid: str) -> None:
        self._settle_hold(account, tid, paid=False)

    def _settle_hold(self, account: str, tid: str, paid: bool) -> None:
        def fn(a):
            if tid in a.holds:
                amount = a.holds[tid]
                a.holds = {k: v for k, v in a.holds.items() if k != tid}
                if not paid:
                    a.balance += amount
        try:
            Account.update(account, None, fn, retries=30)
        except DoesNotExist:
            pass

    def _credit(self, account: str, tid: str, amount: int, undo: bool = False) -> None:
        mark = f"dep:{tid}" + (":undo" if undo else "")

        def fn(a):
            if undo and f"dep:{tid}" not in a.holds:
                return  # never credited (we never heard of the deposit before its abort): nothing to undo
            if mark not in a.holds:
                a.balance += amount
                a.holds = {**a.holds, mark: 0}
        try:
            Account.update(account, None, fn, retries=30)
        except DoesNotExist:
            pass


def on_webhook(worker: Worker, body: dict) -> None:
    """Record what the webhook asks of us (create-only by event id), then queue the work."""
    t = body["transfer"]
    tid = t["id"]
    try:
        Seen(body["event_id"]).save()
    except ConditionalCheckFailed:
        return  # a redelivery
    fact = body["type"].split(".")[4]

    def fn(item):
        d = item.data
        d["state"] = t["state"]
        d["committed_at"] = t.get("committed_at")
        if fact == "received":
            d["todo"] = "decide-withdrawal" if t["kind"] == "withdrawal" else "credit-deposit"
        elif fact == "committed" and t["kind"] == "withdrawal":
            d["todo"] = "finish-withdrawal"
        elif fact == "aborted":
            d["todo"] = "undo"
    try:
        Record(tid, data={"id": tid, "kind": t["kind"], "amount_vnd": t["amount_vnd"],
                          "account": t.get("account") or "", "state": t["state"], "todo": None}).save()
    except ConditionalCheckFailed:
        pass
    Record.update(tid, None, fn, retries=30)
    worker.q.put(tid)


def refresh_and_reconcile(worker: Worker, day: str) -> dict:
    """Ask the soft ATM for every transfer we have not seen finish, then submit our view of ``day``."""
    mine = []
    for r in Record.scan():
        d = r.data
        if d["state"] not in ("COMMITTED", "ABORTED") or not d.get("committed_at") and d["state"] == "COMMITTED":
            resp = worker.call("GET", f"/v1/bank/transfers/{r.id}")
            if resp.status_code == 200:
                t = resp.json()

                def fn(item, t=t):
                    item.data.update(state=t["state"], committed_at=t.get("committed_at"))
                    if t["state"] == "ABORTED" and item.data.get("todo") is None:
                        item.data["todo"] = "undo"
                    if t["state"] == "COMMITTED" and item.data["kind"] == "withdrawal" and item.data.get("todo") is None:
                        item.data["todo"] = "finish-withdrawal"
                d = Record.update(r.id, None, fn, retries=30).data
                worker.q.put(r.id)
        if d["state"] == "COMMITTED":
            mine.append({"id": d["id"], "kind": d["kind"], "amount_vnd": d["amount_vnd"], "state": "COMMITTED",
                         "committed_at": d.get("committed_at")})
    from datetime import datetime
    from zoneinfo import ZoneInfo

    def local(s):
        return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d")
    today = [{k: v for k, v in m.items() if k != "committed_at"} for m in mine
             if m.get("committed_at") and local(m["committed_at"]) == day]
    resp = worker.call("POST", "/v1/bank/reconciliations",
                       {"id": f"sim-{day}-{secrets.token_hex(6)}", "day": day, "transfers": today})
    return {"status": resp.status_code, "result": resp.json(), "submitted": len(today),
            "net_vnd": sum(m["amount_vnd"] * (1 if m["kind"] == "withdrawal" else -1) for m in today)}
