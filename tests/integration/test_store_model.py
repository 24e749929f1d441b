"""Documents against a real weed mini: conditional writes, races, listings, paging, TTL."""

import threading
from datetime import timedelta

import pytest

import lscloud.store as store
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey, Model, attributes as A, keys

pytestmark = pytest.mark.integration


class Unit(Model):
    class Meta:
        table = "units"

    code = A.UnicodeAttribute(hash_key=True)
    name = A.UnicodeAttribute()
    population = A.NumberAttribute(null=True)
    created = A.UTCDateTimeAttribute(default=A.utcnow)
    tags = A.ListAttribute(default=list)
    extra = A.MapAttribute(default=dict)
    version = A.VersionAttribute()


class Counter(Model):
    class Meta:
        table = "counters"

    name = A.UnicodeAttribute(hash_key=True)
    value = A.NumberAttribute(default=0)
    version = A.VersionAttribute()


class Reading(Model):
    class Meta:
        table = "readings"

    station = A.UnicodeAttribute(hash_key=True)
    at = A.UnicodeAttribute(range_key=True)
    value = A.NumberAttribute()


class Session(Model):
    class Meta:
        table = "sessions"

    owner = A.UnicodeAttribute(hash_key=True)
    sid = A.UnicodeAttribute(range_key=True)
    expires = A.TTLAttribute(null=True)


class Catalogue(Model):
    class Meta:
        table = "catalogue"
        reference = True

    code = A.UnicodeAttribute(hash_key=True)
    name = A.UnicodeAttribute()
    version = A.VersionAttribute()


@pytest.fixture(autouse=True)
def configured(object_store, bucket):
    store.configure(object_store, bucket)
    yield object_store, bucket


def test_save_get_round_trip_and_stored_form(configured):
    objects, bucket = configured
    u = Unit("LS", name="Lạng Sơn", population=781655, tags=["biên giới"], extra={"area_km2": 8310.2})
    assert u.save() is u
    assert u.version == 1 and u.etag
    raw = objects.get(bucket, "units/LS/_.json")
    assert raw.etag == u.etag
    got = Unit.get("LS")
    assert got == u and got.etag == u.etag and got.to_dict()["created"].endswith("Z")
    assert Unit.exists("LS") and not Unit.exists("HN")


def test_an_older_model_updating_a_newer_document_keeps_what_it_does_not_know(configured):
    # a replica of an older revision (rolling deploy, rollback) declares fewer attributes than the
    # one that wrote the document: its read-modify-write must not drop a create's request stamp
    objects, bucket = configured
    import json

    newer = {"code": "LS", "name": "Lạng Sơn", "population": None, "created": "2026-12-01T00:00:00.000000Z",
             "tags": [], "extra": {}, "version": 1, "request": {"digest": "abc", "fields": {"/name": "d1"}},
             "moved": [{"at": "2026-12-01T00:00:00Z", "side": ["x"]}]}
    objects.put(bucket, "units/LS/_.json", json.dumps(newer).encode(), if_none_match=True)
    older = Unit.get("LS")
    assert "request" not in older.to_dict()          # what it shows is what it declares
    older.name = "Tỉnh Lạng Sơn"
    older.save()
    stored = json.loads(objects.get(bucket, "units/LS/_.json").body)
    assert stored["request"] == newer["request"] and stored["moved"] == newer["moved"]
    assert stored["name"] == "Tỉnh Lạng Sơn" and stored["version"] == 2
    # an item built from a dict, or from nothing, carries nothing it was not given
    assert "request" not in json.loads(Unit.from_dict(newer)._body())


def test_missing_item_raises_model_does_not_exist():
    with pytest.raises(Unit.DoesNotExist) as err:
        Unit.get("nope")
    assert err.value.cause == "not_found"
    with pytest.raises(DoesNotExist):
        Unit.get("nope")
    with pytest.raises(Counter.DoesNotExist):
        Counter.update("nope", None, lambda c: None)
    try:
        Reading.get("s", "r")
    except Unit.DoesNotExist:  # pragma: no cover - the wrong model's error must not catch it
        pytest.fail("Unit.DoesNotExist caught a Reading miss")
    except Reading.DoesNotExist:
        pass


def test_create_only_conflict_keeps_first_write():
    Unit("LS", name="first").save()
    with pytest.raises(ConditionalCheckFailed) as err:
        Unit("LS", name="second").save()
    assert err.value.cause == "conditional_check_failed"
    assert Unit.get("LS").name == "first"


def test_stale_update_conflict():
    Unit("LS", name="v1").save()
    a, b = Unit.get("LS"), Unit.get("LS")
    a.name = "from a"
    a.save()
    assert a.version == 2
    b.name = "from b"
    with pytest.raises(ConditionalCheckFailed):
        b.save()
    assert b.version == 1  # a failed save leaves the item as it was
    b.refresh()
    assert b.name == "from a" and b.version == 2 and b.etag == a.etag
    b.name = "from b again"
    b.save()
    assert Unit.get("LS").name == "from b again" and Unit.get("LS").version == 3


def test_overwrite_is_unconditional():
    Unit("LS", name="v1").save()
    Unit("LS", name="seeded").save(overwrite=True)
    assert Unit.get("LS").name == "seeded"


def test_key_of_a_stored_item_cannot_change():
    u = Unit("LS", name="x").save()
    u.code = "HN"
    with pytest.raises(InvalidKey) as err:
        u.save()
    assert err.value.cause == "key_changed"


@pytest.mark.parametrize("like_minio", [False, True], ids=["store-honours-if-match", "store-like-minio"])
def test_delete_is_conditional_on_the_read_version(like_minio, base_settings, bucket):
    if like_minio:   # a store that ignores If-Match on DELETE: the client's tombstone carries the condition
        from s3_faults import store_like_minio

        store.configure(store_like_minio(base_settings, trusted=False)[0], bucket)
    Unit("LS", name="v1").save()
    stale, fresh = Unit.get("LS"), Unit.get("LS")
    fresh.name = "v2"
    fresh.save()
    with pytest.raises(ConditionalCheckFailed):
        stale.delete()
    assert Unit.exists("LS")
    fresh.delete()
    assert not Unit.exists("LS")
    with pytest.raises(Unit.DoesNotExist):
        fresh.refresh()
    fresh.save()  # a deleted item saves as a new one again
    assert Unit.get("LS").name == "v2"


def test_an_update_of_reference_data_starts_from_the_store_not_the_cached_copy(configured, base_settings):
    """A reference model is read from memory within the bound; an update judges what the store
    holds (a caller's If-Match names the version it read there), never the older cached copy."""
    from lscloud.store import ObjectStore

    objects, bucket = configured
    Catalogue("c", name="v1").save()
    assert Catalogue.get("c").name == "v1"   # held by this replica
    store.configure(ObjectStore.from_settings(base_settings), bucket)   # another replica changes it
    Catalogue.update("c", None, lambda item: setattr(item, "name", "v2"))
    store.configure(objects, bucket)
    assert Catalogue.get("c").name == "v1"   # this replica's copy, within the bound
    seen = []

    def only_version_2(item):
        seen.append(item.version)
        if item.version != 2:
            raise AssertionError("judged a stale copy")
        item.name = "v3"

    assert Catalogue.update("c", None, only_version_2, retries=0).name == "v3"
    assert seen == [2] and Catalogue.get("c").name == "v3"


def test_concurrent_updates_lose_nothing():
    Counter("hits").save()
    failures = []

    def bump():
        for _ in range(10):
            try:
                Counter.update("hits", None, lambda c: setattr(c, "value", c.value + 1), retries=200)
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    final = Counter.get("hits")
    assert final.value == 80 and final.version == 81


def test_update_gives_up_after_its_retries():
    Counter("c").save()

    def meddle(c):  # another writer wins every time between our read and our write
        other = Counter.get("c")
        other.value += 100
        other.save()
        c.value += 1

    with pytest.raises(ConditionalCheckFailed):
        Counter.update("c", None, meddle, retries=2)
    assert Counter.get("c").value == 300


def _seed_readings():
    ats = ["2025-01", "2025-01-15", "2025-02", "2025-03", "2025 x", "2025", "2024-12", "b/../../x"]
    for i, at in enumerate(ats):
        Reading("s1", at, value=i).save()
    Reading("s2", "2025-01", value=99).save()
    return ats


def _key_order(values):
    return sorted(values, key=keys.encode_part)


def test_query_orders_by_encoded_key_and_filters():
    ats = _seed_readings()
    page = Reading.query("s1")
    assert [r.at for r in page] == _key_order(ats) and page.page_token is None
    assert [r.at for r in Reading.query("s1", range_prefix="2025-0")] == ["2025-01", "2025-01-15", "2025-02", "2025-03"]
    assert [r.at for r in Reading.query("s1", range_prefix="b/..")] == ["b/../../x"]
    between = Reading.query("s1", range_between=("2025-01", "2025-02"))
    assert [r.at for r in between] == ["2025-01", "2025-01-15", "2025-02"]
    # " " (~20) sorts before "-" (~2D): both escaped, compared by their hex
    assert [r.at for r in Reading.query("s1", range_between=("2025-02", None))] == ["2025-02", "2025-03", "b/../../x"]
    assert [r.at for r in Reading.query("s1", range_between=("2025 ", "2025-01"))] == ["2025 x", "2025-01"]
    assert [r.at for r in Reading.query("s1", range_between=(None, "2025"))] == ["2024-12", "2025"]
    assert [r.at for r in Reading.query("s1", range_between=("2025-01-15", "2025-01-15"))] == ["2025-01-15"]
    assert [r.at for r in Reading.query("s1", range_between=("2025-01-16", "2025-01-17"))] == []
    assert [r.value for r in Reading.query("s2")] == [99]
    assert len(Reading.query("nobody")) == 0


def test_query_pages_with_tokens():
    ats = _seed_readings()
    seen, token, pages = [], None, 0
    while True:
        page = Reading.query("s1", limit=3, page_token=token)
        assert len(page) <= 3
        seen += [r.at for r in page]
        pages += 1
        token = page.page_token
        if token is None:
            break
    assert seen == _key_order(ats) and pages == 3
    first = Reading.query("s1", range_between=("2025-01", "2025-03"), limit=2)
    rest = Reading.query("s1", range_between=("2025-01", "2025-03"), limit=2, page_token=first.page_token)
    assert [r.at for r in first] + [r.at for r in rest] == ["2025-01", "2025-01-15", "2025-02", "2025-03"]
    assert rest.page_token is None


def test_query_all_reads_every_page():
    ats = _seed_readings()
    assert [r.at for r in Reading.query_all("s1", page_size=3)] == _key_order(ats)
    assert [r.at for r in Reading.query_all("s1", range_prefix="2025-0", page_size=1)] == \
        ["2025-01", "2025-01-15", "2025-02", "2025-03"]
    assert list(Reading.query_all("nobody")) == []


def test_query_keys_lists_range_keys_without_reading_items(configured):
    ats = _seed_readings()
    objects, bucket = configured
    assert Reading.query_keys("s1") == _key_order(ats)
    assert Reading.query_keys("s1", range_between=("2025-01", "2025-02")) == ["2025-01", "2025-01-15", "2025-02"]
    assert Reading.query_keys("s1", range_between=("2025-02", None), limit=2) == ["2025-02", "2025-03"]
    assert Reading.query_keys("nobody") == []
    # no item is read: a body that no longer parses does not matter to a key listing
    objects.put(bucket, keys.object_key("readings", "s1", "2025-01"), b"not json")
    assert "2025-01" in Reading.query_keys("s1")
    with pytest.raises(TypeError):
        Session.query_keys("someone")          # a TTL lives in the body: listing alone cannot tell
    # a caller an expired item does no harm to says so, and gets every key, expired ones too
    from datetime import datetime, timedelta, timezone
    Session("someone", "old", expires=datetime.now(timezone.utc) - timedelta(hours=1)).save()
    Session("someone", "new", expires=datetime.now(timezone.utc) + timedelta(hours=1)).save()
    assert Session.query_keys("someone", expired_too=True) == ["new", "old"]
    assert [i.sid for i in Session.query("someone")] == ["new"]


def test_tampered_page_tokens_are_refused():
    _seed_readings()
    token = Reading.query("s1", limit=2).page_token
    with pytest.raises(InvalidKey):  # a token from another hash key
        Reading.query("s2", page_token=token)
    for forged in [keys.encode_token("units/LS/_.json"), keys.encode_token("readings/s1/../../units/x.json"),
                   token[:-2] + "!!", "", "bm90IGEga2V5"]:
        with pytest.raises(InvalidKey) as err:
            Reading.query("s1", page_token=forged)
        assert err.value.cause in ("invalid_page_token", "invalid_key")
    with pytest.raises(ValueError):
        Reading.query("s1", limit=0)


def test_scan_and_count(configured):
    objects, bucket = configured
    _seed_readings()
    objects.put(bucket, "readings/stray-object.txt", b"not an item")  # ignored: not an item key
    everything = Reading.scan()
    assert len(everything) == 9 and everything.page_token is None
    assert [(r.station, r.at) for r in everything][-1] == ("s2", "2025-01")
    seen, token = [], None
    while True:
        page = Reading.scan(limit=4, page_token=token)
        seen += [(r.station, r.at) for r in page]
        if (token := page.page_token) is None:
            break
    assert seen == [(r.station, r.at) for r in everything]
    assert Reading.count() == 9 and Reading.count("s1") == 8 and Reading.count("zz") == 0
    assert Unit.count() == 0
    with pytest.raises(InvalidKey):
        Unit.scan(page_token=keys.encode_token("readings/s1/2025.json"))


def test_many_items_fetched_concurrently_keep_listing_order():
    for i in range(100):
        Reading("bulk", f"{i:04d}", value=i).save()
    page = Reading.query("bulk")
    assert [r.value for r in page] == list(range(100))
    assert all(r.etag for r in page)
    page = Reading.query("bulk", limit=70)
    assert [r.value for r in page] == list(range(70)) and page.page_token
    assert [r.value for r in Reading.query("bulk", page_token=page.page_token)] == list(range(70, 100))


def test_ttl_expired_items_behave_as_missing():
    now = A.utcnow()
    Session("ana", "live", expires=now + timedelta(hours=1)).save()
    Session("ana", "forever").save()
    Session("ana", "old", expires=now - timedelta(seconds=1)).save()
    with pytest.raises(Session.DoesNotExist):
        Session.get("ana", "old")
    assert not Session.exists("ana", "old") and Session.exists("ana", "live")
    assert sorted(s.sid for s in Session.query("ana")) == ["forever", "live"]
    assert sorted(s.sid for s in Session.scan()) == ["forever", "live"]
    assert Session.count() == 2 and Session.count("ana") == 2
    # the expired item's key counts as free for a create-only save
    Session("ana", "old", expires=now + timedelta(hours=1)).save()
    assert Session.get("ana", "old").expires > now
    with pytest.raises(ConditionalCheckFailed):
        Session("ana", "old").save()
    # paging still works when a page's tail is expired
    Session("ana", "zz-old", expires=now - timedelta(seconds=1)).save()
    page = Session.query("ana", limit=3)
    assert [s.sid for s in page] == ["forever", "live", "old"] and page.page_token
    assert len(Session.query("ana", page_token=page.page_token)) == 0


@pytest.mark.parametrize("walk", ["../x", "a/b", "..", "../../units/LS", "%2F", "x\x00y"])
def test_key_walking_inputs_stay_in_their_table(configured, walk):
    objects, bucket = configured
    Unit("LS", name="target").save()
    Reading(walk, walk, value=1).save()
    got = Reading.get(walk, walk)
    assert (got.station, got.at) == (walk, walk)
    stored = [o.key for o in objects.list(bucket, "")]
    assert all(k.count("/") == 2 for k in stored)
    assert sorted(k.split("/")[0] for k in stored) == ["readings", "units"]
    assert Unit.get("LS").name == "target"
    assert [r.station for r in Reading.scan()] == [walk]


@pytest.mark.parametrize("bad", ["", "x" * 201])
def test_invalid_keys_refused(bad):
    with pytest.raises(InvalidKey):
        Unit.get(bad)
    with pytest.raises(InvalidKey):
        Unit(bad, name="x").save()
    with pytest.raises(InvalidKey):
        Reading.query(bad)


def test_meta_bucket_overrides_the_default(configured):
    objects, default_bucket = configured
    other = default_bucket + "-x"
    objects.ensure_bucket(other)

    class Archived(Model):
        class Meta:
            table = "archive"
            bucket = other

        code = A.UnicodeAttribute(hash_key=True)

    Archived("a1").save()
    assert objects.head(other, "archive/a1/_.json").size > 0
    assert list(objects.list(default_bucket, "archive/")) == []
    assert Archived.get("a1").code == "a1"


class Note(Model):
    class Meta:
        table = "notes"

    nid = A.UnicodeAttribute(hash_key=True)
    body = A.JSONAttribute(null=True)


def test_a_stored_document_that_is_no_json_reads_as_corrupt(configured):
    """What JSON has no value for (NaN, Infinity: Python's json reads them) fails the read, even
    deep in a JSON attribute, whose parsed value is not checked again; JSON values round-trip."""
    from lscloud.store.errors import StoreError

    objects, bucket = configured
    Note("ok", body={"n": [1, 2.5, None, "x"], "t": True}).save()
    assert Note.get("ok").body == {"n": [1, 2.5, None, "x"], "t": True}
    for text in (b'{"nid":"bad","body":{"n":[1,NaN]}}', b'{"nid":"bad","body":Infinity}',
                 b'{"nid":"bad","body":{"x":-Infinity}}'):
        objects.put(bucket, keys.object_key("notes", "bad"), text)
        with pytest.raises(StoreError) as corrupt:
            Note.get("bad")
        assert corrupt.value.cause == "corrupt"


class ByPhone(Model):
    class Meta:
        table = "by-phone"

    phone = A.PseudonymAttribute(hash_key=True)
    note = A.UnicodeAttribute()


def test_hash_keys_list_a_tables_items_and_a_pseudonym_finds_its_item(configured):
    """``hash_keys``: a table's hash keys from its listing alone (a stray object is no item); a
    :class:`lscloud.pseudonyms.Pseudonym` is a PseudonymAttribute key as it is (an erasure re-applied
    from its record has the pseudonym, not the number)."""
    from lscloud.pseudonyms import Pseudonym, pseudonym

    objects, bucket = configured
    for code in ("b", "a", "c"):
        Unit(code, name=code).save()
    objects.put(bucket, "units/stray.txt", b"not an item")
    assert Unit.hash_keys(10) == ["a", "b", "c"] and Unit.hash_keys(2) == ["a", "b"]
    with pytest.raises(TypeError):
        Reading.hash_keys(10)
    ByPhone("0912345678", note="x").save()
    assert ByPhone.get(Pseudonym(pseudonym("by-phone", "0912345678"))).note == "x"
    assert ByPhone.hash_keys(5) == [pseudonym("by-phone", "0912345678")]
