"""Register books (sổ đăng ký văn bản đi / đến): one per agency, per year, per direction, and a
separate one for confidential documents (Decree 30/2020/NĐ-CP, Art. 15 and 22; see
``data/decree30.json``).

A number is taken by creating its entry create-only (``If-None-Match: *``): exactly one writer
wins each number. Writers start just after the book's head (a hint) and walk up past taken
numbers, so every number they try is one more than a number already taken: the numbers taken form
1, 2, 3 … without a gap, whatever the race, and none is ever taken twice. A document keeps its
claim (``document_id`` in the entry): registering it again finds its number instead of taking a
new one.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from lscloud import errors
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from .models import RegisterEntry, RegisterHead

DATA = Path(__file__).with_name("data") / "decree30.json"
DIRECTIONS = {"outgoing": "di", "incoming": "den"}
_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MAX_WALK = 100_000


@lru_cache(maxsize=1)
def decree() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def codes(kind: str) -> list[str]:
    """The codes of ``types``, ``urgency`` or ``confidentiality`` (data/decree30.json)."""
    return sorted(k for k in decree()[kind] if not k.startswith("_"))


def book_of(agency: str, year: int, direction: str, confidential: bool = False) -> str:
    if not agency or not _CODE.fullmatch(agency):
        raise errors.Invalid.at("/agency", "an agency code is lowercase letters, digits and dashes",
                                "Mã cơ quan chỉ gồm chữ thường không dấu, chữ số và dấu gạch ngang.")
    return f"{agency}.{year}.{DIRECTIONS[direction]}" + (".mat" if confidential else "")


def _entry_key(n: int) -> str:
    return f"{n:08d}"


def find(book: str, document_id: str) -> int | None:
    """The number ``document_id`` already holds in ``book`` (the rare path after a crash or a retry)."""
    for entry in RegisterEntry.query_all(book):
        if entry.data.get("document_id") == document_id:
            return int(entry.number)
    return None


def _raise_head(book: str, n: int) -> None:
    """Move the hint forward to ``n`` (never back); losing the race to a writer ahead is fine."""
    for _ in range(5):
        try:
            head = RegisterHead.get(book)
        except DoesNotExist:
            try:
                RegisterHead(book, last=n).save()
                return
            except ConditionalCheckFailed:
                continue
        if head.last >= n:
            return
        head.last = n
        try:
            head.save()
            return
        except ConditionalCheckFailed:
            continue


def take(book: str, document_id: str, details: dict) -> int:
    """The next number of ``book`` for ``document_id`` (or the one it already holds)."""
    try:
        n = int(RegisterHead.get(book).last) + 1
    except DoesNotExist:
        n = 1
    for _ in range(MAX_WALK):
        try:
            RegisterEntry(book, _entry_key(n), data={"document_id": document_id, **details}).save()
        except ConditionalCheckFailed:
            held = RegisterEntry.get(book, _entry_key(n)).data.get("document_id")
            if held == document_id:
                break
            n += 1
            continue
        break
    else:  # pragma: no cover - a book of 100,000 documents a year is far beyond any agency's
        raise errors.Conflict("the register is too busy, try again", detail_vi="Sổ đăng ký đang bận, hãy thử lại.")
    _raise_head(book, n)
    return n


def entries(book: str, limit: int, token: str | None = None) -> tuple[list[dict], str | None]:
    """One page of a register book in number order, and the next page's token (a book grows by
    every document of the agency's year: read whole, its last months cost thousands of reads)."""
    page = RegisterEntry.query(book, limit=limit, page_token=token)
    return [{"number": int(e.number), **e.data} for e in page], page.page_token


def number_text(n: int) -> str:
    """A document number as written (Arabic numerals, a leading 0 below 10: ``07``)."""
    return f"{n:02d}"


def symbol(doc_type: str, agency_abbr: str, unit_abbr: str | None) -> str:
    """Ký hiệu: ``QĐ-UBND`` for a typed document, ``UBND-VP`` for an official letter (công văn)."""
    abbr = decree()["types"][doc_type]["abbr"]
    if abbr is None:
        return f"{agency_abbr}-{unit_abbr}" if unit_abbr else agency_abbr
    return f"{abbr}-{agency_abbr}"


def display(n: int, sym: str | None) -> str:
    """``Số: 07/QĐ-UBND`` (outgoing) — incoming documents show ``Số đến: 07``."""
    return f"Số: {number_text(n)}/{sym}" if sym else f"Số đến: {number_text(n)}"
