"""Everything the directory serves, built from the package data and the curated files, and
its fingerprint (so the local cloud re-seeds only when the data changed)."""

from __future__ import annotations

import hashlib
import json

from . import agencies, gates, post_offices, units

KINDS = ("units", "agencies", "border-gates", "post-offices")


def build() -> dict[str, list[dict]]:
    """kind -> items, in the order the list endpoints serve them."""
    return {
        "units": units.all_units(),
        "agencies": agencies.all_agencies(),
        "border-gates": gates.all_gates(),
        "post-offices": post_offices.all_post_offices(),
    }


def canonical(value) -> bytes:
    """One byte form per JSON value (sorted keys, no spaces, UTF-8): the thing we hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def fingerprint(data: dict[str, list[dict]] | None = None) -> str:
    """sha256 of the whole seed data."""
    return digest(build() if data is None else data)
