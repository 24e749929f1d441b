"""The border domain's metric instruments, created lazily from :func:`lscloud.telemetry.meter`
(the runtime's ``lscloud/metrics.py`` style: ``lscloud.border.*`` names, low-cardinality attributes).

Everything is recorded **after** the write it describes committed (a lost ``If-Match`` race that is
re-applied counts once, a refused operation counts as refused), never from a count kept in memory:
the function is stateless and scales to zero, so every instrument is a counter or histogram of what
this process saw; Prometheus sums them over pods.

=====================================  ========================  ============================================
instrument (unit)                      recorded                  attributes (``lscloud.border.*``)
=====================================  ========================  ============================================
``lscloud.border.transitions``         every committed           ``gate``, ``flow`` (in/out), ``lane``
({transition}, counter)                transition (ledger)       (normal/priority), ``previous_state``, ``state``
``lscloud.border.priority.grants``     a committed priority      ``gate``, ``flow``, ``priority_category``,
({grant}, counter)                     grant (declaring)         ``state`` (an ``in_yard`` grant moves a truck
                                                                 from the normal to the priority lane)
``lscloud.border.bookings.refused``    a booking refused by      ``gate``, ``flow``, ``reason`` (``slot-full``,
({booking}, counter)                   the queue (booking)       ``no-slot``, ``gate-closed`` …), ``booking_mode``
``lscloud.border.barrier.decisions``   a barrier read decided    ``gate``, ``flow``, ``outcome`` (opened/refused),
({decision}, counter)                  (device_events)           ``reason`` (the first refusal reason)
``lscloud.border.weighings``           a weighbridge reading     ``gate``, ``flow``, ``outcome`` (``ok``,
({reading}, counter)                   recorded (device_events)  ``mismatch``, ``no-declaration``)
``lscloud.border.agency.decisions``    an agency decision        ``gate``, ``agency``, ``decision``
({decision}, counter)                  committed (agencies)      (customs' release counts as its ``pass``)
``lscloud.border.dwell.duration``      the exit transition       ``gate``, ``flow``: arrival in the yard → exit
(s, histogram)
``lscloud.border.decision.duration``   with each agency          ``gate``, ``agency``: submission → decision
(s, histogram)                         decision
``lscloud.border.gate.capacity``       observed (callback)       ``gate``, ``flow``: the effective hourly
({truck}/h, gauge)                                               capacity this process last used
=====================================  ========================  ============================================

**Waiting trucks** are not a gauge: counting them means listing the yard queue in the object store,
too dear for every collection, and a count kept in memory would be wrong as soon as two pods serve
the gate. ``observability/alerts.yaml`` derives it from ``lscloud.border.transitions`` (entered
``in_yard`` − left ``in_yard``, with priority grants moving trucks between lanes); the queue board
(``GET /v1/gates/<gate>/board``) stays the authoritative figure.

**The capacity gauge** reads a small in-process *cache*: the effective capacity (directory figure or
operator override) of each gate and flow as this process last computed it while booking, answering
a queue position or the board, or storing an override. Nothing extra is read for it; entries older
than :data:`CAPACITY_TTL_S` are no longer reported (:class:`lscloud.metrics.ExpiringReadings`), so a
pod that stopped serving a gate does not keep exporting a stale figure. Dashboards take
``max by (gate, flow)`` over pods.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from lscloud.metrics import ExpiringReadings, Instruments

# seconds: a crossing's dwell goes from minutes to days in a jam (the 2021-22 fruit-season queues)
DWELL_BUCKETS = (300, 600, 900, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600, 28800, 43200, 86400,
                 172800, 345600)
DECISION_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800)
CAPACITY_TTL_S = 900.0

_capacity: ExpiringReadings[tuple[str, str], int] = ExpiringReadings(CAPACITY_TTL_S)   # (gate, flow) -> per hour


def _observe_capacity(_options) -> Iterable[Any]:
    from opentelemetry.metrics import Observation

    return [Observation(v, {"lscloud.border.gate": gate, "lscloud.border.flow": flow})
            for (gate, flow), v in _capacity.fresh()]


def _create(m) -> dict[str, Any]:
    return dict(
        transitions=m.create_counter(
            "lscloud.border.transitions", unit="{transition}",
            description="Committed lifecycle transitions of border declarations, by gate, flow, lane and states."),
        priority_grants=m.create_counter(
            "lscloud.border.priority.grants", unit="{grant}",
            description="Priority lane grants, by gate, flow, category and the declaration's state."),
        bookings_refused=m.create_counter(
            "lscloud.border.bookings.refused", unit="{booking}",
            description="Slot bookings the queue refused, by gate, flow and reason (slot-full, no-slot …)."),
        barrier=m.create_counter(
            "lscloud.border.barrier.decisions", unit="{decision}",
            description="Barrier decisions on plate reads: opened, or refused with its first reason."),
        weighings=m.create_counter(
            "lscloud.border.weighings", unit="{reading}",
            description="Weighbridge readings recorded, by outcome (ok, mismatch, no-declaration)."),
        decisions=m.create_counter(
            "lscloud.border.agency.decisions", unit="{decision}",
            description="Agency decisions (pass / hold / refuse) recorded on declarations."),
        dwell=m.create_histogram(
            "lscloud.border.dwell.duration", unit="s",
            description="Time from a truck's arrival in the waiting area to its exit through the barrier.",
            explicit_bucket_boundaries_advisory=DWELL_BUCKETS),
        decision_duration=m.create_histogram(
            "lscloud.border.decision.duration", unit="s",
            description="Time from a declaration's submission to an agency's decision on it.",
            explicit_bucket_boundaries_advisory=DECISION_BUCKETS),
        capacity=m.create_observable_gauge(
            "lscloud.border.gate.capacity", callbacks=[_observe_capacity], unit="{truck}/h",
            description="Effective hourly capacity of a gate and flow as last used by this process (a cache)."),
    )


_instrument = Instruments(_create)


def _t(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def lane(doc: dict) -> str:
    return "priority" if doc.get("priority") else "normal"


def _where(doc: dict) -> dict[str, str]:
    return {"lscloud.border.gate": doc["gate"], "lscloud.border.flow": doc["flow"]}


# -- recorders -------------------------------------------------------------------------------------------

def transitions(doc: dict, committed: Iterable[Any]) -> None:
    """The transitions of one committed write; the exit also records the dwell time."""
    for t in committed:
        if t.source == "new":
            continue   # creation is not a move of the crossing (drafts are counted by their submit)
        _instrument("transitions").add(1, {**_where(doc), "lscloud.border.lane": lane(doc),
                                           "lscloud.border.previous_state": t.source, "lscloud.border.state": t.target})
        if t.target == "exited":
            arrived, left = _t(doc.get("timestamps", {}).get("in_yard")), _t(t.at)
            if arrived is not None and left is not None:
                _instrument("dwell").record(max(0.0, (left - arrived).total_seconds()), _where(doc))
        elif t.action == "release":
            decision(doc, "customs", "pass", t.at)


def decision(doc: dict, agency: str, value: str, at: str) -> None:
    """One agency decision on the declaration (committed), and its time since submission."""
    _instrument("decisions").add(1, {"lscloud.border.gate": doc["gate"], "lscloud.border.agency": agency,
                                     "lscloud.border.decision": value})
    submitted, decided = _t(doc.get("timestamps", {}).get("submitted")), _t(at)
    if submitted is not None and decided is not None:
        _instrument("decision_duration").record(max(0.0, (decided - submitted).total_seconds()),
                                                {"lscloud.border.gate": doc["gate"], "lscloud.border.agency": agency})


def priority_granted(doc: dict, category: str, state: str) -> None:
    _instrument("priority_grants").add(1, {**_where(doc), "lscloud.border.priority_category": category,
                                           "lscloud.border.state": state})


def booking_refused(gate: str, flow: str, reason: str, mode: str) -> None:
    _instrument("bookings_refused").add(1, {"lscloud.border.gate": gate, "lscloud.border.flow": flow,
                                            "lscloud.border.reason": reason, "lscloud.border.booking_mode": mode})


def barrier_decided(gate: str, flow: str, opened: bool, reasons: list[dict]) -> None:
    attrs = {"lscloud.border.gate": gate, "lscloud.border.flow": flow,
             "lscloud.border.outcome": "opened" if opened else "refused"}
    if not opened and reasons:
        attrs["lscloud.border.reason"] = reasons[0]["code"]
    _instrument("barrier").add(1, attrs)


def weighed(gate: str, flow: str | None, outcome: str) -> None:
    attrs = {"lscloud.border.gate": gate, "lscloud.border.outcome": outcome}
    if flow:
        attrs["lscloud.border.flow"] = flow
    _instrument("weighings").add(1, attrs)


def capacity_seen(gate: str, flow: str, per_hour: int) -> None:
    """Remember the effective capacity just computed (no I/O; the gauge's callback reports it)."""
    _instrument("capacity")   # registers the callback on first use
    _capacity.set((gate, flow), int(per_hour))
