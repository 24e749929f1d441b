"""Blobs (attachments, reports, signed results): content-addressed by sha256, checked on the way in.

A blob lives at ``<prefix>/<sha256[:2]>/<sha256>``. Its key is derived from its bytes, never from
a caller's name, so nobody can choose where it lands, and writing the same bytes twice is a no-op.

Uploaded first and named later (a report's photo, an activity's): under a prefix declared
:func:`claimed_only`, each upload leaves a marker ``<prefix>-unclaimed/<sha256>`` and a record that
names the blob claims it first (:meth:`BlobStore.claim`: a create-only ``<prefix>-claims/<sha256>``,
then the blob looked up). A blob nobody claimed within its time is deleted by the runtime's sweep on
the clock's tick, which takes the claim itself (``deleting``) before it does: a claim and a delete
exclude each other by that one create, so no record ever names a blob deleted under it. Such uploads
were kept for good, public ones too.
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

import time

from . import working
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

UNCLAIMED_S = 2 * 86_400
"""How long an upload waits for a record to claim it (:func:`claimed_only`): a citizen's report or a
team's offline batch names its photos minutes after the upload, a slow sync within a day."""
_UNCLAIMED, _CLAIMS = "-unclaimed/", "-claims/"
_CLAIMED, _DELETING = b'{"state":"claimed"}', b'{"state":"deleting"}'
_claimed_only: dict[str, float] = {}   # prefix -> how long an upload waits for its claim


def claimed_only(prefix: str, owner: str, unclaimed_s: float = UNCLAIMED_S) -> None:
    """Keep the blobs under ``prefix`` only once a record claims them (see the module docstring).
    Declared at import by the module ``owner`` that stores them, so a process's sweep knows the
    markers before any upload of its own."""
    from .. import runonce

    if not _PREFIX_RE.fullmatch(prefix):
        raise InvalidKey(f"invalid blob prefix {prefix!r}")
    _claimed_only[prefix] = float(unclaimed_s)
    working.declare(prefix + _UNCLAIMED)   # machinery, in a bucket under object lock too
    runonce.register(runonce.Kind(prefix + _UNCLAIMED, f"unclaimed uploads of {prefix}",
                                  lambda s, _v=float(unclaimed_s): _v, owner=owner, on_expiry=_reclaim))


def _reclaim(objects: ObjectStore, bucket: str, marker: str) -> bool:
    """An upload's marker has expired: delete its blob unless a record claimed it (then only the
    marker goes). The ``deleting`` claim comes first, so a record's claim after it finds the blob
    going (and asks for it again) and one before it keeps the blob."""
    prefix, _, digest = marker.rpartition(_UNCLAIMED)
    claim = prefix + _CLAIMS + digest
    try:
        objects.put(bucket, claim, _DELETING, if_none_match=True)
    except ConditionalCheckFailed:
        try:
            if objects.get(bucket, claim).body != _DELETING:
                return True   # claimed: kept for good
        except DoesNotExist:
            return False      # a sweep's claim just removed: the next sweep looks again
    # ours, or a sweep's that stopped half-way: the blob goes, then the claim
    for key in (f"{prefix}/{digest[:2]}/{digest}", claim):
        try:
            objects.delete(bucket, key)
        except DoesNotExist:
            pass
    return True


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
        self.unclaimed_s = _claimed_only.get(prefix)   # None: every blob kept (see claimed_only)

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
        if self.unclaimed_s is not None:   # waits for a record to claim it (uploaded again: waits anew)
            ends = json.dumps({"expires_at": time.time() + self.unclaimed_s}).encode()
            self.objects.put(self.bucket, self.prefix + _UNCLAIMED + digest, ends)
        return BlobRef(digest, len(data), declared, key, clean_filename(filename))

    def claim(self, sha256: str) -> bool:
        """Claim an uploaded blob for a record that names it, before the record is written: whether
        it is there (and now kept for good). Under a prefix not :func:`claimed_only`, whether it
        exists. False for a blob never uploaded, or deleted unclaimed (the caller asks for it again)."""
        if self.unclaimed_s is None:
            return self.exists(sha256)
        self.key_for(sha256)   # InvalidKey for anything but a digest
        claim = self.prefix + _CLAIMS + sha256.lower()
        try:
            self.objects.put(self.bucket, claim, _CLAIMED, if_none_match=True)
            made = True
        except ConditionalCheckFailed:
            made = False
            try:
                if self.objects.get(self.bucket, claim).body == _DELETING:
                    return False   # the sweep is deleting it
            except DoesNotExist:
                return False       # the sweep's claim, gone with the blob a moment ago
        if self.exists(sha256):
            return True
        if made:   # never uploaded: no claim left behind for it
            try:
                self.objects.delete(self.bucket, claim)
            except DoesNotExist:
                pass
        return False

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


__all__ = ["BlobStore", "BlobRef", "sniff", "normalize_media_type", "claimed_only", "DEFAULT_ALLOWED_TYPES",
           "DEFAULT_MAX_BYTES", "UNCLAIMED_S"]
