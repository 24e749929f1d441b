"""The partner-bank kit: the checks a bank must pass before go-live, run against the bank registered
under a code (``lscloud bank-kit check --bank CODE``; the local cloud only).

The kit plays both sides a bank meets: it sends the bank webhooks exactly as the soft ATM does
(signed with the bank's own key, :func:`lscloud.auth.sign_request`) — and some the bank must refuse —
and it drives real transfers as a teller, so the bank's signed answers (reserve, reject, confirm)
come back through the normal path. Each check prints PASS or FAIL and why; any failure exits 1.

Checks, in order (a later one uses what an earlier one made):

1. ``registered``: the bank is registered with a webhook URL and a signing key;
2. ``webhook-tampered``: a webhook whose body changed after signing is refused (4xx);
3. ``webhook-wrong-key``: a webhook signed with a key that is not the bank's is refused;
4. ``webhook-stale``: a correctly signed webhook outside the time window is refused;
5. ``withdrawal-reserved``: a withdrawal from a funded account is reserved by the bank's signed call;
6. ``withdrawal-rejected``: a withdrawal from an account the bank refuses is rejected (→ ABORTED);
7. ``deposit-confirmed``: a deposit is confirmed by the bank (→ COMMITTED);
8. ``webhook-duplicates``: our retries of an event already delivered (same event id, fresh signature,
   several at once) are each acknowledged (2xx) and change nothing;
9. ``webhook-replayed``: one of those deliveries sent again byte for byte (same nonce) is refused, at
   once. Whether the bank still refuses it 7 minutes later (a nonce must be kept 2 × window + 60 s,
   11 minutes) the kit cannot see: it does not drive the bank's clock, and waiting would hold every
   run that long;
10. ``settlement-reconciles``: the bank's reconciliation of today, submitted after the kit's
    transfers finished, has no mismatch with our settlement.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from lscloud import delivery, http_client, peers
from lscloud.auth import dev_keys, issue_token, sign_request

from . import banks, webhooks
from .models import Reconciliation, Transfer
from .transfers import local_day, now

CCCD = "020090001234"  # a test citizen's CCCD (the simulated bank does not check it)


@dataclass
class Result:
    name: str
    ok: bool
    why: str


@dataclass
class Kit:
    rt: object
    bank: str
    account: str
    reject_account: str
    wait_s: float
    results: list[Result] = field(default_factory=list)
    made: dict[str, str] = field(default_factory=dict)   # what the flows left: withdrawal id, deposit id
    replay: tuple[bytes, dict] | None = None

    def __post_init__(self):
        s = self.rt.settings
        # the client the soft ATM sends its webhooks with: the bank meets the same requests
        self.http = http_client.Client(timeout_s=15)
        self.gw = peers.peer_url("softatm", s)
        private = dev_keys(s.state_dir)[0]
        self.token = lambda role, unit=None: {"Authorization": "Bearer " + issue_token(
            private, f"bank-kit-{role}", role, unit=unit, ttl_s=1800, issuer=s.jwt_issuer, audience=s.jwt_audience)}
        self.run_id = uuid.uuid4().hex[:8]
        self.started = datetime.now(timezone.utc).isoformat()

    # -- reporting ---------------------------------------------------------------------------------

    def check(self, name: str, fn) -> bool:
        try:
            ok, why = fn()
        except Exception as exc:  # noqa: BLE001 - a check that cannot run fails, with the reason
            ok, why = False, f"could not run: {type(exc).__name__}: {str(exc)[:300]}"
        self.results.append(Result(name, ok, why))
        print(f"{'PASS' if ok else 'FAIL'}  {name:22} {why}", flush=True)
        return ok

    # -- webhooks as the soft ATM sends them -------------------------------------------------------

    def _webhook(self, body: dict, *, key: str | None = None, kid: str | None = None, timestamp: int | None = None,
                 tamper: bool = False) -> tuple[http_client.Response, bytes, dict]:
        data = banks.get(self.bank)
        real_kid, secret = banks.signing_key(self.rt.settings, data)
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        path = http_client.parse_url(data["webhook_url"]).target   # signed as the soft ATM signs it
        headers = sign_request("POST", path, raw, self.bank, kid or real_kid, key or secret, timestamp=timestamp)
        headers.update({"Content-Type": "application/json", "X-LSCloud-Event-Id": body["event_id"]})
        if tamper:
            body = {**body, "transfer": {**body["transfer"], "amount_vnd": body["transfer"]["amount_vnd"] * 10}}
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return self.http.post(data["webhook_url"], raw, headers=headers), raw, headers

    def _probe_body(self, what: str) -> dict:
        """A webhook the bank must refuse before reading it: about a transfer nobody made."""
        tid = f"kit-{self.run_id}-{what}"
        return {"event_id": f"{tid}.1.0", "type": "vn.langson.softatm.transfer.received.v1",
                "time": now().isoformat(), "transfer": {
                    "id": tid, "kind": "withdrawal", "state": "RECEIVED", "bank": self.bank, "point": "00000",
                    "amount_vnd": 100_000, "account": self.account, "phone": None, "customer_id_number": CCCD,
                    "created_at": now().isoformat(), "expires_at": None, "committed_at": None, "aborted_at": None,
                    "abort_reason": None, "bank_reference": None}}

    def _refused(self, resp: http_client.Response, what: str) -> tuple[bool, str]:
        if 400 <= resp.status_code < 500:
            return True, f"refused {what} with {resp.status_code}"
        return False, f"answered {resp.status_code} to {what}: a bank must refuse it (401) and do nothing"

    def registered(self):
        data = banks.get(self.bank)
        kid, secret = banks.signing_key(self.rt.settings, data)
        if not secret:
            return False, "no usable signing key: rotate one in (POST /v1/banks/{code}/keys)"
        try:
            http_client.parse_url(data["webhook_url"])
        except http_client.BadUrl as exc:
            return False, f"no webhook can be sent to its address ({exc.message}): PATCH /v1/banks/{{code}} (If-Match: its ETag)"
        return True, f"webhook {data['webhook_url']}, signing key {kid} ({banks.fingerprint(secret)})"

    def tampered(self):
        resp, _, _ = self._webhook(self._probe_body("tampered"), tamper=True)
        return self._refused(resp, "a webhook whose body changed after signing")

    def wrong_key(self):
        resp, _, _ = self._webhook(self._probe_body("wrongkey"), key=secrets.token_urlsafe(32))
        return self._refused(resp, "a webhook signed with another key")

    def stale(self):
        window = self.rt.settings.signature_window_s
        resp, _, _ = self._webhook(self._probe_body("stale"), timestamp=int(time.time()) - 2 * window - 60)
        return self._refused(resp, f"a webhook signed {2 * window + 60} s ago")

    # -- real transfers ----------------------------------------------------------------------------

    def _send_json(self, url: str, headers: dict, body: dict) -> http_client.Response:
        return self.http.post(url, json.dumps(body).encode(), headers={**headers, "Content-Type": "application/json"})

    def _point(self) -> str:
        if "point" not in self.made:
            offices = self.http.get(peers.peer_url("directory", self.rt.settings)
                                    + "/v1/post-offices?limit=100").json()["items"]
            point = next(o["code"] for o in offices if o.get("soft_atm") and o["kind"] == "commune")
            r = self._send_json(f"{self.gw}/v1/points/{point}/cash-deliveries", self.token("operator"),
                                {"id": f"kit-{self.run_id}-fund", "amount_vnd": 20_000_000})
            if r.status_code not in (200, 201):
                raise RuntimeError(f"funding point {point}: {r.status_code} {_text(r)}")
            self.made["point"] = point
        return self.made["point"]

    def _create(self, kind: str, account: str, amount: int) -> str:
        point = self._point()
        tid = f"kit-{self.run_id}-{kind[:3]}-{uuid.uuid4().hex[:6]}"
        r = self._send_json(f"{self.gw}/v1/{kind}", self.token("teller", point),
                            {"id": tid, "bank": self.bank, "amount_vnd": amount, "account": account,
                             "customer_id_number": CCCD})
        if r.status_code != 201:
            raise RuntimeError(f"creating the {kind[:-1]}: {r.status_code} {_text(r)}")
        return tid

    def _settles(self, tid: str, states: tuple[str, ...]) -> dict:
        """The transfer once it leaves RECEIVED (or as it is when the wait is over)."""
        point = self.made["point"]
        deadline = time.monotonic() + self.wait_s
        while True:
            t = self.http.get(f"{self.gw}/v1/transfers/{tid}", headers=self.token("teller", point)).json()
            if t.get("state") in states or time.monotonic() > deadline:
                return t
            time.sleep(0.2)

    def withdrawal_reserved(self):
        tid = self._create("withdrawals", self.account, 100_000)
        t = self._settles(tid, ("RESERVED", "ABORTED", "COMMITTED"))
        if t.get("state") != "RESERVED":
            return False, (f"withdrawal {tid} is {t.get('state')} after {self.wait_s:.0f} s "
                           f"({t.get('abort_reason') or 'no reserve call came'}): reserve it with a signed "
                           "POST /v1/bank/withdrawals/{id}/reserve")
        r = self._send_json(f"{self.gw}/v1/withdrawals/{tid}/commit", self.token("teller", self.made["point"]), {})
        if r.status_code != 200:
            raise RuntimeError(f"teller commit of {tid}: {r.status_code} {_text(r)}")
        self.made["withdrawal"] = tid
        return True, f"{tid} reserved (bank reference {t.get('bank_reference')!r}), then committed by the teller"

    def withdrawal_rejected(self):
        tid = self._create("withdrawals", self.reject_account, 100_000)
        t = self._settles(tid, ("RESERVED", "ABORTED", "COMMITTED"))
        if t.get("state") == "ABORTED":
            return True, f"{tid} rejected: {t.get('abort_reason')}"
        return False, (f"withdrawal {tid} from account {self.reject_account[:2]}… is {t.get('state')}: the bank "
                       "must reject it (POST /v1/bank/withdrawals/{id}/reject)")

    def deposit_confirmed(self):
        tid = self._create("deposits", self.account, 200_000)
        t = self._settles(tid, ("COMMITTED", "ABORTED"))
        if t.get("state") == "COMMITTED":
            self.made["deposit"] = tid
            return True, f"{tid} confirmed (bank reference {t.get('bank_reference')!r})"
        return False, f"deposit {tid} is {t.get('state')}: confirm it with POST /v1/bank/deposits/{{id}}/confirm"

    # -- retries, duplicates, replays --------------------------------------------------------------

    def _delivered_event(self, tid: str) -> dict:
        for entry in reversed(delivery.tail(self.rt.settings, 2000)):
            event = entry["event"]
            if isinstance(event, dict) and event.get("type") == webhooks.RECEIVED_TYPE \
                    and (event.get("data") or {}).get("transfer_id") == tid:
                return event
        raise RuntimeError(f"the received event of {tid} is not in the stream")

    def duplicates(self):
        tid = self.made.get("withdrawal")
        if tid is None:
            return False, "needs the reserved withdrawal of withdrawal-reserved"
        event = self._delivered_event(tid)
        body = webhooks.body_for(event, Transfer.get(tid).data)   # what our retry would send now
        before = Transfer.get(tid).data["state"]
        with ThreadPoolExecutor(3) as pool:
            sent = list(pool.map(lambda _: self._webhook(body), range(3)))
        codes = [resp.status_code for resp, _, _ in sent]
        self.replay = (sent[0][1], sent[0][2])
        after = Transfer.get(tid).data["state"]
        if not all(200 <= c < 300 for c in codes):
            return False, f"answered {codes} to 3 redeliveries of event {event['id']}: each must be 2xx (we retry otherwise)"
        if after != before:
            return False, f"the transfer moved {before} → {after} on a redelivery"
        return True, f"3 concurrent redeliveries of {event['id']} acknowledged ({codes}); {tid} still {after}"

    def replayed(self):
        if self.replay is None:
            return False, "needs a delivery of webhook-duplicates"
        raw, headers = self.replay
        resp = self.http.post(banks.get(self.bank)["webhook_url"], raw, headers=headers)
        return self._refused(resp, f"a replay of nonce {headers['X-LSCloud-Nonce'][:6]}… (sent before)")

    # -- settlement --------------------------------------------------------------------------------

    def reconciles(self):
        mine = [self.made[k] for k in ("withdrawal", "deposit") if k in self.made]
        if not mine:
            return False, "needs the committed transfers of the flows above"
        last_commit = max(Transfer.get(t).data.get("committed_at") or "" for t in mine)
        day = local_day(datetime.fromisoformat(last_commit.replace("Z", "+00:00")))
        print(f"      …   waiting up to {self.wait_s:.0f} s for the bank's reconciliation of {day} "
              f"(POST /v1/bank/reconciliations) covering {', '.join(mine)}", flush=True)
        deadline = time.monotonic() + self.wait_s
        seen = None
        while time.monotonic() < deadline:
            recs = [r.data for r in Reconciliation.query_all(self.bank)
                    if r.data.get("day") == day and (r.data.get("at") or "") > last_commit]
            if recs:
                seen = max(recs, key=lambda d: d["at"])
                if seen["ok"]:
                    return True, (f"reconciliation {seen['id']} of {day}: {seen['matched']} matched, net "
                                  f"{seen['net_position_vnd']['theirs']:,} VND on both sides")
            time.sleep(1.0)
        if seen is None:
            return False, f"no reconciliation of {day} came after the kit's transfers committed"
        problems = sorted({m["problem"] for m in seen["mismatches"]})
        return False, f"reconciliation {seen['id']} has {len(seen['mismatches'])} mismatch(es): {', '.join(problems)}"


def _text(r: http_client.Response) -> str:
    return r.content.decode("utf-8", "replace")[:200]


def main(rt, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lscloud bank-kit check")
    p.add_argument("--bank", required=True, help="the bank's code at the soft ATM")
    p.add_argument("--account", default="9900000001",
                   help="a funded test account at the bank (default: the simulated bank's first)")
    p.add_argument("--reject-account", default="000000000000",
                   help="an account the bank must refuse withdrawals from (default: one no bank holds)")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for each answer of the bank (default 60)")
    a = p.parse_args(argv)
    if rt.settings.env != "local":
        print("bank-kit: runs against the local cloud only (it drives transfers with dev tokens)")
        return 2
    kit = Kit(rt, a.bank, a.account, a.reject_account, a.wait)
    print(f"Partner-bank kit — bank {a.bank!r}, soft ATM {kit.gw}, run {kit.run_id}", flush=True)
    if kit.check("registered", kit.registered):
        for name, fn in (("webhook-tampered", kit.tampered), ("webhook-wrong-key", kit.wrong_key),
                         ("webhook-stale", kit.stale), ("withdrawal-reserved", kit.withdrawal_reserved),
                         ("withdrawal-rejected", kit.withdrawal_rejected), ("deposit-confirmed", kit.deposit_confirmed),
                         ("webhook-duplicates", kit.duplicates), ("webhook-replayed", kit.replayed),
                         ("settlement-reconciles", kit.reconciles)):
            kit.check(name, fn)
    failed = [r.name for r in kit.results if not r.ok]
    print(f"\n{len(kit.results) - len(failed)} passed, {len(failed)} failed"
          + (f" ({', '.join(failed)}): not ready for go-live" if failed else ": ready for go-live"), flush=True)
    return 1 if failed else 0
