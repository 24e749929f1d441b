"""Who a caller is to the market: a seller or producer named by the token's subject."""

from __future__ import annotations

from lscloud import errors
from lscloud.identifiers import InvalidIdentifier, normalise_tax_code
from lscloud.statemachine import Actor


class NotATaxCode(errors.Forbidden):
    type = "subject-not-a-tax-code"


def tax_code(actor: Actor) -> str:
    """The caller's tax code (producers and enterprises are their tax code); 403 if the token's
    subject is not one."""
    try:
        return normalise_tax_code(actor.sub or "")
    except InvalidIdentifier:
        raise NotATaxCode("This token's subject is not a tax code, so it cannot act for a business.",
                          detail_vi="Mã định danh của tài khoản không phải mã số thuế.") from None
