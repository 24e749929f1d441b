"""Reading progress: one commune's figures, and the rankings of communes and teams."""

from __future__ import annotations

from . import tallies

MAIN = "shop-or-payment"      # the Resolution 49 indicator communes are ranked on


def of_commune(commune: str) -> tuple[dict, int]:
    """A commune's progress as answered, and its target's version (:func:`.tallies.target_version`)."""
    from .models import CommuneProgress

    try:
        data = CommuneProgress.get(commune).data
    except CommuneProgress.DoesNotExist:
        data = {"commune": commune}
    return tallies.view(data), tallies.target_version(data)


def rank_communes(limit: int = 500) -> list[dict]:
    from .models import CommuneProgress

    rows = [tallies.view(p.data) for p in CommuneProgress.scan(limit=limit)]

    def key(row):
        main = row["indicators"][MAIN]
        return (main["share"] is None, -(main["share"] or 0), -main["reached"], row["commune"])

    rows.sort(key=key)
    return [{"rank": i + 1, **row} for i, row in enumerate(rows)]


def rank_teams(commune: str | None, limit: int = 2000) -> list[dict]:
    from .models import TeamProgress

    page = TeamProgress.query(commune, limit=limit) if commune else TeamProgress.scan(limit=limit)
    rows = sorted((p.data for p in page), key=lambda d: (-d.get("total", 0), d["team"]))
    return [{"rank": i + 1, **row} for i, row in enumerate(rows)]
