"""API keys of the partner applications that post Open311 requests, issued by operators.

A key is ``<id>.<secret>``: the id finds the record, the secret is kept only as a keyed hash
(:mod:`lscloud.pseudonyms`, compared in constant time). It is shown once, at issue or rotation;
a revoked key is refused at once. A key may name the agency whose own system uses it, so that
system can post FixMyStreet updates on that agency's reports.

An operator console that retries an issue after a lost answer must not leave a second live key
nobody knows about, and the answer cannot be kept for a replay: it holds the secret, and an
idempotency record keeps its answer in clear for a day. So a name (with its agency) has one live
key: the id derives from them, and the record's create-only write refuses the retry, which is
answered 409 naming that key (rotate it if its secret was lost). The next id of the name is taken
once the one before is revoked. Neither issue nor rotate is replayed from a record for the same
reason: a rotate sent again makes another secret, and the answer that reaches the caller last holds
the live one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

from lscloud import errors, pseudonyms
from lscloud.aggregate import NoChange
from lscloud.query import unissued_page_token
from lscloud.statemachine import iso, now
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey

_KEY = re.compile(r"(?P<id>k[0-9a-f]{12})\.(?P<secret>[A-Za-z0-9_-]{20,64})")
PURPOSE = "reports-api-key"


TRIES = 32
"""Ids a name (with its agency) takes in turn, each once the one before is revoked."""


class BadKey(errors.Forbidden):
    type = "invalid-api-key"


class AlreadyIssued(errors.Conflict):
    type = "api-key-already-issued"
    title, title_vi = "API key already issued", "Khóa API đã được cấp"


def _hash(secret: str) -> str:
    return pseudonyms.pseudonym(PURPOSE, secret)


def _public(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "secret_hash"}


def new_id(name: str | None = None, agency: str | None = None, n: int = 0) -> str:
    """A key's id (``schemas/reports/api-key-id.json``): the ``n``-th of ``name`` and ``agency``
    (the same for every sending of one issue), or random without a name."""
    if name is None:
        return f"k{secrets.token_hex(6)}"
    # unkeyed: the id is no secret, and it must outlive a change of the pseudonym key
    folded = " ".join(unicodedata.normalize("NFC", name).casefold().split())
    return "k" + hashlib.sha256(f"{folded}\n{agency or ''}\n{n}".encode()).hexdigest()[:12]


def issue(name: str, agency: str | None, by: str | None) -> dict:
    """A new key for ``name`` (and ``agency``); :class:`AlreadyIssued` (409, naming it) while a live
    one has them."""
    from .models import ApiKey

    secret = secrets.token_urlsafe(24)
    for n in range(TRIES):
        kid = new_id(name, agency, n)
        data = {"id": kid, "name": name, "agency": agency, "secret_hash": _hash(secret), "created_at": iso(now()),
                "created_by": by, "rotated_at": None, "revoked_at": None}
        try:
            ApiKey(kid, data=data).save()
        except ConditionalCheckFailed:
            held = ApiKey.get(kid).data
            if held["revoked_at"]:
                continue
            raise _already(held) from None
        return {**_public(data), "api_key": f"{kid}.{secret}"}
    raise AlreadyIssued(f"{TRIES} keys of this name were revoked: choose another name",
                        detail_vi=f"Đã thu hồi {TRIES} khóa mang tên này: hãy chọn tên khác.",
                        errors=[errors.field("/name", "no id left for this name", "tên này không còn mã khóa")])


def _already(held: dict) -> AlreadyIssued:
    kid, whose = held["id"], f" for agency {held['agency']}" if held["agency"] else ""
    whose_vi = f" cho cơ quan {held['agency']}" if held["agency"] else ""
    return AlreadyIssued(
        f"a live API key named {held['name']!r}{whose} was already issued ({kid}, {held['created_at']}); its "
        f"secret is shown only once. If it was lost, rotate it (POST /v1/api-keys/{kid}/rotate); to replace "
        "the key, revoke it first.",
        detail_vi=f"Khóa API tên {held['name']!r}{whose_vi} đã được cấp ({kid}, {held['created_at']}); mã bí mật "
                  f"chỉ hiện một lần. Nếu bị mất, hãy cấp lại mã bí mật (POST /v1/api-keys/{kid}/rotate); muốn "
                  "thay khóa, hãy thu hồi khóa cũ trước.",
        errors=[errors.field("/name", "a live key has this name" + whose, "đã có khóa còn hiệu lực mang tên này")],
        key_id=kid)


def page(limit: int, page_token: str | None) -> tuple[list[dict], int, str | None]:
    """One page of the keys, by id, never their secrets; how many there are; the next page's token."""
    from .models import ApiKey

    try:
        found = ApiKey.scan(limit=limit, page_token=page_token)
    except InvalidKey:
        raise unissued_page_token() from None
    return [_public(item.data) for item in found], ApiKey.count(), found.page_token


def _change(kid: str, op) -> dict:
    from .models import ApiKey

    for _ in range(5):
        try:
            item = ApiKey.get(kid)
        except (DoesNotExist, InvalidKey):
            raise errors.NotFound("no such API key", detail_vi="Không có khóa này.") from None
        try:
            result = op(item.data)
        except NoChange:
            return _public(item.data)
        item.data = dict(item.data)
        try:
            item.save()
        except ConditionalCheckFailed:
            continue
        return result or _public(item.data)
    raise errors.Conflict("the key kept changing; retry", detail_vi="Khóa đang thay đổi; vui lòng thử lại.")


def revoke(kid: str) -> dict:
    def op(data):
        if data["revoked_at"]:
            raise NoChange
        data["revoked_at"] = iso(now())

    return _change(kid, op)


def rotate(kid: str) -> dict:
    """A new secret for the same id; the old one stops working at once."""
    secret, seen = secrets.token_urlsafe(24), []

    def op(data):
        if data["revoked_at"]:
            raise errors.Conflict("a revoked key cannot be rotated", detail_vi="Khóa đã thu hồi.")
        seen.append(data["secret_hash"])
        if seen[0] != data["secret_hash"]:
            # another rotation won the write: its answer holds the live secret, this one's would be dead
            raise errors.Conflict("the key was rotated meanwhile by another request; use the secret its answer "
                                  "showed, or rotate again",
                                  detail_vi="Khóa vừa được cấp lại mã bí mật bởi yêu cầu khác; hãy dùng mã đó "
                                            "hoặc cấp lại lần nữa.")
        data["secret_hash"], data["rotated_at"] = _hash(secret), iso(now())
        return {**_public(data), "api_key": f"{kid}.{secret}"}

    return _change(kid, op)


def verify(api_key: str | None) -> dict:
    """The key's record if ``api_key`` is a live key; :class:`BadKey` (403) otherwise."""
    from .models import ApiKey

    m = _KEY.fullmatch((api_key or "").strip())
    if not api_key:
        raise BadKey("api_key is required to post a request", detail_vi="Thiếu api_key.")
    data = None
    if m:
        try:
            data = ApiKey.get(m["id"]).data
        except (DoesNotExist, InvalidKey):
            data = None
    if data is None or data["revoked_at"] or not hmac.compare_digest(data["secret_hash"], _hash(m["secret"])):
        raise BadKey("invalid api_key received -- can't proceed with create_request",
                     detail_vi="api_key không hợp lệ hoặc đã bị thu hồi.")
    return _public(data)
