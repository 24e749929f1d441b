"""What the IOC keeps of an event: a small, personal-data-free *fact*.

A fact is ``{id, source, kind, entity, at, state, attrs, values}`` (``seq`` and ``at_us`` below): the
event's id (the dedupe key), the kind of thing it is about (a border declaration, a dossier, a
report …), that thing's id, when it happened (UTC, from the event's own data, so a replay files it
in the same hour), the state it moved to, the attributes figures are broken down by (commune, gate,
agency, point, station …) and the numbers it carries (an amount, a rating, an AQI). Only those
fields are copied: names, plates and actors never reach the IOC's store.

``at`` is whole seconds (figures compare it as a string with their windows' bounds), and several
moves of one thing often share a second (an agency system posting a report's updates together, one
request making two moves). Their order is kept beside it: ``seq``, the producer's own (``[version,
n]`` of an event id ``<record>.<version>.<n>``, as :mod:`lscloud.aggregate` forms them), and
``at_us``, the microseconds past ``at`` the event gave. Either is left out when absent or zero:
facts stored before them sort as they did (:func:`order`).

:data:`HANDLED` lists every event type the IOC consumes (``func.yaml`` subscribes to exactly these);
:func:`of` turns one CloudEvent into its fact, or ``None`` for an event that counts for nothing.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

from lscloud.aggregate import event_seq

COMMUNE = re.compile(r"^[0-9]{5}$")

BORDER = tuple(f"vn.langson.border.{f}.v1" for f in (
    "declaration.submitted", "declaration.cleared", "truck.exited", "declaration.refused",
    "declaration.cancelled", "declaration.expired"))
DOSSIERS = tuple(f"vn.langson.dossiers.{f}.v1" for f in (
    "dossier.received", "dossier.done", "dossier.denied", "dossier.cancelled", "step.overdue"))
REPORTS = tuple(f"vn.langson.reports.report.{f}.v1" for f in (
    "submitted", "acknowledged", "assigned", "started", "resolved", "closed", "rejected", "reopened",
    "overdue", "rated"))
SOFTATM = ("vn.langson.softatm.transfer.committed.v1", "vn.langson.softatm.float.low.v1")
ENVIRONMENT = ("vn.langson.environment.alert.raised.v1", "vn.langson.environment.alert.cleared.v1",
               "vn.langson.environment.observations.recorded.v1")
COMMUNITY = ("vn.langson.community.progress.updated.v1",)
MARKET = ("vn.langson.market.shop.opened.v1",)

HANDLED = BORDER + DOSSIERS + REPORTS + SOFTATM + ENVIRONMENT + COMMUNITY + MARKET
"""Every event type the IOC counts, grouped by its source function above."""


def source_of(event_type: str) -> str:
    """The publishing function of an event type: ``vn.langson.<source>.…``."""
    return event_type.split(".")[2]


def instant(value: Any) -> datetime | None:
    """An ISO 8601 instant (any offset) in UTC, to the microsecond; None if absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return t.astimezone(timezone.utc)
    except (ValueError, OverflowError):   # year 1 at +07:00 has no UTC instant
        return None


def utc(value: Any) -> str | None:
    """An ISO 8601 instant (any offset) as ``YYYY-MM-DDTHH:MM:SSZ`` UTC (cut to the second: what
    figures count by); None if absent or malformed. :func:`instant` keeps the rest."""
    t = instant(value)
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def seq_of(event_id: Any, entity: str) -> list[int] | None:
    """``[version, n]`` of an event id formed from ``entity``'s record (:func:`lscloud.aggregate.event_seq`)."""
    seq = event_seq(event_id, entity)
    return None if seq is None else list(seq)


def order(fact: Mapping) -> tuple:
    """The key an entity's facts are sorted by: their second, then the producer's sequence, then the
    microseconds past the second, then the id (the digest: only ties left, in a fixed order). A fact
    without ``seq`` (stored before it, or from a producer that has none) comes first in its second,
    then one without ``at_us``: facts stored before either sort by ``(at, id)`` as they always did."""
    return fact["at"], tuple(fact.get("seq") or ()), fact.get("at_us", 0), fact["id"]


def _commune(value: Any) -> str | None:
    return value if isinstance(value, str) and COMMUNE.match(value) else None


def _num(value: Any, low: float | None = None, high: float | None = None) -> float | None:
    """A number within ``low``..``high``; None otherwise. Events the stream kept from before their
    schema held the range (a negative amount, an AQI of 900) still come back in a replay."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if (low is not None and not value >= low) or (high is not None and not value <= high):
        return None
    return float(value)


def _fact(event: Mapping, kind: str, entity: Any, at: Any, state: str, attrs: dict, values: dict | None = None):
    # the data's own instant, else the event's ``time``: OPTIONAL in CloudEvents, so an event that
    # says neither counts for nothing (None) rather than at its arrival, which a redelivery or a
    # replay would file in another hour
    when = instant(at) or instant(event.get("time"))
    if not isinstance(entity, str) or not entity or when is None:
        return None
    fact = {"id": str(event["id"]), "source": source_of(event["type"]), "kind": kind, "entity": entity[:200],
            "at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "state": state,
            "attrs": {k: v for k, v in attrs.items() if isinstance(v, str) and v},
            "values": {k: v for k, v in (values or {}).items() if v is not None}}
    seq = seq_of(event.get("id"), entity)
    if seq is not None:
        fact["seq"] = seq
    if when.microsecond:
        fact["at_us"] = when.microsecond
    return fact


def of(event: Mapping[str, Any]) -> dict | None:
    """The fact an event contributes, or None (an event of no use to any figure, e.g. missing its id)."""
    data = event.get("data")
    if not isinstance(data, Mapping):
        return None
    t = event.get("type", "")
    if t in BORDER:
        return _fact(event, "declaration", data.get("declaration_id"), data.get("at"), str(data.get("to") or ""),
                     {"gate": data.get("gate"), "flow": data.get("flow")})
    if t in DOSSIERS:
        state = "overdue" if t.endswith("step.overdue.v1") else str(data.get("to") or data.get("status") or "")
        return _fact(event, "dossier", data.get("dossier_id"), data.get("at"), state,
                     {"agency": data.get("agency"), "commune": _commune(data.get("unit")),
                      "channel": data.get("channel"), "deadline": utc(data.get("deadline"))})
    if t.startswith("vn.langson.reports.report.") and t.endswith(".v1"):
        # keyed on to_state / status / rating, never on the fact's name: a fact added later still counts
        return _fact(event, "report", data.get("report_id"), data.get("occurred_at"),
                     str(data.get("to_state") or ""),
                     {"commune": _commune(data.get("commune")), "category": data.get("category"),
                      "agency": data.get("agency"), "status": data.get("status"), "deadline": utc(data.get("deadline")),
                      "channel": data.get("channel")},
                     {"rating": _num(data.get("rating"))})
    if t == "vn.langson.softatm.transfer.committed.v1":
        return _fact(event, "transfer", data.get("transfer_id"), None, "committed",
                     {"point": data.get("point"), "commune": _commune(data.get("unit_code")), "bank": data.get("bank"),
                      "direction": data.get("kind")},
                     {"amount_vnd": _num(data.get("amount_vnd"), 1)})
    if t == "vn.langson.softatm.float.low.v1":
        return _fact(event, "float-alert", str(event.get("id")), None, "low", {"point": data.get("point")},
                     {"cash_vnd": _num(data.get("cash_vnd"))})
    if t in ENVIRONMENT[:2]:
        station, alert = data.get("station"), data.get("alert")
        entity = f"{station}/{alert}" if isinstance(station, str) and isinstance(alert, str) else None
        return _fact(event, "env-alert", entity, data.get("hour"), "raised" if t == ENVIRONMENT[0] else "cleared",
                     {"station": station, "commune": _commune(data.get("commune")) or _commune(data.get("unit")),
                      "alert": alert, "level": data.get("level")},
                     {"value": _num(data.get("value"), 0, 500 if alert == "aqi" else None)})
    if t == ENVIRONMENT[2]:
        readings = data.get("readings") if isinstance(data.get("readings"), list) else []
        # one per message, kept as a tally per station and hour (tallies.TALLIED)
        return _fact(event, "observations", data.get("station"), data.get("received_at"), "recorded",
                     {"station": data.get("station"), "commune": _commune(data.get("unit")), "station_kind": data.get("kind")},
                     {"readings": float(len(readings))})
    if t in COMMUNITY:
        indicators = data.get("indicators") if isinstance(data.get("indicators"), Mapping) else {}
        ind = indicators.get("shop-or-payment") if isinstance(indicators.get("shop-or-payment"), Mapping) else {}
        return _fact(event, "commune-progress", _commune(data.get("commune")), data.get("updated_at"), "updated",
                     {"commune": _commune(data.get("commune"))},
                     {"households": _num(data.get("households")), "reached": _num(ind.get("reached"))})
    if t in MARKET:
        return _fact(event, "shop", data.get("shop_id"), data.get("at"), str(data.get("to") or "open"),
                     {"commune": _commune(data.get("commune")), "shop_kind": data.get("kind")})
    return None
