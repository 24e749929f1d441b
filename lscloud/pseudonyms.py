"""Pseudonyms: keyed hashes that stand for personal identifiers where a clear value must not go.

A CCCD, a phone or an account number in an object key travels with every request for that
object: into S3 access logs and into every span's ``aws.s3.key``. An unkeyed hash does not help:
a CCCD has a few million plausible values per province and birth year, which anyone can hash.
So an index keyed by a person is keyed by :func:`pseudonym` instead: HMAC-SHA256 under the
platform's pseudonym key (``LSCLOUD_PSEUDONYM_KEY``), with a *purpose* mixed in so that the
same person has unrelated pseudonyms in unrelated indexes, cut to 128 bits and spelled in
lower-case base32 (``[a-z2-7]``, 26 characters: URL-safe, and a key part the store keeps as is).

The key is the process's: :func:`configure` sets it (:func:`lscloud.runtime.install` does, from
the settings), otherwise it is read from the environment on first use. Every replica of every
function must use the same key, and changing it re-keys every index (``lscloud migrate``).
"""

from __future__ import annotations

import base64
import hmac
import threading

from . import config

LENGTH = 26  # base32 characters: 130 bits shown, 128 of them from the digest

_key: bytes | None = None
_lock = threading.Lock()


def configure(key: str | bytes) -> None:
    """Use ``key`` for every pseudonym this process makes from now on."""
    global _key
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not raw:
        raise ValueError("the pseudonym key must not be empty")
    with _lock:
        _key = raw


def _current_key() -> bytes:
    if _key is None:
        configure(config.load().pseudonym_key)
    assert _key is not None
    return _key


def digest(purpose: str, data: bytes | str) -> bytes:
    """The full keyed digest of ``data`` for ``purpose`` (HMAC-SHA256, 32 bytes)."""
    if not purpose or "\x00" in purpose:
        raise ValueError("a pseudonym needs a purpose without NUL characters")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return hmac.digest(_current_key(), purpose.encode("utf-8") + b"\x00" + payload, "sha256")


def pseudonym(purpose: str, value: bytes | str) -> str:
    """The pseudonym of ``value`` in ``purpose`` (e.g. ``"border-owners"``): 26 characters ``[a-z2-7]``.

    Deterministic for one key, so an index can be written and found again by the clear value;
    unrelated across purposes, and not computable without the key.
    """
    return base64.b32encode(digest(purpose, value)).decode("ascii")[:LENGTH].lower()


class Pseudonym(str):
    """A value that is already its pseudonym (:func:`pseudonym`): a model keyed by a
    :class:`~lscloud.store.attributes.PseudonymAttribute` takes it as its key as it is, not hashed
    again. What an erasure request re-applied from its record has (:mod:`lscloud.erasure`): the
    pseudonyms it looked the person up by, and no clear value."""

    __slots__ = ()


KEY_ID_PURPOSE = "lscloud-pseudonym-key-id"
KEY_MARKER_PREFIX = "_lscloud/pseudonym-key"
KEY_HISTORY = 20
"""How many earlier key ids a key marker keeps (which keys the data was keyed under before)."""


def key_id_of(key: str | bytes) -> str:
    """The key id of ``key``: 10 characters of an HMAC under it, so it names the key in logs, markers
    and messages without revealing it (and cannot be computed without it)."""
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    mac = hmac.digest(raw, KEY_ID_PURPOSE.encode("utf-8") + b"\x00", "sha256")
    return base64.b32encode(mac).decode("ascii")[:10].lower()


def key_id() -> str:
    """A short public name for the current key (which key wrote a migration marker), not the key."""
    return key_id_of(_current_key())


def key_marker(function: str) -> str:
    """The object, in ``function``'s bucket, recording which key its data is keyed under: written by
    its migration once every index it keys is re-keyed (:mod:`lscloud.serve`). One per function, as
    the local cloud's functions share one bucket."""
    return f"{KEY_MARKER_PREFIX}/{function}.json"


def key_record(function: str, previous: dict | None, *, at: str) -> dict:
    """The key marker's content once ``function``'s data is keyed under the current key: its id and,
    newest first, the ids it was keyed under before (``previous``: the marker it replaces). Ids only,
    never a key."""
    current = key_id()
    history = list((previous or {}).get("history") or [])
    if previous and previous.get("key_id") and previous["key_id"] != current:
        history.insert(0, {"key_id": previous["key_id"], "until": at})
    return {"function": function, "key_id": current, "keyed_at": at if not previous or previous.get("key_id") != current
            else previous.get("keyed_at", at), "history": history[:KEY_HISTORY]}
