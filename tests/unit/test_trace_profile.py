"""`lscloud traces --where`: a route's time charged along the critical path of each request."""

from __future__ import annotations

import json

import pytest

from lscloud import cli
from lscloud.local.trace_profile import format_profile, profile

MS = 1_000_000


def span(sid, name, start_ms, end_ms, *, parent=None, trace="t1", service="softatm", kind="CLIENT", key=None):
    return {"trace_id": trace, "span_id": sid, "parent_span_id": parent, "name": name, "kind": kind,
            "start_ns": int(start_ms * MS), "end_ns": int(end_ms * MS), "service": service,
            "attributes": {"aws.s3.key": key} if key else {}}


def request(trace="t1", at=0.0):
    """A create that writes twice, publishes, and waits for a bank that is called by the event's
    consumer and calls back: 0-20 ms at the route."""
    t = lambda ms: at + ms  # noqa: E731
    return [
        span("gw", "POST /softatm", t(-1), t(21), trace=trace, service="gateway", kind="SERVER"),
        span("r", "POST /v1/withdrawals", t(0), t(20), parent="gw", trace=trace, kind="SERVER"),
        span("p1", "S3.PutObject", t(1), t(3), parent="r", trace=trace, key="softatm-open/x/y.json"),
        span("p2", "S3.PutObject", t(3), t(5), parent="r", trace=trace, key="softatm-transfers/x.json"),
        # two reads at once: the path goes through one of them
        span("g1", "S3.GetObject", t(5), t(7), parent="r", trace=trace, key="softatm-banks/b.json"),
        span("g2", "S3.GetObject", t(5), t(7), parent="r", trace=trace, key="softatm-points/p.json"),
        span("pub", "publish lscloud.softatm.transfer.received", t(7), t(8), parent="r", trace=trace, kind="PRODUCER"),
        # the event waits 1 ms in the broker; the send span has ended, the route waits on its consumer
        span("c", "process lscloud.softatm.transfer.received", t(9), t(15), parent="pub", trace=trace,
             service="dispatcher", kind="CONSUMER"),
        span("hook", "POST /webhooks", t(10), t(14), parent="c", trace=trace, service="bank", kind="SERVER"),
        span("kv", "KV.create", t(11), t(12), parent="hook", trace=trace, service="bank"),
        # another consumer of the same event: the route does not wait for it
        span("ioc", "process lscloud.softatm.transfer.received", t(9), t(10), parent="pub", trace=trace,
             service="ioc", kind="CONSUMER"),
        # the bank's worker writes after the webhook answered; it outlives the route: cut at its end
        span("late", "S3.PutObject", t(18), t(30), parent="hook", trace=trace, service="bank",
             key="bank-records/z.json"),
    ]


def test_a_request_waits_for_its_calls_not_for_the_consumers_of_its_events():
    p = profile(request(), "POST /v1/withdrawals")
    assert {k: round(v, 3) for k, v in p.ms.items()} == {
        "softatm SERVER POST /v1/withdrawals (own)": 1.0 + 12.0,                             # 0-1, 8-20
        "softatm CLIENT S3.PutObject softatm-open": 2.0,
        "softatm CLIENT S3.PutObject softatm-transfers": 2.0,
        "softatm CLIENT S3.GetObject softatm-points": 2.0,                                  # 5-7, one of two
        "softatm PRODUCER publish lscloud.softatm.transfer.received": 1.0,
    }
    assert p.spans["bank CLIENT KV.create"] == 1   # counted: the request caused it


def test_following_events_the_path_goes_through_the_broker_the_consumer_and_the_call_back():
    p = profile(request(), "POST /v1/withdrawals", follow_events=True)
    assert p.requests == 1 and p.took_ms == [20.0]
    ms = {k: round(v, 3) for k, v in p.ms.items()}
    assert ms == {
        "softatm SERVER POST /v1/withdrawals (own)": 1.0,                                   # 0-1
        "softatm CLIENT S3.PutObject softatm-open": 2.0,
        "softatm CLIENT S3.PutObject softatm-transfers": 2.0,
        "softatm CLIENT S3.GetObject softatm-points": 2.0,                                  # 5-7, one of two
        "softatm PRODUCER publish lscloud.softatm.transfer.received": 1.0,
        "dispatcher CONSUMER process lscloud.softatm.transfer.received (before it starts)": 1.0,   # 8-9
        "dispatcher CONSUMER process lscloud.softatm.transfer.received": 1.0,               # 9-10
        "bank SERVER POST /webhooks": 3.0,                                                  # 10-11, 12-14
        "bank CLIENT KV.create": 1.0,
        "bank CLIENT S3.PutObject bank-records (before it starts)": 4.0,                    # 14-18
        "bank CLIENT S3.PutObject bank-records": 2.0,                                       # 18-20, cut
    }
    assert sum(p.ms.values()) == pytest.approx(20.0)
    # the gateway's span is the route's parent, not under it; the IOC's consumer is counted, not charged
    assert not any(k.startswith(("gateway", "ioc")) for k in p.ms)
    assert p.spans["ioc CONSUMER process lscloud.softatm.transfer.received"] == 1
    assert p.spans["softatm CLIENT S3.PutObject softatm-open"] == 1


def test_requests_are_averaged_and_a_warm_up_is_left_out():
    spans = request("t1", 0) + request("t2", 100) + [
        span("x", "POST /v1/withdrawals", 200, 290, trace="t3", kind="SERVER"),   # nothing traced under it
    ]
    spans.sort(key=lambda s: -s["start_ns"])   # order of the log does not matter
    everything = profile(spans, "POST /v1/withdrawals")
    assert everything.requests == 3
    warm = profile(spans, "POST /v1/withdrawals", skip=1, follow_events=True)   # t1, the earliest, left out
    assert warm.requests == 2 and warm.took_ms == [20.0, 90.0]
    rows = warm.rows()
    assert rows[0][0] == "softatm SERVER POST /v1/withdrawals (own)"
    assert rows[0][1] == pytest.approx((1.0 + 90.0) / 2)                  # ms a request
    assert sum(r[2] for r in rows) == pytest.approx(1.0)                  # shares
    text = format_profile(warm, top=3)
    assert "2 request(s)" in text and "median 55.00 ms" in text and "more)" in text


def test_the_command_prints_the_profile_of_a_route(tmp_path, capsys):
    with open(tmp_path / "traces.jsonl", "w") as fh:
        for s in request():
            fh.write(json.dumps(s) + "\n")
    assert cli.main(["--state-dir", str(tmp_path), "traces", "--where", "POST /v1/withdrawals"]) == 0
    out = capsys.readouterr().out
    assert "where the time of POST /v1/withdrawals goes: 1 request(s)" in out
    assert "softatm CLIENT S3.PutObject softatm-open" in out and "bank" not in out
    assert cli.main(["--state-dir", str(tmp_path), "traces", "--where", "POST /v1/withdrawals",
                     "--follow-events"]) == 0
    assert "bank SERVER POST /webhooks" in capsys.readouterr().out
    assert cli.main(["--state-dir", str(tmp_path), "traces", "--where", "GET /nothing"]) == 0
    assert "no SERVER span named 'GET /nothing'" in capsys.readouterr().out
    # the profile's options without a route are refused, not ignored
    assert cli.main(["--state-dir", str(tmp_path), "traces", "--follow-events"]) == cli.EXIT_FAIL
    assert "--where ROUTE" in capsys.readouterr().err
