"""The NGSI-LD Query Language (ETSI GS CIM 009 V1.9.1 clause 4.9), which "shall be supported by
implementations": ``q`` read by a small recursive descent over its ABNF, then evaluated against an
entity (normalized, concise or keyValues).

What the clause asks and this module does: attribute existence (``q=pm25``); the comparison
operators; ``==``/``!=`` with a ValueList (``pm25==35,36``) or a Range (``pm25==30..40``); ``;``
(and, the tighter) and ``|`` (or); associations in parentheses, nested; dotted paths to a
sub-attribute (``pm25.observedAt>=2017-12-24T12:00:00Z``) and a trailing ``[member.path]`` into a
compound value; linked paths (``sensor{humidity}``), which match nothing here since our entities
have no Relationships; ``~=``/``!~=`` patterns. "When comparing dates or times, the order relation
considered shall be a temporal one": date-times, quoted or not, compare as instants.

Patterns run on Python's ``re``, which backtracks: a pattern is refused (400) unless it is small
enough that no string of ours can make it slow (:func:`_pattern`). Whatever is malformed raises
:class:`Malformed` with an English and a Vietnamese sentence; the caller names ``q``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time

from lscloud.patterns import ecma_regex_uncached


class Malformed(ValueError):
    """``q`` that the grammar does not produce (or a pattern refused), in both languages."""

    def __init__(self, message: str, message_vi: str):
        super().__init__(message)
        self.message, self.message_vi = message, message_vi


@dataclass(frozen=True)
class Path:
    names: tuple[str, ...]              # DottedPath: the attribute, then sub-attributes
    members: tuple[str, ...] = ()       # the trailing [a.b] into a compound value
    linked: bool = False                # AttrName{...}: follows a Relationship


@dataclass(frozen=True)
class Term:
    path: Path
    op: str | None = None               # None: existence
    values: tuple = ()                  # one value, a ValueList, or (lo, hi) of a Range
    is_range: bool = False
    pattern: re.Pattern | None = None


MAX_DEPTH = 16
# Pattern bounds (two variable quantifiers, none on a group, four choices with the "|"s, strings of
# MAX_SUBJECT characters; our longest, a name, has 200) keep a backtracking search to milliseconds:
# twenty "(|a)" in a row, with no quantifier at all, took seconds.
MAX_PATTERN, MAX_QUANTIFIERS, MAX_CHOICES, MAX_SUBJECT = 100, 2, 4, 256
_OPS = ("!~=", "~=", "==", "!=", ">=", "<=", ">", "<")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
                        r"(?P<zone>Z|[+-][0-9]{2}:?[0-9]{2})?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?Z?")
_RAW_END = set(";|(), \t\n")
_PROPERTY_TYPES = {"Property", "GeoProperty", "Relationship", "LanguageProperty", "ListProperty",
                   "VocabProperty", "JsonProperty", "ListRelationship"}


def _instant(text: str) -> datetime | None:
    """An ISO 8601 date-time with its offset as an aware datetime (None: it is not one)."""
    m = _DATE_TIME.fullmatch(text)
    if not m or not m.group("zone"):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse(q: str, is_uri: Callable[[str], bool] = lambda _: False):
    """The query tree of ``q`` (:func:`matches` evaluates it); :class:`Malformed` when the grammar
    does not produce ``q``. ``is_uri`` says whether an unquoted value is a URI (allowed after
    ``==`` and ``!=``)."""
    p = _Parser(q, is_uri)
    tree = p.expression(0)
    p.space()
    if p.i != len(q):
        raise p.error(f"unexpected {q[p.i:p.i + 20]!r}", f"không mong đợi {q[p.i:p.i + 20]!r}")
    return tree


class _Parser:
    def __init__(self, q: str, is_uri: Callable[[str], bool]):
        self.q, self.i, self.is_uri = q, 0, is_uri

    def error(self, why: str, why_vi: str) -> Malformed:
        return Malformed(f"cannot read q at character {self.i + 1}: {why}",
                         f"Không đọc được q ở ký tự thứ {self.i + 1}: {why_vi}.")

    def space(self) -> None:
        while self.i < len(self.q) and self.q[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.space()
        return self.q[self.i] if self.i < len(self.q) else ""

    def expression(self, depth: int):                  # "|" of ";" ("and" binds tighter, 4.9)
        alternatives = [self.conjunction(depth)]
        while self.peek() == "|":
            self.i += 1
            alternatives.append(self.conjunction(depth))
        return ("or", alternatives) if len(alternatives) > 1 else alternatives[0]

    def conjunction(self, depth: int):
        terms = [self.primary(depth)]
        while self.peek() == ";":
            self.i += 1
            terms.append(self.primary(depth))
        return ("and", terms) if len(terms) > 1 else terms[0]

    def primary(self, depth: int):                      # QueryTermAssoc or QueryTerm
        if self.peek() == "(":
            if depth >= MAX_DEPTH:
                raise self.error(f"parentheses nested deeper than {MAX_DEPTH}", f"dấu ngoặc lồng sâu quá {MAX_DEPTH} mức")
            self.i += 1
            tree = self.expression(depth + 1)
            if self.peek() != ")":
                raise self.error("a parenthesis is not closed", "thiếu dấu đóng ngoặc")
            self.i += 1
            return tree
        return self.term()

    def name(self) -> str:                              # AttrName = unicodeLetter *(letter / number / "_")
        start = self.i
        if self.i < len(self.q) and self.q[self.i].isalpha():
            self.i += 1
            while self.i < len(self.q) and (self.q[self.i].isalnum() or self.q[self.i] == "_"):
                self.i += 1
        if self.i == start:
            raise self.error("expected an attribute name", "cần tên thuộc tính")
        return self.q[start:self.i]

    def dotted(self) -> tuple[str, ...]:
        names = [self.name()]
        while self.q.startswith(".", self.i) and not self.q.startswith("..", self.i):
            self.i += 1
            names.append(self.name())
        return tuple(names)

    def path(self) -> Path:
        self.space()
        names = self.dotted()
        if self.q.startswith("{", self.i):             # LinkedEntityRelation: AttrName{[Type,…:]path}
            if len(names) > 1:
                raise self.error("a linked path starts at one attribute name", "đường liên kết bắt đầu bằng một tên thuộc tính")
            self.i += 1
            inner = re.match(r"(?:[^\W\d_]\w*(?:,[^\W\d_]\w*)*:)?", self.q[self.i:])
            self.i += inner.end()
            self.path()
            if not self.q.startswith("}", self.i):
                raise self.error("a { is not closed", "thiếu dấu }")
            self.i += 1
            return Path(names, linked=True)
        members: tuple[str, ...] = ()
        if self.q.startswith("[", self.i):
            self.i += 1
            members = self.dotted()
            if not self.q.startswith("]", self.i):
                raise self.error("a [ is not closed", "thiếu dấu ]")
            self.i += 1
        return Path(names, members)

    def term(self) -> Term:
        path = self.path()
        self.space()
        op = next((o for o in _OPS if self.q.startswith(o, self.i)), None)
        if op is None:
            if self.peek() in ("", ";", "|", ")"):
                return Term(path)                       # existence
            raise self.error("expected an operator (==, !=, >, >=, <, <=, ~=, !~=)",
                             "cần một phép so sánh (==, !=, >, >=, <, <=, ~=, !~=)")
        self.i += len(op)
        self.space()
        if op in ("~=", "!~="):
            return Term(path, op, pattern=_pattern(self.regex(), self))
        first = self.value(op)
        if self.q.startswith("..", self.i):
            self.i += 2
            if op not in ("==", "!="):
                raise self.error("a range goes with == or != only", "khoảng giá trị chỉ dùng với == hoặc !=")
            return Term(path, op, (first, self.value(op)), is_range=True)
        values = [first]
        while self.q.startswith(",", self.i):
            if op not in ("==", "!="):
                raise self.error("a list of values goes with == or != only", "danh sách giá trị chỉ dùng với == hoặc !=")
            self.i += 1
            values.append(self.value(op))
        return Term(path, op, tuple(values))

    def value(self, op: str):
        self.space()
        if self.q.startswith('"', self.i):
            try:
                text, end = json.JSONDecoder().raw_decode(self.q, self.i)
            except ValueError:
                raise self.error("a quoted string is not closed (or has a bad escape)",
                                 "chuỗi trong ngoặc kép chưa đóng (hoặc có ký tự thoát sai)") from None
            self.i = end
            return _instant(text) or text
        start = self.i
        while self.i < len(self.q) and self.q[self.i] not in _RAW_END and not self.q.startswith("..", self.i):
            self.i += 1
        raw = self.q[start:self.i]
        if raw in ("true", "false"):
            if op not in ("==", "!="):
                raise self.error("true and false go with == or != only", "true và false chỉ dùng với == hoặc !=")
            return raw == "true"
        if _NUMBER.fullmatch(raw):
            return float(raw)
        m = _DATE_TIME.fullmatch(raw)
        if m:
            if not m.group("zone"):
                raise self.error(f"the date-time {raw[:40]!r} needs its offset (Z or ±hh:mm; in a URL + is a space, write %2B)",
                                 f"thời điểm {raw[:40]!r} cần có múi giờ (Z hoặc ±hh:mm; trong URL dấu + là khoảng trắng, hãy viết %2B)")
            if (at := _instant(raw)) is None:
                raise self.error(f"{raw[:40]!r} is not a date-time", f"{raw[:40]!r} không phải là thời điểm hợp lệ")
            return at
        try:
            if _DATE.fullmatch(raw):
                return date.fromisoformat(raw)
            if _TIME.fullmatch(raw):
                return time.fromisoformat(raw)
        except ValueError:
            raise self.error(f"{raw[:40]!r} is not a date or a time", f"{raw[:40]!r} không phải là ngày hay giờ hợp lệ") from None
        if raw and op in ("==", "!=") and self.is_uri(raw):
            return raw
        raise self.error(f"{raw[:40]!r} is neither a number, a quoted string, a date-time, a date, a time, true, false "
                         "nor (after == or !=) a URI",
                         f"{raw[:40]!r} không phải là số, chuỗi trong ngoặc kép, thời điểm, ngày, giờ, true, false "
                         "hay (sau == hoặc !=) một URI")

    def regex(self) -> str:
        """A pattern: a quoted string, or the characters up to the next ``;``, ``|`` or unmatched
        ``)`` (a pattern with those inside is quoted)."""
        if self.q.startswith('"', self.i):
            try:
                text, self.i = json.JSONDecoder().raw_decode(self.q, self.i)
            except ValueError:
                raise self.error("a quoted pattern is not closed", "mẫu trong ngoặc kép chưa đóng") from None
            return text
        start, depth = self.i, 0
        while self.i < len(self.q):
            c = self.q[self.i]
            if c == "\\":
                self.i += 2
                continue
            if c in ";|)" and depth == 0:
                break
            depth += {"(": 1, ")": -1}.get(c, 0)
            self.i += 1
        self.i = min(self.i, len(self.q))               # a final backslash steps past the end
        return self.q[start:self.i]


def _pattern(source: str, p: _Parser) -> re.Pattern:
    """``source`` compiled, if it cannot backtrack for long: POSIX extended syntax (no
    backreferences, no ``(?…)`` extensions), no quantified group, at most two variable quantifiers
    and four choices (quantifiers and ``|``) in all."""
    if not source or len(source) > MAX_PATTERN:
        raise p.error(f"a pattern has 1 to {MAX_PATTERN} characters", f"mẫu dài từ 1 đến {MAX_PATTERN} ký tự")
    refused = Malformed(f"the pattern {source[:40]!r} is refused: it may have at most {MAX_QUANTIFIERS} of * + ? "
                        f"{{m,n}}, none after a group, at most {MAX_CHOICES} of those and | together, "
                        "and no backreference or (?…)",
                        f"Mẫu {source[:40]!r} bị từ chối: tối đa {MAX_QUANTIFIERS} ký hiệu lặp (* + ? {{m,n}}), "
                        f"không đặt sau một nhóm, tổng cộng với | tối đa {MAX_CHOICES}, "
                        "không có tham chiếu ngược hay (?…).")
    quantifiers, alternatives, i, in_class, previous = 0, 0, 0, False, ""
    while i < len(source):
        c = source[i]
        if c == "\\":
            if i + 1 < len(source) and source[i + 1].isdigit() and not in_class:
                raise refused
            previous, i = "atom", i + 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(" and source.startswith("(?", i):
            raise refused
        elif c == "|":
            alternatives += 1
            if quantifiers + alternatives > MAX_CHOICES:
                raise refused
        elif c in "*+?" or c == "{" and re.match(r"\{[0-9]*,[0-9]*\}", source[i:]):
            if previous == "group":
                raise refused
            quantifiers += 1
            if quantifiers > MAX_QUANTIFIERS or quantifiers + alternatives > MAX_CHOICES:
                raise refused
        elif c == "{" and re.match(r"\{[0-9]+\}", source[i:]) and previous == "group":
            raise refused
        previous = "group" if c == ")" and not in_class else "atom"
        i += 1
    try:
        return ecma_regex_uncached(source)   # a caller's pattern: not in the platform's cache
    except re.error as e:
        raise p.error(f"the pattern {source[:40]!r} is not a regular expression ({e.msg})",
                      f"mẫu {source[:40]!r} không phải là biểu thức chính quy") from None


# -- evaluation ----------------------------------------------------------------------------------

_MISSING = object()


def _value_of(node):
    """The target value of an attribute in any representation: a Property's ``value`` (normalized),
    ``{"value": …}`` (concise), the bare value (keyValues, or a sub-attribute like observedAt)."""
    if isinstance(node, dict):
        if node.get("type") in _PROPERTY_TYPES:
            return node.get("value", node.get("object", _MISSING))
        if "value" in node and "type" not in node:
            return node["value"]
    return node


def _target(entity: dict, path: Path):
    if path.linked:
        return _MISSING                                 # no Relationship to follow in our entities
    node = entity.get(path.names[0], _MISSING)
    for name in path.names[1:]:
        node = node.get(name, _MISSING) if isinstance(node, dict) else _MISSING
    if node is _MISSING:
        return _MISSING
    value = _value_of(node)
    for member in path.members:
        value = value.get(member, _MISSING) if isinstance(value, dict) else _MISSING
    return value


def _typed(value):
    """A target value as the query compares it: a string holding a date-time as an instant; a
    number (not a boolean) as a float."""
    if isinstance(value, str):
        try:
            if _DATE.fullmatch(value):
                return date.fromisoformat(value)
            if _TIME.fullmatch(value):
                return time.fromisoformat(value)
        except ValueError:
            return value
        return _instant(value) or value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _compare(have, op: str, want) -> bool:
    if type(have) is not type(want):                    # 4.9: another data type is "not matching"
        return False
    try:
        return {"==": have == want, ">": have > want, "<": have < want, ">=": have >= want, "<=": have <= want}[op]
    except TypeError:                                   # an aware time against a naive one
        return False


def _equal(have, term: Term) -> bool:
    items = [_typed(v) for v in have] if isinstance(have, list) else [_typed(have)]
    if term.is_range:
        lo, hi = term.values
        return any(_compare(h, ">=", lo) and _compare(h, "<=", hi) for h in items)
    return any(_compare(h, "==", v) for h in items for v in term.values)


def _holds(entity: dict, term: Term) -> bool:
    have = _target(entity, term.path)
    if have is _MISSING or have is None:
        return False
    if term.op is None:
        return True
    if term.pattern is not None:
        if not isinstance(have, str) or len(have) > MAX_SUBJECT:
            return False
        return (term.pattern.search(have) is not None) == (term.op == "~=")
    if term.op == "==":
        return _equal(have, term)
    if term.op == "!=":
        return not _equal(have, term)
    return _compare(_typed(have), term.op, term.values[0])


def matches(entity: dict, tree) -> bool:
    """Whether ``entity`` satisfies the query tree :func:`parse` made."""
    if isinstance(tree, Term):
        return _holds(entity, tree)
    kind, parts = tree
    return (any if kind == "or" else all)(matches(entity, t) for t in parts)
