"""Diacritic-insensitive search and opaque-token paging over lists served from a snapshot.

Plain Python: the routes hand in lists of dicts (read from the store) and the raw query
parameters; nothing here knows about Flask or S3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from unidecode import unidecode

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_QUERY_CHARS = 100

_NON_WORD = re.compile(r"[^a-z0-9]+")


class QueryError(ValueError):
    """A query parameter is malformed; ``field`` is its JSON pointer (e.g. ``/limit``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def fold(text: str | None) -> str:
    """Lowercase ASCII words separated by single spaces: "Xã Đồng Đăng" -> "xa dong dang".

    unidecode maps đ/Đ to d and strips every tone and vowel mark, so people can type
    without a Vietnamese keyboard.
    """
    if not text:
        return ""
    return _NON_WORD.sub(" ", unidecode(text).lower()).strip()


@dataclass(frozen=True)
class Query:
    """A parsed free-text query: the folded phrase and its words."""

    phrase: str
    words: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str | None) -> "Query | None":
        if raw is None:
            return None
        if len(raw) > MAX_QUERY_CHARS:
            raise QueryError("/q", f"q must be at most {MAX_QUERY_CHARS} characters")
        phrase = fold(raw)
        if not phrase:
            return None
        return cls(phrase, tuple(phrase.split(" ")))

    def score(self, texts: Iterable[str]) -> int:
        """0 when nothing matches; higher is better (exact name > phrase > every word)."""
        best = 0
        for text in texts:
            folded = fold(text)
            if not folded:
                continue
            if folded == self.phrase:
                return 4
            words = folded.split(" ")
            if _contains_words(words, self.words):
                best = max(best, 3)
            elif self.phrase in folded:
                best = max(best, 2)
            elif all(any(w.startswith(q) for w in words) for q in self.words):
                best = max(best, 1)
        return best


def _contains_words(words: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return any(tuple(words[i:i + n]) == tuple(phrase) for i in range(len(words) - n + 1))


def search(items: Sequence[Mapping[str, Any]], query: Query | None,
           texts: Callable[[Mapping[str, Any]], Iterable[str]]) -> list[Mapping[str, Any]]:
    """Items matching ``query`` best first (stable: ties keep the input order)."""
    if query is None:
        return list(items)
    scored = [(query.score(texts(item)), i, item) for i, item in enumerate(items)]
    return [item for score, _, item in sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))]


# -- paging ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    items: list
    total: int
    next_page_token: str | None

    def to_dict(self) -> dict:
        return {"items": list(self.items), "total": self.total, "next_page_token": self.next_page_token}


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise QueryError("/limit", f"limit must be a whole number from 1 to {MAX_LIMIT}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise QueryError("/limit", f"limit must be from 1 to {MAX_LIMIT}, got {value}")
    return value


def parse_offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise QueryError("/offset", "offset must be a whole number, 0 or more") from None
    if value < 0:
        raise QueryError("/offset", f"offset must be 0 or more, got {value}")
    return value


def filter_digest(filters: Mapping[str, Any]) -> str:
    """A short digest of the filters a page token was issued for."""
    canonical = json.dumps({k: v for k, v in filters.items() if v is not None}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def encode_token(offset: int, filters: Mapping[str, Any]) -> str:
    raw = json.dumps({"o": offset, "f": filter_digest(filters)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, filters: Mapping[str, Any]) -> int:
    """The offset a token stands for; refuses tokens that were issued for other filters."""
    bad = QueryError("/page_token", "page_token is not one this list issued; start again without it")
    if len(token) > 200:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or not isinstance(data.get("o"), int) or data["o"] < 0:
        raise bad
    if data.get("f") != filter_digest(filters):
        raise QueryError("/page_token", "page_token belongs to a different query (q, type or other filters changed)")
    return data["o"]


def paginate(items: Sequence, *, limit: int, offset: int = 0, filters: Mapping[str, Any] | None = None) -> Page:
    """One page of ``items`` from ``offset``; the next token is opaque and bound to ``filters``."""
    filters = filters or {}
    window = list(items[offset:offset + limit])
    end = offset + len(window)
    return Page(window, len(items), encode_token(end, filters) if end < len(items) else None)


def page_request(args: Mapping[str, str], filters: Mapping[str, Any]) -> tuple[int, int]:
    """(limit, offset) from ``limit`` and either ``page_token`` or ``offset`` (not both)."""
    limit = parse_limit(args.get("limit"))
    token = args.get("page_token")
    if token and args.get("offset") not in (None, ""):
        raise QueryError("/page_token", "give either page_token or offset, not both")
    offset = decode_token(token, filters) if token else parse_offset(args.get("offset"))
    return limit, offset


# -- filters + search + paging in one call ---------------------------------------------------------

@dataclass(frozen=True)
class Filter:
    """An exact-match query parameter: ``?type=xa``. ``hint`` completes "<param> must be ..."."""

    param: str
    matches: Callable[[Mapping[str, Any], str], bool]
    valid: Callable[[str], bool]
    hint: str
    description: str = ""


def field_filter(param: str, field: str, choices: Sequence[str], description: str = "") -> Filter:
    return Filter(param, lambda item, v: item.get(field) == v, lambda v: v in choices,
                  "one of " + ", ".join(choices), description)


def code_filter(param: str, field: str, valid: Callable[[str], bool], hint: str, description: str = "") -> Filter:
    return Filter(param, lambda item, v: item.get(field) == v, valid, hint, description)


_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def bool_filter(param: str, field: str, description: str = "") -> Filter:
    return Filter(param, lambda item, v: item.get(field) is _BOOLS[v], lambda v: v in _BOOLS, "true or false",
                  description)


def listing(items: Sequence[Mapping[str, Any]], args: Mapping[str, str], *,
            texts: Callable[[Mapping[str, Any]], Iterable[str]], filters: Sequence[Filter] = ()) -> Page:
    """Filter, search (``q``) and page (``limit``, ``page_token`` | ``offset``) ``items``."""
    query = Query.parse(args.get("q"))
    chosen: dict[str, str] = {}
    for f in filters:
        raw = args.get(f.param)
        if raw is None or raw == "":
            continue
        if len(raw) > MAX_QUERY_CHARS or not f.valid(raw):
            raise QueryError("/" + f.param, f"{f.param} must be {f.hint}")
        chosen[f.param] = raw
    selected = [i for i in items if all(f.matches(i, chosen[f.param]) for f in filters if f.param in chosen)]
    selected = search(selected, query, texts)
    token_filters = {"q": query.phrase if query else None, **chosen}
    limit, offset = page_request(args, token_filters)
    return paginate(selected, limit=limit, offset=offset, filters=token_filters)
