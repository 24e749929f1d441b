"""The earlier versions of objects in a versioned bucket, and forgetting them.

In the cluster the function buckets are versioned (``objectStore.noncurrentVersionDays``, 30 in
prod): an overwritten or deleted object stays readable as a noncurrent version until the bucket's
lifecycle removes it, so a mistake can be undone. An erasure request must not leave the erased data
there for a month (Law 91/2025/QH15, Art. 14(1): deleted so that it cannot be recovered), so
:func:`lscloud.erasure.run` asks :func:`forget` to delete the earlier versions of exactly the
objects its hooks changed, and only those: every other object keeps its history.

What is deleted for a key: every version that is not the current one, and its delete markers; when
the current version is itself a delete marker (the hook deleted the object), everything, so the key
is gone. A version under object lock (a record's retention) is refused by the store: counted as
kept, never forced (no governance bypass). In a bucket that is not versioned (the local cloud's
``weed mini``) a key has one version, the current one: nothing to do.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import unquote_plus

from .errors import DoesNotExist, StoreError

log = logging.getLogger("lscloud.store")

PAGE = 1000
"""Versions per listing request (S3's most)."""


@dataclass(frozen=True)
class Version:
    """One version of a key, as ``ListObjectVersions`` names it."""

    key: str
    version_id: str
    latest: bool
    delete_marker: bool


@dataclass
class Forgotten:
    """What :func:`forget` did: versions deleted, versions the store kept (object lock), keys whose
    versions could not be listed or deleted for another reason (left for a later request)."""

    deleted: int = 0
    locked: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"deleted": self.deleted, "locked": self.locked, "failed": self.failed}


def versions(objects, bucket: str, key: str) -> list[Version]:
    """Every version of exactly ``key`` (newest first, as the store lists them), delete markers
    included; one version with id ``null`` in a bucket that was never versioned."""
    params = {"versions": "", "prefix": key, "max-keys": str(PAGE), "encoding-type": "url"}
    out: list[Version] = []
    while True:
        page = ET.fromstring(objects._call("ListObjectVersions", "GET", bucket, params=list(params.items()),
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


def _doomed(found: list[Version]) -> list[Version]:
    """The versions :func:`forget` deletes of one key (see the module docstring)."""
    current = next((v for v in found if v.latest), None)
    if current is None or current.delete_marker:
        return list(found)
    return [v for v in found if not v.latest]


def forget(objects, written: Iterable[tuple[str, str]]) -> Forgotten:
    """Delete the earlier versions of each ``(bucket, key)`` in ``written`` (see the module
    docstring); never raises for one key's failure (it is counted, logged without the key)."""
    done = Forgotten()
    for bucket, key in sorted(set(written)):
        try:
            doomed = _doomed(versions(objects, bucket, key))
        except StoreError as exc:
            done.failed += 1
            log.warning("the versions of an object were not listed: %s", exc.__class__.__name__)
            continue
        for v in doomed:
            try:
                objects._call("DeleteObject", "DELETE", bucket, key, params=[("versionId", v.version_id)],
                              ok=(200, 204))
                done.deleted += 1
            except DoesNotExist:
                continue   # gone already (another request, the lifecycle)
            except StoreError as exc:
                # object lock refuses a retained version (403 AccessDenied); anything else: next request
                if getattr(exc, "cause", None) in ("accessdenied", "invalidrequest"):
                    done.locked += 1
                else:
                    done.failed += 1
                    log.warning("an earlier version of an object was not deleted: %s", exc.__class__.__name__)
    return done
