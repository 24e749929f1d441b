"""The object store's own S3 client against a real weed mini: each answer translated to the
store's errors, retries only where they cannot turn a lost answer into a false conflict, the 304
path, pagination, one CLIENT span per call, and no botocore in a function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lscloud import freshness, telemetry
from lscloud.local.servers import free_port
from lscloud.store.errors import ConditionalCheckFailed, DoesNotExist, StoreError, StoreUnavailable
from lscloud.store.objects import ObjectStore

from s3_faults import LOSE_ANSWER, PASS, SLOW_DOWN, FaultProxy
import metrics_support
from lscloud.metrics import HTTP_CLIENT

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def faulty(s3_server):
    """A store client whose requests cross a :class:`FaultProxy` to the real store (no waits between retries)."""
    proxy = FaultProxy("127.0.0.1", s3_server.s3_port)
    store = ObjectStore(proxy.endpoint, s3_server.access_key, s3_server.secret_key)
    store.http._sleep = lambda attempt: None
    yield store, proxy
    proxy.close()


def test_each_answer_is_translated(object_store, bucket, s3_server):
    etag = object_store.put(bucket, "t/a.json", b"1", if_none_match=True)
    with pytest.raises(ConditionalCheckFailed):                       # 412, create-only
        object_store.put(bucket, "t/a.json", b"2", if_none_match=True)
    with pytest.raises(ConditionalCheckFailed):                       # 412, If-Match
        object_store.put(bucket, "t/a.json", b"2", if_match='"0000"')
    with pytest.raises(DoesNotExist):                                 # 404 with a body
        object_store.get(bucket, "t/none.json")
    with pytest.raises(DoesNotExist):                                 # 404 without one
        object_store.head(bucket, "t/none.json")
    with pytest.raises(DoesNotExist):
        object_store.ping(bucket + "-none")
    object_store.delete(bucket, "t/none.json")                        # absent: nothing to do
    wrong = ObjectStore(s3_server.endpoint, s3_server.access_key, "not-the-secret")
    with pytest.raises(StoreError) as refused:                        # 403: refused, not unavailable
        wrong.get(bucket, "t/a.json")
    assert type(refused.value) is StoreError and refused.value.cause not in ("unavailable", "client_error")
    closed = ObjectStore(f"http://127.0.0.1:{free_port('127.0.0.1')}", "k", "s")
    closed.http._sleep = lambda attempt: None
    with pytest.raises(StoreUnavailable):                             # nobody listening
        closed.get(bucket, "t/a.json")
    with pytest.raises(StoreUnavailable):                             # nor for a bucket it would create
        closed.ensure_bucket(bucket)
    info = object_store.head(bucket, "t/a.json")
    assert (info.etag, info.size) == (etag, 1) and info.last_modified


def test_a_create_only_put_whose_answer_was_lost_is_settled_by_reading_it_back(faulty, bucket):
    """The retry meets its own write (412): the key holds exactly this body, so the write landed
    and is answered as written (before, "unavailable": the caller's retry then met its own write
    as "already exists", and what was to follow the write never did)."""
    store, proxy = faulty
    proxy.plan(LOSE_ANSWER)              # the first attempt creates the object; its 200 is lost
    etag = store.put(bucket, "lost/create.json", b"mine", if_none_match=True, metadata={"kind": "x"})
    assert proxy.seen == [LOSE_ANSWER, PASS, PASS]    # retried once (412: its own write), then read back
    there = store.get(bucket, "lost/create.json")
    assert (there.body, there.etag, there.metadata) == (b"mine", etag, {"kind": "x"})


def test_an_if_match_put_whose_answer_was_lost_is_settled_by_reading_it_back(faulty, bucket):
    store, proxy = faulty
    etag = store.put(bucket, "lost/replace.json", b"1", if_none_match=True)
    proxy.plan(LOSE_ANSWER)
    new = store.put(bucket, "lost/replace.json", b"2", if_match=etag)
    assert new != etag and store.get(bucket, "lost/replace.json").etag == new


def test_a_lost_put_another_writer_overtook_stays_unknown(faulty, bucket, object_store):
    """Read back, the key holds another body: whether this write landed before it cannot be told,
    so it is "unavailable", never a conflict it may not have had, nor a success."""
    store, proxy = faulty
    etag = store.put(bucket, "lost/raced.json", b"1", if_none_match=True)
    # between the lost attempt and its retry, another replica replaces what the lost attempt wrote
    racing = ["lost/raced.json"]
    store.http._sleep = lambda attempt: object_store.put(bucket, racing[0], b"theirs")
    proxy.plan(LOSE_ANSWER)
    with pytest.raises(StoreUnavailable):
        store.put(bucket, "lost/raced.json", b"2", if_match=etag)
    racing[0] = "lost/raced-create.json"
    proxy.plan(LOSE_ANSWER)
    with pytest.raises(StoreUnavailable):
        store.put(bucket, "lost/raced-create.json", b"mine", if_none_match=True)
    assert object_store.get(bucket, "lost/raced-create.json").body == b"theirs"


def test_safe_calls_are_retried_after_a_lost_answer(faulty, bucket):
    store, proxy = faulty
    proxy.plan(LOSE_ANSWER)
    store.put(bucket, "lost/plain.json", b"x")                  # unconditional: the same write again
    proxy.plan(LOSE_ANSWER, LOSE_ANSWER)
    assert store.get(bucket, "lost/plain.json").body == b"x"
    assert proxy.seen[-3:] == [LOSE_ANSWER, LOSE_ANSWER, PASS]


def test_reads_sent_ahead_are_taken_by_the_gets_that_follow(object_store, bucket):
    """ObjectStore.ahead sends its GETs at once from one thread; a get of one of them in the context
    takes its answer instead of asking again (from this thread or the side pool), a missing object
    is DoesNotExist as ever, an answer is taken once, and one nobody took is dropped on exit."""
    from lscloud.aggregate import together

    for name in ("a", "b", "unread"):
        object_store.put(bucket, f"ahead/{name}.json", name.encode())
    http, asked = object_store.http, []
    real = http.request
    http.request = lambda operation, method, b, key="", **kw: asked.append(key) or real(operation, method, b, key, **kw)
    try:
        with object_store.ahead(*[(bucket, f"ahead/{n}.json") for n in ("a", "b", "none", "unread")]):
            a, b = together(lambda: object_store.get(bucket, "ahead/a.json"),
                            lambda: object_store.get(bucket, "ahead/b.json"))
            with pytest.raises(DoesNotExist):
                object_store.get(bucket, "ahead/none.json")
            assert asked == []                                        # every answer was on its way already
            again = object_store.get(bucket, "ahead/a.json")         # taken once: asked again, read again
        assert asked == ["ahead/a.json"]
        assert (a.body, b.body, again.body) == (b"a", b"b", b"a") and a.etag == again.etag
        assert object_store.get(bucket, "ahead/unread.json").body == b"unread"   # the pool is whole after the exit
    finally:
        http.request = real


def test_a_read_sent_ahead_whose_answer_was_lost_is_asked_again(faulty, bucket):
    store, proxy = faulty
    store.put(bucket, "ahead/lost.json", b"x")
    proxy.plan(LOSE_ANSWER, SLOW_DOWN)   # the GET sent ahead loses its answer; the store's retries take over
    with store.ahead((bucket, "ahead/lost.json")):
        assert store.get(bucket, "ahead/lost.json").body == b"x"
    assert proxy.seen[-3:] == [LOSE_ANSWER, SLOW_DOWN, PASS]


def test_a_throttled_conditional_write_is_retried_and_keeps_its_conflicts(faulty, bucket):
    store, proxy = faulty
    proxy.plan(SLOW_DOWN, SLOW_DOWN)     # refused before the store acted: safe to send again
    store.put(bucket, "slow/a.json", b"1", if_none_match=True)
    proxy.plan(SLOW_DOWN)
    with pytest.raises(ConditionalCheckFailed):   # a real conflict after a 503 is still a conflict
        store.put(bucket, "slow/a.json", b"2", if_none_match=True)
    proxy.plan(SLOW_DOWN, SLOW_DOWN, SLOW_DOWN)
    with pytest.raises(StoreUnavailable):         # three attempts, then unavailable
        store.put(bucket, "slow/b.json", b"1", if_none_match=True)
    assert proxy.seen[-3:] == [SLOW_DOWN] * 3


def test_over_tls_the_store_trusts_the_clusters_ca_file_only(s3_server, bucket, tmp_path):
    import ssl

    from tls_support import ThrowawayCA

    ca = ThrowawayCA(tmp_path / "ca")
    issued = ca.issue("store", ips=("127.0.0.1",), server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert, issued.key)
    proxy = FaultProxy("127.0.0.1", s3_server.s3_port, tls=context)
    try:
        store = ObjectStore(proxy.endpoint, s3_server.access_key, s3_server.secret_key, ca_file=str(ca.path))
        store.put(bucket, "tls/a.json", b"1", if_none_match=True)
        assert store.get(bucket, "tls/a.json").body == b"1"
        stranger = ObjectStore(proxy.endpoint, s3_server.access_key, s3_server.secret_key)
        stranger.http._sleep = lambda attempt: None
        with pytest.raises(StoreUnavailable):          # the public bundle does not know our CA
            stranger.get(bucket, "tls/a.json")
    finally:
        proxy.close()


def test_revalidation_answers_304_without_a_body(object_store, bucket):
    etag = object_store.put(bucket, "ref/a.json", b"{}")
    assert object_store._get_if_changed(bucket, "ref/a.json", etag)[1] is freshness.NOT_MODIFIED
    newer = object_store.put(bucket, "ref/a.json", b"[]")
    again = object_store._get_if_changed(bucket, "ref/a.json", etag)
    assert again[0] == newer and again[1].body == b"[]"


def _listing_of_seven(object_store, bucket, name: str):
    """Seven keys under ``name/``, and a store whose listing requests (three keys a page) are
    counted: (keys, store, calls)."""
    from store_calls import StoreCalls, _Counted

    keys = [f"{name}/{i:02d} a+b~ngõ.json" for i in range(7)]
    for k in keys:
        object_store.put(bucket, k, b"{}")
    store = ObjectStore(object_store.endpoint, object_store.http.signer.access_key, object_store.http.signer._secret)
    store.LIST_PAGE = 3
    calls = StoreCalls()
    store.http = _Counted(store.http, calls)
    return keys, store, calls


def test_listing_follows_continuation_tokens_and_decodes_keys(object_store, bucket):
    keys, store, calls = _listing_of_seven(object_store, bucket, "page")
    assert [o.key for o in store.list(bucket, "page/")] == keys
    assert calls["list"] == 3
    assert [o.key for o in store.list(bucket, "page/", start_after=keys[1], limit=4)] == keys[2:6]


def test_a_listing_asks_first_for_what_its_caller_expects_to_use(object_store, bucket):
    """A page of a few items does not make the store list (nor the client parse) a thousand keys:
    the first request asks for ``first_page``, a Model page for its items and one more key, and
    ``query_keys`` for its limit; each later request asks for twice as many as the one before."""
    from lscloud import store as stores
    from lscloud.store import Model, attributes as A

    keys, store, calls = _listing_of_seven(object_store, bucket, "asked")
    assert [o.key for o in store.list(bucket, "asked/", first_page=2)] == keys
    assert calls.listed_max_keys == [2, 3, 3]

    class Asked(Model):
        class Meta:
            table = "t-asked"

        name = A.UnicodeAttribute(hash_key=True)
        part = A.UnicodeAttribute(range_key=True)

    store.LIST_PAGE = 1000
    with stores.using(store, bucket):
        for i in range(30):
            Asked("h", f"n{i:02d}").save()
        calls.listed_max_keys.clear()
        page = Asked.scan(limit=5)
        assert [a.part for a in page] == [f"n{i:02d}" for i in range(5)] and page.page_token
        assert calls.listed_max_keys == [6]
        assert len(Asked.scan(limit=5, page_token=Asked.scan(limit=25).page_token)) == 5
        calls.listed_max_keys.clear()
        assert Asked.query_keys("h", limit=2) == ["n00", "n01"] and calls.listed_max_keys == [2]

        # a filtered page cannot know how many keys it needs: its requests grow from its own size
        calls.listed_max_keys.clear()
        page = Asked.query("h", limit=4, where=lambda a: int(a.part[1:]) % 3 == 0)
        assert [a.part for a in page] == ["n00", "n03", "n06", "n09"] and page.page_token
        assert calls.listed_max_keys == [5, 10]
        calls.listed_max_keys.clear()
        page = Asked.query("h", limit=4, where=lambda a: a.part == "n29")
        assert [a.part for a in page] == ["n29"] and page.page_token is None
        assert calls.listed_max_keys == [5, 10, 20]


def test_each_call_is_one_client_span_with_the_aws_api_names_unless_untraced(object_store, bucket, s3_server):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    from lscloud.store import s3http

    real = s3http._tracer
    s3http._tracer = provider.get_tracer("lscloud.store")
    try:
        with tracer.start_as_current_span("request") as parent:
            object_store.put(bucket, "spans/a.json", b"{}", if_none_match=True)
            with pytest.raises(ConditionalCheckFailed):
                object_store.put(bucket, "spans/a.json", b"{}", if_none_match=True)
            assert [o.key for o in object_store.list(bucket, "spans/p~2Dx/")] == []
        with telemetry.untraced():  # what the readiness probe's ping runs under
            object_store.get(bucket, "spans/a.json")
    finally:
        s3http._tracer = real
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("S3.")]
    assert [s.name for s in spans] == ["S3.PutObject", "S3.PutObject", "S3.ListObjectsV2"]   # none for the untraced GET
    put, lost, listing = spans
    # a listing names its table, not its prefix (which may hold a pseudonym): the trace tree shows it
    assert listing.attributes["lscloud.store.table"] == "spans" and "aws.s3.key" not in listing.attributes
    assert "p~2Dx" not in repr(dict(listing.attributes))
    assert telemetry.store_table(listing.attributes) == " spans"
    assert put.name == "S3.PutObject" and put.kind == trace.SpanKind.CLIENT
    assert put.parent.span_id == parent.get_span_context().span_id
    a = put.attributes
    assert (a["rpc.system"], a["rpc.service"], a["rpc.method"]) == ("aws-api", "S3", "PutObject")
    assert (a["aws.s3.bucket"], a["aws.s3.key"], a["http.response.status_code"]) == (bucket, "spans/a.json", 200)
    assert a["server.port"] == s3_server.s3_port and "error.type" not in a
    # the stable HTTP name of the answer (not the older http.status_code), and error.type on a failure
    assert lost.attributes["http.response.status_code"] == 412 and lost.attributes["error.type"] == "412"
    assert lost.status.status_code == trace.StatusCode.ERROR
    text = repr([dict(s.attributes) for s in (put, lost, listing)])
    assert s3_server.secret_key not in text and "AWS4-HMAC" not in text and "{}" not in text
    # these names only: no header of any kind (http.request.header.*), no URL, no body
    assert set(a) | set(lost.attributes) | set(listing.attributes) <= {
        "rpc.system", "rpc.service", "rpc.method", "cloud.region", "server.address", "server.port",
        "aws.s3.bucket", "aws.s3.key", "lscloud.store.table", "aws.request_id", "http.response.status_code",
        "error.type", "retry_attempts"}


CLIENT_LABELS = {"http.request.method", "server.address", "server.port", "http.response.status_code", "error.type",
                 "rpc.method", "aws.s3.bucket"}


def test_each_attempt_is_an_http_client_request_measured_without_its_key(faulty, bucket, monkeypatch):
    """No client metric was recorded at all: each S3 attempt is now a sample of the HTTP client
    convention's ``http.client.request.duration`` (the S3 conventions define no metric), with the
    bounded S3 names (operation, bucket) and never the key; a call that gets no answer says why on
    its span's ``error.type`` too."""
    store, proxy = faulty
    reader = metrics_support.own_meter(monkeypatch, HTTP_CLIENT)
    store.put(bucket, "measured/a.json", b"1", if_none_match=True)
    with pytest.raises(ConditionalCheckFailed):
        store.put(bucket, "measured/a.json", b"2", if_none_match=True)
    proxy.plan(LOSE_ANSWER)                                    # one attempt lost, the next answered
    assert store.get(bucket, "measured/a.json").body == b"1"
    added = metrics_support.samples(reader, "http.client.request.duration", unit="s")
    where = {("server.address", "127.0.0.1"), ("server.port", proxy.port), ("aws.s3.bucket", bucket)}
    ours = {key: n for key, n in added.items() if where <= key}
    labels = [dict(key) for key in ours]
    assert all(set(label) <= CLIENT_LABELS for label in labels)
    assert not any("measured" in str(v) for label in labels for v in label.values())   # no key, no path
    by_outcome = {(d["http.request.method"], d["rpc.method"], d.get("http.response.status_code"), d.get("error.type")): n
                  for d, n in zip(labels, ours.values())}
    assert by_outcome[("PUT", "PutObject", 200, None)] == 1
    assert by_outcome[("PUT", "PutObject", 412, "412")] == 1
    assert by_outcome[("GET", "GetObject", 200, None)] == 1
    (lost,) = [k for k in by_outcome if k[:3] == ("GET", "GetObject", None)]
    assert lost[3] and by_outcome[lost] == 1

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    from lscloud.store import s3http

    real, s3http._tracer = s3http._tracer, provider.get_tracer("lscloud.store")
    try:
        proxy.plan(LOSE_ANSWER, LOSE_ANSWER, LOSE_ANSWER)
        with pytest.raises(StoreUnavailable):
            store.get(bucket, "measured/a.json")
    finally:
        s3http._tracer = real
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == trace.StatusCode.ERROR and span.attributes["error.type"] == lost[3]


def test_a_function_stores_without_importing_botocore(s3_server):
    probe = ("import sys; from lscloud.store.objects import ObjectStore; "
             f"s = ObjectStore({s3_server.endpoint!r}, {s3_server.access_key!r}, {s3_server.secret_key!r}); "
             "s.ensure_bucket('probe-nobotocore'); s.put('probe-nobotocore', 'a', b'1'); s.get('probe-nobotocore', 'a'); "
             "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, cwd=str(ROOT),
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
