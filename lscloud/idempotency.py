"""Idempotent writes: the same request twice gives the first answer twice, and runs once.

The record design of AWS Powertools' idempotency utility, on the object store:

- the record lives at ``idempotency/<pseudonym(scope)>/<pseudonym(key)>.json``; the scope is
  the function, the caller and the route, so two callers' keys never meet; both parts are keyed
  hashes (:mod:`lscloud.pseudonyms`): a caller is often a citizen whose subject is a CCCD;
- the first call writes it create-only (``If-None-Match: *``) with status ``INPROGRESS``, a
  keyed hash of the payload (the body and the query parameters: an upload's title or file name
  travels in the query), one keyed digest per field (:func:`lscloud.resends.digests`; ``?name``
  for a query parameter, ``""`` for a body that is not JSON) and a short expiry, runs the handler, then replaces it (``If-Match`` its ETag) with status
  ``COMPLETED``, the response, and the long expiry (``settings.idempotency_ttl_s``);
- a second call finds the record: same payload and ``COMPLETED`` -> the stored response again
  with ``Idempotent-Replayed: true``; ``INPROGRESS`` -> 409 with ``Retry-After``; another
  payload under the same key -> 409 ``idempotency-key-reused`` naming the differing fields
  (JSON pointers, never their values: :class:`lscloud.resends.IdReused`);
- a handler exception or a 5xx answer deletes the record so the client's retry can run; an
  ``INPROGRESS`` record past its expiry (crashed process) is taken over with ``If-Match``.

A create whose request names nothing to key it by (a citizen's report, an Open311 service request,
an uploaded document), where standard clients send no header, can be keyed by the request itself
when the header is absent (``implicit_s``): the key is a keyed hash of the body and query, the scope
the caller (an anonymous one by the address the gateway saw, :func:`lscloud.ratelimit.caller_subject`),
and the record lives ``implicit_s``. A client that retries after a lost answer then gets the first
answer instead of a second report; two identical creates from one caller within those minutes are
one.

A move (``move=True``: acknowledge, rate, sign …) is keyed the same way, so a retry after a lost
answer gets the first answer (its second run would be refused: the record has moved) and the move
runs once; a different caller's same move is its own request and is refused as the state says. But a
move sent again after the state came back (reopen, close, reopen) is a new move, and the first
answer would hide it: so the move's write keeps the implicit record's key with the record
(:data:`lscloud.aggregate.IMPLICIT_ANSWER`) and the record's next write deletes that implicit
record. The first answer then stands only while its move is the record's last. Answered from the
idempotency record, not re-derived from the aggregate: the route's own checks before its write (a
signer's turn, a rating's claim, a handler's agency) refuse a retry as much as the state machine does.

A route that creates one create-only record named by the client-chosen id can let that record be
its own idempotency record (``in_record=True``): the view keeps :func:`first_request` in the record
it creates, and when the create finds the record already there, :func:`resent` judges the request
against it exactly as above (same caller and body: the first answer again; another body: 409
naming the fields). The record's create-only write is what runs the work once, so no separate
record is written: two conditional PUTs fewer on every create.

:func:`created_or_resent` is that flow for a view: whatever refuses the create with a 4xx — the
record found there by its create-only write, or a check before it that would answer a resend
otherwise than the first time (a slot filled since, a document removed since) — the stored
record is judged, so a resend always gets the first answer. What finds the record
(:meth:`lscloud.aggregate.Aggregate.resend`) also finishes a create whose side round was cut off.
"""

from __future__ import annotations

import base64
import functools
import re
import time
from typing import Any, Callable, TypeVar

from flask import Response, current_app, g, request

from . import pseudonyms, resends, runonce, store
from .auth import principal
from .context import app_state
from .errors import DomainError
from .problems import Problem
from .web.bodies import json_body

T = TypeVar("T")


HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

_KEY_MAX = 255
# 1-255 visible ASCII characters; written in the syntax Python and ECMA-262 share, so the OpenAPI
# document's pattern (header_parameter) is this very rule and cannot drift from it
_KEY_RE = re.compile(rf"[\x21-\x7e]{{1,{_KEY_MAX}}}")
# response headers not worth replaying (hop-by-hop, per-response or per-trace)
_SKIP_HEADERS = {"set-cookie", "date", "content-length", "server", "traceparent", "tracestate", "connection",
                 "transfer-encoding"}


def _json_payload() -> Any:
    """The request's JSON body, or None when there is none or it is not JSON (an upload)."""
    body = g.get("body")
    if body is None and request.get_data(cache=True).strip():
        try:
            body = json_body()
        except Problem:
            return None
    return body


def _query() -> list[list[str]]:
    """The request's query parameters, in order of name (an upload's title, kind or filename travel
    there): part of the request as much as its body."""
    return sorted([k, v] for k, v in request.args.items(multi=True))


def payload_hash(salt: str = "", body: Any = None, query: list | None = None) -> str:
    """Keyed hash of the canonical JSON ``body`` (key order and spacing do not matter), else of the
    raw bytes, and of the ``query`` parameters when there are any (a request without them hashes as
    before they counted, so the records kept then still answer their resends)."""
    data = resends.canonical(body) if body is not None else request.get_data(cache=True)
    if query:
        data += b"\x00?" + resends.canonical(query)
    return pseudonyms.pseudonym("idempotency-payload", salt.encode() + b"\x00" + data)


def _fingerprint(rkey: str) -> tuple[Any, str, dict]:
    """The request's JSON body (or None), its payload hash and its fields' digests: one per JSON
    pointer of the body, one per query parameter (``?name``), and the raw body's as ``""`` when it
    is not JSON (an upload), so a 409 names what differs."""
    body, query = _json_payload(), _query()
    # the raw bytes' keyed hash stands for a body that is not JSON (pointers then mean nothing)
    fields = resends.digests(body, rkey) if body is not None else {"fields": {"": payload_hash(rkey)}}
    if query:
        names: dict[str, list[str]] = {}
        for k, v in query:
            names.setdefault(k, []).append(v)
        fields["query"] = resends.digests(names, rkey)["fields"]
    return body, payload_hash(rkey, body, query), fields


def _differs(first: dict | None, body: Any, rkey: str, again: dict) -> list[str]:
    """What the current request (``body``, its digests ``again``) changes from the one ``first``
    digested (:func:`_fingerprint` both)."""
    if not first:
        return [""]   # a record without digests: it differs as a whole
    if body is not None and "" not in (first.get("fields") or {}):
        out = resends.changed(first, body, rkey)
    else:
        out = [] if (first.get("fields") or {}).get("") == again["fields"].get("") else [""]
    a, b = first.get("query") or {}, again.get("query") or {}
    out += sorted("?" + p.lstrip("/").split("/")[0] for p in set(a) | set(b) if a.get(p) != b.get(p))
    return list(dict.fromkeys(out)) or [""]


def record_key(function: str, caller: str, method: str, path: str, key: str) -> str:
    """Where the record for ``key`` lives; every part is a keyed hash, so no input can walk the key
    space and no caller (a citizen's CCCD) can be recognised in the key."""
    scope = "\n".join([function, caller, method.upper(), path])
    return f"{runonce.IDEMPOTENCY.prefix}{pseudonyms.pseudonym('idempotency-scope', scope)}/" \
           f"{pseudonyms.pseudonym('idempotency-key', key)}.json"


def recorded(key: str) -> bool:
    """Whether this request (its function, caller, method and path) already has a record under the
    header key ``key``: a resend, which :func:`idempotent` answers from that record (or refuses as the
    key's reuse) without running the view. For a check made before the body is read (a rate limit
    that must not count a retry: :func:`lscloud.web.before_body`)."""
    objects, bucket = store.connection()
    try:
        objects.head(bucket, record_key(app_state().name, _scope(), request.method, request.path, key))
        return True
    except store.DoesNotExist:
        return False


IMPLICIT_S = 900
"""How long an implicit key (:func:`idempotent`'s ``implicit_s``) answers its request again: a
phone's retries after a lost answer come within seconds or minutes."""


def idempotent(key_from: Callable[[Any], Any] | None = None, *, required: bool = True,
               inprogress_timeout_s: int = 60, in_record: bool = False, implicit_s: int | None = None,
               header_too: bool = False, move: bool = False) -> Callable:
    """Make a view idempotent on the ``Idempotency-Key`` header (or ``key_from(body)``).

    Place it under ``@allow`` (the caller scopes the key) and under ``@validate_body`` when
    used (invalid bodies never create records). ``key_from`` extracts a client-chosen id from
    the parsed body; the header wins when both are present. Without a key the view answers
    400 naming the header, unless ``required=False`` (then it simply runs).

    ``in_record=True`` (with ``key_from``): the record the view creates under that id is the
    idempotency record (see the module docstring): the key is the id alone, the view keeps
    :func:`first_request` in its record and answers a create that finds it there with
    :func:`resent`. ``header_too`` (with ``in_record``): a body without that id is keyed by the
    ``Idempotency-Key`` header instead (the record's id then derives from the request's stamp).

    ``implicit_s`` (with ``required=False``: see the module docstring): without a key, the same
    request from the same caller within ``implicit_s`` seconds runs once and gets the first answer
    again. ``move=True`` (with ``implicit_s``), for a view that moves a record through
    :meth:`lscloud.aggregate.Aggregate.mutate`: that first answer stands only until the record's next
    write, so the same move once the record came back runs as a move of its own.
    """
    if in_record and key_from is None:
        raise ValueError("in_record needs key_from: the record is named by the client-chosen id")
    if implicit_s is not None and (required or in_record or implicit_s <= 0):
        raise ValueError("implicit_s keys an optional-key view by its request, for a positive time")
    if move and implicit_s is None:
        raise ValueError("move says how long an implicit key's answer stands: it needs implicit_s")

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = _key(key_from, header=not in_record)
            if key is None and in_record and header_too:
                key = _key(None)
            if key is None:
                if required:
                    raise Problem(400, "idempotency-key-missing", "Idempotency key required",
                                  f"This endpoint needs an {HEADER} header"
                                  + (" or a client-chosen id in the body." if key_from else "."),
                                  title_vi="Thiếu khóa idempotency",
                                  detail_vi=f"Chức năng này cần tiêu đề {HEADER}.", header=HEADER)
                if implicit_s:
                    return _run(view, args, kwargs, None, inprogress_timeout_s, ttl_s=implicit_s, move=move)
                return view(*args, **kwargs)
            if in_record:
                g.lscloud_first_request, g.lscloud_idempotency_key = _stamp(key), key
                return view(*args, **kwargs)
            return _run(view, args, kwargs, key, inprogress_timeout_s)

        wrapper.__lscloud_idempotent__ = True
        # what /openapi.json declares (lscloud.web.openapi): an in_record view reads the header only
        # with header_too
        wrapper.__lscloud_idempotency_header__ = None if in_record and not header_too else header_parameter(
            required=required, key_from=key_from is not None, implicit_s=implicit_s, move=move)
        return wrapper

    return decorate


def header_parameter(*, required: bool = True, key_from: bool = False, implicit_s: int | None = None,
                     move: bool = False) -> dict:
    """The OpenAPI 3.1 parameter object of the ``Idempotency-Key`` header of an :func:`idempotent`
    view (``key_from``: the view has one; ``implicit_s``: the request keys itself; ``move``: until
    the record it moved changes). Required only
    when nothing can stand in for it: with ``key_from`` the body's id can, and ``required=False``
    runs the request without a key."""
    needed = required and not key_from
    if needed:
        when = " Required: a request without it is answered 400. / Bắt buộc: thiếu khóa trả về 400."
    elif implicit_s:
        minutes = max(1, round(implicit_s / 60))
        when = (f" Optional: without it, the same request (body and query) from the same caller within "
                f"{minutes} minutes gets the first answer again and runs once"
                + (", while the record it moved has not changed since" if move else "") + ". / Không bắt buộc: thiếu khóa "
                f"thì cùng yêu cầu (nội dung và tham số) của cùng người gọi trong {minutes} phút nhận lại câu "
                "trả lời đầu tiên và chỉ thực hiện một lần"
                + (", khi bản ghi được thao tác chưa thay đổi kể từ đó" if move else "") + ".")
    elif key_from:
        when = (" Optional: without it the client-chosen id in the body is the key. / Không bắt buộc: "
                "thiếu khóa thì mã do người gọi chọn trong nội dung là khóa.")
    else:
        when = (" Optional: without it the request runs once per sending. / Không bắt buộc: thiếu khóa "
                "thì mỗi lần gửi là một lần thực hiện.")
    return {
        "name": HEADER, "in": "header", "required": needed,
        "description": f"A key the caller chooses per request (1-{_KEY_MAX} visible ASCII characters, e.g. a "
                       "UUID): the same request sent again with it gets the first answer again (with "
                       f"{REPLAYED_HEADER}: true) and runs once; another body under the same key is a 409. / "
                       f"Khóa người gọi chọn cho mỗi yêu cầu (1-{_KEY_MAX} ký tự ASCII hiển thị được, ví dụ "
                       "UUID): gửi lại cùng yêu cầu với khóa đó nhận lại câu trả lời đầu tiên và chỉ thực hiện "
                       "một lần; nội dung khác với cùng khóa trả về 409." + when,
        "schema": {"type": "string", "minLength": 1, "maxLength": _KEY_MAX, "pattern": f"^{_KEY_RE.pattern}$"},
    }


def _key(key_from, header: bool = True) -> str | None:
    key = request.headers.get(HEADER) if header else None
    if key is None and key_from is not None:
        body = g.get("body")
        if body is None and request.get_data(cache=True).strip():
            body = json_body()
        value = key_from(body) if body is not None else None
        key = None if value in (None, "") else str(value)
    if key is None:
        return None
    key = key.strip()
    if not _KEY_RE.fullmatch(key):
        raise Problem(400, "idempotency-key-invalid", "Invalid idempotency key",
                      f"The {HEADER} must be 1-255 visible ASCII characters.",
                      title_vi="Khóa idempotency không hợp lệ",
                      detail_vi=f"{HEADER} phải gồm 1-255 ký tự ASCII hiển thị được.", header=HEADER)
    return key


def _implicit_key() -> str:
    """The key of a request sent without one (``implicit_s``): a keyed hash of its body and query."""
    return "~" + payload_hash("implicit", _json_payload(), _query())


def _scope() -> str:
    """Whose keys a header key is among: the token's subject; an anonymous caller by its address
    (:func:`lscloud.ratelimit.client_address`). Every anonymous caller shared the scope
    "anonymous": a predictable key sent by another citizen was answered with this one's stored
    answer, or refused as reused."""
    from .ratelimit import caller_subject

    who = principal()
    if getattr(who, "anonymous", False):
        return "anonymous:" + caller_subject(who, request.headers, request.remote_addr)
    return who.id


def _run(view, args, kwargs, key: str | None, inprogress_timeout_s: int, ttl_s: int | None = None,
         move: bool = False):
    """Run ``view`` once for ``key`` (None: the request's own, :func:`_implicit_key`, kept ``ttl_s``;
    ``move``: withdrawn by the moved record's next write, :data:`lscloud.aggregate.IMPLICIT_ANSWER`)."""
    from .aggregate import IMPLICIT_ANSWER
    from .ratelimit import caller_subject
    from .store import leases
    state = app_state()
    objects, bucket = store.connection()
    if key is None:
        # scoped apart from every header key; an anonymous caller by its address, not all anonymous ones
        caller = "implicit:" + caller_subject(principal(), request.headers, request.remote_addr)
        rkey = record_key(state.name, caller, request.method, request.path, _implicit_key())
    else:
        rkey = record_key(state.name, _scope(), request.method, request.path, key)
    body, stamp = _stamped(rkey)
    phash, fields = stamp["payload_hash"], stamp["request_fields"]
    # a run cut off (a 5xx: a process that died, a store that failed) gives its lease back and the
    # client's retry runs the view again: the view may keep this stamp with what it stores, to find
    # it then (first_request, resent) instead of doing it twice
    g.lscloud_first_request, g.lscloud_idempotency_key = stamp, key
    now = time.time()
    try:
        held = leases.acquire(objects, bucket, rkey, {"status": leases.IN_PROGRESS, "payload_hash": phash,
                                                       "request_fields": fields, "created_at": now,
                                                       "expires_at": now + inprogress_timeout_s})
    except leases.LeaseContended:
        raise _in_progress(key, retry_after=1) from None
    if not isinstance(held, leases.Lease):
        return _answer_existing(held, key, phash, body, rkey, fields)
    answering = IMPLICIT_ANSWER.set(rkey) if move and key is None else None
    try:
        resp = current_app.make_response(view(*args, **kwargs))
    except BaseException:
        held.release()
        raise
    finally:
        if answering is not None:
            IMPLICIT_ANSWER.reset(answering)
    if resp.status_code >= 500 or resp.is_streamed:
        held.release()
        return resp
    done = time.time()
    held.complete({
        "status": leases.COMPLETED, "payload_hash": phash, "request_fields": fields, "completed_at": done,
        "expires_at": done + (ttl_s or state.settings.idempotency_ttl_s),
        "response": {
            "status": resp.status_code,
            "headers": [[k, v] for k, v in resp.headers.items() if k.lower() not in _SKIP_HEADERS],
            "body_b64": base64.b64encode(resp.get_data()).decode(),
        },
    })
    return resp


def _stamp(key: str) -> dict:
    """The stamp of this request under the header or body ``key`` (:func:`first_request`)."""
    return _stamped(record_key(app_state().name, _scope(), request.method, request.path, key))[1]


def _stamped(rkey: str) -> tuple[Any, dict]:
    """The request's payload and its stamp under the record key ``rkey``: its scope, a keyed hash of
    the payload, one keyed digest per field."""
    body, phash, fields = _fingerprint(rkey)
    return body, {"scope": rkey, "payload_hash": phash, "request_fields": fields}


def first_request() -> dict:
    """What a record keeps of the request that created it: the request's scope (its caller, route
    and key: the same for every sending of one request), a keyed hash of the payload and one keyed
    digest per field (no value can be read back from it); store it with the record, hand it to
    :func:`resent` later.

    In an ``in_record`` view the record is the idempotency record. In any other :func:`idempotent`
    view (a header key, or an implicit one) the lease runs the request once, but a run cut off
    gives it back, and the retry runs the view again: a view whose effects are not one create-only
    write keeps this stamp with them (a decision, a report, a stamp batch: its id derived from
    ``scope``) and finds them by it."""
    return g.lscloud_first_request


def resent(first: dict | None) -> bool:
    """Judge the current request, whose create found its record already there, against the
    record's :func:`first_request` (``first``).

    True: the same caller sent the same body again; answer it with the stored record as the first
    time (and the ``Idempotent-Replayed`` header: :func:`mark_replayed`). Raises the 409
    ``idempotency-key-reused`` problem naming the fields when the same caller sent another body.
    False: the record is not this caller's request (another caller's, or kept before this): the
    view answers its own conflict.
    """
    again = first_request()
    if not first or first.get("scope") != again["scope"]:
        return False
    if first.get("payload_hash") == again["payload_hash"]:
        return True
    fields = _differs(first.get("request_fields"), _json_payload(), again["scope"], again["request_fields"])
    raise resends.IdReused(fields, key=g.lscloud_idempotency_key).problem(header=HEADER)


def created_or_resent(create: Callable[[], T],
                      find: Callable[[Callable[[dict | None], bool]], T | None]) -> tuple[T, bool]:
    """Run an ``in_record`` view's ``create()``; when it refuses (a 4xx), ``find(resent)`` looks
    for the stored record this request is the resend of (judged by :func:`resent`:
    :meth:`lscloud.aggregate.Aggregate.resend` is one). Returns ``(created, False)``, or
    ``(stored, True)`` for a resend (answer it with :func:`mark_replayed`); anything else raises
    the refusal (or :func:`resent`'s 409 naming the fields of another body under the same id)."""
    try:
        return create(), False
    except (DomainError, Problem) as exc:
        if exc.status >= 500:
            raise
        found = find(resent)
        if found is None:
            raise
        return found, True


def mark_replayed(resp: Response) -> Response:
    """``resp`` marked as the answer to a resent request."""
    resp.headers[REPLAYED_HEADER] = "true"
    return resp


def _answer_existing(record: dict, key: str | None, phash: str, body: Any, rkey: str, fields: dict) -> Response:
    """Another call holds this key: replay its answer, or refuse a different body / a call in progress."""
    from .store import leases

    if record.get("payload_hash") != phash:
        raise resends.IdReused(_differs(record.get("request_fields"), body, rkey, fields), key=key).problem(header=HEADER)
    if record.get("status") == leases.COMPLETED:
        return _replay(record["response"])
    raise _in_progress(key, retry_after=max(1, min(int(float(record["expires_at"]) - time.time()) + 1, 30)))


def _in_progress(key: str | None, retry_after: int) -> Problem:
    if key is None:   # keyed by the request itself: no key of the caller's to name
        return Problem(409, "idempotency-in-progress", "Request in progress",
                       "The same request is still being processed; retry later.",
                       title_vi="Yêu cầu đang được xử lý",
                       detail_vi="Cùng yêu cầu này đang được xử lý; vui lòng thử lại sau.",
                       headers={"Retry-After": str(retry_after)})
    return Problem(409, "idempotency-in-progress", "Request in progress",
                   f"A request with {HEADER} {key!r} is still being processed; retry later.",
                   title_vi="Yêu cầu đang được xử lý",
                   detail_vi=f"Yêu cầu với khóa {key!r} đang được xử lý; vui lòng thử lại sau.",
                   headers={"Retry-After": str(retry_after)}, header=HEADER, idempotency_key=key)


def _replay(stored: dict) -> Response:
    resp = Response(base64.b64decode(stored["body_b64"]), status=stored["status"],
                    headers=[(k, v) for k, v in stored["headers"]])
    resp.headers[REPLAYED_HEADER] = "true"
    return resp
