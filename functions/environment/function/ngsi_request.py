"""What an NGSI-LD request asks of this broker (ETSI GS CIM 009; the quoted sentences are the ETSI
OpenAPI's for V1.6.1 and the clauses of V1.9.1): which of our entity types a type selection names,
which attributes ``attrs`` names, the representation ``options`` asks for, how many instances a
temporal query may answer, and what a path or method we do not serve is in NGSI-LD's terms.

Terms are resolved against the Smart Data Models context our answers link to: ``AirQualityObserved``
and ``https://smartdatamodels.org/dataModel.Environment/AirQualityObserved`` are the same type,
``pm25`` and ``https://smartdatamodels.org/dataModel.Environment/pm25`` the same attribute.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from lscloud import errors

from . import ngsi
from .ngsi_query import MAX_DEPTH

SDM = "https://smartdatamodels.org/dataModel.Environment/"
CORE = "https://uri.etsi.org/ngsi-ld/"
# an NGSI-LD name (a term): letters, digits and "_" (the OpenAPI's Name, with "-" and "." that
# Smart Data Models terms use); a fully qualified name is a URI instead
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_TOKENS = re.compile(r"\s*([(),|;]|[^(),|;\s]+)")


def _valid_name(term: str) -> bool:
    return bool(_NAME.fullmatch(term)) or ngsi.is_uri(term)


def _expanded(term: str, vocab: str) -> str:
    """``term`` as a short name: a fully qualified name in ``vocab`` (or the core context) loses
    its prefix; anything else stays as it is (and matches nothing of ours if it is not a term)."""
    for prefix in (vocab, CORE):
        if term.startswith(prefix) and _NAME.fullmatch(term[len(prefix):]):
            return term[len(prefix):]
    return term


# -- type: V1.6.1 "Selection of Entity Types as per clause 4.17" ----------------------------------

def type_kinds(selection: str) -> set[str]:
    """The station kinds (``air``, ``noise``, ``water``) a type selection selects.

    The selection language (4.17): ``,`` and ``|`` are "or", ``;`` is "and", parentheses group;
    ``*`` is every type. Each of our entities has one type, so "and" of two different types
    selects none. A type we hold no entity of selects none: 5.7.2.4 "If a selector of Entity Types
    is provided, keep in S only those Entities" of those types, an empty S being a 200 with an
    empty list like any other. A term that is neither a name nor a URI is BadRequestData (``type``).
    """
    if selection.strip() == "*":
        return set(ngsi.TYPES)
    tokens = _TOKENS.findall(selection)
    pos = depth = 0

    def bad(why: str, why_vi: str) -> ngsi.BadRequestData:
        return ngsi.bad("type", f"cannot read the type selection {selection[:80]!r}: {why}",
                        f"Không đọc được bộ chọn kiểu {selection[:80]!r}: {why_vi}.")

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def alternatives() -> set[str]:       # term (("," | "|") term)*
        nonlocal pos
        kinds = conjunction()
        while peek() in (",", "|"):
            pos += 1
            kinds |= conjunction()
        return kinds

    def conjunction() -> set[str]:        # factor (";" factor)*
        nonlocal pos
        kinds = factor()
        while peek() == ";":
            pos += 1
            kinds &= factor()
        return kinds

    def factor() -> set[str]:             # "(" alternatives ")" | name
        nonlocal pos, depth
        token = peek()
        if token == "(":
            # each level is three frames of this descent: q's bound, long before the interpreter's
            depth += 1
            if depth > MAX_DEPTH:
                raise bad(f"parentheses nested more than {MAX_DEPTH} deep",
                          f"các dấu ngoặc lồng nhau quá {MAX_DEPTH} mức")
            pos += 1
            kinds = alternatives()
            if peek() != ")":
                raise bad("a parenthesis is not closed", "thiếu dấu đóng ngoặc")
            pos += 1
            depth -= 1
            return kinds
        if token is None or token in ("(", ")", ",", "|", ";") or not _valid_name(token):
            raise bad(f"{str(token)[:40]!r} is neither an entity type name nor a URI",
                      f"{str(token)[:40]!r} không phải tên kiểu thực thể hay URI")
        pos += 1
        kind = ngsi.KIND_OF.get(_expanded(token, SDM))
        return {kind} if kind else set()

    kinds = alternatives()
    if pos != len(tokens):
        raise bad(f"unexpected {tokens[pos][:40]!r}", f"không mong đợi {tokens[pos][:40]!r}")
    return kinds


# -- attrs: V1.6.1 "List of Attributes to be matched by the Entity and included in the response" --

def attr_names(raw: str) -> set[str]:
    """The attribute names ``attrs`` lists (comma-separated), fully qualified ones as their terms;
    BadRequestData (``attrs``) for one that is neither a name nor a URI."""
    names = set()
    for item in raw.split(","):
        item = item.strip()
        if not item or not _valid_name(item):
            raise ngsi.bad("attrs", f"{item[:80]!r} is not an attribute name: attrs is a comma-separated list of names",
                           f"{item[:80]!r} không phải tên thuộc tính: attrs là danh sách tên, cách nhau bằng dấu phẩy.")
        names.add(_expanded(item, SDM))
    return names - {"id", "type"}


def project(entity: dict, names: set[str]) -> dict | None:
    """``entity`` with only the attributes in ``names`` (and its id and type); None when it has none
    of them, which for one entity is "a 404 Not Found", for a query an entity left out."""
    kept = {k: v for k, v in entity.items() if k in names}
    return {"id": entity["id"], "type": entity["type"], **kept} if kept else None


def no_such_attributes(entity_id: str, names: set[str]) -> ngsi.ResourceNotFound:
    """V1.6.1: "If the Entity does not have any of the Attributes in attrs, then a 404 Not Found
    shall be retrieved"."""
    listed = ", ".join(sorted(names))[:120]
    return ngsi.ResourceNotFound(f"{entity_id[:80]} has none of the attributes {listed}",
                                 detail_vi=f"Thực thể {entity_id[:80]} không có thuộc tính nào trong {listed}.",
                                 errors=[errors.field("attrs", "none of these is an attribute of the entity")])


# -- how much a temporal query answers ------------------------------------------------------------

class TooManyResults(errors.DomainError):
    """403, NGSI-LD's "The query associated to the operation is producing so many results that can
    exhaust client or server resources. It should be made more restrictive" (Table 5.5.2-1; its status
    by Table 6.3.2-1)."""
    status, type = 403, ngsi.ERRORS + "TooManyResults"
    title, title_vi = "Too many results", "Quá nhiều kết quả"


MAX_INSTANCES = 31 * 24
"""Temporal instances one answer holds per attribute (and aggregation method): a month of hourly
values. A year of them is 1.8 MB to build and send; longer windows are asked for aggregated."""


_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)   # on an hour of every offset we meet (whole hours)


def temporal_instances(start: datetime, end: datetime, period_h: int | None, aggregated: bool,
                       last_n: int | None) -> int:
    """How many instances per attribute a temporal query over (``start``, ``end``] answers at most:
    its hour ends, or its periods when aggregated (one period without ``aggrPeriodDuration``, as
    :func:`.ngsi.temporal` makes them), the last ``last_n`` of them with lastN."""
    if aggregated:
        n = max(1, math.ceil((end - start) / timedelta(hours=period_h))) if period_h else 1
    else:
        hour = timedelta(hours=1)
        n = (end - _EPOCH) // hour - (start - _EPOCH) // hour
    return min(n, last_n) if last_n else n


def bound_instances(start: datetime, end: datetime, period_h: int | None, aggregated: bool,
                    last_n: int | None, window_field: str) -> None:
    """TooManyResults when the query answers more than :data:`MAX_INSTANCES` instances per attribute,
    naming what to change: ``aggrPeriodDuration`` when aggregated, else ``window_field`` (the end of
    the window the caller chose). "More restrictive" here: a narrower window, ``lastN``, or the values
    aggregated (``aggrMethods`` with a longer ``aggrPeriodDuration``)."""
    n = temporal_instances(start, end, period_h, aggregated, last_n)
    if n <= MAX_INSTANCES:
        return
    if aggregated:
        field = "aggrPeriodDuration"
        en = (f"{n} periods of {period_h} hours per attribute; one answer holds at most {MAX_INSTANCES}: "
              "ask for a longer aggrPeriodDuration (P1D, P7D …), a narrower window or lastN")
        vi = (f"{n} khoảng {period_h} giờ cho mỗi thuộc tính; mỗi câu trả lời tối đa {MAX_INSTANCES}: hãy dùng "
              "aggrPeriodDuration dài hơn (P1D, P7D …), khoảng thời gian hẹp hơn hoặc lastN.")
    else:
        field = window_field
        en = (f"{n} hourly values per attribute; one answer holds at most {MAX_INSTANCES} ({MAX_INSTANCES // 24} days): "
              "narrow the window, ask for lastN, or aggregate (aggrMethods=avg,max&aggrPeriodDuration=P1D)")
        vi = (f"{n} giá trị theo giờ cho mỗi thuộc tính; mỗi câu trả lời tối đa {MAX_INSTANCES} ({MAX_INSTANCES // 24} ngày): "
              "hãy thu hẹp khoảng thời gian, dùng lastN, hoặc tổng hợp (aggrMethods=avg,max&aggrPeriodDuration=P1D).")
    raise TooManyResults(en, detail_vi=vi, errors=[errors.field(field, en, vi)])


# -- options: 6.3.7 Representation of Entities ---------------------------------------------------

def options(raw: str | None) -> set[str]:
    return {o.strip() for o in (raw or "").split(",") if o.strip()}


def representation(opts: set[str]) -> str:
    """``keyValues``, ``concise`` or ``normalized``. V1.6.1: "When its value includes the keyword
    "keyValues" (or "simplified" as a synonym), a simplified representation of Entities shall be
    provided"; "When its value includes the keyword "concise", a concise lossless representation
    of Entities shall be provided". Asked for both, the simplified one wins (it says less)."""
    if opts & {"keyValues", "simplified"}:
        return "keyValues"
    return "concise" if "concise" in opts else "normalized"


# -- what an unserved path is ---------------------------------------------------------------------

_SEG = r"[^/]+"
# resources of the NGSI-LD API (Table 6.2-1; V1.6.1's OpenAPI paths and those V1.8/1.9 added)
_RESOURCES = [re.compile(p) for p in (
    r"entities", rf"entities/{_SEG}", rf"entities/{_SEG}/attrs", rf"entities/{_SEG}/attrs/{_SEG}",
    r"entityOperations/(?:create|upsert|update|delete|query|merge|purge)",
    r"subscriptions", rf"subscriptions/{_SEG}",
    r"csourceRegistrations", rf"csourceRegistrations/{_SEG}",
    r"csourceSubscriptions", rf"csourceSubscriptions/{_SEG}",
    r"temporal/entities", rf"temporal/entities/{_SEG}", rf"temporal/entities/{_SEG}/attrs",
    rf"temporal/entities/{_SEG}/attrs/{_SEG}", rf"temporal/entities/{_SEG}/attrs/{_SEG}/{_SEG}",
    r"temporal/entityOperations/(?:query|upsert)",
    r"types", rf"types/{_SEG}", r"attributes", rf"attributes/{_SEG}",
    r"jsonldContexts", rf"jsonldContexts/{_SEG}",
    r"info/sourceIdentity", r"info/conformance", rf"entityMaps/{_SEG}")]
# the resources this broker reads (GET), as routed
SERVED = (r"entities", rf"entities/{_SEG}", rf"temporal/entities/{_SEG}")


def unsupported(method: str, path: str) -> errors.DomainError:
    """What ``method`` on ``/ngsi-ld/v1/<path>`` is when no view of ours serves it: an NGSI-LD
    resource we do not offer that method or operation on is OperationNotSupported (422, "It is
    used to indicate that the operation is not available"): this broker is read-only and answers
    only entities and their temporal evolution; anything else is ResourceNotFound (404)."""
    shown = f"{method} /ngsi-ld/v1/{path[:120]}"
    if path.endswith("/") and any(re.fullmatch(p, path[:-1]) for p in SERVED) and method == "GET":
        return ngsi.ResourceNotFound(f"{shown}: no resource here; drop the trailing slash",
                                     detail_vi=f"{shown}: không có tài nguyên ở đây; hãy bỏ dấu '/' ở cuối.",
                                     errors=[errors.field("path", "ends with a slash")])
    if any(p.fullmatch(path.rstrip("/")) for p in _RESOURCES):
        return ngsi.OperationNotSupported(
            f"{shown} is not available: this broker offers reading entities (GET /entities, "
            "GET /entities/{id}) and their temporal evolution (GET /temporal/entities/{id}) only",
            detail_vi=f"{shown} không được hỗ trợ: hệ thống chỉ cho đọc thực thể (GET /entities, GET /entities/{{id}}) "
                      "và diễn biến theo thời gian của chúng (GET /temporal/entities/{id}).",
            errors=[errors.field("method", f"{method} is not offered on this resource")])
    return ngsi.ResourceNotFound(f"{shown}: not a resource of the NGSI-LD API",
                                 detail_vi=f"{shown}: không phải tài nguyên của NGSI-LD API.",
                                 errors=[errors.field("path", "not an NGSI-LD resource")])
