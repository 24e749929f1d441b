"""Tallies: how the IOC keeps the facts of a kind that come many and alike (a station's readings,
every minute) as one fact per entity and hour, then per day, each message still counted once.

Plain functions on fact dicts; :class:`.projection.Projection` holds the tallies and decides when.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Mapping

from lscloud.timestamps import iso, parse_iso

TALLIED = frozenset({"observations"})
"""Kinds whose facts are many and alike (each station's readings, every minute or faster): kept as one
*tally* per entity and UTC hour instead of one fact each. A tally is a fact like any other (figures
read it the same way: ``at`` is its hour's start, ``values`` the sums of its facts' values) with
``tally``: the ids it counts and each one's values, so a redelivery is still counted once. One fact
each cost the IOC about 1.7 KB of memory, an object in the store read back at every start and a step
of every figure's scan per message: 20 stations at a message a minute filled its 512 MiB in about
ten days. Tallies grow with station-hours, sixty times slower at that rate."""

TALLY_IDS_KEPT_H = 48
"""A tally keeps the ids it counts while its hour is within this many hours of its entity's newest
tally: a redelivery comes within minutes (an acknowledgement lost, a retry's back-off), and older
tallies keep only their sums. Which tallies keep ids depends only on the tallies, never on the
order facts came in, so a replay of the stream builds the same ones."""


def tally_of(fact: dict) -> dict:
    """An empty tally for the entity and UTC hour of ``fact`` (a fact of a :data:`TALLIED` kind)."""
    hour = fact["at"][:13]
    digest = hashlib.sha256(f"tally\n{fact['kind']}\n{fact['entity']}\n{hour}".encode()).hexdigest()
    return {"id": digest[:40], "source": fact["source"], "kind": fact["kind"], "entity": fact["entity"],
            "at": f"{hour}:00:00Z", "state": fact["state"], "attrs": {}, "values": {}, "tally": {}}


def day_tally_of(fact: dict) -> dict:
    """An empty tally for the entity and UTC day of ``fact``: a day whose hours are all past
    :data:`TALLY_IDS_KEPT_H` is kept as one tally with each hour's sums (``hours``: ``"HH"`` ->
    values), not 24 (:meth:`.projection.Projection._roll`). Its hours count as the hour tallies did."""
    day = fact["at"][:10]
    digest = hashlib.sha256(f"tally-day\n{fact['kind']}\n{fact['entity']}\n{day}".encode()).hexdigest()
    return {"id": digest[:40], "source": fact["source"], "kind": fact["kind"], "entity": fact["entity"],
            "at": f"{day}T00:00:00Z", "state": fact["state"], "attrs": {}, "values": {}, "tally": {}, "hours": {}}


def hours_of(day: dict) -> list[dict]:
    """A day tally's hours, each as the hour tally it stands for (without ids), in time order."""
    base = {k: v for k, v in day.items() if k != "hours"}
    return [{**base, "id": f"{day['id']}/{hh}", "at": f"{day['at'][:10]}T{hh}:00:00Z", "values": values}
            for hh, values in sorted(day["hours"].items())]


def plus(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def larger(a: Mapping[str, float] | None, b: Mapping[str, float]) -> bool:
    """Whether ``b`` counts more than ``a``: of two sums without ids, the larger stands."""
    return a is None or sum(b.values()) > sum(a.values())


def hours_before(t: str, hours: int) -> str:
    """``t`` (``YYYY-MM-DDTHH:MM:SSZ``) less ``hours``, in the same form: compared as strings."""
    return iso(parse_iso(t) - timedelta(hours=hours), "seconds")


def merged(known: dict, new: dict) -> dict | None:
    """One tally counting what ``known`` and ``new`` (the same station-hour) count, each message once;
    None when ``new`` adds nothing. The usual case: ``new`` is ``known`` with a message more
    (:meth:`.projection.Projection.tallied`); the others meet at a start (a stored tally beside facts folded
    since) or an adopt."""
    if "hours" in known:   # two counts of one day: each hour's larger sums stand
        hours = dict(sorted({**known["hours"], **{hh: v for hh, v in new["hours"].items()
                                                  if larger(known["hours"].get(hh), v)}}.items()))
        if hours == known["hours"]:
            return None
        total: dict[str, float] = {}
        for v in hours.values():
            total = plus(total, v)
        return {**new, "attrs": {**known["attrs"], **new["attrs"]}, "hours": hours, "values": total}
    have, add = known["tally"], new["tally"]
    if not have and not add:   # neither keeps its ids (older than TALLY_IDS_KEPT_H): the larger sums stand
        if sum(known["values"].values()) >= sum(new["values"].values()):
            return None
        return {**new, "attrs": {**known["attrs"], **new["attrs"]}}
    if add.keys() <= have.keys():
        return None
    if have.keys() <= add.keys():   # its sums hold all of known's (and, over sums without ids, more)
        return {**new, "attrs": {**known["attrs"], **new["attrs"]}}
    ids = {**have, **add}   # each counts messages the other does not: both keep ids, so the ids are all
    values: dict[str, float] = {}
    for counted in ids.values():
        for k, v in counted.items():
            values[k] = values.get(k, 0) + v
    return {**new, "attrs": {**known["attrs"], **new["attrs"]}, "values": values, "tally": ids}
