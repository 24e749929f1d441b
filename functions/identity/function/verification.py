"""Compare what a caller says about a citizen with the registry's record.

The answer names each field the caller sent with ``match`` or ``mismatch`` and nothing else:
never the registered name, date or any other attribute, so the endpoint cannot be used to
look people up — only to confirm what one already knows (and that is rate-limited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .names import same_name
from .population import Citizen

FIELDS = ("id_number", "full_name", "date_of_birth")


@dataclass(frozen=True)
class Claim:
    id_number: str
    full_name: str
    date_of_birth: date


@dataclass(frozen=True)
class Verification:
    fields: dict[str, str]

    @property
    def match(self) -> bool:
        return all(v == "match" for v in self.fields.values())

    def to_dict(self) -> dict:
        return {"match": self.match, "fields": dict(self.fields)}


def _word(ok: bool) -> str:
    return "match" if ok else "mismatch"


def compare(claim: Claim, record: Citizen | None) -> Verification:
    """Per-field match/mismatch; an unknown number mismatches on every field (nothing to compare with)."""
    if record is None:
        return Verification({f: "mismatch" for f in FIELDS})
    return Verification({
        "id_number": _word(record.id_number == claim.id_number),
        "full_name": _word(same_name(claim.full_name, record.full_name)),
        "date_of_birth": _word(record.date_of_birth == claim.date_of_birth),
    })
