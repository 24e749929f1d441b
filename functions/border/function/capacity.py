"""A gate's hourly capacity per flow: the directory's figure, or an operator's override kept here."""

from __future__ import annotations

from lscloud import errors, freshness, outbox, store
from lscloud.store import DoesNotExist
from lscloud.store.retry import DEFAULT

from . import ledger, metrics, queue
from .models import CapacityOverride


def check_flow(flow: str) -> None:
    if flow not in queue.FLOWS:
        raise errors.Invalid.at("/flow", "flow is 'in' (China → Vietnam) or 'out' (Vietnam → China)",
                                "Chiều qua cửa khẩu là 'in' (Trung Quốc → Việt Nam) hoặc 'out' (Việt Nam → Trung Quốc)")


def override(gate_code: str, flow: str) -> int | None:
    """The operator's override of ``flow`` at the gate, if any."""
    try:
        return int(CapacityOverride.get(gate_code, flow).per_hour)
    except DoesNotExist:
        return None


# (bucket, gate, flow) -> the override as this replica last read it (None: there is none)
_shown = freshness.Revalidating(256)


def override_shown(gate_code: str, flow: str, fresh_s: float) -> int | None:
    """:func:`override` for what a person reads — a truck's expected wait in its position — at most
    ``fresh_s`` old (the platform's bound for reference data, ``LSCLOUD_PEER_FRESH_S``): an
    operator's override reaches another replica's estimates within that bound, this replica's at
    once. "No override" is remembered too (the usual case, which would otherwise cost a GET every
    time). Never for seating a truck: :func:`effective` reads the store."""
    _, bucket = store.connection()
    return _shown.get((bucket, gate_code, flow), lambda _etag: ("read", override(gate_code, flow), fresh_s))


def effective(gate: dict, flow: str) -> int:
    """Trucks per hour now (the override, else the directory's figure); remembered for the gauge."""
    return with_override(gate, flow, override(gate["code"], flow))


def with_override(gate: dict, flow: str, overridden: int | None) -> int:
    """:func:`effective` with the override already read (``overridden``: :func:`override`)."""
    per_hour = queue.capacity(gate, flow, overridden)
    metrics.capacity_seen(gate["code"], flow, per_hour)
    return per_hour


def set_override(gate_code: str, gate: dict, flow: str, per_hour: int, reason: str, by: str) -> dict:
    """Store the override of ``flow`` at the gate (create, or replace under If-Match) and publish
    ``capacity.overridden``; ``gate`` is the directory's record of it."""

    def write() -> None:
        try:
            item = CapacityOverride.get(gate_code, flow)
        except DoesNotExist:
            item = CapacityOverride(gate_code, flow)
        item.per_hour, item.reason, item.by = per_hour, reason, by
        item.save()

    try:
        DEFAULT.run(write)   # two operators at once: the second re-reads and writes after the first
    finally:
        _shown.drop((store.connection()[1], gate_code, flow))   # this replica shows its own write at once
    metrics.capacity_seen(gate_code, flow, per_hour)
    directory = queue.capacity(gate, flow)
    outbox.publish([ledger.RECORDS.fact("capacity.overridden", {
        "gate": gate_code, "flow": flow, "per_hour": per_hour, "reason": reason, "by": by,
        "directory_per_hour": directory})])
    return {"gate": gate_code, "flow": flow, "per_hour": per_hour, "directory_per_hour": directory,
            "reason": reason, "by": by}
