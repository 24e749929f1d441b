"""Catalogue search: diacritics and case ignored, ranked by where the words are found.

A query is folded like the directory's (``"Giấy phép XÂY DỰNG"`` → ``giay phep xay dung``) and
matched word by word against each procedure's folded texts, which the seed precomputes:

- ``code``  the procedure code (``HT-KS`` → ``ht ks``)            — an exact code wins outright;
- ``name``  the name (vi and en)                                    — weight 3 per word;
- ``field`` the field's name (vi and en)                            — weight 2;
- ``body``  documents, steps, results, legal basis                  — weight 1;

a whole word counts twice what a prefix does.

A procedure matches when every *content* word of the query is found somewhere — with three
content words or more, all but one (``khai sinh cho con``: "con" is in no birth document) — and
the last word may be a prefix (people search while typing). Filler words people type in front of what they
want (``thủ tục``, ``làm``, ``xin``, ``như thế nào`` …) are ignored: they neither exclude nor
promote a procedure. Ranking, best first: the whole phrase in the name, then
the weighted score, then the shorter name (``Đăng ký khai sinh`` before ``Đăng ký lại khai
sinh``), then catalogue order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lscloud.listing import (Filter, Page, Param, Query, chosen_filters, code_filter, field_filter, fold,
                             list_params, page_request, paginate)

WEIGHTS = {"name": 3, "field": 2, "body": 1}
# folded filler words of Vietnamese questions; never required, still scored
OPTIONAL = frozenset({"thu", "tuc", "lam", "xin", "can", "gi", "nhu", "nao", "o", "dau", "muon", "toi",
                      "cho", "ve", "va", "cua", "de", "hoi", "huong", "dan", "how", "for", "of", "procedure", "in",
                      "and"})  # not "to" (tờ) nor "the" (thẻ): they fold from Vietnamese words that matter


def index_entry(procedure: Mapping, field_name_en: str = "") -> dict:
    """The folded texts of one procedure, stored beside it in the snapshot."""
    body = [d["name"] for d in procedure["documents"]] + [d["name_en"] for d in procedure["documents"]]
    body += [s["name"] for s in procedure["steps"]] + list(procedure["results"]) + list(procedure["legal_basis"])
    return {"code": fold(procedure["code"]), "national_code": fold(procedure.get("national_code") or ""),
            "name": fold(procedure["name"] + " | " + procedure["name_en"]),
            "name_vi": fold(procedure["name"]),
            "field": fold(procedure["field_name"] + " " + field_name_en),
            "body": fold(" ".join(body))}


@dataclass(frozen=True)
class Hit:
    position: int
    exact_code: bool
    phrase_in_name: bool
    score: int
    name_length: int

    def key(self):
        return (not self.exact_code, not self.phrase_in_name, -self.score, self.name_length, self.position)


def _found(word: str, words: set[str], prefixes: bool) -> int:
    """2 for the whole word, 1 for a prefix of one (the last query word only), else 0."""
    if word in words:
        return 2
    return int(prefixes and len(word) >= 2 and any(w.startswith(word) for w in words))


def _contains_phrase(text: str, phrase: str) -> bool:
    return f" {phrase} " in f" {text} "


def rank(index: Sequence[Mapping], phrase: str) -> list[int]:
    """Positions of the matching procedures, best first, for the folded query ``phrase``."""
    words = phrase.split(" ")
    last = len(words) - 1
    allowed_missing = 1 if sum(w not in OPTIONAL for w in words) >= 3 else 0
    out: list[Hit] = []
    for pos, entry in enumerate(index):
        if entry["code"] == phrase or (entry.get("national_code") and entry["national_code"] == phrase):
            out.append(Hit(pos, True, True, 0, 0))
            continue
        bags = {k: set(entry[k].split(" ")) for k in WEIGHTS}
        score, missing = 0, 0
        for i, w in enumerate(words):
            best = max(WEIGHTS[k] * _found(w, bags[k], i == last) for k in WEIGHTS)
            if w in OPTIONAL:
                continue  # neither required nor scored: "cho" must not pull in every "… cho công dân"
            if best == 0:
                missing += 1
                if missing > allowed_missing:
                    break
            score += best
        if missing <= allowed_missing and score:
            out.append(Hit(pos, False, _contains_phrase(entry["name"], phrase), score, len(entry["name_vi"])))
    return [h.position for h in sorted(out, key=Hit.key)]


# -- the list route: filters, then search, then paging (the runtime's page tokens) --------------------

LEVELS = ("province", "commune")
ONLINE_MODES = ("full", "partial")


SEARCH = Param("q", "Search names, fields, documents and steps, ignoring case and Vietnamese diacritics "
                   "(\"giay phep xay dung\" finds \"Giấy phép xây dựng\"); best matches first.",
               {"type": "string", "maxLength": 100})


def filters() -> tuple[Filter, ...]:
    from .catalogue import SLUG_RE

    return (
        code_filter("field", "field", SLUG_RE.pattern, "A field (lĩnh vực) code from /v1/fields."),
        Filter("agency", lambda p, v: p["agency"] == v or any(s["agency"] == v for s in p["steps"]),
               {"type": "string", "pattern": SLUG_RE.pattern, "maxLength": 64},
               "Procedures this agency decides or does a step of (a directory agency code, or ubnd-xa)."),
        field_filter("level", "level", LEVELS, "Level of the body that decides: province or commune."),
        field_filter("online_mode", "online_mode", ONLINE_MODES, "full or partial online (Decree 42/2022/NĐ-CP)."),
        Filter("fee", lambda p, v: (sum(f["amount_vnd"] for f in p["fees"]) == 0) == (v == "free"),
               {"type": "string", "enum": ["free", "paid"]}, "free: no fee or charge; paid: at least one."),
    )


FILTERS = filters()
LIST_PARAMS = list_params(FILTERS, search=SEARCH)


def listing(items: Sequence[Mapping], index: Sequence[Mapping], query: Mapping[str, Any]) -> Page:
    """Filter, search (``q``, ranked by :func:`rank`) and page (``limit``, ``page_token``|``offset``);
    ``query`` holds the values parsed from :data:`LIST_PARAMS`."""
    q = Query.parse(query.get("q"))
    chosen = chosen_filters(query, FILTERS)
    active = [f for f in FILTERS if f.param in chosen]
    positions = [i for i, p in enumerate(items) if all(f.matches(p, chosen[f.param]) for f in active)]
    if q is not None:
        ranked = rank([index[i] for i in positions], q.phrase)
        positions = [positions[r] for r in ranked]
    token_filters = {"q": q.phrase if q else None, **chosen}
    limit, offset = page_request(query, token_filters)
    return paginate([items[i] for i in positions], limit=limit, offset=offset, filters=token_filters)
