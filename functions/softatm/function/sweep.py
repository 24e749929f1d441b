"""The sweep: what no request finishes by itself — expiry of unanswered transfers and of reserved
withdrawals no teller finished, the decision on transfers whose admitting run vanished past its
fence, consequences a crash left undone.

Run by operators (``POST /v1/sweep``) and, where ``SOFTATM_SWEEP_S`` is set (every 5 s in the
cluster), by a background thread of each replica. Every step is repeat-safe, so replicas may race.

A sweep reads at most ``limit`` transfers, from where the last one stopped: the open index is in
order of the bank's deadline, and a withdrawal the bank reserved stays open (its entry at the
front) until a teller commits or aborts it or its reservation expires
(``SOFTATM_RESERVED_EXPIRY_S``, judged by the document's :func:`.transfers.deadline`, not by the
entry's key).
Read from the front every time, a burst of those would keep every later transfer from being
expired, decided or settled in the meantime.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from lscloud.aggregate import delete_quietly
from lscloud.store import DoesNotExist

from .actions import expire
from .admission import GRACE_S, decide_unadmitted
from .consequences import settle, unsettled
from .documents import open_key
from .models import OpenTransfer, Transfer
from .transfers import RECEIVED, expired, micros, now, parse_iso

log = logging.getLogger("softatm.sweep")

ORPHAN_AFTER_US = 60 * 1_000_000
"""The open-transfer index is written before the document: an entry this far past its expiry
with no document is an orphan. So is an entry of a resend (a create that found its id taken): its
key is not its transfer's own (:func:`.documents.open_key`: another time, another expiry)."""


_cursor: list[str | None] = [None]   # the last entry this replica's sweep read (None: the front)


def sweep(limit: int = 1000) -> dict:
    """Expire what is past its expiry, decide unadmitted transfers after their fence, settle the rest."""
    counts = {"expired": 0, "settled": 0, "unadmitted": 0, "orphans": 0, "errors": 0}
    at = now()
    # the entries' keys are all the sweep needs (``<expiry µs>_<transfer id>``, :func:`.documents.open_key`):
    # listed, not read one by one, as every replica sweeps every few seconds
    after = _cursor[0]
    entries = OpenTransfer.query_keys("open", range_between=(after, None), limit=limit)
    if after is not None and len(entries) < limit:   # the end reached: on from the front, up to the limit
        entries += [e for e in OpenTransfer.query_keys("open", limit=limit - len(entries)) if e <= after]
    _cursor[0] = entries[-1] if len(entries) >= limit else None
    for entry in entries:
        expiry_us, transfer_id = entry.split("_", 1)
        try:
            try:
                doc = Transfer.get(transfer_id).data
            except DoesNotExist:
                if micros(at) - int(expiry_us) > ORPHAN_AFTER_US:
                    delete_quietly(OpenTransfer, "open", entry)
                    counts["orphans"] += 1
                continue
            if entry != open_key(doc):
                # a resend's, written before its create found the id taken: not this transfer's
                # (open_key is the same for every revision's layout of a transfer, or this would
                # delete the entry of a transfer another revision wrote, for good)
                delete_quietly(OpenTransfer, "open", entry)
                counts["orphans"] += 1
                continue
            if not doc["admitted"] and doc["state"] == RECEIVED:
                if at > parse_iso(doc["admit_by"]) + timedelta(seconds=GRACE_S):
                    decide_unadmitted(doc)
                    counts["unadmitted"] += 1
                continue
            if expired(doc, at):
                expire(doc["id"])
                counts["expired"] += 1
            elif unsettled(doc, at):
                settle(doc["id"])
                counts["settled"] += 1
        except Exception:  # noqa: BLE001 - one bad transfer does not stop the sweep
            log.exception("sweep: transfer %s", transfer_id)
            counts["errors"] += 1
    return counts


def start_background(period_s: float) -> threading.Event | None:
    """Sweep every ``period_s`` seconds in a daemon thread (0: none); set the event to stop it."""
    if period_s <= 0:
        return None
    stop = threading.Event()

    def loop():
        while not stop.wait(period_s):
            try:
                sweep()
            except Exception:  # noqa: BLE001 - the next period tries again
                log.warning("background sweep failed", exc_info=True)

    threading.Thread(target=loop, name="softatm-sweeper", daemon=True).start()
    return stop
