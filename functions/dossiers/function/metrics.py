"""The dossiers' own metrics for the IOC (OpenTelemetry, through :func:`lscloud.telemetry.meter`).

==================================  =======  ======================================================
instrument                          kind     attributes
==================================  =======  ======================================================
``lscloud.dossiers.transitions``    counter  ``lscloud.dossier.fact`` (received, step.completed …),
                                             ``lscloud.dossier.agency``, ``lscloud.dossier.channel``,
                                             ``lscloud.dossier.on_time`` (done / denied only)
``lscloud.dossiers.overdue``        gauge    ``lscloud.dossier.agency``: open dossiers past their
                                             deadline, as the last overdue sweep of this replica
                                             counted them (0 for an agency that had some before)
``lscloud.dossiers.overdue.sweep.   gauge    none: when (unix seconds) this replica's last overdue
time`` (s)                                   sweep ran
==================================  =======  ======================================================

Prometheus names: ``lscloud_dossiers_transitions_total``, ``lscloud_dossiers_overdue``,
``lscloud_dossiers_overdue_sweep_time_seconds``.

Both gauges read what this replica's sweeps left in memory. A figure is reported only until
:data:`OVERDUE_TTL_S` after the last sweep that counted its agency, so the counts of a replica the
sweeps stopped reaching (or of an agency no sweep counts any more) go away instead of being
re-reported forever (:class:`lscloud.metrics.ExpiringReadings`); the sweep time never expires, its
age is what ``DossiersOverdueSweepMissing`` watches.
"""

from __future__ import annotations

import time

from lscloud.metrics import ExpiringReadings, Instruments

# the platform clock sweeps every minute: half an hour without a sweep reaching this replica means
# it is not where the sweeps land any more. Longer than DossiersOverdueSweepMissing takes to fire
# (observability/alerts.yaml), so the figures never vanish before that alert says why.
OVERDUE_TTL_S = 1800.0

_overdue: ExpiringReadings[str, int] = ExpiringReadings(OVERDUE_TTL_S)   # agency -> open dossiers overdue
_last_sweep: float | None = None  # unix time of this replica's last sweep


def _observe_overdue(_options):
    from opentelemetry.metrics import Observation

    return [Observation(n, {"lscloud.dossier.agency": a}) for a, n in _overdue.fresh()]


def _observe_sweep(_options):
    from opentelemetry.metrics import Observation

    at = _last_sweep
    return [] if at is None else [Observation(at)]


def _create(m) -> dict:
    return {
        "transitions": m.create_counter(
            "lscloud.dossiers.transitions", unit="{transition}",
            description="Dossier lifecycle transitions, by fact, agency and channel."),
        "overdue": m.create_observable_gauge(
            "lscloud.dossiers.overdue", callbacks=[_observe_overdue], unit="{dossier}",
            description="Open dossiers past their deadline (working days, pauses excluded), per agency."),
        "sweep_time": m.create_observable_gauge(
            "lscloud.dossiers.overdue.sweep.time", callbacks=[_observe_sweep], unit="s",
            description="When (unix time) this replica last ran the overdue sweep."),
    }


_instrument = Instruments(_create)


def transition(fact: str, doc: dict) -> None:
    attrs = {"lscloud.dossier.fact": fact, "lscloud.dossier.agency": doc.get("agency") or "",
             "lscloud.dossier.channel": doc.get("channel") or ""}
    if fact in ("dossier.done", "dossier.denied"):
        attrs["lscloud.dossier.on_time"] = str(bool(doc.get("on_time"))).lower()
    try:
        _instrument("transitions").add(1, attrs)
    except Exception:  # noqa: BLE001 - metrics never break a dossier
        pass


def set_overdue(per_agency: dict[str, int]) -> None:
    """What one sweep counted: every agency with open dossiers (0 for none overdue)."""
    global _last_sweep
    _instrument("overdue")  # registered before the first collection
    # an agency this sweep did not count reads 0 until its last count expires
    _overdue.replace(per_agency, missing=0)
    _last_sweep = time.time()
