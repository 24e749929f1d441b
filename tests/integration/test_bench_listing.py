"""`lscloud bench listing`'s calls against a real store: a client pages through its table a page a
call and starts again after the last, and the baseline lists one page's keys and one more, then reads the page's items.
(The benchmark itself prints figures; nothing here is timed.)"""

from __future__ import annotations

import pytest

from lscloud.local import bench_listing
from lscloud.store import keys

pytestmark = pytest.mark.integration


def test_a_client_pages_through_the_table_and_starts_again(object_store, bucket):
    model = bench_listing._model("bench-listing-test")
    bench_listing._fill(model, 45, object_store, bucket)
    call = bench_listing._pages_call(model, 20, object_store, bucket)()
    seen = []
    real = model.scan

    def scan(limit=None, page_token=None):
        page = real(limit, page_token)
        seen.append([item.id for item in page])
        return page

    model.scan = scan
    for _ in range(4):
        call()
    assert [len(p) for p in seen] == [20, 20, 5, 20]
    assert sorted(sum(seen[:3], [])) == [f"i-{i:06d}" for i in range(45)] and seen[3] == seen[0]


def test_the_baseline_lists_one_pages_keys_and_one_more_then_reads_the_page(object_store, bucket):
    model = bench_listing._model("bench-listing-raw")
    bench_listing._fill(model, 30, object_store, bucket)
    prefix = keys.table_prefix("bench-listing-raw")
    calls = []

    def seen(model, params, **_):
        calls.append((model.name, params.get("MaxKeys") or params.get("Key")))

    events = object_store.client.meta.events
    events.register("before-parameter-build.s3", seen)
    try:
        bench_listing._raw_page_call(object_store, bucket, prefix, 20)()()
    finally:
        events.unregister("before-parameter-build.s3", seen)
    assert calls[0] == ("ListObjectsV2", 21)
    assert [c[0] for c in calls[1:]] == ["GetObject"] * 20 and len({c[1] for c in calls[1:]}) == 20
    with pytest.raises(RuntimeError, match="listed 30 keys"):
        bench_listing._raw_page_call(object_store, bucket, prefix, 40)()()
