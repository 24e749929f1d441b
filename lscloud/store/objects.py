"""The object store client: the few S3 calls the runtime needs, with conditional writes.

Everything above (documents, blobs, idempotency records, nonces) goes through
:class:`ObjectStore`, so the S3 dialect (path-style addressing, ``If-None-Match: *``,
``If-Match``, error codes, a store that ignores ``If-Match`` on DELETE) is handled here once. The
requests go out through :mod:`lscloud.store.s3http` (its own connections and a SigV4 signer checked
against botocore's), not boto3.
"""

from __future__ import annotations

import atexit
import base64
import contextvars
import datetime
import email.utils
import hashlib
import logging
import os
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping
from urllib.parse import unquote_plus
from xml.sax.saxutils import escape

from .. import freshness
from . import working
from ..config import Settings
from ..telemetry import STORE_TABLE
from .errors import ConditionalCheckFailed, DoesNotExist, StoreError, StoreUnavailable
from .s3http import Reply, S3Http, Unreachable

log = logging.getLogger("lscloud.store")

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_META = "x-amz-meta-"
STORE_OBJECTS = "lscloud.store.objects"
"""The span attribute of a batch delete: how many keys it names (never the keys)."""


def content_md5(body: bytes) -> str:
    """The ``Content-MD5`` header of a PUT of ``body`` (base64 of its MD5, RFC 1864)."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    etag: str
    content_type: str
    metadata: dict


@dataclass(frozen=True)
class Version:
    """One version of a key, as ``ListObjectVersions`` names it (:meth:`ObjectStore.versions`)."""

    key: str
    version_id: str
    latest: bool
    delete_marker: bool


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    last_modified: float | None = None   # epoch seconds, by the store's clock


def _http_date(value: str | None) -> float | None:
    """Epoch seconds of an RFC 7231 date (``Last-Modified``), None when absent or unreadable."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def _iso_date(value: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 UTC time (a listing's ``LastModified``)."""
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _metadata(headers) -> dict:
    """User metadata from ``x-amz-meta-*`` headers, names lower-case (as they were written)."""
    return {name[len(_META):].lower(): value for name, value in headers.items() if name.lower().startswith(_META)}


# GETs sent ahead by ObjectStore.ahead, (store, bucket, key) -> Started, for the code that reads them
_AHEAD: contextvars.ContextVar[dict | None] = contextvars.ContextVar("lscloud_store_ahead", default=None)


TOMBSTONE = "lscloud-deleted"
"""Metadata of an object a conditional delete has claimed (:meth:`ObjectStore.delete` on a store
without conditional DELETE): read as missing, removed right after it is written."""
_TOMBSTONE_HEADER = _META + TOMBSTONE


def _stored(key: str, reply: Reply) -> "StoredObject":
    h = reply.headers
    if h.get(_TOMBSTONE_HEADER):
        raise DoesNotExist(f"no object at {key} (being deleted)", key=key)
    return StoredObject(key, reply.body, h.get("etag", ""), h.get("content-type", ""), _metadata(h))


class ObjectStore:
    """A thread-safe S3 client bound to one endpoint.

    ``fresh_s``: how long :meth:`get_reference` serves an object from memory before asking the
    store again (by ETag); the runtime's store has ``settings.peer_fresh_s``.
    """

    LIST_PAGE = 1000   # keys per listing request (S3's most)

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 *, max_pool: int = 32, timeout_s: float = 10.0, ca_file: str = "", fresh_s: float = 0.0,
                 reference_entries: int = 4096, conditional_delete: bool = True,
                 object_lock: Mapping[str, str] | None = None):
        """``conditional_delete``: the store honours ``If-Match`` on DELETE (see :meth:`delete`).
        ``object_lock``: bucket → mode (``governance``/``compliance``) of the buckets under object lock,
        where a working object's PUT carries its own short retention (:mod:`lscloud.store.working`)."""
        self.endpoint = endpoint
        self.conditional_delete = conditional_delete
        self.object_lock = dict(object_lock or {})
        for mode in self.object_lock.values():
            working.lock_headers(mode)   # a mode S3 knows, or a ValueError now rather than at a write
        if self.object_lock:
            from .. import runonce   # noqa: F401 - declares the runtime's own working prefixes
        self.fresh_s = float(fresh_s)
        # (bucket, key) -> StoredObject of reference data (lscloud.freshness)
        self._reference = freshness.Revalidating(reference_entries)
        self._lock = threading.Lock()
        self._retention_days: dict[str, int] = {}   # bucket -> its default retention (object lock)
        self._boto_options = dict(endpoint=endpoint, access_key=access_key, secret_key=secret_key, region=region,
                                  max_pool=max_pool, timeout_s=timeout_s, ca_file=ca_file)
        self._boto = None
        self._batch_delete = True   # DeleteObjects until the store says it does not know it
        self._written: set[tuple[str, str]] | None = None   # what is written while recording() (erasures)
        self.http = S3Http(endpoint, access_key, secret_key, region, max_pool=max_pool, timeout_s=timeout_s,
                           ca_file=ca_file)

    @classmethod
    def from_settings(cls, settings: Settings, **options) -> "ObjectStore":
        options.setdefault("fresh_s", settings.peer_fresh_s)
        options.setdefault("timeout_s", settings.s3_timeout_s)
        options.setdefault("conditional_delete", settings.s3_conditional_delete)
        if settings.s3_object_lock:
            options.setdefault("object_lock", {settings.bucket: settings.s3_object_lock})
        return cls(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_region,
                   ca_file=settings.s3_ca_file, **options)

    @property
    def client(self):
        """A boto3 S3 client for the same endpoint, built on first use: for the benchmarks' raw-S3
        baselines only (``lscloud.local.bench_load``). The store's own calls never go through it."""
        if self._boto is None:
            with self._lock:
                if self._boto is None:
                    from . import boto

                    self._boto = boto.client(**self._boto_options)
        return self._boto

    # -- errors ------------------------------------------------------------------------------------

    @staticmethod
    def _translate(reply: Reply, key: str | None) -> StoreError:
        code, status = reply.error_code(), reply.status
        if code in _NOT_FOUND or status == 404:
            return DoesNotExist(f"no object at {key}", key=key)
        if code in _PRECONDITION or status in (409, 412):
            return ConditionalCheckFailed(f"conditional write lost at {key}", key=key)
        if status >= 500:
            return StoreUnavailable(f"object store error {code} at {key}", key=key)
        return StoreError(f"object store refused ({code}) at {key}", cause=code.lower() or "client_error", key=key)

    def _call(self, operation: str, method: str, bucket: str, key: str = "", *, ok=(200,), what: str | None = None,
              **request) -> Reply:
        """One S3 request; an answer outside ``ok`` (or no answer) raises the store's error."""
        return self._checked(lambda: self.http.request(operation, method, bucket, key, **request), what or key, ok)

    def _checked(self, answer, what: str, ok=(200,)) -> Reply:
        """``answer()``'s reply (a request's, or one sent ahead); outside ``ok``, or none, the store's error."""
        try:
            reply = answer()
        except Unreachable as exc:
            raise StoreUnavailable(f"object store unreachable: {exc}", key=what) from exc
        if reply.status not in ok:
            raise self._translate(reply, what)
        return reply

    # -- buckets -----------------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it does not exist (idempotent)."""
        try:
            self.ping(bucket)
            return
        except StoreError:
            pass
        reply = self._call("CreateBucket", "PUT", bucket, ok=(200, 409), what=bucket)
        if reply.status == 409 and reply.error_code() not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise self._translate(reply, bucket)

    def ping(self, bucket: str) -> None:
        """Raise unless the store answers and ``bucket`` exists (readiness)."""
        self._call("HeadBucket", "HEAD", bucket, what=bucket)

    @contextmanager
    def recording(self) -> Iterator[set[tuple[str, str]]]:
        """Every ``(bucket, key)`` this store writes or deletes (from any thread) while the block
        runs: what an erasure changed, whose earlier versions it then deletes
        (:func:`lscloud.store.history.forget`). Not nested; for a process doing only that work."""
        written: set[tuple[str, str]] = set()
        self._written = written
        try:
            yield written
        finally:
            self._written = None

    def _wrote(self, bucket: str, key: str) -> None:
        written = self._written
        if written is not None:
            written.add((bucket, key))

    # -- objects -----------------------------------------------------------------------------------

    def get(self, bucket: str, key: str) -> StoredObject:
        ahead = _AHEAD.get()
        started = ahead.pop((id(self), bucket, key), None) if ahead else None
        if started is None:
            return _stored(key, self._call("GetObject", "GET", bucket, key))
        return _stored(key, self._checked(started.reply, key))

    @contextmanager
    def ahead(self, *where: tuple[str, str]) -> Iterator[None]:
        """Send a GET of each ``(bucket, key)`` now; a :meth:`get` of one of them in this context
        (this thread, or work it hands to :func:`lscloud.aggregate.together`) takes its answer
        instead of asking again. So independent reads cost one round trip, sent from one thread
        (three reads on the side pool started 0.2–0.9 ms apart, each waiting for a thread); a read
        that depends on another goes in the context's body. A GET nobody took is dropped on exit.

            with objects.ahead((bucket, declaration_key), (bucket, tally_key)):
                listed = objects.list(bucket, prefix)   # while the two GETs are on their way
                declaration = objects.get(bucket, declaration_key)
        """
        sent = {(id(self), bucket, key): self.http.start_get(bucket, key) for bucket, key in where}
        outer = _AHEAD.get()
        token = _AHEAD.set({**outer, **sent} if outer else sent)
        try:
            yield
        finally:
            _AHEAD.reset(token)
            for started in sent.values():
                started.discard()   # (one whose answer was taken is done already)

    def get_reference(self, bucket: str, key: str) -> StoredObject:
        """:meth:`get` for reference data (read on every request, changed rarely): served from this
        process's memory for at most ``fresh_s`` seconds, then revalidated with a conditional GET
        (``If-None-Match``: a 304 costs no body and renews the bound). A write through this store
        (:meth:`put`, :meth:`delete`) replaces or drops the entry at once, so this replica reads its
        own writes; another replica's write is read within ``fresh_s``. A missing object raises
        DoesNotExist and is not remembered. See :mod:`lscloud.freshness`.
        """
        try:
            return self._reference.get((bucket, key), lambda etag: self._get_if_changed(bucket, key, etag))
        except DoesNotExist:
            self._reference.drop((bucket, key))
            raise

    def _get_if_changed(self, bucket: str, key: str, etag: str | None):
        reply = self._call("GetObject", "GET", bucket, key, ok=(200, 304) if etag else (200,),
                           headers={"if-none-match": etag} if etag else None)
        if reply.status == 304:
            return etag, freshness.NOT_MODIFIED, self.fresh_s
        stored = _stored(key, reply)
        return stored.etag, stored, self.fresh_s

    def head(self, bucket: str, key: str) -> ObjectInfo:
        h = self._call("HeadObject", "HEAD", bucket, key).headers
        if h.get(_TOMBSTONE_HEADER):
            raise DoesNotExist(f"no object at {key} (being deleted)", key=key)
        return ObjectInfo(key, h.get("etag", ""), int(h.get("content-length", 0)), _http_date(h.get("last-modified")))

    # -- object lock -----------------------------------------------------------------------------

    def default_retention_days(self, bucket: str) -> int:
        """The default retention of ``bucket`` under object lock, in days, as the bucket says
        (``GetObjectLockConfiguration``, asked once per bucket): what a record's version gets."""
        with self._lock:
            days = self._retention_days.get(bucket)
        if days is None:
            page = ET.fromstring(self._call("GetObjectLockConfiguration", "GET", bucket, params=[("object-lock", "")],
                                            what=bucket).body)
            ns = page.tag[:page.tag.index("}") + 1] if page.tag.startswith("{") else ""
            rule = page.find(f"{ns}Rule/{ns}DefaultRetention")
            if rule is None:
                raise StoreError(f"bucket {bucket} has object lock without a default retention",
                                 cause="no_default_retention", key=bucket)
            days = int(rule.findtext(f"{ns}Days") or 0) or 365 * int(rule.findtext(f"{ns}Years") or 0)
            with self._lock:
                self._retention_days[bucket] = days
        return days

    def keep_as_record(self, bucket: str, key: str) -> None:
        """In a bucket under object lock, retain ``key``'s current version as long as the bucket
        retains a record's (``PutObjectRetention``, its default from now): an object written as
        working (a short retention, :meth:`put`'s ``working``) that turned out to be kept, an upload
        a record now names. Only ever lengthens a retention; nothing to do in another bucket."""
        mode = self.object_lock.get(bucket)
        if not mode:
            return
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            days=self.default_retention_days(bucket))
        body = ('<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Mode>{mode.upper()}</Mode><RetainUntilDate>{until.strftime('%Y-%m-%dT%H:%M:%SZ')}"
                "</RetainUntilDate></Retention>").encode()
        self._call("PutObjectRetention", "PUT", bucket, key, params=[("retention", "")], body=body,
                   headers={"content-type": "application/xml", "content-md5": content_md5(body)})

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str = "application/json",
            if_none_match: bool = False, if_match: str | None = None, metadata: dict | None = None,
            working_object: bool = False) -> str:
        """Write ``body``; returns the new ETag.

        ``if_none_match=True`` makes it create-only (``If-None-Match: *``); ``if_match`` makes it
        replace only the version with that ETag. A lost condition raises ConditionalCheckFailed.

        Every PUT carries its body's ``Content-MD5``: S3 requires it (or a checksum) for a write to a
        bucket under object lock with a default retention (the dossiers' legal records), and the
        store refuses a body damaged on the way (MinIO does not require it, minio/minio#16480: a
        store that follows AWS would refuse every write to such a bucket without it). In such a
        bucket a working object's version is retained only a day (:mod:`lscloud.store.working`);
        ``working_object`` makes this one such, whatever its key (an upload no record names yet).
        """
        headers = {"content-type": content_type, "content-md5": content_md5(body)}
        lock = self.object_lock.get(bucket)
        if lock and (working_object or working.holds(key)):
            headers.update(working.lock_headers(lock))
        if if_none_match:
            headers["if-none-match"] = "*"
        if if_match:
            headers["if-match"] = if_match
        for name, value in (metadata or {}).items():
            if not (str(name).isascii() and str(value).isascii()):
                raise StoreError(f"metadata must be ASCII at {key}", cause="invalid_metadata", key=key)
            headers[_META + str(name).lower()] = str(value)
        try:
            reply = self._conditional_put(bucket, key, headers, bytes(body), metadata,
                                          conditional=bool(if_none_match or if_match))
        except ConditionalCheckFailed:
            self._reference.drop((bucket, key))
            claimed = self._tombstone_etag(bucket, key) if if_none_match and not self.conditional_delete else None
            if claimed is None:
                raise
            # the key is free but for a delete's tombstone left behind (its DELETE failed): a create
            # replaces exactly that tombstone, so a create never waits on a delete that will not come
            del headers["if-none-match"]
            headers["if-match"] = claimed
            reply = self._conditional_put(bucket, key, headers, bytes(body), metadata, conditional=True)
        except StoreError:
            self._reference.drop((bucket, key))   # lost a race, or unknown: read it again
            raise
        etag = reply.headers.get("etag", "")
        self._wrote(bucket, key)
        # this replica reads its own write at once (held reference data only)
        self._reference.replace((bucket, key), etag, StoredObject(key, body, etag, content_type, metadata or {}))
        return etag

    def _conditional_put(self, bucket: str, key: str, headers: dict, body: bytes, metadata: dict | None, *,
                         conditional: bool) -> Reply:
        """One PUT. A conditional one whose outcome the wire could not tell (an attempt's answer was
        lost, and a later attempt's condition failed, perhaps against that attempt's own write:
        :mod:`lscloud.store.s3http`) is settled by reading the key back: holding exactly this body
        (and metadata), the write landed, and the PUT is answered as written.

        Left unknown, every caller's write would surface as "unavailable" while it was done: the
        client's retry then meets its own write (a create as "already exists", a move as "not
        allowed from the state it is in now"), and what was to follow the write (its audit entries,
        indexes and events) never does. Another writer's identical bytes are the same write (a
        record's bytes name its version and its moves' times; an index entry is derived from them).

        Inside a request the read back is one short attempt (:data:`lscloud.store.s3http.READ_BACK_S`):
        the PUT's own attempts have used the request's deadline already."""
        try:
            return self._call("PutObject", "PUT", bucket, key, headers=headers, body=body, conditional=conditional)
        except StoreUnavailable as unknown:
            cause = unknown.__cause__
            if not (conditional and isinstance(cause, Unreachable)) or cause.unsent:
                raise   # an answer said it was not done (a 503 to the last attempt), or nothing was sent
            try:
                there = self._call("GetObject", "GET", bucket, key, read_back=True)
            except StoreError:
                raise unknown from None
            if there.body != body or _metadata(there.headers) != {str(k).lower(): str(v) for k, v in
                                                                   (metadata or {}).items()}:
                raise
            return Reply(200, {"etag": there.headers.get("etag", "")}, b"")

    def delete(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        """Delete the object; with ``if_match``, only the version with that ETag (else
        ConditionalCheckFailed; DoesNotExist when there is none).

        A store that ignores ``If-Match`` on DELETE (MinIO: minio/minio#21677) would delete a version
        written since it was read, so there (``conditional_delete=False``) the condition is carried
        by a write instead: a tombstone (an empty object with :data:`TOMBSTONE` metadata) replaces
        the object under ``If-Match``, which every S3 store honours, and the tombstone, which no
        writer replaces (a create is refused while it exists, an update holds another ETag), is then
        deleted. Reads take a tombstone for a missing object. One PUT more per conditional delete.
        """
        self._reference.drop((bucket, key))
        self._wrote(bucket, key)   # whether or not it lands: its earlier versions are what an erasure asks about
        if if_match and not self.conditional_delete:
            try:
                self.put(bucket, key, b"", content_type="application/octet-stream", if_match=if_match,
                         metadata={TOMBSTONE: "1"})
            except ConditionalCheckFailed:
                self.head(bucket, key)   # gone (or being deleted): DoesNotExist, as a conditional DELETE says
                raise
            self._reference.drop((bucket, key))
            try:
                self._call("DeleteObject", "DELETE", bucket, key, ok=(200, 204))
            except DoesNotExist:
                pass
            return
        try:
            self._call("DeleteObject", "DELETE", bucket, key, ok=(200, 204),
                       headers={"if-match": if_match} if if_match else None, conditional=bool(if_match))
        except DoesNotExist:
            if if_match:
                raise

    VERSIONS_PAGE = 1000   # versions per ListObjectVersions request (S3's most)

    def versions(self, bucket: str, key: str) -> list[Version]:
        """Every version of exactly ``key`` (newest first, as the store lists them), delete markers
        included; one version with id ``null`` in a bucket that was never versioned."""
        params = {"versions": "", "prefix": key, "max-keys": str(self.VERSIONS_PAGE), "encoding-type": "url"}
        out: list[Version] = []
        while True:
            page = ET.fromstring(self._call("ListObjectVersions", "GET", bucket, params=list(params.items()),
                                            what=key).body)
            ns = page.tag[:page.tag.index("}") + 1] if page.tag.startswith("{") else ""
            url_encoded = page.findtext(f"{ns}EncodingType") == "url"
            for element in page:
                kind = element.tag.removeprefix(ns)
                if kind not in ("Version", "DeleteMarker"):
                    continue
                name = element.findtext(f"{ns}Key") or ""
                name = unquote_plus(name) if url_encoded else name
                if name != key:   # the prefix also lists longer keys
                    continue
                out.append(Version(name, element.findtext(f"{ns}VersionId") or "null",
                                   element.findtext(f"{ns}IsLatest") == "true", kind == "DeleteMarker"))
            if page.findtext(f"{ns}IsTruncated") != "true":
                return out
            params["key-marker"] = page.findtext(f"{ns}NextKeyMarker") or ""
            params["version-id-marker"] = page.findtext(f"{ns}NextVersionIdMarker") or ""

    def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        """Delete one version of ``key`` for good (a noncurrent one, or a delete marker). A version
        under object lock is refused by the store (:class:`StoreError`, cause ``accessdenied``);
        one already gone raises :class:`DoesNotExist`."""
        self._reference.drop((bucket, key))
        self._call("DeleteObject", "DELETE", bucket, key, params=[("versionId", version_id)], ok=(200, 204))

    DELETE_BATCH = 1000   # keys per DeleteObjects request (S3's most)

    def delete_many(self, bucket: str, keys: Iterable[str]) -> list[str]:
        """Delete every one of ``keys`` (unconditionally, as :meth:`delete` without ``if_match``; a
        missing one counts as deleted) in ``DeleteObjects`` requests of up to :data:`DELETE_BATCH`
        keys, and return those the store answered it did not delete. A request the store does not
        answer raises, as :meth:`delete` does; a store that does not know the call (an answer 501
        or 405) gets one DELETE per key instead.

        Its body is XML in quiet mode (the answer lists only the keys not deleted) with the
        ``Content-MD5`` S3 requires of this call. One request deletes up to a thousand objects:
        what machinery that deletes many short-lived objects (markers) uses instead of a request
        each, every one of which costs the store and the client about what a PUT costs them."""
        keys = list(dict.fromkeys(keys))
        left: list[str] = []
        for start in range(0, len(keys), self.DELETE_BATCH):
            left += self._delete_batch(bucket, keys[start:start + self.DELETE_BATCH])
        return left

    def _delete_batch(self, bucket: str, keys: list[str]) -> list[str]:
        for key in keys:
            self._reference.drop((bucket, key))
            self._wrote(bucket, key)
        if not self._batch_delete:
            return self._delete_each(bucket, keys)
        body = ('<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>'
                + "".join(f"<Object><Key>{escape(k)}</Key></Object>" for k in keys) + "</Delete>").encode()
        tables = {k.partition("/")[0] for k in keys}
        about = {STORE_OBJECTS: len(keys), **({STORE_TABLE: tables.pop()} if len(tables) == 1 else {})}
        reply = self._call("DeleteObjects", "POST", bucket, params=[("delete", "")], body=body, ok=(200, 405, 501),
                           headers={"content-type": "application/xml", "content-md5": content_md5(body)},
                           what=f"{len(keys)} keys", span_attributes=about)
        if reply.status != 200:
            self._batch_delete = False   # a store without the call: asked once
            return self._delete_each(bucket, keys)
        page = ET.fromstring(reply.body)
        ns = page.tag[:page.tag.index("}") + 1] if page.tag.startswith("{") else ""
        return [e.findtext(f"{ns}Key") or "" for e in page.iter(f"{ns}Error")
                if e.findtext(f"{ns}Code") not in _NOT_FOUND]

    def _delete_each(self, bucket: str, keys: list[str]) -> list[str]:
        left = []
        for key in keys:
            try:
                self.delete(bucket, key)
            except StoreError:
                left.append(key)
        return left

    def delete_later(self, bucket: str, key: str) -> Future:
        """Delete ``key`` soon, unconditionally, in a batch with the other keys this process hands
        over (:meth:`delete_many`): sent from one background thread once
        :data:`DeleteBatcher.size` keys wait, or :data:`DeleteBatcher.delay_s` after the first,
        and at the process's exit (best effort). For objects whose deletion nobody waits for and
        whose staying is harmless (a marker some repair also deletes): never for one whose absence
        someone relies on. The future (never waited for on a request's path) ends when its batch
        was sent; its result is the ``(bucket, key)`` pairs of the batch that were not deleted."""
        return _BATCHER.add(self, bucket, key)

    def _tombstone_etag(self, bucket: str, key: str) -> str | None:
        """The ETag of a tombstone at ``key``, or None when what is there is not one (or nothing)."""
        try:
            h = self._call("HeadObject", "HEAD", bucket, key).headers
        except DoesNotExist:
            return None
        return h.get("etag") if h.get(_TOMBSTONE_HEADER) else None

    def list(self, bucket: str, prefix: str, *, start_after: str | None = None,
             limit: int | None = None, first_page: int | None = None) -> Iterator[ObjectInfo]:
        """Keys under ``prefix`` in lexicographic order, after ``start_after``, at most ``limit``.

        ``first_page``: how many keys the caller expects to use, asked for in the first request;
        each later request asks for twice as many as the one before, up to :data:`LIST_PAGE`. The
        store lists and the client parses every key a request asks for: a page of 20 items need not
        cost a listing of 1,000 keys. A caller that filters what it lists cannot know how many keys
        its page needs; growing requests find out without a guess of the filter's share, in about
        as many keys as the page needs, at most twice."""
        params = {"list-type": "2", "prefix": prefix, "encoding-type": "url"}
        if start_after:
            params["start-after"] = start_after
        seen = 0
        ask = max(1, min(self.LIST_PAGE, first_page)) if first_page else self.LIST_PAGE
        while True:
            params["max-keys"] = str(ask if limit is None else max(1, min(ask, limit - seen)))
            ask = min(self.LIST_PAGE, ask * 2)
            page = ET.fromstring(self._call("ListObjectsV2", "GET", bucket, params=list(params.items()),
                                            what=prefix).body)
            ns = page.tag[:page.tag.index("}") + 1] if page.tag.startswith("{") else ""
            url_encoded = page.findtext(f"{ns}EncodingType") == "url"
            for item in page.iter(f"{ns}Contents"):
                key = item.findtext(f"{ns}Key") or ""
                yield ObjectInfo(unquote_plus(key) if url_encoded else key, item.findtext(f"{ns}ETag") or "",
                                 int(item.findtext(f"{ns}Size") or 0), _iso_date(item.findtext(f"{ns}LastModified")))
                seen += 1
                if limit is not None and seen >= limit:
                    return
            token = page.findtext(f"{ns}NextContinuationToken")
            if page.findtext(f"{ns}IsTruncated") != "true" or not token:
                return
            params["continuation-token"] = token
            params.pop("start-after", None)


class DeleteBatcher:
    """The keys handed to :meth:`ObjectStore.delete_later`, deleted in batches from one thread.

    A request's path only appends its key (under a lock; the thread is woken by the first key of a
    batch and by the one that fills it, not by every key). The thread sends the batch once
    ``size`` keys wait or ``delay_s`` after its first, grouped by store and bucket, through
    :meth:`ObjectStore.delete_many`; :meth:`flush` sends what waits at once, from the caller's
    thread (tests, the process's exit). Nothing is retried beyond the store's own retries: a key
    not deleted is logged and left (see :meth:`ObjectStore.delete_later`)."""

    def __init__(self, size: int = 100, delay_s: float = 0.2):
        self.size, self.delay_s = size, delay_s
        self._forked()

    def _forked(self) -> None:
        # also the state of a forked child: the parent's thread is not in it, its batch is the parent's
        self._cond = threading.Condition()
        self._sending = threading.Lock()   # one batch in flight: a flush returns after the one under way
        self._places: dict[tuple[ObjectStore, str], list[str]] = {}
        self._count, self._first_at, self._done = 0, 0.0, Future()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, objects: ObjectStore, bucket: str, key: str) -> Future:
        with self._cond:
            if self._closed:   # the process is exiting: the key stays where it is
                done: Future = Future()
                done.set_result([(bucket, key)])
                return done
            self._places.setdefault((objects, bucket), []).append(key)
            self._count += 1
            if self._count == 1:
                self._first_at = time.monotonic()
                if self._thread is None:
                    self._start()
                self._cond.notify()
            elif self._count == self.size:
                self._cond.notify()
            return self._done

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="lscloud-deletes", daemon=True)
        try:
            thread.start()
        except RuntimeError:   # the interpreter is shutting down: what waits goes at its exit
            return
        self._thread = thread

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._count)
                due = self._first_at + self.delay_s
                while 0 < self._count < self.size and (wait := due - time.monotonic()) > 0:
                    self._cond.wait(wait)
            self.flush()

    def flush(self) -> None:
        """Send every key handed over before this call (those of a batch under way included: it
        returns once that batch is done)."""
        with self._sending:
            with self._cond:
                places, done = self._places, self._done
                self._places, self._count, self._done = {}, 0, Future()
            left: list[tuple[str, str]] = []
            for (objects, bucket), keys in places.items():
                try:
                    left += [(bucket, k) for k in objects.delete_many(bucket, keys)]
                except Exception as exc:  # noqa: BLE001 - left where they are (see delete_later)
                    left += [(bucket, k) for k in keys]
                    log.warning("a batch delete of %d objects failed: %s", len(keys), exc.__class__.__name__)
            if left:
                log.warning("%d objects were not deleted by their batch", len(left))
            done.set_result(left)

    def close(self) -> None:
        """Send what waits and take no more keys (the process's exit)."""
        with self._cond:
            self._closed = True
        self.flush()


_BATCHER = DeleteBatcher()
atexit.register(_BATCHER.close)
os.register_at_fork(after_in_child=_BATCHER._forked)


def flush_deletes() -> None:
    """Send the deletes :meth:`ObjectStore.delete_later` holds now, and wait for them (tests)."""
    _BATCHER.flush()
