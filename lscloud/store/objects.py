"""The object store client: the few S3 calls the runtime needs, with conditional writes.

Everything above (documents, blobs, idempotency records, nonces) goes through
:class:`ObjectStore`, so the S3 dialect (path-style addressing, ``If-None-Match: *``,
``If-Match``, error codes) is handled here once.
"""

from __future__ import annotations

import datetime
import email.utils
import threading
from dataclasses import dataclass
from typing import Iterator

import boto3
import botocore.exceptions
import botocore.session
import botocore.utils
from botocore.config import Config
from dateutil.tz import tzutc

from .. import freshness
from ..config import Settings
from .errors import ConditionalCheckFailed, DoesNotExist, StoreError, StoreUnavailable

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
# A fixed User-Agent: botocore otherwise rebuilds its structured one (about 90 string
# sanitisations) twice per call, a tenth of a GetObject's client CPU.
USER_AGENT = "lscloud"  # botocore appends its own name and version
_UTC = tzutc()


def _rules_refer_to(rules, name: str) -> bool:
    """Whether an endpoint ruleset (its JSON) reads the parameter ``name`` anywhere."""
    stack = [rules]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("ref") == name:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _resolve_endpoints_once(core, client) -> None:
    """Let botocore's endpoint cache serve every call to the same bucket.

    botocore resolves each request's endpoint by evaluating the S3 ruleset, behind a cache keyed
    by all the ruleset's parameters; those include the object's ``Key`` (and a listing's
    ``Prefix``), so a new key always misses and pays a full evaluation (about a tenth of a PUT's
    client CPU). Where the ruleset never reads a parameter its value cannot change the endpoint:
    it is left out of the lookup, and the cache answers. A ruleset that does read it is left alone.
    """
    provider = getattr(getattr(client, "_ruleset_resolver", None), "_provider", None)
    if provider is None:
        return
    try:
        rules = core.get_component("data_loader").load_service_model("s3", "endpoint-rule-set-1")
    except Exception:  # noqa: BLE001 - an optimisation only: without the ruleset, change nothing
        return
    unused = tuple(n for n in ("Key", "Prefix") if not _rules_refer_to(rules, n))
    if not unused:
        return
    resolve = provider.resolve_endpoint

    def resolve_endpoint(**params):
        for name in unused:
            params.pop(name, None)
        return resolve(**params)

    provider.resolve_endpoint = resolve_endpoint


def _parse_timestamp(value):
    """botocore's timestamp parser, without dateutil's generic parser for the two formats S3
    sends (RFC 7231 ``Last-Modified`` headers, ISO 8601 in listings): the same aware datetimes,
    for a fraction of the cost; anything else goes to botocore's parser."""
    if isinstance(value, str):
        try:
            if value.endswith(" GMT"):
                return email.utils.parsedate_to_datetime(value).replace(tzinfo=_UTC)
            if value.endswith("Z") and "T" in value:
                return datetime.datetime.fromisoformat(value).replace(tzinfo=_UTC)
        except (TypeError, ValueError):
            pass
    return botocore.utils.parse_timestamp(value)


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    etag: str
    content_type: str
    metadata: dict


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    last_modified: float | None = None   # epoch seconds, by the store's clock


def _epoch(value) -> float | None:
    return value.timestamp() if isinstance(value, datetime.datetime) else None


_SESSION_LOCK = threading.Lock()
_SESSION: "boto3.session.Session | None" = None


def _session() -> "boto3.session.Session":
    """The process's one boto3 session, created on first use; call with ``_SESSION_LOCK`` held.

    Every client the process makes (the runtime's, the readiness probe's, a tool's) comes from it,
    so botocore reads and parses the S3 service model and endpoint rules (a few MB of JSON, most
    of a client's creation) once per process instead of once per client. Endpoint, credentials and
    timeouts stay per client."""
    global _SESSION
    if _SESSION is None:
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_parse_timestamp)
        _SESSION = boto3.session.Session(botocore_session=core)
    return _SESSION


class ObjectStore:
    """A thread-safe S3 client bound to one endpoint (boto3 clients are thread-safe).

    ``fresh_s``: how long :meth:`get_reference` serves an object from memory before asking the
    store again (by ETag); the runtime's store has ``settings.peer_fresh_s``.
    """

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 *, max_pool: int = 32, timeout_s: float = 10.0, ca_file: str = "", fresh_s: float = 0.0,
                 reference_entries: int = 4096):
        self.endpoint = endpoint
        self.fresh_s = float(fresh_s)
        # (bucket, key) -> StoredObject of reference data (lscloud.freshness)
        self._reference = freshness.Revalidating(reference_entries)
        self._lock = threading.Lock()
        with _SESSION_LOCK:  # a botocore session is not meant to create clients from several threads at once
            self.client = _session().client(
                "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                region_name=region, verify=ca_file or None,  # the cluster's own CA signs the store's certificate
                config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                              retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=max_pool,
                              connect_timeout=timeout_s, read_timeout=timeout_s,
                              # newer botocore adds CRC checksums some S3 servers do not know
                              request_checksum_calculation="when_required",
                              response_checksum_validation="when_required",
                              user_agent=USER_AGENT))
            _resolve_endpoints_once(_SESSION._session, self.client)

    @classmethod
    def from_settings(cls, settings: Settings, **options) -> "ObjectStore":
        options.setdefault("fresh_s", settings.peer_fresh_s)
        return cls(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_region,
                   ca_file=settings.s3_ca_file, **options)

    # -- errors ------------------------------------------------------------------------------------

    @staticmethod
    def _translate(exc: Exception, key: str | None) -> StoreError:
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _NOT_FOUND or status == 404:
                return DoesNotExist(f"no object at {key}", key=key)
            if code in _PRECONDITION or status in (409, 412):
                return ConditionalCheckFailed(f"conditional write lost at {key}", key=key)
            if status and status >= 500:
                return StoreUnavailable(f"object store error {code} at {key}", key=key)
            return StoreError(f"object store refused ({code}) at {key}", cause=code.lower() or "client_error", key=key)
        if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionError,
                            botocore.exceptions.ReadTimeoutError)):
            return StoreUnavailable(f"object store unreachable: {exc.__class__.__name__}", key=key)
        return StoreError(str(exc), key=key)

    # -- buckets -----------------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it does not exist (idempotent)."""
        try:
            self.client.head_bucket(Bucket=bucket)
            return
        except botocore.exceptions.ClientError:
            pass
        try:
            self.client.create_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._translate(exc, bucket) from exc

    def ping(self, bucket: str) -> None:
        """Raise unless the store answers and ``bucket`` exists (readiness)."""
        try:
            self.client.head_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, bucket) from exc

    # -- objects -----------------------------------------------------------------------------------

    def get(self, bucket: str, key: str) -> StoredObject:
        try:
            r = self.client.get_object(Bucket=bucket, Key=key)
            body = r["Body"].read()
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, key) from exc
        return StoredObject(key, body, r["ETag"], r.get("ContentType", ""), r.get("Metadata", {}))

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
        kwargs = {"IfNoneMatch": etag} if etag else {}
        try:
            r = self.client.get_object(Bucket=bucket, Key=key, **kwargs)
            body = r["Body"].read()
        except botocore.exceptions.ClientError as exc:
            if etag and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 304:
                return etag, freshness.NOT_MODIFIED, self.fresh_s
            raise self._translate(exc, key) from exc
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, key) from exc
        stored = StoredObject(key, body, r["ETag"], r.get("ContentType", ""), r.get("Metadata", {}))
        return stored.etag, stored, self.fresh_s

    def head(self, bucket: str, key: str) -> ObjectInfo:
        try:
            r = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - translated
            raise self._translate(exc, key) from exc
        return ObjectInfo(key, r["ETag"], r["ContentLength"], _epoch(r.get("LastModified")))

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str = "application/json",
            if_none_match: bool = False, if_match: str | None = None, metadata: dict | None = None) -> str:
        """Write ``body``; returns the new ETag.

        ``if_none_match=True`` makes it create-only (``If-None-Match: *``); ``if_match`` makes it
        replace only the version with that ETag. A lost condition raises ConditionalCheckFailed.
        """
        kwargs = dict(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match:
            kwargs["IfMatch"] = if_match
        if metadata:
            kwargs["Metadata"] = metadata
        try:
            etag = self.client.put_object(**kwargs)["ETag"]
        except Exception as exc:  # noqa: BLE001 - translated
            self._reference.drop((bucket, key))   # lost a race, or unknown: read it again
            raise self._translate(exc, key) from exc
        # this replica reads its own write at once (held reference data only)
        self._reference.replace((bucket, key), etag, StoredObject(key, body, etag, content_type, metadata or {}))
        return etag

    def delete(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        kwargs = dict(Bucket=bucket, Key=key)
        if if_match:
            kwargs["IfMatch"] = if_match
        self._reference.drop((bucket, key))
        try:
            self.client.delete_object(**kwargs)
        except Exception as exc:  # noqa: BLE001 - translated
            err = self._translate(exc, key)
            if isinstance(err, DoesNotExist) and not if_match:
                return
            raise err from exc

    def list(self, bucket: str, prefix: str, *, start_after: str | None = None,
             limit: int | None = None) -> Iterator[ObjectInfo]:
        """Keys under ``prefix`` in lexicographic order, after ``start_after``, at most ``limit``."""
        kwargs = dict(Bucket=bucket, Prefix=prefix)
        if start_after:
            kwargs["StartAfter"] = start_after
        seen = 0
        while True:
            if limit is not None:
                kwargs["MaxKeys"] = max(1, min(1000, limit - seen))
            try:
                page = self.client.list_objects_v2(**kwargs)
            except Exception as exc:  # noqa: BLE001 - translated
                raise self._translate(exc, prefix) from exc
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item.get("ETag", ""), item.get("Size", 0), _epoch(item.get("LastModified")))
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
            kwargs.pop("StartAfter", None)

    def presign_get(self, bucket: str, key: str, expires_s: int, *, filename: str | None = None) -> str:
        params = {"Bucket": bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
