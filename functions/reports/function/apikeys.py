"""API keys of the partner applications that post Open311 requests, issued by operators.

A key is ``<id>.<secret>``: the id finds the record, the secret is kept only as a keyed hash
(:mod:`lscloud.pseudonyms`, compared in constant time). It is shown once, at issue or rotation;
a revoked key is refused at once. A key may name the agency whose own system uses it, so that
system can post FixMyStreet updates on that agency's reports.
"""

from __future__ import annotations

import hmac
import re
import secrets

from lscloud import errors, pseudonyms
from lscloud.aggregate import NoChange
from lscloud.statemachine import iso, now
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey

_KEY = re.compile(r"(?P<id>k[0-9a-f]{12})\.(?P<secret>[A-Za-z0-9_-]{20,64})")
PURPOSE = "reports-api-key"


class BadKey(errors.Forbidden):
    type = "invalid-api-key"


def _hash(secret: str) -> str:
    return pseudonyms.pseudonym(PURPOSE, secret)


def _public(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "secret_hash"}


def new_id() -> str:
    """A key's id (``schemas/reports/api-key-id.json``)."""
    return f"k{secrets.token_hex(6)}"


def issue(name: str, agency: str | None, by: str | None) -> dict:
    from .models import ApiKey

    kid, secret = new_id(), secrets.token_urlsafe(24)
    data = {"id": kid, "name": name, "agency": agency, "secret_hash": _hash(secret), "created_at": iso(now()),
            "created_by": by, "rotated_at": None, "revoked_at": None}
    ApiKey(kid, data=data).save()
    return {**_public(data), "api_key": f"{kid}.{secret}"}


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
    secret = secrets.token_urlsafe(24)

    def op(data):
        if data["revoked_at"]:
            raise errors.Conflict("a revoked key cannot be rotated", detail_vi="Khóa đã thu hồi.")
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
