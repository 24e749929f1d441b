"""The soft ATM's own metrics (OTel instruments from the runtime's meter).

=====================================  ==============  ============================================
instrument                             kind            attributes
=====================================  ==============  ============================================
``lscloud.softatm.transfers``          counter         ``softatm.kind``, ``softatm.outcome``
                                                       (created, RESERVED, COMMITTED, ABORTED, expired)
``lscloud.softatm.movements``          counter         ``softatm.movement`` (hold, payout, intake …)
``lscloud.softatm.float``              observable      ``softatm.point``, ``softatm.balance`` (cash,
                                       gauge           held): last balances this replica wrote or read
``lscloud.softatm.webhooks``           counter         ``softatm.bank``, ``softatm.outcome``
``lscloud.softatm.reconciliation.      counter         ``softatm.bank``
mismatches``
=====================================  ==============  ============================================

The float gauge reports what this replica last saw (a cache, never an S3 call from the callback).
"""

from __future__ import annotations

import threading

from lscloud.metrics import Instruments

_lock = threading.Lock()
_floats: dict[str, tuple[int, int]] = {}


def _observe(_options):
    from opentelemetry.metrics import Observation

    with _lock:
        items = list(_floats.items())
    out = []
    for point, (cash, held) in items:
        out.append(Observation(cash, {"softatm.point": point, "softatm.balance": "cash"}))
        out.append(Observation(held, {"softatm.point": point, "softatm.balance": "held"}))
    return out


def _create(m) -> dict:
    return {
        "transfers": m.create_counter("lscloud.softatm.transfers", unit="{transfer}",
                                      description="Soft ATM transfers by kind and outcome."),
        "movements": m.create_counter("lscloud.softatm.movements", unit="{movement}",
                                      description="Ledger movements appended, by kind."),
        "webhooks": m.create_counter("lscloud.softatm.webhooks", unit="{request}",
                                     description="Webhook attempts to banks, by outcome."),
        "mismatches": m.create_counter("lscloud.softatm.reconciliation.mismatches", unit="{mismatch}",
                                       description="Differences found between a bank's view and ours."),
        "float": m.create_observable_gauge(
            "lscloud.softatm.float", callbacks=[_observe], unit="{VND}",
            description="Cash at a soft ATM point (free cash and cash held for withdrawals in flight)."),
    }


_get = Instruments(_create, meter_name="lscloud.softatm")


def transfer(kind: str, outcome: str) -> None:
    _get("transfers").add(1, {"softatm.kind": kind, "softatm.outcome": outcome})


def movement(kind: str) -> None:
    _get("movements").add(1, {"softatm.movement": kind})


def webhook(bank: str, outcome: str) -> None:
    _get("webhooks").add(1, {"softatm.bank": bank, "softatm.outcome": outcome})


def mismatches(bank: str, n: int) -> None:
    _get("mismatches").add(n, {"softatm.bank": bank})


def float_seen(point: str, cash: int, held: int) -> None:
    _get("float")
    with _lock:
        _floats[point] = (cash, held)
