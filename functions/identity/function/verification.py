"""Verifying what a caller says about a citizen against the registry's record.

The answer names each field the caller sent with ``match`` or ``mismatch`` and nothing else:
never the registered name, date or any other attribute, so the endpoint cannot be used to
look people up — only to confirm what one already knows (and that is rate-limited:
:class:`Verifier` asks the limiter before the registry and counts every mismatch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from lscloud.timestamps import today_here

from lscloud import errors
from lscloud.identifiers import InvalidIdentifier, parse_cccd

from .mismatches import MismatchLimits
from .names import same_name
from .population import Citizen, PopulationRegistry, RegistryError, RegistryUnavailable

log = logging.getLogger("identity.verification")

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


class RegistryDown(errors.Unavailable):
    type = "registry-unavailable"
    title, title_vi = "Population registry unavailable", "Không kết nối được CSDL quốc gia về dân cư"


class RegistryBroken(errors.DomainError):
    status, type = 502, "registry-error"
    title, title_vi = "Population registry error", "Lỗi kết nối CSDL quốc gia về dân cư"


def claim_of(body: dict) -> Claim:
    """The claim in a (schema-valid) request body; 422 naming each field a schema cannot judge."""
    problems = []
    try:
        parse_cccd(body["id_number"])
    except InvalidIdentifier as exc:
        problems.append(errors.field("/id_number", str(exc)))
    try:
        born = date.fromisoformat(body["date_of_birth"])
        if born > today_here():   # the province's date: born this morning is not "in the future"
            problems.append(errors.field("/date_of_birth", "the date of birth is in the future"))
    except ValueError:
        born = None
        problems.append(errors.field("/date_of_birth", "not a calendar date (YYYY-MM-DD)"))
    if problems:
        raise errors.Invalid("; ".join(p["message"] for p in problems) + ".",
                             detail_vi="Số CCCD hoặc ngày sinh không hợp lệ.", errors=problems)
    return Claim(body["id_number"], body["full_name"], born)


class Verifier:
    """Checks claims against the registry, under the limiter (429 before the registry is asked)."""

    def __init__(self, registry: PopulationRegistry, limiter: MismatchLimits):
        self.registry = registry
        self.limiter = limiter

    def verify(self, caller: str, claim: Claim) -> Verification:
        """Match / mismatch per field for ``claim``; a mismatch counts against ``caller`` and the number."""
        self.limiter.check(caller, claim.id_number)
        try:
            record = self.registry.lookup(claim.id_number)
        except RegistryUnavailable:
            raise RegistryDown("The national population database did not answer; retry later.",
                               detail_vi="Cơ sở dữ liệu quốc gia về dân cư chưa phản hồi; vui lòng thử lại sau.") from None
        except RegistryError as exc:
            log.warning("the population registry answered something unusable: %s", exc)  # no number in these
            raise RegistryBroken("The national population database answered something unusable; operators are told.",
                                 detail_vi="Cơ sở dữ liệu quốc gia về dân cư trả lời không hợp lệ.") from None
        result = compare(claim, record)
        if not result.match:
            self.limiter.record_mismatch(caller, claim.id_number)
        return result
