"""lscloud.lru.LRU: bounded, the least recently used dropped first, safe from many threads."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from lscloud.lru import LRU


def test_the_least_recently_used_goes_first_and_a_read_counts_as_use():
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1          # a is now the most recently used
    lru.put("c", 3)                   # so b goes
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (1, None, 3) and len(lru) == 2
    lru.pop("a")
    lru.pop("missing")
    assert list(lru) == ["c"]


def test_a_bound_below_one_is_refused():
    with pytest.raises(ValueError, match="max_items"):
        LRU(0)


def test_many_threads_never_pass_the_bound():
    lru: LRU[int, int] = LRU(50)

    def use(i):
        lru.put(i, i)
        lru.get(i - 1)
        return len(list(lru))

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(use, range(5000)))
    assert max(seen) == 50 and len(lru) == 50
    assert all(lru.get(k) == k for k in list(lru))   # every key held still holds its own value


def test_clear_forgets_every_entry():
    from lscloud.lru import LRU

    held = LRU(3)
    for k in "abc":
        held.put(k, k.upper())
    held.clear()
    assert len(held) == 0 and held.get("a") is None
    held.put("d", "D")
    assert list(held) == ["d"]
