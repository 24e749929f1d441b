"""Attributes and the Model class machinery, without a store."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from lscloud.store import Model, attributes as A
from lscloud.store.errors import DoesNotExist, InvalidKey


class Unit(Model):
    class Meta:
        table = "units"

    code = A.UnicodeAttribute(hash_key=True)
    name = A.UnicodeAttribute()
    population = A.NumberAttribute(null=True)
    active = A.BooleanAttribute(default=True)
    created = A.UTCDateTimeAttribute(default=A.utcnow)
    tags = A.ListAttribute(default=list)
    extra = A.MapAttribute(default={"k": []})
    doc = A.JSONAttribute(null=True)
    version = A.VersionAttribute()
    expires = A.TTLAttribute(null=True)


class Reading(Model):
    class Meta:
        table = "readings"

    station = A.UnicodeAttribute(hash_key=True)
    at = A.UnicodeAttribute(range_key=True)
    value = A.NumberAttribute()


def test_constructor_keys_defaults_and_unknown_keywords():
    u = Unit("LS", name="Lạng Sơn")
    assert u.code == "LS" and u.active is True and u.tags == [] and u.version is None and u.etag is None
    assert u.created.tzinfo == timezone.utc
    assert Unit("a", name="x").extra is not Unit("b", name="y").extra  # defaults are per item
    r = Reading("s1", "2025", value=1)
    assert (r.station, r.at) == ("s1", "2025")
    with pytest.raises(TypeError, match="colour"):
        Unit("LS", name="x", colour="red")
    with pytest.raises(TypeError):
        Unit("LS", code="LS")
    with pytest.raises(TypeError):
        Unit("LS", "range")


@pytest.mark.parametrize("attr,bad", [
    ("name", 5), ("population", True), ("population", "5"), ("population", float("nan")),
    ("active", 1), ("created", "2025-01-01"), ("tags", "abc"), ("extra", [1]), ("extra", {1: 2}),
    ("doc", {"x": object()}), ("doc", float("inf")), ("version", -1), ("version", 1.0),
])
def test_assignment_is_type_checked(attr, bad):
    u = Unit("LS", name="x")
    with pytest.raises((TypeError, ValueError)):
        setattr(u, attr, bad)


def test_naive_datetimes_refused_and_aware_ones_held_in_utc():
    u = Unit("LS", name="x")
    with pytest.raises(ValueError, match="naive"):
        u.created = datetime(2025, 1, 1, 12, 0)
    u.created = datetime(2025, 1, 1, 19, 0, tzinfo=timezone(timedelta(hours=7)))
    assert u.created == datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert u.to_dict()["created"] == "2025-01-01T12:00:00.000000Z"


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_datetime_round_trip(value):
    attr = Unit._attributes["created"]
    text = attr.serialize(attr.validate(value))
    assert text.endswith("Z") and attr.deserialize(text) == value


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20))
def test_json_attribute_round_trips_through_dicts(value):
    u = Unit("LS", name="x", doc=value)
    again = Unit.from_dict(u.to_dict())
    assert again.doc == value and again == u


def test_to_dict_from_dict():
    u = Unit("LS", name="x", population=12.5, tags=["a"], extra={"k": {"n": 1}})
    d = u.to_dict()
    assert d["population"] == 12.5 and d["doc"] is None and d["version"] is None
    d["tags"].append("mutated")
    assert u.tags == ["a"]  # to_dict is a copy
    back = Unit.from_dict({**u.to_dict(), "unknown_future_field": 1})
    assert back == u and back.etag is None
    with pytest.raises(TypeError):
        Unit.from_dict([1])
    with pytest.raises(ValueError):
        Unit.from_dict({"code": "LS", "name": "x", "created": "not a date"})


def test_ttl_expiry():
    u = Unit("LS", name="x")
    assert not u._expired()
    u.expires = A.utcnow() + timedelta(hours=1)
    assert not u._expired()
    u.expires = A.utcnow() - timedelta(seconds=1)
    assert u._expired()


def test_each_model_has_its_own_does_not_exist():
    assert issubclass(Unit.DoesNotExist, DoesNotExist)
    assert Unit.DoesNotExist is not Reading.DoesNotExist
    assert not issubclass(Unit.DoesNotExist, Reading.DoesNotExist)

    class Child(Unit):
        class Meta:
            table = "children"

    assert issubclass(Child.DoesNotExist, Unit.DoesNotExist)
    assert set(Child._attributes) == set(Unit._attributes)


def test_schema_is_checked_at_class_creation():
    with pytest.raises(TypeError, match="exactly one hash_key"):
        class NoHash(Model):
            class Meta:
                table = "x"
            name = A.UnicodeAttribute()
    with pytest.raises(TypeError, match="exactly one hash_key"):
        class TwoHashes(Model):
            class Meta:
                table = "x"
            a = A.UnicodeAttribute(hash_key=True)
            b = A.UnicodeAttribute(hash_key=True)
    with pytest.raises(InvalidKey):
        class BadTable(Model):
            class Meta:
                table = "../etc"
            a = A.UnicodeAttribute(hash_key=True)
    with pytest.raises(TypeError, match="reserved"):
        class Reserved(Model):
            class Meta:
                table = "x"
            a = A.UnicodeAttribute(hash_key=True)
            save = A.UnicodeAttribute()
    with pytest.raises(TypeError):
        A.MapAttribute(hash_key=True)


def test_keys_are_validated_before_any_io():
    for bad in ["", "x" * 201, None]:
        with pytest.raises(InvalidKey):
            Unit._key_for(bad)
    with pytest.raises(InvalidKey):
        Reading._key_for("s1")  # range key required
    with pytest.raises(InvalidKey):
        Unit._key_for("LS", "r")  # no range key
    assert Unit._key_for("../x") == "units/~2E~2E~2Fx/_.json"
    assert Reading._key_for("a/b", "2025-01-01T00:00Z") == "readings/a~2Fb/2025~2D01~2D01T00~3A00Z.json"


def test_required_attributes_named_at_save():
    u = Unit("LS")
    with pytest.raises(ValueError, match=r"Unit\.name is required"):
        u.save()
