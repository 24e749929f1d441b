"""Documents (a PynamoDB-style Model over S3) and blobs, on one object store connection."""

from __future__ import annotations

from . import attributes
from .attributes import (Attribute, BooleanAttribute, JSONAttribute, ListAttribute, MapAttribute, NumberAttribute,
                         PseudonymAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute, VersionAttribute,
                         utcnow)
from .blobs import BlobRef, BlobStore
from .errors import (BlobRejected, ConditionalCheckFailed, DoesNotExist, IntegrityError, InvalidKey, StoreError,
                     StoreUnavailable)
from .model import Model, ResultPage
from .objects import ObjectStore

_default: tuple[ObjectStore, str] | None = None


def configure(objects: ObjectStore, bucket: str) -> None:
    """Set the connection and bucket that models use unless their Meta names others."""
    global _default
    _default = (objects, bucket)


def connection() -> tuple[ObjectStore, str]:
    """The configured (store, default bucket); installs the runtime from the environment if unset."""
    if _default is None:
        from .. import runtime

        runtime.current()
    assert _default is not None
    return _default


__all__ = ["configure", "connection", "ObjectStore", "StoreError", "DoesNotExist", "ConditionalCheckFailed",
           "InvalidKey", "StoreUnavailable", "BlobRejected", "IntegrityError", "Model", "ResultPage", "attributes",
           "Attribute", "UnicodeAttribute", "PseudonymAttribute", "NumberAttribute", "BooleanAttribute",
           "UTCDateTimeAttribute", "TTLAttribute", "MapAttribute", "ListAttribute", "JSONAttribute", "VersionAttribute",
           "utcnow", "BlobStore", "BlobRef"]
