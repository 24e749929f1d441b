"""Object keys for documents: validated, encoded key parts and opaque page tokens.

A document lives at ``<table>/<enc(hash)>/<enc(range) or "_">.json``. Key values come from
callers (often from a URL), so every part goes through :func:`encode_part`: letters, digits and
``_`` stay as they are; every other character is escaped as ``~XX`` per UTF-8 byte (upper-case
hex), like percent-encoding but with ``~`` as the escape character. An encoded part therefore
never holds ``/`` or ``.`` and cannot leave its table or walk the key space. The encoding is a
bijection between valid values and canonical encoded parts, so two values never share a key.

Why ``~`` and not ``%``: S3 lists keys in byte order of the whole key, ``enc(range) + ".json"``.
Every character an encoded part can hold (``0-9A-Za-z_~``) sorts after ``"."``, so that order
is exactly the byte order of the encoded range key, in which a value sorts before its extensions
(``"2025-01"`` < ``"2025-01-15"`` < ``"2025-02"``). With ``%`` (and a literal ``-``), both below
``"."``, ``"2025-01-15"`` would list before ``"2025-01"``.

Sort order (queries, ``range_between``, paging): byte order of the encoded range key. It equals raw
string order for values made of letters, digits and ``_``, and for values of one shape (ISO dates
and timestamps of equal precision, zero-padded numbers). It differs where an escaped character
meets a literal one: an escape (``~``) sorts after every letter, digit and ``_``, so ``"a-b"``
(``a~2Db``) sorts after ``"ab"``, while as raw strings ``"-"`` sorts first.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from .errors import InvalidKey

MAX_PART_CHARS = 200
# S3 keys are at most 1024 bytes: table (<= 40) + 2 parts (<= 480 each) + separators and ".json" fit.
MAX_ENCODED_CHARS = 480
MAX_TABLE_CHARS = 40
NO_RANGE = "_"
SUFFIX = ".json"

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_ESCAPE = "~"
_ENCODED_PART = r"(?:[A-Za-z0-9_]|~[0-9A-F]{2})+"
_ENCODED_RE = re.compile(_ENCODED_PART)
_TABLE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")


def encode_part(value: str) -> str:
    """Validate and encode one key part (a hash or range key value).

    Raises :class:`InvalidKey` if ``value`` is not a string, is empty, is longer than
    ``MAX_PART_CHARS`` characters (or encodes to more than ``MAX_ENCODED_CHARS``), or is not
    valid Unicode (lone surrogates).
    """
    if not isinstance(value, str):
        raise InvalidKey(f"key part must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidKey("key part must not be empty")
    if len(value) > MAX_PART_CHARS:
        raise InvalidKey(f"key part longer than {MAX_PART_CHARS} characters")
    out = []
    for ch in value:
        if ch in _SAFE:
            out.append(ch)
            continue
        try:
            raw = ch.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidKey("key part is not valid Unicode") from exc
        out.extend(f"{_ESCAPE}{b:02X}" for b in raw)
    encoded = "".join(out)
    if len(encoded) > MAX_ENCODED_CHARS:
        raise InvalidKey(f"key part encodes to more than {MAX_ENCODED_CHARS} characters")
    return encoded


def decode_part(encoded: str) -> str:
    """Invert :func:`encode_part`; only canonical encodings are accepted (else InvalidKey)."""
    if not isinstance(encoded, str) or not _ENCODED_RE.fullmatch(encoded):
        raise InvalidKey("not an encoded key part")
    try:
        value = unquote_to_bytes(encoded.replace(_ESCAPE, "%")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidKey("encoded key part is not UTF-8") from exc
    # "~41" for "A" would decode fine but is a second spelling of the same key
    if encode_part(value) != encoded:
        raise InvalidKey("key part is not canonically encoded")
    return value


def validate_table(table: str) -> str:
    """A table name is ``[a-z0-9-]+`` (no leading/trailing dash), at most 40 characters."""
    if not isinstance(table, str) or len(table) > MAX_TABLE_CHARS or not _TABLE_RE.fullmatch(table):
        raise InvalidKey(f"invalid table name {table!r}: use [a-z0-9-], at most {MAX_TABLE_CHARS} characters")
    return table


def table_prefix(table: str) -> str:
    return f"{validate_table(table)}/"


def hash_prefix(table: str, hash_value: str) -> str:
    """The listing prefix of every item under one hash key."""
    return f"{table_prefix(table)}{encode_part(hash_value)}/"


def object_key(table: str, hash_value: str, range_value: str | None = None) -> str:
    """``<table>/<enc(hash)>/<enc(range) or "_">.json``."""
    tail = NO_RANGE if range_value is None else encode_part(range_value)
    return f"{hash_prefix(table, hash_value)}{tail}{SUFFIX}"


def item_key_re(table: str, *, with_range: bool) -> re.Pattern[str]:
    """A pattern matching exactly the item keys of one table (others under the prefix are ignored)."""
    tail = _ENCODED_PART if with_range else re.escape(NO_RANGE)
    return re.compile(rf"{re.escape(table_prefix(table))}{_ENCODED_PART}/{tail}{re.escape(SUFFIX)}")


def encode_token(key: str) -> str:
    """An opaque, URL-safe page token naming the last key of a page."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_token(token: str, prefix: str, key_re: re.Pattern[str]) -> str:
    """The key a page token names; InvalidKey unless it is an item key under ``prefix``.

    A client can forge a token, so it must not be able to point a listing outside the table
    or hash key it asked for.
    """
    if not isinstance(token, str) or not token or len(token) > 2048 or not _TOKEN_RE.fullmatch(token):
        raise InvalidKey("malformed page token", cause="invalid_page_token")
    try:
        key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidKey("malformed page token", cause="invalid_page_token") from exc
    if encode_token(key) != token or not key.startswith(prefix) or not key_re.fullmatch(key):
        raise InvalidKey("page token does not belong to this listing", cause="invalid_page_token")
    for part in key[: -len(SUFFIX)].split("/")[1:]:
        if part != NO_RANGE:
            try:
                decode_part(part)
            except InvalidKey as exc:
                raise InvalidKey("page token does not belong to this listing", cause="invalid_page_token") from exc
    return key


def newest_first(us: int) -> str:
    """A 16-digit key part for an instant in microseconds under which later instants sort first
    (until the year 2286): the store lists keys in ascending order only, and people read their own
    lists ("my dossiers") newest first, where an oldest-first index put this week's on the last of
    years of pages (:func:`lscloud.store.rekey.copy_newest_first` moves one)."""
    return f"{10 ** 16 - 1 - us:016d}"
