"""The indicators progress is measured on, and their targets (``data/targets.yaml``, with sources)."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import yaml

KINDS = ("household-visit", "app-install", "epayment-account", "digital-shop", "online-dossier", "training")
HOUSEHOLD_KINDS = frozenset(KINDS) - {"training"}
APPS = ("vneid", "citizen-app")       # VNeID and "Công dân số Xứ Lạng"


@lru_cache(maxsize=1)
def data() -> dict:
    return yaml.safe_load((Path(__file__).parent / "data" / "targets.yaml").read_text(encoding="utf-8"))


def indicators() -> dict[str, dict]:
    return data()["indicators"]


def indicators_for(kind: str) -> list[str]:
    """The household indicators an activity of ``kind`` counts towards."""
    return [name for name, ind in indicators().items() if kind in ind["kinds"]]


def figures(reached: dict[str, int], households: int | None) -> dict[str, dict]:
    """Each indicator: households reached, the target share and what it means for this commune."""
    out = {}
    for name, ind in indicators().items():
        n = reached.get(name, 0)
        share = ind.get("target_share")
        row = {"reached": n, "vi": ind["vi"], "en": ind["en"], "target_share": share, "by": ind.get("by"),
               "share": round(n / households, 4) if households else None, "target_households": None, "met": None}
        if share is not None and households:
            row["target_households"] = math.ceil(share * households)
            row["met"] = n >= row["target_households"]
        if ind.get("source"):
            row["source"] = {k: v for k, v in data()[ind["source"]].items()}
        out[name] = row
    return out
