"""Diacritic-insensitive search and opaque-token paging over lists served from a snapshot.

Plain Python: the routes hand in lists of dicts (read from the store) and the query parameters
already parsed from their declaration (:func:`list_params` declares them for
:func:`lscloud.web.query_params`); nothing here knows about Flask or S3.
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

from .query import Param, QueryError, unissued_page_token

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_QUERY_CHARS = 100
MAX_OFFSET = 1_000_000

_NON_WORD = re.compile(r"[^a-z0-9]+")


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
        """The folded query, or None when ``raw`` has no word in it (its length is bounded by
        the ``q`` declaration, :data:`SEARCH_PARAM`)."""
        if raw is None:
            return None
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


def filter_digest(filters: Mapping[str, Any]) -> str:
    """A short digest of the filters a page token was issued for."""
    canonical = json.dumps({k: v for k, v in filters.items() if v is not None}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def encode_token(offset: int, filters: Mapping[str, Any]) -> str:
    raw = json.dumps({"o": offset, "f": filter_digest(filters)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, filters: Mapping[str, Any]) -> int:
    """The offset a token stands for; refuses tokens that were issued for other filters."""
    bad = unissued_page_token()
    if len(token) > 200:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or not isinstance(data.get("o"), int) or data["o"] < 0:
        raise bad
    if data.get("f") != filter_digest(filters):
        raise QueryError("page_token", "page_token belongs to a different query (q, type or other filters changed)",
                         "Tham số 'page_token' thuộc về một truy vấn khác (q, type hoặc bộ lọc đã đổi); hãy tải lại "
                         "danh sách từ đầu.")
    return data["o"]


def paginate(items: Sequence, *, limit: int, offset: int = 0, filters: Mapping[str, Any] | None = None) -> Page:
    """One page of ``items`` from ``offset``; the next token is opaque and bound to ``filters``."""
    filters = filters or {}
    window = list(items[offset:offset + limit])
    end = offset + len(window)
    return Page(window, len(items), encode_token(end, filters) if end < len(items) else None)


def page_request(query: Mapping[str, Any], filters: Mapping[str, Any]) -> tuple[int, int]:
    """(limit, offset) from the parsed ``limit`` and either ``page_token`` or ``offset`` (not both)."""
    limit = query.get("limit") or DEFAULT_LIMIT
    token, offset = query.get("page_token"), query.get("offset")
    if token and offset is not None:
        raise QueryError("page_token", "give either page_token or offset, not both",
                         "Chỉ dùng một trong hai tham số page_token hoặc offset, không dùng cả hai.")
    return limit, decode_token(token, filters) if token else (offset or 0)


# -- filters + search + paging in one call ---------------------------------------------------------

@dataclass(frozen=True)
class Filter:
    """An exact-match query parameter (``?type=xa``): its declared value ``schema`` and how an item
    ``matches`` the parsed value."""

    param: str
    matches: Callable[[Mapping[str, Any], Any], bool]
    schema: Mapping[str, Any]
    description: str = ""

    def declaration(self) -> Param:
        return Param(self.param, self.description, dict(self.schema))


def field_filter(param: str, field: str, choices: Sequence[str], description: str = "") -> Filter:
    """``item[field]`` equals the value, one of ``choices``."""
    return Filter(param, lambda item, v: item.get(field) == v, {"type": "string", "enum": list(choices)},
                  description or "one of " + ", ".join(choices))


def code_filter(param: str, field: str, pattern: str, description: str = "") -> Filter:
    """``item[field]`` equals the value, a code matching ``pattern``."""
    return Filter(param, lambda item, v: item.get(field) == v,
                  {"type": "string", "pattern": pattern, "maxLength": MAX_QUERY_CHARS}, description)


def bool_filter(param: str, field: str, description: str = "") -> Filter:
    """``item[field]`` is the value, ``true`` or ``false``."""
    return Filter(param, lambda item, v: item.get(field) is v, {"type": "boolean"}, description)


SEARCH_PARAM = Param("q", "Search names, ignoring case and Vietnamese diacritics (\"dong dang\" finds \"Đồng Đăng\").",
                     {"type": "string", "maxLength": MAX_QUERY_CHARS})


def list_params(filters: Sequence[Filter] = (), *, search: Param = SEARCH_PARAM,
                default_limit: int = DEFAULT_LIMIT) -> tuple[Param, ...]:
    """The query parameters of a list served by :func:`listing`: ``q``, paging, then the filters."""
    return (search,
            Param("limit", f"Page size, 1 to {MAX_LIMIT} (default {default_limit}).",
                  {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default_limit}),
            Param("page_token", "The next_page_token of the previous page (same q and filters).",
                  {"type": "string", "maxLength": 200}),
            Param("offset", "Start at this position instead of a page_token.",
                  {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}),
            *(f.declaration() for f in filters))


def chosen_filters(query: Mapping[str, Any], filters: Sequence[Filter]) -> dict[str, Any]:
    """The filters the caller gave (parsed values), by parameter name."""
    return {f.param: query[f.param] for f in filters if query.get(f.param) is not None}


def listing(items: Sequence[Mapping[str, Any]], query: Mapping[str, Any], *,
            texts: Callable[[Mapping[str, Any]], Iterable[str]], filters: Sequence[Filter] = ()) -> Page:
    """Filter, search (``q``) and page (``limit``, ``page_token`` | ``offset``) ``items``;
    ``query`` holds the values parsed from :func:`list_params`."""
    q = Query.parse(query.get("q"))
    chosen = chosen_filters(query, filters)
    selected = [i for i in items if all(f.matches(i, chosen[f.param]) for f in filters if f.param in chosen)]
    selected = search(selected, q, texts)
    token_filters = {"q": q.phrase if q else None, **chosen}
    limit, offset = page_request(query, token_filters)
    return paginate(selected, limit=limit, offset=offset, filters=token_filters)
