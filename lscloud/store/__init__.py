"""Documents (a PynamoDB-style Model over S3) and blobs, on one object store connection."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

from . import attributes
from .attributes import (Attribute, BooleanAttribute, JSONAttribute, ListAttribute, MapAttribute, NumberAttribute,
                         PseudonymAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute, VersionAttribute,
                         utcnow)
from .blobs import BlobRef, BlobStore, claimed_only
from .errors import (BlobRejected, ConditionalCheckFailed, DoesNotExist, IntegrityError, InvalidKey, StoreError,
                     StoreUnavailable)
from .model import Model, ResultPage
from .objects import ObjectStore

_default: tuple[ObjectStore, str] | None = None
_scoped: contextvars.ContextVar[tuple[ObjectStore, str] | None] = contextvars.ContextVar("lscloud_store", default=None)


class NotConfigured(RuntimeError):
    """No object store is configured: the process has not installed its runtime."""


def configure(objects: ObjectStore | None, bucket: str | None = None) -> None:
    """Set the connection and bucket that everything uses (models unless their Meta names another
    bucket, blobs, run-once records). :func:`lscloud.runtime.install` calls it; None forgets it."""
    global _default
    _default = None if objects is None else (objects, bucket)


@contextmanager
def using(objects: ObjectStore, bucket: str) -> Iterator[None]:
    """Within the block, and only in this thread or task, models and blobs use ``objects`` and
    ``bucket`` instead of the installed connection: for a process that reads several buckets (the
    device-users sync reads every device domain's) without changing what its other threads use."""
    token = _scoped.set((objects, bucket))
    try:
        yield
    finally:
        _scoped.reset(token)


def connection() -> tuple[ObjectStore, str]:
    """The one way to reach the store: the (store, default bucket) the runtime installed, or the
    one :func:`using` gives the current thread or task.

    Raises :class:`NotConfigured` before a runtime is installed (:func:`lscloud.runtime.install`,
    which :func:`lscloud.runtime.current` does on first use and ``Function.start`` at start).
    """
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    if _default is None:
        raise NotConfigured("no object store configured: install the runtime first "
                            "(lscloud.runtime.install or lscloud.runtime.current())")
    return _default


def blobs(prefix: str, **options) -> BlobStore:
    """A :class:`BlobStore` under ``prefix`` on the installed connection (``max_bytes=``, ``media_types=`` …)."""
    objects, bucket = connection()
    return BlobStore(objects, bucket, prefix=prefix, **options)


__all__ = ["configure", "connection", "using", "blobs", "claimed_only", "NotConfigured", "ObjectStore", "StoreError", "DoesNotExist", "ConditionalCheckFailed",
           "InvalidKey", "StoreUnavailable", "BlobRejected", "IntegrityError", "Model", "ResultPage", "attributes",
           "Attribute", "UnicodeAttribute", "PseudonymAttribute", "NumberAttribute", "BooleanAttribute",
           "UTCDateTimeAttribute", "TTLAttribute", "MapAttribute", "ListAttribute", "JSONAttribute", "VersionAttribute",
           "utcnow", "BlobStore", "BlobRef"]
