"""One request, one trace: from the gateway through a function, its S3 calls and its NATS publish,
the dispatcher, into the subscribing function and its own S3 calls — in the span log that
``lscloud traces`` reads and in what goes out over OTLP.

The cloud runs two test-only functions (fixtures/tracing/): ``ledger-writer`` stores a note and
publishes ``vn.langson.test.note.written.v1``; ``note-reader`` is subscribed to it, reads the
note and writes a receipt (with the trace id its handler saw). ``OTEL_EXPORTER_OTLP_ENDPOINT``
points the whole cloud at a small OTLP/HTTP receiver started here, so the same run shows the
export: every span arrives with its ``service.name``, and no credential is in the bytes.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import httpx
import pytest

from localcloud import OtlpReceiver, running, wait_for  # tests/e2e helper module
from lscloud.local.servers import WeedMini
from lscloud.telemetry import read_trace_file

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent / "fixtures" / "tracing"
SUBJECT = "lscloud.test.note.written"
# secrets that travel with the request or the process: none may reach a span
BEARER = f"e2e-secret-token-{uuid.uuid4().hex}"
S3_SECRET = WeedMini.__dataclass_fields__["secret_key"].default


@pytest.fixture(scope="module")
def otlp():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, otlp):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
           # ask for the credential headers too: they must come out redacted, never as values
           "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "authorization,x-request-id",
           "NO_PROXY": ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get("NO_PROXY")]))}
    with running(tmp_path_factory, "trace-cloud", [FIXTURES], env=env) as c:
        yield c


@pytest.fixture(scope="module")
def note_trace(cloud):
    """POST one note through the gateway; return its trace (span log) once the receipt's spans are in."""
    note_id = f"n{uuid.uuid4().hex[:12]}"
    r = httpx.post(f"{cloud.gateway}/ledger-writer/v1/notes", json={"id": note_id, "text": "xin chào Lạng Sơn"},
                   headers={"Authorization": f"Bearer {BEARER}", "X-Request-Id": "e2e-trace"}, timeout=15)
    assert r.status_code == 201, r.text

    def receipt():
        got = httpx.get(f"{cloud.gateway}/note-reader/v1/receipts/{note_id}", timeout=5)
        return got.json() if got.status_code == 200 else None

    seen = wait_for(receipt, 30, "the note-reader's receipt", cloud.proc, cloud.log)
    trace_id = seen["trace_id"]
    assert trace_id and len(trace_id) == 32
    path = cloud.state_dir / "traces.jsonl"

    def complete():
        spans = read_trace_file(path, trace_id)
        names = {(s["service"], s["name"]) for s in spans}
        wanted = {("gateway", "POST /ledger-writer/*"), ("ledger-writer", "POST /v1/notes"),
                  ("dispatcher", f"process {SUBJECT}"), ("note-reader", f"process {SUBJECT}"),
                  ("note-reader", "POST /events")}
        receipt_puts = [s for s in spans if s["name"] == "S3.PutObject"
                        and s["attributes"].get("aws.s3.key", "").startswith("e2e-trace-receipts/")]
        return spans if wanted <= names and receipt_puts else None

    spans = wait_for(complete, 30, f"every span of trace {trace_id} in {path}", cloud.proc, cloud.log)
    return {"trace_id": trace_id, "note_id": note_id, "spans": spans, "path": path}


def _one(spans, **match):
    found = [s for s in spans if all((s.get(k) if k in ("name", "kind", "service") else s["attributes"].get(k)) == v
                                     for k, v in match.items())]
    assert len(found) == 1, f"{match}: {len(found)} spans in\n" + "\n".join(
        f"  {s['service']} {s['kind']} {s['name']}" for s in spans)
    return found[0]


def test_one_request_is_one_trace_through_nats_into_the_subscriber(note_trace):
    spans, trace_id = note_trace["spans"], note_trace["trace_id"]
    by_id = {s["span_id"]: s for s in spans}
    assert all(s["trace_id"] == trace_id for s in spans)
    # one root, the gateway's; every other span's parent is a span of this trace
    roots = [s for s in spans if s["parent_span_id"] is None]
    assert [(r["service"], r["kind"], r["name"]) for r in roots] == [("gateway", "SERVER", "POST /ledger-writer/*")]
    orphans = [s for s in spans if s["parent_span_id"] is not None and s["parent_span_id"] not in by_id]
    assert not orphans, orphans

    def parent(span):
        return by_id[span["parent_span_id"]]

    gateway = roots[0]
    assert gateway["attributes"]["http.response.status_code"] == 201
    fn = _one(spans, service="ledger-writer", kind="SERVER")
    assert fn["name"] == "POST /v1/notes" and fn["attributes"]["http.route"] == "/v1/notes"
    assert parent(fn) is gateway

    # the writer's S3 call: a CLIENT span per the AWS SDK conventions, under its SERVER span
    put_note = _one(spans, service="ledger-writer", name="S3.PutObject")
    assert put_note["kind"] == "CLIENT" and parent(put_note) is fn
    attrs = put_note["attributes"]
    assert (attrs["rpc.system"], attrs["rpc.service"], attrs["rpc.method"]) == ("aws-api", "S3", "PutObject")
    assert attrs["aws.s3.key"].startswith("e2e-trace-notes/") and attrs["aws.s3.bucket"]

    send = _one(spans, service="ledger-writer", kind="PRODUCER")
    assert send["name"] == f"publish {SUBJECT}" and parent(send) is fn
    assert send["attributes"]["messaging.system"] == "nats"
    assert send["attributes"]["messaging.destination.name"] == SUBJECT
    assert send["attributes"]["messaging.operation.type"] == "send"
    event_id = send["attributes"]["messaging.message.id"]

    # the dispatcher (Knative Eventing's stand-in): CONSUMER under the PRODUCER, CLIENT POST under it
    delivered = _one(spans, service="dispatcher", kind="CONSUMER")
    assert delivered["name"] == f"process {SUBJECT}" and parent(delivered) is send
    assert delivered["attributes"]["messaging.message.id"] == event_id
    post = _one(spans, service="dispatcher", kind="CLIENT")
    assert post["name"] == "POST" and parent(post) is delivered
    assert post["attributes"]["http.response.status_code"] == 200

    # the subscriber: SERVER POST /events, its CONSUMER process span inside, the handler's S3 calls inside that
    events_in = _one(spans, service="note-reader", kind="SERVER")
    assert events_in["name"] == "POST /events" and parent(events_in) is post
    consumer = _one(spans, service="note-reader", kind="CONSUMER")
    assert consumer["name"] == f"process {SUBJECT}" and parent(consumer) is events_in
    assert consumer["attributes"]["messaging.message.id"] == event_id
    assert consumer["attributes"]["messaging.system"] == "nats"
    get_note = _one(spans, service="note-reader", name="S3.GetObject", **{"aws.s3.key": put_note["attributes"]["aws.s3.key"]})
    put_receipt = next(s for s in spans if s["name"] == "S3.PutObject"
                       and s["attributes"]["aws.s3.key"].startswith("e2e-trace-receipts/"))
    assert parent(get_note) is consumer and parent(put_receipt) is consumer
    assert get_note["kind"] == put_receipt["kind"] == "CLIENT"

    # from the subscriber's last S3 write, the parents walk up to the gateway
    chain, span = [], put_receipt
    while span is not None:
        chain.append((span["service"], span["kind"], span["name"]))
        span = by_id.get(span["parent_span_id"]) if span["parent_span_id"] else None
    assert chain == [
        ("note-reader", "CLIENT", "S3.PutObject"), ("note-reader", "CONSUMER", f"process {SUBJECT}"),
        ("note-reader", "SERVER", "POST /events"), ("dispatcher", "CLIENT", "POST"),
        ("dispatcher", "CONSUMER", f"process {SUBJECT}"), ("ledger-writer", "PRODUCER", f"publish {SUBJECT}"),
        ("ledger-writer", "SERVER", "POST /v1/notes"), ("gateway", "SERVER", "POST /ledger-writer/*")]

    # the note's flow is nowhere else: no S3 call for it started a trace of its own
    others = [s for s in read_trace_file(note_trace["path"]) if s["trace_id"] != trace_id
              and note_trace["note_id"] in json.dumps(s["attributes"]) and s["service"] != "gateway"
              and not s["name"].startswith("GET ")]
    assert not [s for s in others if s["name"].startswith("S3.") and s["service"] == "ledger-writer"], others


def test_span_log_holds_no_credentials(note_trace):
    text = note_trace["path"].read_text(encoding="utf-8")
    assert BEARER not in text and S3_SECRET not in text
    assert "X-Amz-Signature" not in text and "AWS4-HMAC-SHA256" not in text


def test_lscloud_traces_prints_the_tree(cloud, note_trace):
    done = cloud.cli("traces", "--trace-id", note_trace["trace_id"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"trace {note_trace['trace_id']}"

    def depth(fragment):
        line = next(line for line in lines if fragment in line)
        return len(line) - len(line.lstrip())

    order = ["POST /ledger-writer/* [gateway] SERVER", "POST /v1/notes [ledger-writer] SERVER",
             f"publish {SUBJECT} [ledger-writer] PRODUCER", f"process {SUBJECT} [dispatcher] CONSUMER",
             "POST [dispatcher] CLIENT", "POST /events [note-reader] SERVER",
             f"process {SUBJECT} [note-reader] CONSUMER"]
    depths = [depth(f) for f in order]
    assert depths == sorted(depths) and len(set(depths)) == len(depths), done.stdout
    # a store call names its table and its answer
    assert "S3.PutObject e2e-trace-notes [ledger-writer] CLIENT 200" in done.stdout
    assert "S3.GetObject e2e-trace-notes [note-reader] CLIENT 200" in done.stdout


def test_otlp_export_carries_the_trace_and_no_secret(cloud, otlp, note_trace):
    trace_id = note_trace["trace_id"]

    def exported():
        mine = [s for s in otlp.spans() if s["trace_id"] == trace_id]
        services = {s["service"] for s in mine}
        return mine if {"gateway", "ledger-writer", "dispatcher", "note-reader"} <= services and \
            len(mine) >= len(note_trace["spans"]) else None

    # BatchSpanProcessor's default delay is 5 s
    mine = wait_for(exported, 30, "the trace over OTLP", cloud.proc, cloud.log)
    assert all(s["service"] for s in otlp.spans())
    assert {(s["service"], s["name"]) for s in note_trace["spans"]} <= {(s["service"], s["name"]) for s in mine}
    s3 = [s for s in mine if s["name"].startswith("S3.")]
    assert s3 and all(s["attributes"]["rpc.system"].string_value == "aws-api" for s in s3)
    raw = otlp.raw()
    for secret in (BEARER.encode(), S3_SECRET.encode(), b"X-Amz-Signature", b"AWS4-HMAC-SHA256"):
        assert secret not in raw
