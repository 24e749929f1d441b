"""A resend or a reused id: which fields of a JSON request differ, named but never shown.

Every write that takes a client-chosen id or an ``Idempotency-Key`` must tell a resend (same
body: the first answer again) from a reuse (another body: 409). The answer to a reuse names the
fields that differ as JSON pointers, with a message that carries no value: the first request may
have been someone else's (another teller's customer, another officer's decision), and its CCCD,
account number or amount must not travel to whoever reuses its id.

To know *which* fields differ without keeping the first request in clear, a record keeps one
keyed digest per field (:func:`digests`: a key derived by HMAC under the pseudonym key from the
record's own key, then a keyed BLAKE2b per field, so equal values in two records do not match and
nothing can be checked without the key). A function that keeps the first request anyway, as part
of its own record, compares values directly (:func:`changed_fields`). Either way the refusal is
:class:`IdReused`, which becomes the one problem answer (:meth:`IdReused.problem`); it is registered
with :mod:`lscloud.errors`, so a domain module raises it and every app answers it the same way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from . import errors, pseudonyms
from .problems import Problem

MESSAGE = "differs from the first request with this id"
MESSAGE_VI = "khác với yêu cầu đầu tiên dùng mã này"
TYPE = "idempotency-key-reused"
# past this many leaves a body is compared member by member (a bulk body must not make a huge record)
MAX_LEAVES = 256


def pointer_escape(name: str) -> str:
    """One JSON pointer reference token (RFC 6901: ``~`` as ``~0``, ``/`` as ``~1``)."""
    return name.replace("~", "~0").replace("/", "~1")


def canonical(value: Any) -> bytes:
    """The bytes a value is compared by: key order and spacing do not matter."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def leaves(body: Any, *, members_only: bool = False) -> list[tuple[str, Any]]:
    """``(pointer, value)`` for every scalar, empty object and empty array in ``body``, in pointer
    order; with ``members_only`` one pair per top-level member (the whole body is ``""``)."""
    if members_only:
        if isinstance(body, dict) and body:
            return sorted(("/" + pointer_escape(str(k)), v) for k, v in body.items())
        return [("", body)]
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:  # iterative: a deep body never meets the recursion limit here
        pointer, value = stack.pop()
        if isinstance(value, dict) and value:
            stack.extend((f"{pointer}/{pointer_escape(str(k))}", v) for k, v in value.items())
        elif isinstance(value, list) and value:
            stack.extend((f"{pointer}/{i}", v) for i, v in enumerate(value))
        else:
            out.append((pointer, value))
    return sorted(out, key=lambda pair: pair[0])


def _pointers(body: Any) -> tuple[list[tuple[str, Any]], bool]:
    found = leaves(body)
    if len(found) > MAX_LEAVES:
        return leaves(body, members_only=True), True
    return found, False


def digests(body: Any, salt: str) -> dict[str, Any]:
    """Per-field keyed digests of ``body`` for a record whose own key is ``salt``.

    Returns ``{"fields": {pointer: digest}, "members_only": bool}``: what :func:`changed` needs
    later, and nothing from which a value can be read back or guessed without the key.
    """
    found, members_only = _pointers(body)
    key = _field_key(salt)
    return {"fields": {p: _digest(key, p, v) for p, v in found}, "members_only": members_only}


def changed(first: dict[str, Any], body: Any, salt: str) -> list[str]:
    """The pointers where ``body`` differs from the request ``first`` digested (see :func:`digests`)."""
    found = leaves(body, members_only=True) if first.get("members_only") else _pointers(body)[0]
    key = _field_key(salt)
    again = {p: _digest(key, p, v) for p, v in found}
    a = first.get("fields") or {}
    return sorted(p for p in set(a) | set(again) if a.get(p) != again.get(p))


def changed_fields(first: Any, again: Any) -> list[str]:
    """The pointers where two requests held in clear differ (for a record that keeps the first anyway)."""
    a, b = dict(leaves(first)), dict(leaves(again))
    return sorted(p for p in set(a) | set(b) if p not in a or p not in b or canonical(a[p]) != canonical(b[p]))


def _field_key(salt: str) -> bytes:
    # one HMAC per record under the pseudonym key, then a keyed BLAKE2 per field: keyed all the
    # way, and cheap for a body of many fields
    return pseudonyms.digest("request-field", salt)


def _digest(key: bytes, pointer: str, value: Any) -> str:
    return hashlib.blake2b(pointer.encode("utf-8") + b"\x00" + canonical(value), key=key, digest_size=16).hexdigest()


class IdReused(Exception):
    """An id or key came back with another body: 409 naming the differing ``fields``, no values."""

    def __init__(self, fields: Iterable[str], *, key: str | None = None, detail: str | None = None,
                 message: str = MESSAGE, message_vi: str = MESSAGE_VI):
        self.fields = sorted(set(fields)) or [""]
        self.key = key
        self.message, self.message_vi = message, message_vi
        self.detail = detail or (f"{len(self.fields)} field(s) differ from the first request with this id; "
                                 "send the same body to get its answer again, or use a new id.")
        super().__init__(self.detail)

    def problem(self, **extensions: Any) -> Problem:
        """The one answer every function gives to a reused id or key."""
        if self.key is not None:
            extensions.setdefault("idempotency_key", self.key)
        return Problem(409, TYPE, "Id already used with another request", self.detail,
                       title_vi="Mã đã được dùng cho một yêu cầu khác",
                       detail_vi=f"{len(self.fields)} trường {self.message_vi}; gửi lại đúng nội dung cũ "
                                 "hoặc dùng một mã mới.",
                       errors=[{"field": f, "message": self.message} for f in self.fields], **extensions)


# a domain module raises IdReused (no HTTP in sight); every app answers it with the one problem
errors.register(IdReused, lambda exc: exc.problem())
