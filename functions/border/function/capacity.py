"""A gate's hourly capacity per flow: the directory's figure, or an operator's override kept here."""

from __future__ import annotations

from lscloud import errors, freshness, outbox, store
from lscloud.statemachine import iso, now
from lscloud.store import ConditionalCheckFailed, DoesNotExist

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


def _view(gate_code: str, gate: dict, flow: str, item: CapacityOverride | None) -> tuple[dict, int]:
    """The override as it is answered (the directory's figure when there is none), and its version
    (0: none yet), which the answer's ETag carries."""
    directory = queue.capacity(gate, flow)
    if item is None:
        return {"gate": gate_code, "flow": flow, "per_hour": directory, "directory_per_hour": directory,
                "overridden": False, "reason": None, "by": None, "updated_at": None}, 0
    return {"gate": gate_code, "flow": flow, "per_hour": int(item.per_hour), "directory_per_hour": directory,
            "overridden": True, "reason": item.reason, "by": item.by, "updated_at": item.updated_at}, int(item.version)


def _stored(gate_code: str, flow: str) -> CapacityOverride | None:
    try:
        return CapacityOverride.get(gate_code, flow)
    except DoesNotExist:
        return None


def shown(gate_code: str, gate: dict, flow: str) -> tuple[dict, int]:
    """The override of ``flow`` at the gate and its version (:func:`_view`), read from the store."""
    return _view(gate_code, gate, flow, _stored(gate_code, flow))


def set_override(gate_code: str, gate: dict, flow: str, per_hour: int, reason: str, by: str,
                 version: int | None) -> tuple[dict, int]:
    """Store the override of ``flow`` at the gate and publish ``capacity.overridden``; ``gate`` is the
    directory's record of it, ``version`` the one the operator read (``If-Match``; 0: none yet).

    Two operators at once must not silently replace each other: an override that exists changes only
    at the version read (412 otherwise, 428 without one); the first one is created only if still
    none is there. An override already as asked (a retry whose answer was lost) is answered as it
    stands: no write, no event, its ``updated_at`` unchanged."""
    item = _stored(gate_code, flow)
    if item is not None and int(item.per_hour) == per_hour and item.reason == reason:
        return _view(gate_code, gate, flow, item)
    errors.hold_to_version(version, int(item.version) if item is not None else 0, exists=item is not None)
    if item is None:
        item = CapacityOverride(gate_code, flow)
    item.per_hour, item.reason, item.by, item.updated_at = per_hour, reason, by, iso(now())
    try:
        item.save()   # create-only when none was there, else If-Match the version read
    except (ConditionalCheckFailed, DoesNotExist):
        raise (errors.if_match_required() if version is None else errors.changed_since()) from None
    finally:
        _shown.drop((store.connection()[1], gate_code, flow))   # this replica shows its own write at once
    metrics.capacity_seen(gate_code, flow, per_hour)
    outbox.publish([ledger.RECORDS.fact("capacity.overridden", {
        "gate": gate_code, "flow": flow, "per_hour": per_hour, "reason": reason, "by": by,
        "directory_per_hour": queue.capacity(gate, flow)})])
    return _view(gate_code, gate, flow, item)
