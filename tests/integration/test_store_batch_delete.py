"""Batch deletes against a real weed mini: ``DeleteObjects`` (POST ?delete, XML, Content-MD5) by
:meth:`ObjectStore.delete_many` and :meth:`Model.batch_delete`, and the process's batcher behind
:meth:`ObjectStore.delete_later` / :meth:`Model.delete_later`, flushed explicitly (nothing timed).

Machinery that deletes many short-lived objects (a create's unfinished-create marker, one per
create) paid a DELETE each, about a PUT's time on a busy store; a hundred now cost one request."""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import Future

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import metrics_support
from lscloud import telemetry
from lscloud.local.servers import free_port
from lscloud.metrics import HTTP_CLIENT
from lscloud.store import Model, ObjectStore, attributes as A
from lscloud.store.errors import DoesNotExist
from lscloud.store.objects import DeleteBatcher, flush_deletes
from s3_faults import LOSE_ANSWER, FaultProxy

pytestmark = pytest.mark.integration


class Wire:
    """The store's S3 wire, each request's operation, method and headers noted (and, for a store
    that does not know DeleteObjects, that call answered 501 as such a store answers it)."""

    def __init__(self, http, *, knows_delete_objects: bool = True):
        self._http, self.knows = http, knows_delete_objects
        self.sent: list[tuple[str, str, dict, bytes]] = []

    def __getattr__(self, name):
        return getattr(self._http, name)

    def request(self, operation, method, bucket, key="", **kw):
        self.sent.append((operation, method, dict(kw.get("headers") or {}), kw.get("body", b"")))
        if operation == "DeleteObjects" and not self.knows:
            from lscloud.store.s3http import Reply

            return Reply(501, {}, b"<Error><Code>NotImplemented</Code></Error>")
        return self._http.request(operation, method, bucket, key, **kw)

    def deletes(self) -> list[str]:
        return [op for op, *_ in self.sent if op.startswith("Delete")]


@pytest.fixture
def wired(base_settings):
    objects = ObjectStore.from_settings(base_settings)
    wire = Wire(objects.http)
    objects.http = wire
    return objects, wire


def there(objects: ObjectStore, bucket: str, prefix: str) -> list[str]:
    return [o.key for o in objects.list(bucket, prefix)]


def test_delete_many_is_one_delete_objects_per_thousand_keys_with_its_content_md5(wired, bucket, monkeypatch):
    objects, wire = wired
    keys = [f"marks/t/{i:02d}.json" for i in range(5)] + ["marks/t/x&y <z>.json"]
    for k in keys + ["marks/kept.json"]:
        objects.put(bucket, k, b"{}")
    wire.sent.clear()
    assert objects.delete_many(bucket, [*keys, "marks/t/none.json", keys[0]]) == []   # absent: deleted
    ((op, method, headers, body),) = wire.sent
    assert there(objects, bucket, "marks/") == ["marks/kept.json"]
    assert (op, method, headers["content-type"]) == ("DeleteObjects", "POST", "application/xml")
    # S3 requires it of this call (weed does not check it): the body's MD5
    assert headers["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert b"<Quiet>true</Quiet>" in body and b"x&amp;y &lt;z&gt;" in body

    monkeypatch.setattr(objects, "DELETE_BATCH", 2)   # S3 takes at most 1,000 keys a request
    for k in keys[:5]:
        objects.put(bucket, k, b"{}")
    wire.sent.clear()
    assert objects.delete_many(bucket, keys[:5]) == [] and objects.delete_many(bucket, []) == []
    assert wire.deletes() == ["DeleteObjects"] * 3 and there(objects, bucket, "marks/t/") == []


def test_a_store_without_delete_objects_gets_a_delete_per_key(base_settings, bucket):
    objects = ObjectStore.from_settings(base_settings)
    objects.http = wire = Wire(objects.http, knows_delete_objects=False)
    for i in range(3):
        objects.put(bucket, f"m/{i}.json", b"{}")
    wire.sent.clear()
    assert objects.delete_many(bucket, [f"m/{i}.json" for i in range(3)]) == []
    assert wire.deletes() == ["DeleteObjects"] + ["DeleteObject"] * 3 and there(objects, bucket, "m/") == []
    objects.put(bucket, "m/again.json", b"{}")
    wire.sent.clear()
    assert objects.delete_many(bucket, ["m/again.json"]) == [] and wire.deletes() == ["DeleteObject"]  # asked once


def test_a_batch_delete_whose_answer_was_lost_is_sent_again(s3_server, bucket):
    """Deleting is repeat-safe: a lost answer is retried as a GET is, and the keys are gone."""
    proxy = FaultProxy("127.0.0.1", s3_server.s3_port)
    try:
        objects = ObjectStore(proxy.endpoint, s3_server.access_key, s3_server.secret_key)
        objects.http._sleep = lambda attempt: None
        for i in range(3):
            objects.put(bucket, f"lost/{i}.json", b"{}")
        proxy.plan(LOSE_ANSWER)
        assert objects.delete_many(bucket, [f"lost/{i}.json" for i in range(3)]) == []
        assert proxy.seen[-2:] == [LOSE_ANSWER, "pass"] and there(objects, bucket, "lost/") == []
    finally:
        proxy.close()


def test_a_batch_delete_is_one_client_span_and_measured_without_its_keys(object_store, bucket, monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = metrics_support.own_meter(monkeypatch, HTTP_CLIENT)
    from lscloud.store import s3http

    for i in range(4):
        object_store.put(bucket, f"spanned/p~2Dx/{i}.json", b"{}")
    monkeypatch.setattr(s3http, "_tracer", provider.get_tracer("lscloud.store"))
    with provider.get_tracer("test").start_as_current_span("request") as parent:
        object_store.delete_many(bucket, [f"spanned/p~2Dx/{i}.json" for i in range(4)])
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("S3.")]
    a = span.attributes
    assert span.name == "S3.DeleteObjects" and span.kind == trace.SpanKind.CLIENT
    assert span.parent.span_id == parent.get_span_context().span_id
    assert (a["rpc.method"], a["aws.s3.bucket"], a["http.response.status_code"]) == ("DeleteObjects", bucket, 200)
    # the table its keys share and how many: no key (they may hold a pseudonym), no body
    assert (a["lscloud.store.table"], a["lscloud.store.objects"]) == ("spanned", 4) and "aws.s3.key" not in a
    assert "p~2Dx" not in repr(dict(a)) and telemetry.store_table(a) == " spanned"
    samples = metrics_support.samples(reader, "http.client.request.duration", unit="s")
    ours = [dict(k) for k in samples if ("aws.s3.bucket", bucket) in k and ("rpc.method", "DeleteObjects") in k]
    assert len(ours) == 1 and ours[0]["http.request.method"] == "POST" and ours[0]["http.response.status_code"] == 200
    assert "spanned" not in repr(ours)


class Mark(Model):
    class Meta:
        table = "batch-marks"

    part = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)


def test_models_are_deleted_in_a_batch_now_or_later(rt):
    marks = [Mark("p", f"{i:03d}").save() for i in range(5)]
    assert Mark.batch_delete(marks[:3]) == [] and Mark.batch_delete([]) == []
    assert [m.entry for m in Mark.query("p")] == ["003", "004"]
    later = [m.delete_later() for m in marks[3:]]
    flush_deletes()   # what the batcher's thread sends within a fifth of a second
    assert all(f.done() and f.result() == [] for f in later) and list(Mark.query("p")) == []


def test_the_batcher_sends_when_full_or_flushed_from_one_thread_and_at_exit(object_store, bucket):
    """Keys wait until ``size`` of them are there (or ``delay_s`` after the first: here an hour,
    so only the full batch and the explicit flushes send anything); one request per batch; after
    close (the process's exit) a key is left where it is."""
    wire = Wire(object_store.http)
    object_store.http = wire
    batcher = DeleteBatcher(size=3, delay_s=3600)
    try:
        for i in range(8):
            object_store.put(bucket, f"b/{i}.json", b"{}")
        wire.sent.clear()
        waiting = [batcher.add(object_store, bucket, f"b/{i}.json") for i in range(2)]
        assert waiting[0] is waiting[1] and not waiting[0].done()   # one future per batch
        assert there(object_store, bucket, "b/") == [f"b/{i}.json" for i in range(8)] and wire.deletes() == []
        batcher.flush()
        assert waiting[0].result() == [] and wire.deletes() == ["DeleteObjects"]
        full = [batcher.add(object_store, bucket, f"b/{i}.json") for i in range(2, 5)]   # the third fills it
        assert full[2].result(timeout=60) == []   # sent by the batcher's thread, not waited on a clock
        assert wire.deletes() == ["DeleteObjects"] * 2
        pending = batcher.add(object_store, bucket, "b/5.json")
        batcher.close()
        assert pending.result() == [] and wire.deletes() == ["DeleteObjects"] * 3
        refused = batcher.add(object_store, bucket, "b/6.json")
        assert refused.done() and refused.result() == [(bucket, "b/6.json")]
        batcher.flush()
        assert wire.deletes() == ["DeleteObjects"] * 3
        assert there(object_store, bucket, "b/") == ["b/6.json", "b/7.json"]
    finally:
        object_store.http = wire._http


def test_a_batch_that_fails_is_left_and_said_so(base_settings, bucket):
    closed = ObjectStore(f"http://127.0.0.1:{free_port('127.0.0.1')}", "k", "s")   # nobody listening
    closed.http._sleep = lambda attempt: None
    batcher = DeleteBatcher(size=100, delay_s=3600)
    ok_store = ObjectStore.from_settings(base_settings)
    ok_store.put(bucket, "f/1.json", b"{}")
    done: Future = batcher.add(closed, bucket, "f/0.json")
    assert batcher.add(ok_store, bucket, "f/1.json") is done
    batcher.flush()
    assert done.result() == [(bucket, "f/0.json")]   # the other store's key went all the same
    with pytest.raises(DoesNotExist):
        ok_store.head(bucket, "f/1.json")
