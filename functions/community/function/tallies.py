"""Counting verified work exactly once, and the progress that follows.

A count is a set of create-only members (:class:`.models.Tally`): a household reached for an
indicator is the member ``<household pseudonym>`` of ``<commune>.<indicator>`` — so a household two
teams visit, or one visit synced twice, counts once — and a verified activity is the member
``<activity id>`` of ``team.<team>.<kind>`` and ``commune.<commune>.<kind>``. Writing a member again
writes nothing; the count is the number of members, listed. After each verification the counts
are listed again and kept in the commune's and the team's progress documents, never lowered
(a concurrent writer may have counted more), so a crash between a member and its document is
repaired by the next verification.
"""

from __future__ import annotations

from lscloud.aggregate import save_quietly
from lscloud.statemachine import iso, now
from lscloud.store import ConditionalCheckFailed

from . import targets


def _count(tally: str) -> int:
    from .models import Tally

    return Tally.count(tally)


def count_in(doc: dict) -> tuple[dict, dict]:
    """Add a verified activity to every count it belongs to; ``(commune progress, team progress)``."""
    from .models import Tally

    commune, team, kind = doc["commune"], doc["team"], doc["kind"]
    if doc.get("household_ref"):
        for name in targets.indicators_for(kind):
            save_quietly(Tally(f"{commune}.{name}", doc["household_ref"]))
    save_quietly(Tally(f"team.{team}.{kind}", doc["id"]))
    save_quietly(Tally(f"commune.{commune}.{kind}", doc["id"]))
    reached = {name: _count(f"{commune}.{name}") for name in targets.indicators()}
    by_kind = {k: _count(f"commune.{commune}.{k}") for k in targets.KINDS}
    team_kinds = {k: _count(f"team.{team}.{k}") for k in targets.KINDS}
    progress = _raise(commune, {"commune_name": doc.get("commune_name"), "reached": reached, "activities": by_kind})
    team_progress = _raise_team(commune, team, {"name": doc.get("team_name"), "village": doc.get("village"),
                                                "activities": team_kinds})
    return progress, team_progress


def _merge_max(old: dict, new: dict) -> dict:
    out = dict(old)
    for k, v in new.items():
        out[k] = max(out.get(k, 0), v)
    return out


def _upsert(model, key: tuple, change) -> dict:
    try:
        model(*key, data=change({})).save()
    except ConditionalCheckFailed:
        pass
    else:
        return model.get(*key).data

    def apply(item):
        item.data = change(dict(item.data))

    return model.update(*key, apply).data if len(key) == 2 else model.update(key[0], None, apply).data


def _raise(commune: str, counts: dict) -> dict:
    from .models import CommuneProgress

    def change(data):
        data.setdefault("households", None)
        data["commune"] = commune
        data["commune_name"] = counts["commune_name"] or data.get("commune_name")
        data["reached"] = _merge_max(data.get("reached", {}), counts["reached"])
        data["activities"] = _merge_max(data.get("activities", {}), counts["activities"])
        data["updated_at"] = iso(now())
        return data

    return _upsert(CommuneProgress, (commune,), change)


def _raise_team(commune: str, team: str, counts: dict) -> dict:
    from .models import TeamProgress

    def change(data):
        data.update({"team": team, "commune": commune, "name": counts["name"] or data.get("name"),
                     "village": counts["village"] or data.get("village")})
        data["activities"] = _merge_max(data.get("activities", {}), counts["activities"])
        data["total"] = sum(data["activities"].values())
        data["updated_at"] = iso(now())
        return data

    return _upsert(TeamProgress, (commune, team), change)


def set_households(commune: str, commune_name: str, households: int, source: str, by: dict) -> dict:
    from .models import CommuneProgress

    def change(data):
        data.update({"commune": commune, "commune_name": commune_name, "households": households,
                     "households_source": source, "households_set_by": by, "households_set_at": iso(now())})
        data.setdefault("reached", {})
        data.setdefault("activities", {})
        return data

    return _upsert(CommuneProgress, (commune,), change)


def view(data: dict) -> dict:
    """A commune's progress as answered and published: counts, shares against the targets."""
    return {"commune": data["commune"], "commune_name": data.get("commune_name"), "households": data.get("households"),
            "households_source": data.get("households_source"),
            "indicators": targets.figures(data.get("reached", {}), data.get("households")),
            "activities": {k: data.get("activities", {}).get(k, 0) for k in targets.KINDS},
            "updated_at": data.get("updated_at") or data.get("households_set_at")}
