"""Does an S3 store keep the promises the runtime's writes rest on? (`lscloud store-check`)

Every guarantee of the functions — a transition happens once, concurrent writers never overwrite
each other, a create never replaces — is a conditional request the *store* decides. The tests hold
the runtime to them against SeaweedFS; the province runs MinIO, another implementation whose
releases have broken some of them (minio/minio#21526: ``If-Match`` on a missing key wrote anyway;
minio/minio#21677: ``If-Match`` on DELETE ignored; #21603: conditions skipped without read quorum).
So before a store serves functions, and after every upgrade of it, this check sends the same
requests the runtime sends and says, for each promise, whether the store keeps it:

- a create-only PUT (``If-None-Match: *``) lands once, and exactly one of racing creates wins;
- a PUT under ``If-Match`` replaces only that version, and exactly one of racing updates wins;
- a PUT under ``If-Match`` on a key that does not exist is refused (else a stale writer brings a
  deleted document back);
- a GET with ``If-None-Match`` answers 304 (reference data is revalidated that way);
- a DELETE under ``If-Match`` of another version is refused. A store that does not is usable, but
  only with ``LSCLOUD_S3_CONDITIONAL_DELETE=false`` (the runtime then carries the condition by a
  tombstone write, :meth:`lscloud.store.objects.ObjectStore.delete`): the check says which value
  this store needs and fails when the configured one is unsafe.

It writes only under ``_lscloud/conformance/<run>/`` and deletes what it wrote (in a bucket under
object lock its few small versions stay until their retention ends). In the cluster every function
runs it before it serves, as a Job of its own (``infra/components/hooks.py``).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from .objects import content_md5
from .s3http import Reply, S3Http, Unreachable

PREFIX = "_lscloud/conformance"
REFUSED = frozenset((404, 409, 412))   # how S3 stores say a condition did not hold (AWS: 412, or 404 for a missing key)


@dataclass(frozen=True)
class Finding:
    """One promise, kept or not; ``required``: the runtime is unsafe on a store that breaks it."""

    name: str
    kept: bool
    detail: str
    required: bool = True


class _Probe:
    """The requests of one run, under its own prefix; every key it wrote is remembered for the cleanup."""

    def __init__(self, http: S3Http, bucket: str):
        self.http, self.bucket = http, bucket
        self.base = f"{PREFIX}/{uuid.uuid4().hex}"
        self.written: set[str] = set()
        self._lock = threading.Lock()

    def key(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put(self, key: str, body: bytes, **conditions: str) -> Reply:
        # as the runtime writes (ObjectStore.put): a store that refuses that is told, not hidden
        headers = {"content-type": "application/octet-stream", "content-md5": content_md5(body)}
        headers.update({name.replace("_", "-"): value for name, value in conditions.items()})
        with self._lock:
            self.written.add(key)
        return self.http.request("PutObject", "PUT", self.bucket, key, headers=headers, body=body,
                                 conditional=bool(conditions))

    def head(self, key: str) -> Reply:
        return self.http.request("HeadObject", "HEAD", self.bucket, key)

    def get(self, key: str, **conditions: str) -> Reply:
        return self.http.request("GetObject", "GET", self.bucket, key,
                                 headers={name.replace("_", "-"): value for name, value in conditions.items()})

    def delete(self, key: str, **conditions: str) -> Reply:
        return self.http.request("DeleteObject", "DELETE", self.bucket, key,
                                 headers={name.replace("_", "-"): value for name, value in conditions.items()},
                                 conditional=bool(conditions))

    def cleanup(self) -> None:
        for key in sorted(self.written):
            try:
                self.delete(key)
            except Unreachable:
                pass


def _create_only(p: _Probe) -> Finding:
    key = p.key("create-only")
    first, second = p.put(key, b"first", if_none_match="*"), p.put(key, b"second", if_none_match="*")
    body = p.get(key).body
    kept = first.status == 200 and second.status in REFUSED and body == b"first"
    return Finding("create-only PUT (If-None-Match: *)", kept,
                   f"first {first.status}, second {second.status}, the object holds {body[:16]!r}")


def _if_match(p: _Probe) -> Finding:
    key = p.key("if-match")
    etag = p.put(key, b"v1", if_none_match="*").headers.get("etag", "")
    update = p.put(key, b"v2", if_match=etag)
    stale = p.put(key, b"v3", if_match=etag)
    body = p.get(key).body
    kept = update.status == 200 and stale.status in REFUSED and body == b"v2"
    return Finding("PUT under If-Match replaces only that version", kept,
                   f"update {update.status}, stale update {stale.status}, the object holds {body[:16]!r}")


def _if_match_missing(p: _Probe) -> Finding:
    key = p.key("if-match-missing")
    reply = p.put(key, b"resurrected", if_match='"0123456789abcdef0123456789abcdef"')
    there = p.head(key).status
    kept = reply.status in REFUSED and there == 404
    return Finding("PUT under If-Match on a missing key is refused", kept,
                   f"PUT {reply.status}, then HEAD {there}" + ("" if kept else
                   ": a stale writer would bring a deleted document back (minio/minio#21526)"))


def _conditional_get(p: _Probe) -> Finding:
    key = p.key("conditional-get")
    etag = p.put(key, b"reference", if_none_match="*").headers.get("etag", "")
    same, other = p.get(key, if_none_match=etag), p.get(key, if_none_match='"not-this-one"')
    kept = same.status == 304 and other.status == 200
    return Finding("GET with If-None-Match answers 304 for the same version", kept,
                   f"same ETag {same.status}, another {other.status}")


def _conditional_delete(p: _Probe, configured: bool) -> Finding:
    key = p.key("conditional-delete")
    etag = p.put(key, b"v1", if_none_match="*").headers.get("etag", "")
    p.put(key, b"v2", if_match=etag)
    stale = p.delete(key, if_match=etag)
    there = p.head(key).status
    honoured = stale.status in REFUSED and there == 200
    if honoured:
        detail = f"a stale DELETE got {stale.status} and the object stayed: LSCLOUD_S3_CONDITIONAL_DELETE may be true"
    else:
        detail = (f"a stale DELETE got {stale.status} and the object is {'gone' if there == 404 else there}: "
                  "this store needs LSCLOUD_S3_CONDITIONAL_DELETE=false (minio/minio#21677)")
    # a store that ignores the condition is safe with the tombstone write, unsafe with the DELETE
    return Finding(f"DELETE under If-Match (configured: {'true' if configured else 'false'})",
                   honoured or not configured, detail, required=configured)


def _race(p: _Probe, writers: int, name: str, key: str, send: Callable[[int], Reply]) -> Finding:
    with ThreadPoolExecutor(writers) as pool:
        replies = list(pool.map(send, range(writers)))
    won = [i for i, r in enumerate(replies) if r.status == 200]
    lost = [r.status for r in replies if r.status != 200]
    body = p.get(key).body
    kept = len(won) == 1 and all(s in REFUSED for s in lost) and body == f"writer {won[0]}".encode()
    return Finding(name, kept, f"{len(won)} of {writers} won, the others {sorted(set(lost))}, "
                               f"the object holds {body[:16]!r}")


def _racing_creates(p: _Probe, writers: int) -> Finding:
    key = p.key("racing-creates")
    return _race(p, writers, f"{writers} racing creates: exactly one wins", key,
                 lambda i: p.put(key, f"writer {i}".encode(), if_none_match="*"))


def _racing_updates(p: _Probe, writers: int) -> Finding:
    key = p.key("racing-updates")
    etag = p.put(key, b"start", if_none_match="*").headers.get("etag", "")
    return _race(p, writers, f"{writers} racing updates of one version: exactly one wins", key,
                 lambda i: p.put(key, f"writer {i}".encode(), if_match=etag))


def check(http: S3Http, bucket: str, *, conditional_delete: bool, writers: int = 8) -> list[Finding]:
    """Each promise of the module docstring against ``bucket``; ``conditional_delete`` is the value
    the runtime is configured with (``Settings.s3_conditional_delete``). Raises
    :class:`~lscloud.store.s3http.Unreachable` when the store does not answer."""
    p = _Probe(http, bucket)
    try:
        return [_create_only(p), _if_match(p), _if_match_missing(p), _conditional_get(p),
                _racing_creates(p, writers), _racing_updates(p, writers), _conditional_delete(p, conditional_delete)]
    finally:
        p.cleanup()


def format_findings(findings: list[Finding]) -> str:
    """A line per promise: kept, broken (and whether the runtime needs it)."""
    lines = []
    for f in findings:
        mark = "ok  " if f.kept else ("FAIL" if f.required else "note")
        lines.append(f"{mark}  {f.name}: {f.detail}")
    return "\n".join(lines)
