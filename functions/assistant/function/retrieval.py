"""Finding the procedure a question is about: BM25 (bm25s) over the catalogue, field by field.

Each procedure is indexed in three fields, each its own BM25 index with its own weight:

- ``name``   the Vietnamese and English names and the lexicon's colloquial names ("sổ đỏ");
- ``field``  the field (lĩnh vực) it belongs to;
- ``body``   its documents and results.

A question is folded, its colloquial phrases expanded (``data/lexicon.yaml``: "sổ đỏ" → giấy chứng
nhận quyền sử dụng đất), its misspellings corrected against the index's own vocabulary, stripped
of the words that only say what is asked (fees, time …) and of fillers, and segmented into
syllables and compounds (:mod:`.text`). A procedure code (``HT-KS``) or national code
(``1.001193``) in the question wins outright. Scores are the weighted sum of the fields' BM25
scores; :class:`Match` carries the best candidates so an answer can offer the runners-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
import yaml

from lscloud.lean_imports import import_without
from lscloud.listing import fold

from . import intents, text

# bm25s imports scipy at its top when it is installed, for a sparse-matrix backend the indexes do not
# use (CSC_BACKEND, bm25s's default, said here so a new default cannot change it). scipy is no
# dependency of ours, so the function's image has none; where it is installed anyway (a developer's
# machine, CI) the import cost the function's cold start about 115 ms that the cluster never pays
bm25s = import_without("bm25s", "scipy")
CSC_BACKEND = "numpy"

WEIGHTS = {"name": 1.0, "alias": 0.5, "field": 0.25, "body": 0.35}
FILLERS = frozenset("thu tuc lam xin toi minh em anh chi oi a ah nhe nha voi cho duoc khong ko k co the hay "
                    "muon biet hoi giup ve viec la gi sao vay thi nao ra roi di nay nhu va hoac de cua "
                    "nop please i want to the a an of for how my me do can".split())
K1, B = 1.2, 0.5       # a long official name is not a worse match: less length normalisation than 0.75
RERANK = 12            # the BM25 best re-ranked by name coverage
COVERAGE_WEIGHT = 10.0
PRIOR_WEIGHT = 1.0     # the procedures people use most (lexicon's `common`) win a near tie
NAME_STOPWORDS = frozenset("doi voi cho cua va cac the of a an the for to by with".split())
_CODE_RE = re.compile(r"\b([A-Z]{2,5}(?:-[A-Z0-9]{1,8}){1,3})\b", re.IGNORECASE)
_NATIONAL_RE = re.compile(r"\b([1-9]\.\d{6})\b")


@lru_cache(maxsize=1)
def lexicon() -> dict:
    """``{"phrases": {folded phrase: expansion}, "aliases": {code: [names]}, "common": [codes]}``
    from data/lexicon.yaml."""
    raw = yaml.safe_load((text.DATA / "lexicon.yaml").read_text(encoding="utf-8"))
    phrases = {fold(k): v for k, v in (raw.get("phrases") or {}).items()}
    aliases = {code: list(names) for code, names in (raw.get("aliases") or {}).items()}
    return {"phrases": dict(sorted(phrases.items(), key=lambda kv: -len(kv[0]))), "aliases": aliases,
            "common": list(raw.get("common") or [])}


def expand(question: str) -> str:
    """The folded question with the lexicon's expansion of each colloquial phrase it holds appended."""
    folded = fold(question)
    extra = [exp for phrase, exp in lexicon()["phrases"].items()
             if re.search(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])", folded)]
    return " ".join([folded] + [fold(e) for e in extra])


@dataclass(frozen=True)
class Match:
    """The best candidates, best first: ``(procedure, score)``; ``exact`` when a code was named."""

    ranked: tuple[tuple[Mapping, float], ...]
    exact: bool = False
    content: tuple[str, ...] = ()

    @property
    def best(self) -> Mapping | None:
        return self.ranked[0][0] if self.ranked else None

    @property
    def score(self) -> float:
        return self.ranked[0][1] if self.ranked else 0.0

    def codes(self, n: int = 3) -> list[str]:
        return [p["code"] for p, _ in self.ranked[:n]]


class Index:
    """The catalogue's BM25 indexes; built once per catalogue version (a cache, rebuilt on change)."""

    def __init__(self, procedures: Sequence[Mapping], aliases: Mapping[str, Sequence[str]] | None = None):
        self.procedures = list(procedures)
        aliases = lexicon()["aliases"] if aliases is None else aliases
        self.by_code = {p["code"]: p for p in self.procedures}
        self.common = frozenset(lexicon()["common"])
        self.by_national = {p["national_code"]: p for p in self.procedures if p.get("national_code")}
        texts = {
            "name": [p["name"] + " " + p.get("name_en", "") for p in self.procedures],
            "alias": [" ".join(aliases.get(p["code"], ())) for p in self.procedures],
            "field": [p.get("field_name", "") + " " + p.get("field", "").replace("-", " ") for p in self.procedures],
            "body": [" ".join([d["name"] for d in p["documents"]] + list(p.get("results", ())))
                     for p in self.procedures],
        }
        vocab_texts = [t for ts in texts.values() for t in ts] + list(lexicon()["phrases"]) + \
            [" ".join(ps) for ps in intents._PHRASES.values()] + [" ".join(FILLERS)]
        self.speller = text.Speller(vocab_texts)
        # the tokens each procedure is indexed with: what a turn may carry into the next (kept_terms)
        self.words = {p["code"]: frozenset(t for docs in texts.values() for t in text.tokens(docs[i]))
                      for i, p in enumerate(self.procedures)}
        self.name_variants = [
            [set(fold(v).split()) - NAME_STOPWORDS for v in [p["name"], p.get("name_en", "")]
             + list(aliases.get(p["code"], ())) if set(fold(v).split()) - NAME_STOPWORDS]
            for p in self.procedures]
        self.indexes = {}
        for field, docs in texts.items():
            retriever = bm25s.BM25(k1=K1, b=B, csc_backend=CSC_BACKEND)
            retriever.index([text.tokens(d) or ["_"] for d in docs], show_progress=False)
            self.indexes[field] = retriever

    def query_tokens(self, question: str) -> list[str]:
        """The tokens the question is searched with (expanded, corrected, without fillers and intent words)."""
        words = intents.strip(" ".join(self.speller.correct(w) for w in expand(question).split())).split()
        joined = text.segment(words)   # a compound keeps its syllables: "cổ phần" is no filler "có"
        kept = {s for c in joined for s in c.split("_")}
        words = [w for w in words if (w in kept or w not in FILLERS) and not w.isdigit()]
        return list(dict.fromkeys(words + joined))   # each once: two phrases may expand alike

    def search(self, question: str, n: int = 5, terms: Sequence[str] = ()) -> Match:
        """The ``n`` best procedures for ``question`` (none when nothing in it matches), searched
        together with ``terms`` (tokens an earlier turn kept, :meth:`kept_terms`) when given."""
        for m in _CODE_RE.finditer(question):
            if m.group(1).upper() in self.by_code:
                return Match(((self.by_code[m.group(1).upper()], 100.0),), exact=True)
        for m in _NATIONAL_RE.finditer(question):
            if m.group(1) in self.by_national:
                return Match(((self.by_national[m.group(1)], 100.0),), exact=True)
        toks = list(dict.fromkeys([*terms, *self.query_tokens(question)]))
        if not toks:
            return Match((), content=())
        total = np.zeros(len(self.procedures), dtype=np.float32)
        for field, weight in WEIGHTS.items():
            total += weight * self.indexes[field].get_scores(toks)
        order = [int(i) for i in np.argsort(-total, kind="stable")[:RERANK] if total[i] > 0]
        asked = {t for t in toks if "_" not in t}
        # an earlier turn's kept terms count as asked, as its question's words did when both were searched as one
        raw = ({w for w in intents.strip(" ".join(self.speller.correct(w) for w in fold(question).split())).split()
                if w not in FILLERS} | {t for t in terms if "_" not in t}) or asked
        final = {i: float(total[i]) + COVERAGE_WEIGHT * max(self.coverage(i, asked), self.coverage(i, raw))
                 + PRIOR_WEIGHT * (self.procedures[i]["code"] in self.common) for i in order}
        best = sorted(order, key=lambda i: -final[i])[:n]
        return Match(tuple((self.procedures[i], final[i]) for i in best), content=tuple(toks))

    def kept_terms(self, match: Match, n: int = 3) -> list[str]:
        """What of a question a conversation carries into its next turn, for a refinement to be
        searched with (:func:`.dialogue.understand`): the tokens it was searched with that the ``n``
        procedures it was answered with (the answer and the alternatives offered) are indexed with
        themselves. Sorted, so words of the catalogue, in no order of the question's: an identifier,
        a name or anything else the person typed is not kept unless those procedures' own texts
        hold it as a word, and no phrase of the question survives."""
        held = frozenset().union(*(self.words.get(p["code"], ()) for p, _ in match.ranked[:n]))
        return sorted(t for t in set(match.content) if t in held)

    def coverage(self, position: int, asked: set[str]) -> float:
        """How well the procedure's best-matching name (its name, English name or a colloquial name)
        and the question's content words cover each other (F1): "đăng ký khai sinh" covers all of
        *Đăng ký khai sinh* but not the *lại* of *Đăng ký lại khai sinh*, so a variant wins only
        when it is asked for, and "gia hạn giấy phép xây dựng" prefers the name holding *gia hạn*."""
        best = 0.0
        for words in self.name_variants[position]:
            common = len(words & asked)
            if common:
                precision, recall = common / len(asked), common / len(words)
                best = max(best, 2 * precision * recall / (precision + recall))
        return best
