"""Vietnamese text as the assistant compares it: folded, corrected, segmented into words.

Everything is compared *folded* (lowercase ASCII, :func:`lscloud.listing.fold`), so a question typed
without diacritics ("lam so do mat bao lau") meets the catalogue on equal terms; the diacritics
are never needed to find a procedure.

Segmentation: Vietnamese writes syllables, and words span several ("khai sinh", "giấy chứng nhận").
The compound words are found *offline* by underthesea's word segmenter over the catalogue and the
lexicon (``python3 -m functions.assistant.cli vocab`` writes ``data/compounds.txt``); at run time the
folded syllables are joined greedily, longest first, into those compounds. A token list holds the
syllables and the compounds (``khai``, ``sinh``, ``khai_sinh``), so a compound match counts more
than scattered syllables while a partial phrase still matches.

Misspellings: a syllable the vocabulary does not know is first read as typed without a Vietnamese
keyboard ("fep" → phep, "jay" → giay), else, from five letters on, replaced by the vocabulary's
syllable one edit away (a letter dropped, added, changed or two swapped), the most frequent winning.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from lscloud.listing import fold

DATA = Path(__file__).parent / "data"
MAX_COMPOUND = 4
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = re.compile(r"\d")
# how people type Vietnamese without the keyboard's help: f for ph, j for gi, z for d, w for qu
_TEENCODE = (("f", "ph"), ("j", "gi"), ("z", "d"), ("w", "qu"), ("k", "kh"), ("dk", "dang ky"))


@lru_cache(maxsize=1)
def compounds() -> frozenset[str]:
    """The folded compound words (``khai sinh``) of ``data/compounds.txt``."""
    path = DATA / "compounds.txt"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


def segment(syllables: list[str], known: frozenset[str] | None = None) -> list[str]:
    """Greedy longest-match: the compounds found in ``syllables``, joined by ``_``."""
    known = compounds() if known is None else known
    out, i = [], 0
    while i < len(syllables):
        for n in range(min(MAX_COMPOUND, len(syllables) - i), 1, -1):
            if " ".join(syllables[i:i + n]) in known:
                out.append("_".join(syllables[i:i + n]))
                i += n
                break
        else:
            i += 1
    return out


def tokens(text: str, speller: "Speller | None" = None) -> list[str]:
    """Folded syllables (spelling corrected when a speller is given) plus their compounds."""
    syllables = fold(text).split()
    if speller is not None:
        syllables = [speller.correct(s) for s in syllables]
    return syllables + segment(syllables)


class Speller:
    """Corrects a folded syllable to the vocabulary's most frequent syllable one edit away."""

    def __init__(self, texts: Iterable[str]):
        self.counts = Counter(s for t in texts for s in fold(t).split())

    def _edits(self, word: str) -> set[str]:
        splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
        return ({a + b[1:] for a, b in splits if b} | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
                | {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
                | {a + c + b for a, b in splits for c in _LETTERS})

    @lru_cache(maxsize=4096)
    def correct(self, word: str) -> str:
        if word in self.counts or _DIGITS.search(word):
            return word
        for wrong, right in _TEENCODE:     # "fep" → "phep", "jay" → "giay", "zang" → "dang"
            if word.startswith(wrong) and right + word[len(wrong):] in self.counts:
                return right + word[len(wrong):]
        if len(word) < 5:                  # too short to tell a typo from another syllable
            return word
        candidates = [w for w in self._edits(word) if w in self.counts]
        return max(candidates, key=lambda w: (self.counts[w], w)) if candidates else word
