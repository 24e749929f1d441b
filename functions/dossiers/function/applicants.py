"""Who a dossier is for and how it came in, by the caller's role.

- A citizen submits online, in their own name: the applicant's CCCD is the token's subject.
- A business submits online, under its tax code (the token's subject).
- An officer records a dossier received at the counter or by post, for an applicant named by CCCD
  or tax code (a household business files under its owner's 12-digit personal ID, which is its tax
  code since 1 July 2025).

Identifiers are normalised (:mod:`lscloud.identifiers`) before anything is stored; every wrong
field is named at once.
"""

from __future__ import annotations

from lscloud import errors
from lscloud.identifiers import InvalidIdentifier, normalise_tax_code, parse_cccd
from lscloud.statemachine import Actor

OFFICER_CHANNELS = ("counter", "post")


def resolve(actor: Actor, body: dict) -> tuple[str, dict]:
    """The channel and the applicant as the dossier stores them."""
    applicant = dict(body.get("applicant") or {})
    wrong: list[dict] = []
    if actor.kind == "citizen":
        channel = body.get("channel", "online")
        if channel != "online":
            wrong.append(errors.field("/channel", "a citizen submits online; counter and post are recorded by the "
                                                  "officer who receives the dossier"))
        if applicant.get("id_number") not in (None, actor.sub):
            wrong.append(errors.field("/applicant/id_number", "you submit in your own name"))
        applicant["id_number"] = actor.sub
        applicant["kind"] = "citizen"
    elif actor.kind == "enterprise":
        channel = body.get("channel", "online")
        if channel != "online":
            wrong.append(errors.field("/channel", "a business submits online"))
        applicant["tax_code"] = actor.sub
        applicant["kind"] = "business"
    else:
        channel = body.get("channel")
        if channel not in OFFICER_CHANNELS:
            wrong.append(errors.field("/channel", "an officer records counter or post"))
        if not applicant.get("id_number") and not applicant.get("tax_code"):
            wrong.append(errors.field("/applicant/id_number", "the applicant's CCCD (or tax code) is required"))
        applicant["kind"] = "business" if applicant.get("tax_code") and not applicant.get("id_number") else "citizen"
    for key, parse in (("id_number", lambda v: parse_cccd(v).number), ("tax_code", normalise_tax_code)):
        if applicant.get(key):
            try:
                applicant[key] = parse(applicant[key])
            except InvalidIdentifier as exc:   # a 12-digit tax code is checked as a CCCD: name the right field
                wrong.append(errors.field(f"/applicant/{key}", str(exc)))
    if wrong:
        message = f"{len(wrong)} field(s) are invalid"
        raise errors.Invalid(message, detail_vi=message, errors=wrong)
    return channel, applicant


def owner(applicant: dict) -> str:
    """Whose dossier it is: the applicant's CCCD, or the business's tax code."""
    return applicant.get("id_number") or applicant.get("tax_code")
