"""Typed model attributes (PynamoDB-style): each one validates on assignment and (de)serialises JSON.

Values are checked when assigned, so a wrong type fails where the bug is rather than at save.
``None`` is always assignable; ``null=False`` attributes are enforced when the item is saved.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timezone
from typing import Any

from .. import pseudonyms


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (a handy ``default=`` for date attributes)."""
    return datetime.now(timezone.utc)


class Attribute:
    """Base of every attribute: a data descriptor on the model class.

    ``hash_key`` / ``range_key`` mark the key attributes (never null); ``default`` is a value
    (deep-copied per item) or a zero-argument callable.
    """

    attr_type = "any"
    key_capable = False

    def __init__(self, *, hash_key: bool = False, range_key: bool = False, null: bool = False,
                 default: Any = None):
        if hash_key and range_key:
            raise TypeError("an attribute cannot be both hash_key and range_key")
        if (hash_key or range_key) and not self.key_capable:
            raise TypeError(f"{type(self).__name__} cannot be a key attribute")
        self.is_hash_key = hash_key
        self.is_range_key = range_key
        self.null = bool(null) and not (hash_key or range_key)
        self._default = default
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # -- descriptor --------------------------------------------------------------------------------

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return instance._values.get(self.name)

    def __set__(self, instance, value) -> None:
        instance._values[self.name] = None if value is None else self.validate(value)

    # -- values ------------------------------------------------------------------------------------

    def default(self) -> Any:
        if self._default is None:
            return None
        if callable(self._default):
            value = self._default()
        else:
            value = copy.deepcopy(self._default)
        return None if value is None else self.validate(value)

    def validate(self, value: Any) -> Any:
        """Return ``value`` as this attribute holds it, or raise TypeError/ValueError."""
        return value

    def serialize(self, value: Any) -> Any:
        """Python value -> JSON value."""
        return value

    def deserialize(self, value: Any) -> Any:
        """JSON value -> Python value (validated, so a corrupt document fails loudly)."""
        return self.validate(value)

    def from_parsed(self, value: Any) -> Any:
        """:meth:`deserialize` of a value a stored document's JSON parsed to (NaN and Infinity
        refused by the parse): what only the parse could have got wrong is not checked again."""
        return self.deserialize(value)

    def _fail(self, value: Any, expected: str) -> TypeError:
        return TypeError(f"attribute {self.name!r} expects {expected}, got {type(value).__name__}")


class UnicodeAttribute(Attribute):
    """A string."""

    attr_type = "S"
    key_capable = True

    def validate(self, value):
        if not isinstance(value, str):
            raise self._fail(value, "a str")
        return value

    def key_string(self, value: str) -> str:
        return value


class PseudonymAttribute(UnicodeAttribute):
    """A personal identifier (CCCD, passport, phone, account number) that keys an index.

    The item holds the clear value (documents may), but its object key holds only the value's
    pseudonym (:func:`lscloud.pseudonyms.pseudonym`, keyed; ``purpose`` defaults to the table),
    so the identifier never reaches an object key, an S3 access log or a span. ``get`` and
    ``query`` take the clear value as before. A hash key only: a pseudonym has no useful order.
    """

    attr_type = "PSEUDONYM"

    def __init__(self, purpose: str | None = None, **kwargs):
        if kwargs.get("range_key"):
            raise TypeError("a PseudonymAttribute can only be a hash key (pseudonyms have no order)")
        super().__init__(**kwargs)
        self.purpose = purpose

    def key_string(self, value: str) -> str:
        if isinstance(value, pseudonyms.Pseudonym):
            return str(value)   # looked up by the pseudonym itself (an erasure re-applied from its record)
        if not self.purpose:
            raise TypeError(f"attribute {self.name!r}: a pseudonymous key needs a purpose (its model's table)")
        return pseudonyms.pseudonym(self.purpose, value)


class NumberAttribute(Attribute):
    """An int or a finite float (bool is refused: it is an int in Python but not a number here)."""

    attr_type = "N"
    key_capable = True

    def validate(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(value, "an int or float")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"attribute {self.name!r} must be finite")
        return value

    def key_string(self, value) -> str:
        return str(value) if isinstance(value, int) else repr(value)


class BooleanAttribute(Attribute):
    """True or False."""

    attr_type = "BOOL"

    def validate(self, value):
        if not isinstance(value, bool):
            raise self._fail(value, "a bool")
        return value


class UTCDateTimeAttribute(Attribute):
    """An aware datetime, held in UTC; stored as ISO-8601 with microseconds and a ``Z``.

    Naive datetimes are refused: guessing their zone is how off-by-seven-hours bugs happen.
    """

    attr_type = "UTC"

    def validate(self, value):
        if not isinstance(value, datetime):
            raise self._fail(value, "an aware datetime")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"attribute {self.name!r} needs an aware datetime (naive datetimes are refused)")
        return value.astimezone(timezone.utc)

    def serialize(self, value: datetime) -> str:
        # isoformat, not strftime: strftime does not zero-pad years before 1000
        return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"

    def deserialize(self, value):
        if not isinstance(value, str):
            raise self._fail(value, "an ISO-8601 string")
        parsed = datetime.fromisoformat(value)
        return self.validate(parsed)


class TTLAttribute(UTCDateTimeAttribute):
    """When the item expires; from then on get/query/scan/count treat it as missing, and the runtime's
    sweep on the clock's tick deletes it (:mod:`lscloud.runonce`)."""

    attr_type = "TTL"

    def expired(self, value: datetime | None, now: datetime | None = None) -> bool:
        return value is not None and value <= (now or utcnow())


def _check_json(attr: Attribute, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"attribute {attr.name!r} is not JSON-serialisable: {exc}") from None


class MapAttribute(Attribute):
    """A plain dict with string keys and JSON values."""

    attr_type = "M"

    def validate(self, value):
        if not isinstance(value, dict):
            raise self._fail(value, "a dict")
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"attribute {self.name!r} needs string keys")
        return value

    def serialize(self, value):
        _check_json(self, value)
        return value


class ListAttribute(Attribute):
    """A list of JSON values (a tuple is accepted and held as a list)."""

    attr_type = "L"

    def validate(self, value):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise self._fail(value, "a list")
        return value

    def serialize(self, value):
        _check_json(self, value)
        return value


class JSONAttribute(Attribute):
    """Any JSON value (object, array, string, number, bool)."""

    attr_type = "JSON"

    def validate(self, value):
        _check_json(self, value)
        return value

    def from_parsed(self, value):
        # parsed JSON is JSON: dumping it again to check (every read of every record) found nothing
        return value


class VersionAttribute(Attribute):
    """The item's write generation: 1 after the first save, +1 on every save.

    The store itself guards writes with the S3 ETag; this number mirrors that generation so
    readers (and HTTP ETags built from it) can see it without the object metadata.
    """

    attr_type = "VERSION"

    def __init__(self, **kwargs):
        kwargs.setdefault("null", True)
        super().__init__(**kwargs)

    def validate(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(value, "an int")
        if value < 0:
            raise ValueError(f"attribute {self.name!r} must not be negative")
        return value


__all__ = ["Attribute", "UnicodeAttribute", "PseudonymAttribute", "NumberAttribute", "BooleanAttribute",
           "UTCDateTimeAttribute", "TTLAttribute", "MapAttribute", "ListAttribute", "JSONAttribute", "VersionAttribute",
           "utcnow"]
