"""The catalogue (data/catalogue.yaml): areas, sources, indicators; and the targets (data/targets.yaml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data"
FRESHNESS_S = 300
"""A source whose latest event is older than this is shown as not fresh (events flow within seconds)."""


@lru_cache(maxsize=1)
def load() -> dict:
    doc = yaml.safe_load((DATA / "catalogue.yaml").read_text(encoding="utf-8"))
    areas = {a["id"] for a in doc["areas"]}
    for ind in doc["indicators"]:
        assert ind["area"] in areas and ind["source"] in doc["sources"], ind["id"]
    return doc


@lru_cache(maxsize=1)
def targets() -> dict:
    return yaml.safe_load((DATA / "targets.yaml").read_text(encoding="utf-8"))


def indicators() -> list[dict]:
    return load()["indicators"]


def indicator(indicator_id: str) -> dict | None:
    return next((i for i in indicators() if i["id"] == indicator_id), None)


def areas() -> list[dict]:
    return load()["areas"]


def sources() -> dict:
    return load()["sources"]


def entry(ind: dict) -> dict:
    """An indicator's catalogue entry as the API shows it."""
    src = sources()[ind["source"]]
    return {"id": ind["id"], "name": {"vi": ind["vi"], "en": ind["en"]},
            "definition": {"vi": ind["definition_vi"], "en": ind["definition_en"]},
            "unit": ind["unit"], "kind": ind["kind"], "area": ind["area"],
            "source": {"id": ind["source"], "name": {"vi": src["vi"], "en": src["en"]}, "function": src["function"]},
            "dimensions": ind["dims"], "public": ind["public"],
            "freshness": {"window": "PT24H" if ind["kind"] != "gauge" else "instant",
                          "expected_max_age_s": FRESHNESS_S}}
