"""The texts this function computes by, loaded once from ``data/`` (each file cites its source)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data"


@lru_cache(maxsize=None)
def load(name: str) -> dict:
    """``data/<name>.yaml`` as a dict (read once per process)."""
    with open(DATA / f"{name}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def vn_aqi() -> dict:
    return load("vn_aqi_1459")


def qcvn_26() -> dict:
    return load("qcvn_26_2010")


def vn_wqi() -> dict:
    return load("vn_wqi_1460")
