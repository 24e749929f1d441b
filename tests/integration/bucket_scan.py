"""Reading every object of a test's bucket as it is now.

A listing and the reads after it are not one moment: a create's unfinished-create marker
(:mod:`lscloud.aggregate`) is deleted in a batch behind its answer, so it can be listed and gone by
the time it is read. A scan that asks "does any object still hold this value?" skips what is gone."""

from __future__ import annotations

import base64
import json

from lscloud.store import DoesNotExist


def every_object(objects, bucket: str, prefix: str = "") -> dict:
    """``{key: StoredObject}`` of every object under ``prefix`` that still exists when it is read."""
    out = {}
    for info in objects.list(bucket, prefix):
        try:
            out[info.key] = objects.get(bucket, info.key)
        except DoesNotExist:
            continue
    return out


def bucket_bytes(object_store, bucket) -> dict[str, bytes]:
    """Every object of the bucket, and the answer an idempotency record keeps (base64) decoded."""
    out = {}
    for key, o in every_object(object_store, bucket).items():
        body = out[key] = o.body
        try:
            out[key + "#answer"] = base64.b64decode(json.loads(body)["response"]["body_b64"])
        except (ValueError, KeyError, TypeError):
            pass
    return out
