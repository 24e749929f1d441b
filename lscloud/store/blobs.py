"""Blobs (attachments, reports, signed results): content-addressed by sha256, checked on the way in.

A blob lives at ``<prefix>/<sha256[:2]>/<sha256>``. Its key is derived from its bytes, never from
a caller's name, so nobody can choose where it lands, and writing the same bytes twice is a no-op.

Uploaded first and named later (a report's photo, an activity's): under a prefix declared
:func:`claimed_only`, each upload leaves a marker ``<prefix>-unclaimed/<sha256>`` and a record that
names the blob claims it first (:meth:`BlobStore.claim`: a create-only ``<prefix>-claims/<sha256>``,
then the blob looked up). A blob nobody claimed within its time is deleted by the runtime's sweep on
the clock's tick, which takes the claim itself (``deleting``) before it does: a claim and a delete
exclude each other by that one create, so no record ever names a blob deleted under it. Such uploads
were kept for good, public ones too. In a bucket under object lock (the dossiers' ten years) an
upload is written as a working object, retained a day, and a claim gives it the bucket's default
retention (:meth:`ObjectStore.keep_as_record`): the scan of an identity card uploaded for a dossier
never submitted went with its marker, where the lock kept it ten years. A file stored by the very
request that names it (:meth:`BlobStore.put_claimed`) is claimed first and written as a record.
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
from .errors import BlobRejected, ConditionalCheckFailed, DoesNotExist, IntegrityError, InvalidKey, StoreUnavailable
from .objects import ObjectInfo, ObjectStore

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
_UNCLAIMED, _CLAIMS, _OF = "-unclaimed/", "-claims/", "/of/"
_CLAIMED, _DELETING = b'{"state":"claimed"}', b'{"state":"deleting"}'
_claimed_only: dict[str, float] = {}   # prefix -> how long an upload waits for its claim
_renditions: dict[str, tuple[str, ...]] = {}   # prefix -> the renditions its blobs may have
_NAME_RE = re.compile(r"[a-z][a-z0-9]*")


def claimed_only(prefix: str, owner: str, unclaimed_s: float = UNCLAIMED_S, *,
                 renditions: tuple[str, ...] = ()) -> None:
    """Keep the blobs under ``prefix`` only once a record claims them (see the module docstring).
    Declared at import by the module ``owner`` that stores them, so a process's sweep knows the
    markers before any upload of its own. ``renditions``: the names of the renditions its blobs
    may have (:meth:`BlobStore.put_rendition`), deleted with an unclaimed upload."""
    from .. import runonce

    if not _PREFIX_RE.fullmatch(prefix) or not all(_NAME_RE.fullmatch(n) for n in renditions):
        raise InvalidKey(f"invalid blob prefix {prefix!r} or rendition names {renditions!r}")
    _claimed_only[prefix] = float(unclaimed_s)
    _renditions[prefix] = tuple(renditions)
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
        objects.put(bucket, claim, _DELETING, if_none_match=True, working_object=True)   # gone with the blob
    except ConditionalCheckFailed:
        try:
            if objects.get(bucket, claim).body != _DELETING:
                return True   # claimed: kept for good
        except DoesNotExist:
            return False      # a sweep's claim just removed: the next sweep looks again
    # ours, or a sweep's that stopped half-way: the blob goes, its renditions, then the claim
    keys = [f"{prefix}/{digest[:2]}/{digest}"]
    for name in _renditions.get(prefix, ()):
        index = f"{prefix}-{name}{_OF}{digest}"
        try:
            made = json.loads(objects.get(bucket, index).body).get("sha256")
        except DoesNotExist:
            continue
        # another upload whose rendition has the same bytes loses it too: its next read makes it again
        keys += [f"{prefix}-{name}/{made[:2]}/{made}"] if made else []
        keys.append(index)
    for key in (*keys, claim):
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
        ref, _ = self._store(data, declared, hashlib.sha256(data).hexdigest(), filename,
                             waits=self.unclaimed_s is not None)
        if self.unclaimed_s is not None:   # waits for a record to claim it (uploaded again: waits anew)
            ends = json.dumps({"expires_at": time.time() + self.unclaimed_s}).encode()
            self.objects.put(self.bucket, self.prefix + _UNCLAIMED + ref.sha256, ends)
        return ref

    def put_claimed(self, data: bytes, media_type: str, filename: str | None = None) -> BlobRef:
        """:meth:`put` for a record written by the same request: claimed first, then stored as a
        record (no marker; found there from an earlier upload: its retention lengthened).
        StoreUnavailable while the sweep is deleting an earlier unclaimed upload of the same bytes
        (a moment: the caller's retry stores them again)."""
        declared = self.check(data, media_type)   # checked before a claim is taken for it
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        if self.unclaimed_s is not None and self._take_claim(digest) is None:
            raise StoreUnavailable("an earlier upload of these bytes is being deleted; send them again",
                                   key=self.prefix)
        ref, made = self._store(data, declared, digest, filename, waits=False)
        if not made and self.unclaimed_s is not None:
            self.objects.keep_as_record(self.bucket, ref.key)   # an earlier upload, retained a day so far
        return ref

    def _store(self, data: bytes, declared: str, digest: str, filename: str | None, *,
               waits: bool) -> tuple[BlobRef, bool]:
        """``data`` (checked as ``declared``, hashed to ``digest``) stored, or found there, and whether
        this call wrote it."""
        key = self.key_for(digest)
        try:
            # waiting for its claim, it is working machinery: under object lock, retained a day
            self.objects.put(self.bucket, key, data, content_type=declared, if_none_match=True,
                             metadata={"sha256": digest}, working_object=waits)
            made = True
        except ConditionalCheckFailed:
            made = False
            # same key means same bytes; a different size means the stored copy is damaged
            existing = self.objects.head(self.bucket, key)
            if existing.size != len(data):
                raise IntegrityError(f"stored blob {digest} has {existing.size} bytes, expected {len(data)}",
                                     key=key) from None
        return BlobRef(digest, len(data), declared, key, clean_filename(filename)), made

    def claim(self, sha256: str) -> bool:
        """Claim an uploaded blob for a record that names it, before the record is written: whether
        it is there (and now kept for good). Under a prefix not :func:`claimed_only`, whether it
        exists. False for a blob never uploaded, or deleted unclaimed (the caller asks for it again)."""
        return self.claimed(sha256) is not None

    def claimed(self, sha256: str) -> ObjectInfo | None:
        """:meth:`claim`, answering what the store says of the blob (its size), or None."""
        key = self.key_for(sha256)   # InvalidKey for anything but a digest
        if self.unclaimed_s is None:
            return self._head(key)
        made = self._take_claim(sha256.lower())
        if made is None:
            return None
        info = self._head(key)
        if info is not None:
            # a claim made before the lock's rule (or whose lengthening failed) lengthens it again
            self.objects.keep_as_record(self.bucket, key)
        elif made:   # never uploaded: no claim left behind for it
            try:
                self.objects.delete(self.bucket, self.prefix + _CLAIMS + sha256.lower())
            except DoesNotExist:
                pass
            # uploaded meanwhile, another record may have found this claim and the blob, and counts
            # on the claim: taken back, or the sweep would delete what that record names
            late = self._head(key)
            if late is not None and self._take_claim(sha256.lower()) is not None:
                self.objects.keep_as_record(self.bucket, key)
                return late
        return info

    def _take_claim(self, digest: str) -> bool | None:
        """The create-only claim: True made now, False made before, None the sweep's (deleting)."""
        claim = self.prefix + _CLAIMS + digest
        try:
            self.objects.put(self.bucket, claim, _CLAIMED, if_none_match=True)
            return True
        except ConditionalCheckFailed:
            try:
                return None if self.objects.get(self.bucket, claim).body == _DELETING else False
            except DoesNotExist:
                return None   # the sweep's claim, gone with the blob a moment ago

    def _head(self, key: str) -> ObjectInfo | None:
        try:
            return self.objects.head(self.bucket, key)
        except DoesNotExist:
            return None

    def renditions(self, name: str) -> "BlobStore":
        """Where the ``name`` renditions of these blobs are kept: content-addressed by their own
        bytes under ``<prefix>-<name>`` (an upload cannot land there); :meth:`put_rendition` names them."""
        if not _NAME_RE.fullmatch(name):
            raise InvalidKey(f"invalid rendition name {name!r}")
        return BlobStore(self.objects, self.bucket, prefix=f"{self.prefix}-{name}", max_bytes=self.max_bytes,
                         allowed_types=tuple(self.allowed_types))

    def put_rendition(self, sha256: str, name: str, data: bytes | None, media_type: str = "") -> str:
        """Record the ``name`` rendition of blob ``sha256``: ``data`` stored in :meth:`renditions`,
        or None when the blob is its own rendition (already small). Create-only: a rendition recorded
        before stays (made from the same blob, either answers). Returns the digest to serve."""
        store = self.renditions(name)
        made = self.rendition(sha256, name)
        if made is not None:   # (uploaded again) a rendition made from other pixels would be stored for nothing
            return made
        if data is not None:
            made, _ = store._store(bytes(data), store.check(data, media_type), hashlib.sha256(data).hexdigest(),
                                   None, waits=False)
        index = f"{store.prefix}{_OF}{self.key_for(sha256).rpartition('/')[2]}"
        try:
            self.objects.put(self.bucket, index, json.dumps({"sha256": made and made.sha256}).encode(),
                             if_none_match=True)
        except ConditionalCheckFailed:
            return self.rendition(sha256, name) or sha256.lower()
        return made.sha256 if made else sha256.lower()

    def rendition(self, sha256: str, name: str) -> str | None:
        """The digest that answers for blob ``sha256``'s ``name`` rendition (in :meth:`renditions`,
        or ``sha256`` itself: small already), or None if none was recorded (a blob stored before)."""
        index = f"{self.prefix}-{name}{_OF}{self.key_for(sha256).rpartition('/')[2]}"
        try:
            return json.loads(self.objects.get(self.bucket, index).body).get("sha256") or sha256.lower()
        except DoesNotExist:
            return None

    def drop_rendition(self, sha256: str, name: str, *, index_only: bool = False) -> None:
        """Delete what :meth:`put_rendition` recorded for blob ``sha256`` (the blob itself is gone;
        ``index_only``: the record alone, its rendition is gone)."""
        made = None if index_only else self.rendition(sha256, name)
        store = self.renditions(name)
        keys = [store.key_for(made)] if made and made != sha256.lower() else []
        for key in (*keys, f"{store.prefix}{_OF}{self.key_for(sha256).rpartition('/')[2]}"):
            try:
                self.objects.delete(self.bucket, key)
            except DoesNotExist:
                pass

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
