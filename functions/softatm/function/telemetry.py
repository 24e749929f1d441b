"""The soft ATM's own metrics (OTel instruments from the runtime's meter).

=====================================  ==============  ============================================
instrument                             kind            attributes
=====================================  ==============  ============================================
``lscloud.softatm.transfers``          counter         ``softatm.kind``, ``softatm.outcome``
                                                       (created, RESERVED, COMMITTED, ABORTED, expired)
``lscloud.softatm.movements``          counter         ``softatm.movement`` (hold, payout, intake …)
``lscloud.softatm.float``              observable      ``softatm.point``, ``softatm.balance`` (cash,
                                       gauge           held): the balances this replica last wrote
``lscloud.softatm.float.write.time``   observable      ``softatm.point``: when (unix seconds) this
(s)                                    gauge           replica wrote them
``lscloud.softatm.webhooks``           counter         ``softatm.bank``, ``softatm.outcome``
``lscloud.softatm.reconciliation.      counter         ``softatm.bank``
mismatches``
=====================================  ==============  ============================================

The float gauges read a small cache (never an S3 call from the callback): the balances after this
replica's last write to a point's journal, and when it wrote them. Every replica keeps its own, so
several report a point at once, most of them out of date: the write time tells which report is the
newest write, and ``observability/alerts.yaml`` (``SoftatmFloatLow``) and the soft ATM dashboard
select by it. A replica reports a point only for :data:`FLOAT_TTL_S` after it last wrote it, so one
that stopped serving the point does not keep exporting a figure forever
(:class:`lscloud.metrics.ExpiringReadings`).
"""

from __future__ import annotations

import time

from lscloud.metrics import ExpiringReadings, Instruments

# longer than SoftatmFloatLow's `for: 15m`, so a low balance written once can still page; the
# rules look back further than this for the newest write (observability/alerts.yaml says why)
FLOAT_TTL_S = 3600.0

# point -> (cash, held, unix time written)
_floats: ExpiringReadings[str, tuple[int, int, float]] = ExpiringReadings(FLOAT_TTL_S)


def _observe(_options):
    from opentelemetry.metrics import Observation

    out = []
    for point, (cash, held, _wrote) in _floats.fresh():
        out.append(Observation(cash, {"softatm.point": point, "softatm.balance": "cash"}))
        out.append(Observation(held, {"softatm.point": point, "softatm.balance": "held"}))
    return out


def _observe_written(_options):
    from opentelemetry.metrics import Observation

    return [Observation(wrote, {"softatm.point": point}) for point, (_cash, _held, wrote) in _floats.fresh()]


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
        # the same meter as the float: the rules match the two series on every label but the balance
        "float_written": m.create_observable_gauge(
            "lscloud.softatm.float.write.time", callbacks=[_observe_written], unit="s",
            description="When (unix time) this replica wrote the balances lscloud.softatm.float reports."),
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
    """The balances just after this replica wrote to the point's journal."""
    _get("float")   # registers both callbacks on first use
    _floats.set(point, (cash, held, time.time()))
