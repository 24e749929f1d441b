"""Blobs (attachments, reports, signed results): content-addressed by sha256, checked on the way in.

A blob lives at ``<prefix>/<sha256[:2]>/<sha256>``. Its key is derived from its bytes, never from
a caller's name, so nobody can choose where it lands, and writing the same bytes twice is a no-op.
Size and media type are checked before anything is written, and the declared type must agree with
what the bytes look like, so a script cannot be stored as a "PDF". Readers get the bytes through
:meth:`BlobStore.get` (hash re-checked), or from the function that holds them
(:mod:`lscloud.web.downloads`: a public answer, or a short-lived link).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from .errors import BlobRejected, ConditionalCheckFailed, DoesNotExist, IntegrityError, InvalidKey
from .objects import ObjectStore

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_ALLOWED_TYPES = ("application/pdf", "image/png", "image/jpeg", "application/json", "text/csv",
                         "text/plain")

# media types whose files announce themselves in their first bytes
_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_PREFIX_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


@dataclass(frozen=True)
class BlobRef:
    """What a stored blob is: its digest, size, media type and object key."""

    sha256: str
    size: int
    media_type: str
    key: str
    filename: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def sniff(data: bytes) -> str | None:
    """The media type the first bytes announce (pdf/png/jpeg), or None."""
    for media_type, signatures in _MAGIC.items():
        if any(data.startswith(sig) for sig in signatures):
            return media_type
    return None


def normalize_media_type(media_type: str) -> str:
    """``"Image/PNG; q=1"`` -> ``"image/png"``."""
    if not isinstance(media_type, str):
        raise BlobRejected("media type must be a string", cause="unsupported_media_type")
    return media_type.split(";", 1)[0].strip().lower()


def clean_filename(filename: str | None) -> str | None:
    """A file name fit to save a download under: only the last path component, without control
    characters; None if nothing is left."""
    if filename is None:
        return None
    if not isinstance(filename, str):
        raise TypeError("filename must be a string")
    name = re.split(r"[/\\]", filename)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:255]
    return name if name and name not in (".", "..") else None


class BlobStore:
    """Content-addressed blobs in one bucket, under ``prefix``."""

    def __init__(self, objects: ObjectStore, bucket: str, *, prefix: str = "blobs",
                 max_bytes: int = DEFAULT_MAX_BYTES, allowed_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES):
        if not _PREFIX_RE.fullmatch(prefix):
            raise InvalidKey(f"invalid blob prefix {prefix!r}")
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.objects = objects
        self.bucket = bucket
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.allowed_types = frozenset(normalize_media_type(t) for t in allowed_types)

    def key_for(self, sha256: str) -> str:
        """The object key of a digest; InvalidKey unless it is 64 hex digits."""
        if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256.lower()):
            raise InvalidKey("a blob is named by its sha256: 64 hex digits")
        digest = sha256.lower()
        return f"{self.prefix}/{digest[:2]}/{digest}"

    def check(self, data: bytes, media_type: str) -> str:
        """Raise BlobRejected unless ``data`` may be stored as ``media_type``; returns the normalised type."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("blob data must be bytes")
        size = len(data)
        if size == 0:
            raise BlobRejected("empty blob", cause="empty")
        if size > self.max_bytes:
            raise BlobRejected(f"blob of {size} bytes is over the limit of {self.max_bytes}", cause="too_large")
        declared = normalize_media_type(media_type)
        if declared not in self.allowed_types:
            raise BlobRejected(f"media type {declared!r} is not accepted", cause="unsupported_media_type")
        head = bytes(data[:16])
        sniffed = sniff(head)
        if declared in _MAGIC and sniffed != declared:
            raise BlobRejected(f"content is not {declared}", cause="media_type_mismatch")
        if sniffed is not None and sniffed != declared:
            raise BlobRejected(f"content is {sniffed}, declared {declared}", cause="media_type_mismatch")
        if declared == "application/json" or declared.startswith("text/"):
            try:
                text = bytes(data).decode("utf-8-sig")
            except UnicodeDecodeError:
                raise BlobRejected(f"content declared {declared} is not UTF-8 text",
                                   cause="media_type_mismatch") from None
            if "\x00" in text:
                raise BlobRejected(f"content declared {declared} holds NUL bytes", cause="media_type_mismatch")
            if declared == "application/json":
                try:
                    json.loads(text)
                except ValueError:
                    raise BlobRejected("content declared application/json does not parse",
                                       cause="media_type_mismatch") from None
        return declared

    def put(self, data: bytes, media_type: str, filename: str | None = None) -> BlobRef:
        """Check and store ``data``; storing bytes that are already there succeeds (idempotent).

        Raises BlobRejected with cause ``too_large``, ``unsupported_media_type``,
        ``media_type_mismatch`` or ``empty``.
        """
        declared = self.check(data, media_type)
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        key = self.key_for(digest)
        try:
            self.objects.put(self.bucket, key, data, content_type=declared, if_none_match=True,
                             metadata={"sha256": digest})
        except ConditionalCheckFailed:
            # same key means same bytes; a different size means the stored copy is damaged
            existing = self.objects.head(self.bucket, key)
            if existing.size != len(data):
                raise IntegrityError(f"stored blob {digest} has {existing.size} bytes, expected {len(data)}",
                                     key=key) from None
        return BlobRef(digest, len(data), declared, key, clean_filename(filename))

    def get(self, sha256: str) -> bytes:
        """The blob's bytes, re-hashed; DoesNotExist if absent, IntegrityError if they do not match."""
        return self.read(sha256)[0]

    def read(self, sha256: str) -> tuple[bytes, str]:
        """The blob's bytes (re-hashed, as :meth:`get`) and the media type it was stored as."""
        key = self.key_for(sha256)
        got = self.objects.get(self.bucket, key)
        if hashlib.sha256(got.body).hexdigest() != sha256.lower():
            raise IntegrityError(f"blob {sha256.lower()} does not match its digest", key=key)
        return got.body, got.content_type

    def exists(self, sha256: str) -> bool:
        try:
            self.objects.head(self.bucket, self.key_for(sha256))
        except DoesNotExist:
            return False
        return True


__all__ = ["BlobStore", "BlobRef", "sniff", "normalize_media_type", "DEFAULT_ALLOWED_TYPES", "DEFAULT_MAX_BYTES"]
