"""How a name the caller typed is compared with the name in the population registry.

Equal when they are the same letters with the same diacritics, after forgiving what does not
change a Vietnamese name:

- case (``NGUYỄN VĂN AN`` = ``Nguyễn Văn An``);
- spaces: leading, trailing, doubled (``Nguyễn  Văn An ``);
- Unicode form: precomposed (NFC) or decomposed (NFD, as some keyboards and macOS send);
- where the tone mark sits in ``oa``/``oe``/``uy`` (old style ``Hoà``, ``Thuý`` = new style
  ``Hòa``, ``Thúy``): both spellings are taught and both appear on documents.

Diacritics are NOT forgiven: ``Nguyen`` ≠ ``Nguyễn``. In Vietnamese the marks are part of the
name, not decoration — ``Lan``/``Lân``, ``Hà``/``Hạ``, ``Đức``/``Đúc`` are different names and
the registry and the CCCD card hold the exact spelling. Dropping the marks would let a caller
verify with a looser guess (weaker proof that they know the person's data) and would sign a
token in for an identity spelled differently from the card.
"""

from __future__ import annotations

import unicodedata

# the five tone marks as combining characters (NFD); vowel-quality marks (circumflex ^ U+0302,
# breve U+0306, horn U+031B) and the stroke of đ are part of the letter and stay where they are
TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
MAX_NAME_CHARS = 100


def syllable_key(word: str) -> tuple[str, str]:
    """(the syllable without its tone mark, the tone mark or ""): placement-independent."""
    decomposed = unicodedata.normalize("NFD", word)
    tone = "".join(ch for ch in decomposed if ch in TONE_MARKS)
    base = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in TONE_MARKS))
    return base, tone


def name_key(name: str) -> tuple[tuple[str, str], ...]:
    """The comparison key of a full name: per word, case-folded, tone mark detached."""
    folded = unicodedata.normalize("NFC", name or "").casefold()
    return tuple(syllable_key(w) for w in folded.split())


def same_name(typed: str, registered: str) -> bool:
    """True when ``typed`` is ``registered`` up to case, spacing, Unicode form and tone placement."""
    key = name_key(typed)
    return bool(key) and key == name_key(registered)
