"""lscloud.store.recent on a real weed mini: a read-modify-write that starts from this replica's last
copy (or presumes a new key free) goes straight to the conditional PUT, and a wrong guess costs a
re-read, never a lost or overwritten write."""

from __future__ import annotations

import uuid

import pytest

from lscloud.store import Model, attributes as A
from lscloud.store.recent import RecentItems
from store_calls import counting

pytestmark = pytest.mark.integration


class Tally(Model):
    class Meta:
        table = "t-recent-tallies"

    name = A.UnicodeAttribute(hash_key=True)
    n = A.NumberAttribute(default=0)
    seen = A.ListAttribute(default=list)


def add(tag):
    def fn(item):
        item.n = int(item.n) + 1
        item.seen = list(item.seen) + [tag]
    return fn


def test_a_key_presumed_free_but_taken_is_re_read_and_nothing_is_lost(rt):
    name = uuid.uuid4().hex
    Tally(name, n=5, seen=["elsewhere"]).save()
    recent = RecentItems(Tally)
    got = recent.update(name, None, add("here"), create=lambda: Tally(name))
    assert got.n == 6 and got.seen == ["elsewhere", "here"]
    assert Tally.get(name).seen == ["elsewhere", "here"]


def test_a_stale_copy_loses_its_condition_and_the_change_is_made_on_the_latest(rt):
    name = uuid.uuid4().hex
    a, b = RecentItems(Tally), RecentItems(Tally)
    a.update(name, None, add("a1"), create=lambda: Tally(name))
    b.update(name, None, add("b1"), create=lambda: Tally(name))   # a's copy is now stale
    with counting() as calls:
        a.update(name, None, add("a2"), create=lambda: Tally(name))
    assert Tally.get(name).seen == ["a1", "b1", "a2"]
    assert (calls["put"], calls["get"]) == (2, 1)                  # the lost PUT, the re-read, the PUT
    with counting() as calls:
        a.update(name, None, add("a3"))
    assert (calls["put"], calls["get"]) == (1, 0)                  # its copy is current again


def test_a_change_that_raises_writes_nothing(rt):
    name = uuid.uuid4().hex
    recent = RecentItems(Tally)
    recent.update(name, None, add("one"), create=lambda: Tally(name))

    def refuse(item):
        item.n = 99
        raise LookupError("no")

    with pytest.raises(LookupError):
        recent.update(name, None, refuse)
    assert Tally.get(name).n == 1 and recent.lookup(name).n == 1   # the copy was not touched either


def test_a_missing_item_without_create_is_does_not_exist(rt):
    with pytest.raises(Tally.DoesNotExist):
        RecentItems(Tally).update(uuid.uuid4().hex, None, add("x"))


def test_the_oldest_copies_go_first(rt):
    recent = RecentItems(Tally, max_items=2)
    names = [uuid.uuid4().hex for _ in range(3)]
    for name in names:
        recent.update(name, None, add("x"), create=lambda name=name: Tally(name))
    assert recent.lookup(names[0]) is None and recent.lookup(names[2]).n == 1 and len(recent) == 2


class _Full(Exception):
    pass


def test_a_refusal_named_in_recheck_made_on_a_stale_copy_is_made_again_on_the_store(rt):
    """``recheck=``: a decision without a write, made on the remembered copy, may be stale (a
    counter that went back elsewhere); it is raised only if the stored item decides it too."""
    name = uuid.uuid4().hex
    recent = RecentItems(Tally)

    def at_most(n):
        def fn(item):
            if int(item.n) >= n:
                raise _Full()
            add("here")(item)
        return fn

    recent.update(name, None, add("one"), create=lambda: Tally(name))
    Tally.update(name, None, lambda item: setattr(item, "n", 0))     # gone back elsewhere
    with counting() as calls:
        assert recent.update(name, None, at_most(1), recheck=_Full).n == 1
    assert (calls["get"], calls["put"]) == (1, 1)                     # the copy refused; the store did not
    with pytest.raises(_Full), counting() as calls:
        recent.update(name, None, at_most(1), recheck=_Full)
    assert (calls["get"], calls["put"]) == (1, 0)                     # refused on the store too


def test_a_scan_reads_only_what_changed_since_this_replica_held_it(rt):
    """``RecentItems.scan``: an item listed with the ETag of the copy held is answered from the copy;
    one another replica changed, one new, and one deleted are what the store says."""
    prefix = uuid.uuid4().hex[:8]

    class Ledger(Model):
        class Meta:
            table = f"t-recent-scan-{prefix}"

        name = A.UnicodeAttribute(hash_key=True)
        n = A.NumberAttribute(default=0)
        seen = A.ListAttribute(default=list)

    names = [f"{prefix}-{i:02d}" for i in range(12)]
    for name in names:
        Ledger(name).save()
    recent = RecentItems(Ledger)
    with counting() as calls:
        first = recent.scan()
    assert [i.name for i in first] == names and calls["get"] == 12      # nothing held yet: all read
    with counting() as calls:
        again = recent.scan()
    assert [i.name for i in again] == names and calls["get"] == 0       # all held as stored
    assert calls["list"] >= 1                                           # the listing is still asked

    elsewhere = Ledger.get(names[3])                                   # another replica's changes
    elsewhere.n, elsewhere.seen = 7, ["elsewhere"]
    elsewhere.save()
    Ledger.get(names[5]).delete()
    Ledger(f"{prefix}-99", n=1).save()
    with counting() as calls:
        page = recent.scan(limit=5)
    assert [i.name for i in page] == names[:5] and calls["get"] == 1   # only the changed one is read
    assert page[3].n == 7 and page[3].seen == ["elsewhere"]
    rest = recent.scan(page_token=page.page_token)
    assert [i.name for i in rest] == names[6:] + [f"{prefix}-99"]       # the deleted one is gone
    # a copy handed out is the caller's own: changing it changes nothing held
    rest[0].seen.append("mine")
    with counting() as calls:
        assert recent.scan()[5].seen == [] and calls["get"] == 0
