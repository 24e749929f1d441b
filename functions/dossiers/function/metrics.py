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
==================================  =======  ======================================================

Prometheus names: ``lscloud_dossiers_transitions_total``, ``lscloud_dossiers_overdue``.
"""

from __future__ import annotations

import threading

from lscloud.metrics import Instruments

_lock = threading.Lock()
_overdue: dict[str, int] = {}


def _observe_overdue(_options):
    from opentelemetry.metrics import Observation

    with _lock:
        items = list(_overdue.items())
    return [Observation(n, {"lscloud.dossier.agency": a}) for a, n in items]


def _create(m) -> dict:
    return {
        "transitions": m.create_counter(
            "lscloud.dossiers.transitions", unit="{transition}",
            description="Dossier lifecycle transitions, by fact, agency and channel."),
        "overdue": m.create_observable_gauge(
            "lscloud.dossiers.overdue", callbacks=[_observe_overdue], unit="{dossier}",
            description="Open dossiers past their deadline (working days, pauses excluded), per agency."),
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
    _instrument("overdue")  # registered before the first collection
    with _lock:
        for a in list(_overdue):
            _overdue[a] = 0
        _overdue.update(per_agency)
