"""Documents (a PynamoDB-style Model over S3) and blobs, on one object store connection."""

from __future__ import annotations

from .errors import ConditionalCheckFailed, DoesNotExist, InvalidKey, StoreError, StoreUnavailable
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
           "InvalidKey", "StoreUnavailable"]
