"""Moderation of public text: phone numbers, ID numbers and the reporter's own name masked before a
report's description or an agency's note is shown to anyone but the reporter and the handlers."""

from __future__ import annotations

import re

# Vietnamese phone numbers (0xx… or +84 …, with spaces, dots or dashes between groups), CCCD/CMND
# (9 or 12 digits), e-mail addresses; bank accounts and other long digit runs go with them
_PHONE = re.compile(r"(?<!\d)(?:\+?84|0)(?:[\s.\-]?\d){8,10}(?!\d)")
_DIGITS = re.compile(r"(?<!\d)\d{9,16}(?!\d)")
# the lookbehind: without it a long run of word characters with no '@' was tried from every
# position (quadratic: 90 ms a 4,000-character description, at every public listing)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MASK = "***"


def mask(text: str | None, names: list[str] = ()) -> str | None:
    """``text`` with phones, ID and account numbers, e-mails and the given ``names`` replaced by ***."""
    if not text:
        return text
    out = _EMAIL.sub(MASK, text)
    out = _PHONE.sub(MASK, out)
    out = _DIGITS.sub(MASK, out)
    for name in sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len, reverse=True):
        out = re.sub(re.escape(name), MASK, out, flags=re.IGNORECASE)
    return out
