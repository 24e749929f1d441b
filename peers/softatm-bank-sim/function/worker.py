"""The bank's back office: work recorded by a webhook (create-only, so nothing is lost if the process
dies) is done by worker threads; work that failed is tried again every ``RETRY_S``, and a rescan of
every record (at start, then every ``RESCAN_S``, a page a round) picks up whatever is still pending.
The rescan reads a record only when the listing shows it changed since this process last wrote or
read it (:data:`.models.RECORDS`): at start that is every record, later only what another process
wrote.

It behaves like a partner bank: a withdrawal is reserved when the account holds the amount (the
money is put on hold) and rejected otherwise; a deposit is credited and confirmed; a commit debits
the hold for good; an abort releases it — each answered through the soft ATM's signed bank endpoints.
Like a bank's back office it submits its provisional reconciliation of today once its work has
settled: no new work for ``RECONCILE_S``, and at most that often, so the partner-bank kit can check
it reconciles. Under sustained load it waits for a lull, as a bank reconciles after its busy hours:
reconciling the whole day every few seconds made the soak's latency grow with the day's count.
"""

from __future__ import annotations

import contextvars
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from lscloud import http_client, peers
from lscloud.store import ConditionalCheckFailed

from . import books, signing
from .models import RECORDS, Record

log = logging.getLogger("bank-sim")

THREADS = 8       # a bank answers many webhooks at once; work per transfer is idempotent
RETRY_S = 2.0     # work that failed here (the soft ATM busy, not ready yet) is tried again this often
RESCAN_S = 600.0  # reading every record is a crash's safety net (and runs at start), not the way work arrives
RESCAN_PAGE = 200
"""Records a rescan reads per round (every ``RETRY_S``): a long day's rescan is spread over rounds.
Read at once, the 6,000 records of a ten-minute soak landed in its tenth minute (stop 25 traced the
reads there): that minute's p99 was 167 ms against 72-97 ms in minutes 1-8. Paged, the tenth
minute's p99 was 97, 153 and 103 ms in three soaks (stops 31 and 32; the 153 ms run was as high
from its fifth minute on). Since stop 37 a rescan after the first reads only the records changed
since this process held them (:meth:`lscloud.store.recent.RecentItems.scan`)."""
RECONCILE_S = 10.0


@dataclass
class RescanState:
    """Where the rescan stands between rounds: reading pages (``place`` is the next one's token) or
    waiting ``RESCAN_S`` for the next rescan, and when today was last reconciled."""
    scanning: bool = True   # a rescan runs at start
    place: str | None = None
    last_scan: float = field(default_factory=time.monotonic)
    last_reconciled: float = field(default_factory=time.monotonic)


def _answered(r, what: str):
    """``r`` when the soft ATM gave an answer to act on; otherwise (an outage, throttling, a key it
    did not take yet: 5xx, 401, 429 or Retry-After) raise, so the work and any hold stay owed and the
    rescan tries again."""
    if r.status_code >= 500 or r.status_code in (401, 429) or r.header("Retry-After") is not None:
        raise RuntimeError(f"{what}: {r.status_code}")
    return r


class Worker:
    def __init__(self, settings, *, start: bool = True):
        self.settings = settings
        self.q: queue.Queue[str] = queue.Queue()
        self.http = http_client.Client(timeout_s=10)
        self.busy: set[str] = set()
        self.again: set[str] = set()    # work that came for a transfer while it was busy
        self.failed: set[str] = set()   # work that failed: tried again after RETRY_S
        self.busy_lock = threading.Lock()
        self.written: dict[str, Record] = {}   # records as a webhook just wrote them, until a worker takes them
        # the trace of the webhook that brought the work: the bank's answer continues the transfer's trace
        self.traces: dict[str, contextvars.Context] = {}
        self.settled = threading.Event()   # some work finished since the last reconciliation
        self.last_work = time.monotonic()   # when a webhook last brought work
        if not start:   # its parts driven one at a time (the tests)
            return
        for i in range(THREADS):
            threading.Thread(target=self._run, name=f"bank-sim-worker-{i}", daemon=True).start()
        threading.Thread(target=self._rescan, name="bank-sim-rescan", daemon=True).start()

    def rescan_page(self, page_token: str | None) -> str | None:
        """Queue the pending work of one page of records (:data:`RESCAN_PAGE`); the next page's token,
        None when the rescan has read every record."""
        page = RECORDS.scan(limit=RESCAN_PAGE, page_token=page_token)
        for r in page:
            if r.data.get("todo"):
                self.q.put(r.id)
        return page.page_token

    def _rescan(self):
        state = RescanState()
        while True:
            try:
                self.rescan_round(state)
            except Exception:  # noqa: BLE001 - the next round tries again
                pass
            time.sleep(RETRY_S)
            state.scanning = state.scanning or time.monotonic() - state.last_scan >= RESCAN_S

    def rescan_round(self, state: RescanState) -> None:
        """One round of the back office's clock: failed work is queued again, a rescan in progress
        reads its next page, and today is reconciled once every piece of work has settled."""
        with self.busy_lock:
            retry, self.failed = self.failed, set()
        for tid in retry:
            self.q.put(tid)
        if state.scanning:
            state.place = self.rescan_page(state.place)
            if state.place is None:
                state.scanning, state.last_scan = False, time.monotonic()
        with self.busy_lock:
            # a rescan still going through its pages may yet find work: no reconciling before it ends
            pending = bool(retry or self.failed or self.busy or self.again or state.scanning) or not self.q.empty()
            quiet = time.monotonic() - self.last_work >= RECONCILE_S
        if self.settled.is_set() and not pending and quiet and time.monotonic() - state.last_reconciled >= RECONCILE_S:
            self.settled.clear()
            state.last_reconciled = time.monotonic()
            self._reconcile_today()

    def _reconcile_today(self) -> None:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from .reconcile import refresh_and_reconcile

        day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d")
        out = refresh_and_reconcile(self, day)
        log.info("reconciled %s: HTTP %s, %s transfer(s)", day, out["status"], out["submitted"])

    def call(self, method: str, path: str, body: dict | None = None) -> http_client.Response:
        """A signed call to the soft ATM (``path`` as the function sees it: a gateway strips its own prefix)."""
        raw = b"" if body is None else json.dumps(body).encode()
        h = signing.signed_headers(self.settings, method, path, raw)
        if raw:
            h["Content-Type"] = "application/json"
        return self.http.request(method, peers.peer_url("softatm", self.settings) + path, body=raw or None, headers=h)

    def submit(self, tid: str, item: Record) -> None:
        """Queue the work on ``tid``; ``item`` is its record as just written (the worker starts from
        it instead of reading it again; its ETag still guards the worker's own write)."""
        with self.busy_lock:
            self.written[tid] = item
            self.traces[tid] = contextvars.copy_context()
            self.last_work = time.monotonic()
        self.q.put(tid)

    def _run(self):
        while True:
            tid = self.q.get()
            with self.busy_lock:
                if tid in self.busy:
                    self.again.add(tid)   # another thread works on it: queued again once it is done
                    continue
                self.busy.add(tid)
            failed = False
            with self.busy_lock:
                trace = self.traces.pop(tid, None)
            try:
                trace.run(self.process, tid) if trace is not None else self.process(tid)
            except Exception as exc:  # noqa: BLE001 - tried again after RETRY_S
                failed = True
                log.warning("work on %s failed: %s", tid, exc)
            finally:
                with self.busy_lock:
                    self.busy.discard(tid)
                    again = tid in self.again
                    self.again.discard(tid)
                    if failed:
                        self.failed.add(tid)
                if again:
                    self.q.put(tid)

    def process(self, tid: str) -> None:
        """Do the work recorded on transfer ``tid``, then mark it done (unless newer work came meanwhile)."""
        with self.busy_lock:
            item = self.written.pop(tid, None)
        item = item if item is not None else Record.get(tid)
        d = item.data
        todo = d.get("todo")
        if not todo:
            return
        if todo == "decide-withdrawal":
            self._decide_withdrawal(tid, d)
        elif todo == "credit-deposit":
            books.credit(d["account"], tid, d["amount_vnd"])
            r = _answered(self.call("POST", f"/v1/bank/deposits/{tid}/confirm", {"bank_reference": f"SIM-{tid}"}),
                          f"confirm {tid}")
            if r.status_code != 200:
                books.credit(d["account"], tid, -d["amount_vnd"], undo=True)
        elif todo == "finish-withdrawal":
            books.settle_hold(d["account"], tid, paid=True)
        elif todo == "undo":
            if d["kind"] == "withdrawal":
                books.settle_hold(d["account"], tid, paid=False)
            else:
                books.credit(d["account"], tid, -d["amount_vnd"], undo=True)

        def done(item):
            if item.data.get("todo") == todo:
                item.data["todo"] = None
        done(item)
        try:
            item.save()   # If-Match the record the work started from
            RECORDS.keep(item)
        except ConditionalCheckFailed:   # a webhook wrote since: newer work may be owed, keep it
            RECORDS.forget(tid)
            Record.update(tid, None, done)
        self.settled.set()

    def _decide_withdrawal(self, tid: str, d: dict) -> None:
        ok = books.hold(d["account"], tid, d["amount_vnd"])
        path = f"/v1/bank/withdrawals/{tid}/{'reserve' if ok else 'reject'}"
        r = _answered(self.call("POST", path, {"bank_reference": f"SIM-{tid}"} if ok else {"reason": "insufficient funds"}),
                      path)
        if r.status_code != 200 and ok:
            # refused: expired or aborted meanwhile (release the hold) — unless our reservation
            # stands after all (a repeat of our own decision): then the commit or abort webhook
            # spends or releases the hold
            now = _answered(self.call("GET", f"/v1/bank/transfers/{tid}"), f"GET /v1/bank/transfers/{tid}")
            if now.status_code == 404:   # a transfer the soft ATM does not know (a webhook not its own) holds nothing
                now_state = "ABORTED"
            elif now.status_code == 200:
                now_state = now.json().get("state")
            else:
                raise RuntimeError(f"GET /v1/bank/transfers/{tid}: {now.status_code}")   # keep the hold and the work
            if now_state == "COMMITTED":
                books.settle_hold(d["account"], tid, paid=True)
            elif now_state == "ABORTED":
                books.settle_hold(d["account"], tid, paid=False)
