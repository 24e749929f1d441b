"""`lscloud bench listing`: a page of a listing, as every paged API list and every sweep reads one
(the runtime's ``Model.scan(limit=…)``: a listing request, then the page's items), against the
raw S3 calls the page needs (boto3: a LIST of the page's keys and one more, then a GET of each
item) measured in the same run; and the same page from a table 30 times smaller, which must cost
the same.

A page must cost its own keys, not the table's. Until stop 37 every page's listing asked the store
for 1,000 keys whatever the page's size: a page of 20 of 3,000 items took ten times what it does
now, and no other benchmark reads a page, so nothing showed it. Each client pages through its
table from the start, as a user or a sweep does, and starts again at the end.
"""

from __future__ import annotations

import os
import statistics
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lscloud import store
from lscloud.store import Model, attributes as A, keys
from lscloud.store.objects import ObjectStore

from .bench import local_cloud
from .bench_cpu import CpuMeter
from .bench_load import BenchError, base, print_cpu, rate_ratio, rounds_row, run_alternated
from .cloud import cloud_settings

SMALL_PAGES = 5   # the small table: five pages; the large one is ``items``
ITEM_BYTES = 300  # the text each item holds (stop 37's one-off measurement used the same)
GOAL_RAW = 1.0    # the runtime is not slower than the same calls made by hand (as the directory GET row)
GOAL_FLAT = 1.25


def _model(name: str) -> type[Model]:
    """A table of its own for each run (a reused cloud keeps the last run's)."""
    class Item(Model):
        class Meta:
            table = name

        id = A.UnicodeAttribute(hash_key=True)
        data = A.JSONAttribute()

    return Item


def _fill(model: type[Model], n: int, objects: ObjectStore, bucket: str) -> None:
    def save(i: int) -> None:
        with store.using(objects, bucket):
            model(f"i-{i:06d}", data={"n": i, "text": "x" * ITEM_BYTES}).save()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(save, range(n)))


def _pages_call(model: type[Model], page: int, objects: ObjectStore, bucket: str):
    """A client paging through ``model``'s table, a page a call, from the start again after the last."""
    def make():
        token = None

        def call():
            nonlocal token
            with store.using(objects, bucket):
                got = model.scan(limit=page, page_token=token)
            if len(got) != page and got.page_token is not None:
                raise RuntimeError(f"a page of {len(got)} items, not {page}")
            token = got.page_token

        return call

    return make


def _raw_page_call(objects: ObjectStore, bucket: str, prefix: str, page: int):
    """The page's S3 calls made raw: its keys and one more (is there a next page?), then each item."""
    def make():
        client = objects.client

        def call():
            # raw boto3, as every baseline, one call after the other
            out = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=page + 1)
            if out.get("KeyCount") != page + 1:
                raise RuntimeError(f"listed {out.get('KeyCount')} keys")
            for entry in out["Contents"][:page]:
                client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()

        return call

    return make


def bench_listing(*, items: int = 3000, page: int = 20, requests: int = 400, concurrency: int = 8,
                  functions_dir: Path = Path("functions"), reuse_state_dir: Path | None = None,
                  max_seconds: float = 30.0, report: list | None = None, rounds: int = 3) -> int:
    """Pages of ``page`` items per second from a table of ``items`` and from one of five pages,
    against the same page's calls made raw, in turn (see the module docstring)."""
    if min(items, page, requests, concurrency, rounds) < 1:
        raise BenchError("--items, --page, --requests, --concurrency and --rounds must be at least 1")
    small_n = page * SMALL_PAGES
    if items < 2 * small_n:
        raise BenchError(f"--items must be at least {2 * small_n} (twice the small table's {small_n})")
    run = uuid.uuid4().hex[:8]
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("hello",)) as cloud:   # the store is what is read
        settings = cloud_settings(cloud)
        objects = ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                              settings.s3_region, max_pool=max(32, concurrency * 2))
        large, small = _model(f"bench-listing-{run}-large"), _model(f"bench-listing-{run}-small")
        print(f"… filling a table of {items} items and one of {small_n} (about {ITEM_BYTES} bytes each)", flush=True)
        _fill(large, items, objects, settings.bucket)
        _fill(small, small_n, objects, settings.bucket)
        big_name = f"a page of {page} of {items} items (Model.scan)"
        small_name = f"a page of {page} of {small_n} items (Model.scan)"
        raw_name = f"S3 LIST of {page + 1} keys + {page} GETs (boto3)"
        prefix = keys.table_prefix(large.Meta.table)
        alternated = run_alternated([(big_name, _pages_call(large, page, objects, settings.bucket), requests),
                                     (small_name, _pages_call(small, page, objects, settings.bucket), requests),
                                     (raw_name, _raw_page_call(objects, settings.bucket, prefix, page), requests)],
                                    rounds=rounds, concurrency=concurrency, max_seconds=max_seconds,
                                    cpu=CpuMeter(cloud))
    big, little, raw = alternated.merged.values()
    print()
    print(f"lscloud bench listing — {os.cpu_count()} CPU(s), concurrency {concurrency}")
    width = max(len(r.name) for r in (big, little, raw))
    print(f"{'target'.ljust(width)}  {'per s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for r in (big, little, raw):
        print(f"{r.name.ljust(width)}  {r.rps:8.1f}  {r.pct(0.5):7.1f}  {r.pct(0.99):7.1f}  {r.errors:6d}"
              + (f"  ({r.first_error})" if r.errors else ""))
    if big.rps and raw.rps and little.rps:
        print(f"a page of {items} costs {raw.rps / big.rps:.2f}× its raw calls' time; "
              f"{little.rps / big.rps:.2f}× the page of {small_n}")
    print_cpu([big, little, raw])
    if report is not None:
        flats = alternated.ratios(lambda r: rate_ratio(r[small_name], r[big_name]))
        flat = statistics.median(flats) if flats else None
        report.append(rounds_row(f"a page of {page} of {items} items (Model.scan)", big, base(raw_name, raw),
                                 alternated.ratios(lambda r: rate_ratio(r[raw_name], r[big_name])),
                                 f"≤ {GOAL_RAW:g}× its raw calls' time; ≤ {GOAL_FLAT:g}× a page of {small_n}",
                                 lambda x: x <= GOAL_RAW and flat is not None and flat <= GOAL_FLAT,
                                 vs_small_table=None if flat is None else round(flat, 2)))
    return 1 if min(big.ok, little.ok, raw.ok) == 0 else 0
