"""The border function through its Flask app against real weed mini + nats-server: a crossing from
submission to exit, the queue, concurrent agencies and seats, device events, roles."""

# ruff: noqa: F811 (pytest fixtures imported from border_support are named as parameters)
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from lscloud import config, events, outbox, peers, store
from lscloud.auth import delivery_headers
from lscloud.delivery import tail
from lscloud.web import app_state

import role_matrix
from border_support import AGENCIES, declaration, directory, DirectoryStub, idem, new_id, ok, TAX, TAX2, tok  # noqa: F401
from cuts import cut_once
from functions.border.function import ledger, models
from functions.border.function.app import create_app

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture
def border(start_function, directory):
    """``border(**env)``: the border function started as Knative starts it, on the test's servers,
    asking the stand-in directory for its gates; ``env`` holds its own ``BORDER_*`` variables."""

    def _start(**env):
        return start_function("border", peer_url_template=directory.template, function_env=env)

    return _start


@pytest.fixture
def fn(border):
    return border()


@pytest.fixture
def app(fn):
    return fn.app   # the Flask app with /events, as Knative serves it


@pytest.fixture
def client(app):
    return app.test_client()


def device_event(client, type_, data, n=[0]):
    """What the dispatcher does: the CloudEvent in binary mode to /events."""
    ev = events.new_event(type_, "/border/devices/test", data, id=f"{data['device']}.{data['reading_id']}")
    headers, body = events.to_binary_http(ev)
    return client.post("/events", data=body, headers={**headers, **delivered_by_dispatcher(client)})


def delivered_by_dispatcher(client) -> dict:
    """The dispatcher's delivery token for the function behind ``client``."""
    return delivery_headers(app_state(client.application).settings)


def test_a_crossing_from_submission_to_exit(client, tok, fn, monkeypatch):
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    body = declaration(did, booking={"mode": "living"})
    created = ok(client.post("/v1/declarations", json=body, headers=ent), 201)
    assert created["status"] == "queued" and created["code"].startswith("LS")
    assert [r["agency"] for r in created["required_agencies"]] == list(AGENCIES)
    assert created["vehicle"]["tractor_plate"] == "桂A·12345" and created["booking"]["slot"]
    # same id + same body: the first answer again; the id is the idempotency key
    again = client.post("/v1/declarations", json=body, headers=ent)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/v1/declarations", json={**body, "submit": False}, headers=ent)
    assert other.status_code == 409 and other.get_json()["type"].endswith("idempotency-key-reused")
    assert [e["field"] for e in other.get_json()["errors"]] == ["/submit"]

    yard = tok("yard-operator", unit="huu-nghi")
    assert ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard)))["status"] == "in_yard"
    pos = ok(client.get(f"/v1/declarations/{did}/position", headers=ent))["queue"]
    assert pos["position"] == 1 and pos["lane"] == "normal"

    zh = client.get("/v1/lookup", query_string={"code": created["code"], "plate": "桂A 12345"},
                    headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    body = ok(zh)
    assert zh.headers["Content-Language"] == "zh" and body["status_text"] == "在等候区排队"
    assert "E12345678" not in zh.get_data(as_text=True) and "Lý Văn A" not in zh.get_data(as_text=True)
    assert client.get("/v1/lookup", query_string={"code": created["code"], "plate": "12C-123.45"}).status_code == 404

    gate = tok("gate-operator", unit="huu-nghi")
    called = ok(client.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 1}, headers=idem(gate)))
    assert [c["declaration_id"] for c in called["called"]] == [did]
    assert ok(client.post(f"/v1/declarations/{did}/at-gate", headers=idem(gate)))["status"] == "at_gate"

    # every agency but customs decides, in parallel; none overwrites another
    def decide(agency):
        h = idem(tok("officer", agency=agency))
        return client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"}, headers=h).status_code

    with ThreadPoolExecutor(7) as pool:
        assert list(pool.map(decide, AGENCIES[1:])) == [200] * 7
    customs = tok("officer", agency="customs")
    doc = ok(client.get(f"/v1/declarations/{did}", headers=customs))
    assert doc["status"] == "under_inspection" and set(doc["decisions"]) == set(AGENCIES[1:])
    assert doc["release_blockers"] == [] and doc["pending_agencies"] == ["customs"]

    # weighbridge within tolerance, then customs releases
    r = device_event(client, "vn.langson.border.weight.measured.v1",
                     {"reading_id": "wb-1", "gate": "huu-nghi", "plate": "桂A12345", "gross_kg": 33400,
                      "measured_at": "2025-09-01T08:00:00Z", "device": "wb-huu-nghi-1"})
    assert r.status_code == 200, r.get_data(as_text=True)
    cleared = ok(client.post(f"/v1/declarations/{did}/release", json={"notes": "ok"}, headers=idem(customs)))
    assert cleared["status"] == "cleared" and cleared["release"]["lane"]

    # the barrier: a wrong direction is refused with why; the right read opens it and the truck exits
    def barrier(reading, flow, plate="桂A·12345"):
        return device_event(client, "vn.langson.border.plate.read.v1",
                            {"reading_id": reading, "gate": "huu-nghi", "camera": "barrier", "flow": flow,
                             "plate": plate, "confidence": 0.97, "read_at": "2025-09-01T08:10:00Z",
                             "device": "anpr-huu-nghi-b1"})

    assert barrier("b-1", "out").status_code == 200
    assert ok(client.get(f"/v1/declarations/{did}", headers=customs))["status"] == "cleared"
    # the exit commits, then the run fails (here: the metric after it): the redelivery opens the
    # barrier again under the same event id, never "refused" for a truck that has left
    from functions.border.function import metrics

    failures = cut_once(monkeypatch, metrics, "barrier_decided",
                        error=RuntimeError("the run stops after the exit committed"))
    assert barrier("b-2", "in").status_code >= 500 and failures
    assert ok(client.get(f"/v1/declarations/{did}", headers=customs))["status"] == "exited"
    assert barrier("b-2", "in").status_code == 200
    assert ok(client.get(f"/v1/declarations/{did}", headers=customs))["status"] == "exited"

    trail = ok(client.get(f"/v1/declarations/{did}/audit", headers=ent))["items"]
    assert [e["to"] for e in trail if e["action"] not in ("route_risk_lane",)][:5] == \
        ["draft", "submitted", "queued", "in_yard", "called"]
    assert trail[-1]["action"] == "exit" and trail[-1]["actor"]["kind"] == "device"
    assert any(e["actor"].get("agency") == "customs" and e["to"] == "cleared" for e in trail)

    stream = [m["event"] for m in tail(fn.settings, 200)]
    types = [e["type"] for e in stream if e.get("subject") == did or (e.get("data") or {}).get("reading_id") in ("b-1", "b-2")]
    for fact in ("declaration.drafted", "declaration.submitted", "declaration.queued", "truck.arrived", "truck.called",
                 "truck.reached-gate", "inspection.started", "decision.recorded", "declaration.cleared",
                 "barrier.refused", "barrier.opened", "truck.exited"):
        assert f"vn.langson.border.{fact}.v1" in types, fact
    opened = next(e for e in stream if e["type"] == "vn.langson.border.barrier.opened.v1")
    assert opened["data"]["declaration"]["declaration_id"] == did
    refused = next(e for e in stream if e["type"] == "vn.langson.border.barrier.refused.v1")
    assert {r["code"] for r in refused["data"]["reasons"]} == {"wrong-direction"}
    b2 = [e["type"].split(".")[-2] for e in stream if (e.get("data") or {}).get("reading_id") == "b-2"]
    assert b2 == ["opened"]   # once (the same id), and not refused

    stats = ok(client.get("/v1/stats", headers=customs))
    row = next(r for r in stats["by_gate_direction_day"] if r["gate"] == "huu-nghi")
    assert row["declared"] >= 1 and row["exited"] >= 1 and stats["dwell_arrival_to_exit"]["count"] >= 1
    assert "customs" in stats["decision_time_by_agency"]
    # the gate came from the directory over HTTP, revalidated (304) after the first fetch
    c = peers.client(fn.settings)
    assert c.fetched >= 1 and c.revalidated >= 1


def test_illegal_transitions_name_the_current_state(client, tok):
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, submit=False), headers=ent), 201)
    r = client.post(f"/v1/declarations/{did}/arrival", headers=idem(tok("yard-operator", unit="huu-nghi")))
    assert r.status_code == 409 and r.mimetype == PROBLEM
    p = r.get_json()
    assert p["current_state"] == "draft" and "draft" in p["detail"] and p["title_vi"] and p["allowed_from"] == ["queued"]
    ok(client.post(f"/v1/declarations/{did}/submit", headers=idem(ent)))
    r = client.post(f"/v1/declarations/{did}/submit", headers=idem(ent))
    assert r.status_code == 409 and r.get_json()["current_state"] == "submitted"
    r = client.post(f"/v1/declarations/{did}/release", headers=idem(tok("officer", agency="customs")))
    assert r.status_code == 409 and r.get_json()["current_state"] == "submitted"


def test_validation_reports_every_bad_identifier(client, tok):
    b = declaration(new_id(), plate="12X", tax="0100109107")
    b["goods"][0]["hs_code"] = "77"
    r = client.post("/v1/declarations", json=b, headers=tok("enterprise", sub=TAX))
    assert r.status_code == 422
    assert [e["field"] for e in r.get_json()["errors"]] == ["/enterprise/tax_code", "/goods/0/hs_code", "/vehicle/tractor_plate"]
    r = client.post("/v1/declarations", json=declaration(new_id(), gate="atlantis"), headers=tok("enterprise", sub=TAX))
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/gate"
    r = client.post("/v1/declarations", json=declaration(new_id(), gate="dong-dang-rail"), headers=tok("enterprise", sub=TAX))
    assert r.status_code == 422


def test_my_declarations_come_newest_first_page_by_page(client, tok):
    """"My declarations" listed the oldest first: a haulier crossing daily had this week's truck on
    the last of years of pages, reached only by walking every page before it."""
    ent, driver = tok("enterprise", sub=TAX2), tok("driver", sub="P1357913")
    made = [new_id() for _ in range(5)]
    for did in made:
        ok(client.post("/v1/declarations", json=declaration(did, tax=TAX2, driver_id="P1357913"), headers=ent), 201)
    for who in (ent, driver):
        listed, token = [], None
        while True:
            page = ok(client.get("/v1/declarations", query_string={"limit": 2, **({"page_token": token} if token else {})},
                                 headers=who))
            listed += [d["id"] for d in page["items"]]
            token = page["next_page_token"]
            if not token:
                break
        assert listed == made[::-1]


def test_enterprises_and_drivers_see_only_their_own(client, tok):
    a, b = tok("enterprise", sub=TAX), tok("enterprise", sub=TAX2)
    mine = new_id()
    ok(client.post("/v1/declarations", json=declaration(mine, driver_id="P7654321"), headers=a), 201)
    ok(client.post("/v1/declarations", json=declaration(new_id(), tax=TAX2), headers=b), 201)
    assert client.get(f"/v1/declarations/{mine}", headers=b).status_code == 404
    assert client.post(f"/v1/declarations/{mine}/cancel", headers=idem(b)).status_code == 404
    assert [d["id"] for d in ok(client.get("/v1/declarations", headers=a))["items"]] == [mine]
    # an enterprise declares only under its own tax code
    r = client.post("/v1/declarations", json=declaration(new_id(), tax=TAX2), headers=a)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/enterprise/tax_code"
    assert [d["id"] for d in ok(client.get("/v1/declarations", headers=tok("driver", sub="P7654321")))["items"]] == [mine]
    assert client.get(f"/v1/declarations/{mine}", headers=tok("driver", sub="P0000000")).status_code == 404


def test_each_agency_decides_only_its_own_step(client, tok):
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    export = declaration(did, direction="export", plate="12C-123.45", trailer=None,
                         goods=[{"hs_code": "8517", "description": "phones", "packages": 10, "gross_weight_kg": 500,
                                 "value": 9000, "currency": "USD", "origin": "VN"}])
    ok(client.post("/v1/declarations", json=export, headers=ent), 201)
    r = client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"}, headers=idem(tok("officer", agency="tax")))
    assert r.status_code == 403 and r.get_json()["type"].endswith("not-your-step")
    bg = tok("officer", agency="border-guard")
    assert client.post(f"/v1/declarations/{did}/release", headers=idem(bg)).status_code == 403
    assert client.post(f"/v1/declarations/{did}/risk-lane", json={"lane": "red", "reason": "x"},
                       headers=idem(bg)).status_code == 403
    r = client.post(f"/v1/declarations/{did}/decisions", json={"decision": "hold"}, headers=idem(bg))
    assert r.status_code == 422   # a hold needs notes
    # a re-route needs a reason, and is audited
    customs = tok("officer", agency="customs")
    r = client.post(f"/v1/declarations/{did}/risk-lane", json={"lane": "red"}, headers=idem(customs))
    assert r.status_code == 422
    ok(client.post(f"/v1/declarations/{did}/risk-lane", json={"lane": "red", "reason": "tip-off"}, headers=idem(customs)))
    trail = ok(client.get(f"/v1/declarations/{did}/audit", headers=customs))["items"]
    assert any(e["action"] == "route_risk_lane" and e["reason"] == "tip-off" for e in trail)
    work = ok(client.get("/v1/gates/huu-nghi/worklist", headers=bg))["items"]
    assert did in [w["declaration_id"] for w in work]
    ok(client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"}, headers=idem(bg)))
    assert did not in [w["declaration_id"] for w in ok(client.get("/v1/gates/huu-nghi/worklist", headers=bg))["items"]]


def test_an_officer_of_no_border_agency_sees_no_declaration(client, tok):
    """Every agency's officers hold the role "officer"; one without a gate (a commune's, a
    department's) saw every declaration, the driver's CCCD and phone among its fields."""
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did), headers=tok("enterprise", sub=TAX)), 201)
    assert client.get(f"/v1/declarations/{did}", headers=tok("officer", agency="customs")).status_code == 200
    for agency in ("so-tu-phap", "ubnd-06040", None):
        r = client.get(f"/v1/declarations/{did}", headers=tok("officer", agency=agency))
        assert r.status_code == 404, (agency, r.status_code)


def test_concurrent_decisions_of_one_agency_and_many_never_overwrite(client, tok):
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did), headers=ent), 201)
    calls = [(a, d) for a in AGENCIES[1:] for d in ("hold", "pass")]

    def decide(args):
        agency, decision = args
        body = {"decision": decision, **({"notes": "check"} if decision == "hold" else {})}
        return client.post(f"/v1/declarations/{did}/decisions", json=body,
                           headers=idem(tok("officer", agency=agency))).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(decide, calls)) == {200}
    customs = tok("officer", agency="customs")
    records = ok(client.get(f"/v1/declarations/{did}/decisions", headers=customs))["items"]
    assert len(records) == 14 and {(r["agency"], r["seq"]) for r in records} == {(a, s) for a in AGENCIES[1:] for s in (1, 2)}
    doc = ok(client.get(f"/v1/declarations/{did}", headers=customs))
    assert set(doc["decisions"]) == set(AGENCIES[1:])
    for agency, summary in doc["decisions"].items():   # the summary holds each agency's latest decision
        latest = max((r for r in records if r["agency"] == agency), key=lambda r: r["seq"])
        assert summary["seq"] == latest["seq"] and summary["decision"] == latest["decision"]


def test_a_store_refusing_every_decision_number_is_a_retry_not_a_hang(client, tok, monkeypatch):
    """record_decision tried the next number for as long as the store refused the last: for ever."""
    from functions.border.function.models import AgencyDecision
    from lscloud.store import ConditionalCheckFailed

    ent = tok("enterprise", sub=TAX)
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did), headers=ent), 201)
    tries = []

    def refused(self, *args, **kwargs):
        tries.append(self.seq)
        raise ConditionalCheckFailed("taken")

    monkeypatch.setattr(AgencyDecision, "save", refused)
    r = client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"},
                    headers=idem(tok("officer", agency="customs")))
    assert r.status_code == 409 and r.get_json()["type"].endswith("concurrent-update") and r.headers["Retry-After"]
    assert len(tries) == 64


@pytest.mark.parametrize("cut", ["the store fails on the fold", "the process dies after the fold"])
def test_a_decision_retried_after_its_run_was_cut_off_is_recorded_once(client, fn, tok, monkeypatch, cut):
    """The officer's decision is stored, then the run is cut off before the answer (the store fails
    on the declaration's fold, or the process dies after it, before its events): a 503, which gives
    the key's lease back, and the app retries with the same Idempotency-Key. The old code counted
    the decisions and took the next number: ('border-guard', 'hold', 1) and ('border-guard', 'hold',
    2) for one tap. The retry is answered with the one decision folded and its event published once;
    another officer's decision (even under the same key value) is still its own."""
    from lscloud import aggregate
    from lscloud.store.errors import StoreUnavailable

    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did), headers=tok("enterprise", sub=TAX)), 201)
    guard = idem(tok("officer", agency="border-guard"))
    body = {"decision": "hold", "notes": "documents to check"}
    if cut == "the store fails on the fold":
        cuts = cut_once(monkeypatch, models.Declaration, "save", lambda item, **_: item.id == did)
    else:
        cuts = cut_once(monkeypatch, aggregate.Aggregate, "commit", lambda agg, outcome, *_, **__: outcome.doc["id"] == did,
                        error=StoreUnavailable("the process died here"))
    first = client.post(f"/v1/declarations/{did}/decisions", json=body, headers=guard)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    version = int(ledger.RECORDS.get(did).version)

    # another body under the key: the 409 naming its fields, nothing recorded
    r = client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"}, headers=guard)
    assert r.status_code == 409 and r.get_json()["type"].endswith("idempotency-key-reused"), r.get_data(as_text=True)
    assert sorted(e["field"] for e in r.get_json()["errors"]) == ["/decision", "/notes"]
    again = client.post(f"/v1/declarations/{did}/decisions", json=body, headers=guard)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.get_data(as_text=True)
    assert again.get_json()["decisions"]["border-guard"]["seq"] == 1
    customs = tok("officer", agency="customs")
    records = ok(client.get(f"/v1/declarations/{did}/decisions", headers=customs))["items"]
    assert [(d["agency"], d["decision"], d["seq"]) for d in records] == [("border-guard", "hold", 1)]
    assert not [d for d in records if "request" in d]   # the request's stamp is kept, never answered
    if cut == "the process dies after the fold":
        assert int(ledger.RECORDS.get(did).version) == version   # folded already: not written again

    def recorded():
        return [m["event"]["id"] for m in tail(fn.settings, 500) if m["event"]["type"].endswith(".decision.recorded.v1")
                and m["event"]["data"]["declaration_id"] == did]

    assert recorded() == [f"{did}.decision.border-guard.1"]
    # another officer of the agency, the same body, even the same key value: a decision of its own
    other = {**tok("officer", agency="border-guard"), "Idempotency-Key": guard["Idempotency-Key"]}
    ok(client.post(f"/v1/declarations/{did}/decisions", json=body, headers=other))
    records = ok(client.get(f"/v1/declarations/{did}/decisions", headers=customs))["items"]
    assert [(d["decision"], d["seq"]) for d in records] == [("hold", 1), ("hold", 2)]
    assert recorded() == [f"{did}.decision.border-guard.1", f"{did}.decision.border-guard.2"]


def test_slot_capacity_is_never_exceeded_under_races(client, tok):
    op = tok("operator", sub="op-1")
    ok(client.put("/v1/gates/tan-thanh/capacity/in", json={"per_hour": 3, "reason": "road works"}, headers=op))
    ent = tok("enterprise", sub=TAX)
    from datetime import datetime, timedelta, timezone

    slot = (datetime.now(timezone.utc) + timedelta(hours=30)).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y%m%d%H")
    ids = [new_id() for _ in range(8)]
    for i in ids:
        ok(client.post("/v1/declarations", json=declaration(i, gate="tan-thanh"), headers=ent), 201)

    def book(i):
        return client.post(f"/v1/declarations/{i}/booking", json={"mode": "reservation", "slot": slot}, headers=idem(ent))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(book, ids))
    assert sorted(r.status_code for r in answers) == [200] * 3 + [409] * 5
    full = next(r for r in answers if r.status_code == 409).get_json()
    assert full["type"].endswith("slot-full") and full["suggestions"] and slot not in full["suggestions"]
    # living queue: the next truck gets the first slot with a free seat
    living = ok(client.post(f"/v1/declarations/{ids[0] if answers[0].status_code == 409 else [i for i, r in zip(ids, answers) if r.status_code == 409][0]}/booking",
                            json={"mode": "living"}, headers=idem(ent)))
    assert living["status"] == "queued"


def tick(client, minute_offset=0, *, at=None):
    """What the dispatcher / the broker does with the platform clock's tick: POST it to /events.
    ``at``: the minute it ticks for (now by default); a test that sends the same tick twice pins it,
    or a minute turning between the two would make the second a new tick."""
    from datetime import datetime, timedelta, timezone

    from lscloud import clock

    ev = clock.tick_event((at or datetime.now(timezone.utc)) + timedelta(minutes=minute_offset))
    headers, body = events.to_binary_http(ev)
    return client.post("/events", data=body, headers={**headers, **delivered_by_dispatcher(client)})


def test_the_clock_tick_applies_missed_calls_at_every_gate_and_flushes_the_outbox(border, tok):
    fn = border(BORDER_CALL_MINUTES="0")   # every call is missed at once
    client = fn.app.test_client()
    ent = tok("enterprise", sub=TAX)
    trucks = {}
    for gate_code in ("tan-thanh", "huu-nghi"):   # one truck called at each of two gates
        i = trucks[gate_code] = new_id()
        ok(client.post("/v1/declarations", json=declaration(i, gate=gate_code, booking={"mode": "living"}), headers=ent), 201)
        ok(client.post(f"/v1/declarations/{i}/arrival", headers=idem(tok("yard-operator", unit=gate_code))))
        called = ok(client.post(f"/v1/gates/{gate_code}/calls", json={"flow": "in"},
                                headers=idem(tok("gate-operator", unit=gate_code))))["called"]
        assert [c["declaration_id"] for c in called] == [i]
    # an event NATS did not confirm at the time waits in the outbox
    pending = ledger.RECORDS.fact("traffic-order.issued", {"gate": "tan-thanh", "flow": "in", "kind": "hold"},
                            id=f"outbox-{uuid.uuid4().hex}")
    outbox.PendingEvent(fn.settings.service, pending["id"], event=pending).save()

    def status(gate_code):
        return ok(client.get(f"/v1/declarations/{trucks[gate_code]}", headers=ent))["status"]

    # no operator: the minute's tick applies the missed calls at both gates and flushes the outbox
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    r = tick(client, at=now)
    assert r.status_code == 200 and r.get_json()["status"] == "done", r.get_data(as_text=True)
    assert status("tan-thanh") == status("huu-nghi") == "in_yard"
    trail = ok(client.get(f"/v1/declarations/{trucks['huu-nghi']}/audit", headers=ent))["items"]
    assert trail[-1]["action"] == "miss_call" and trail[-1]["actor"]["kind"] == "system"
    assert outbox.pending() == []
    assert pending["id"] in [m["event"]["id"] for m in tail(fn.settings, 50)]
    # the same tick again (a redelivery) is a duplicate; later ticks apply only what is due
    assert tick(client, at=now).get_json()["status"] == "duplicate"
    ok(client.post("/v1/gates/tan-thanh/calls", json={"flow": "in"}, headers=idem(tok("gate-operator", unit="tan-thanh"))))
    assert tick(client, 1, at=now).get_json()["status"] == "done"
    assert (status("tan-thanh"), status("huu-nghi")) == ("expired", "in_yard")
    assert tick(client, 2, at=now).get_json()["status"] == "done"
    assert (status("tan-thanh"), status("huu-nghi")) == ("expired", "in_yard")
    # the operators' endpoint stays, and finds nothing left
    assert ok(client.post("/v1/gates/tan-thanh/sweep", headers=tok("gate-operator", unit="tan-thanh")))["missed"] == []


def test_queue_order_priority_and_missed_calls(border, tok):
    fn = border(BORDER_CALL_MINUTES="0")   # every call is missed at once
    client = fn.app.test_client()
    ent, yard = tok("enterprise", sub=TAX), tok("yard-operator", unit="tan-thanh")
    gate = tok("gate-operator", unit="tan-thanh")
    ids = [new_id() for _ in range(3)]
    for i in ids:
        ok(client.post("/v1/declarations", json=declaration(i, gate="tan-thanh", booking={"mode": "living"}), headers=ent), 201)
        ok(client.post(f"/v1/declarations/{i}/arrival", headers=idem(yard)))
    positions = [ok(client.get(f"/v1/declarations/{i}/position", headers=ent))["queue"]["position"] for i in ids]
    assert positions == [1, 2, 3]
    ok(client.post(f"/v1/declarations/{ids[2]}/priority", json={"category": "perishable", "reason": "durian"},
                   headers=idem(tok("operator"))))
    q = ok(client.get(f"/v1/declarations/{ids[2]}/position", headers=ent))["queue"]
    assert q["position"] == 1 and q["lane"] == "priority"
    q = ok(client.get(f"/v1/declarations/{ids[0]}/position", headers=ent))["queue"]
    assert q["position"] == 2 and q["ahead_by_rule"]["priority_lane"] == 1
    board = ok(client.get("/v1/gates/tan-thanh/board"))
    assert board["flows"]["in"]["waiting"] == 3 and board["flows"]["in"]["waiting_priority"] == 1
    # the priority truck is called first; it misses the (zero-minute) deadline: back to the yard once
    first = ok(client.post("/v1/gates/tan-thanh/calls", json={"flow": "in"}, headers=idem(gate)))
    assert first["called"][0]["declaration_id"] == ids[2]
    swept = ok(client.post("/v1/gates/tan-thanh/sweep", headers=gate))
    assert swept["missed"] == [{"declaration_id": ids[2], "status": "in_yard"}]
    ok(client.post("/v1/gates/tan-thanh/calls", json={"flow": "in"}, headers=idem(gate)))
    # an operator (any gate) may ask for the sweep too: the deadlines apply as the clock's tick applies them
    swept = ok(client.post("/v1/gates/tan-thanh/sweep", headers=tok("operator")))
    assert swept["missed"] == [{"declaration_id": ids[2], "status": "expired"}]
    r = client.post(f"/v1/declarations/{ids[2]}/at-gate", headers=idem(gate))
    assert r.status_code == 409 and r.get_json()["current_state"] == "expired"
    # traffic police tell the drivers still waiting
    order = ok(client.post("/v1/traffic-orders", json={"id": "order-0001-tt", "gate": "tan-thanh", "flow": "in",
                                                       "kind": "hold", "message_vi": "Tạm dừng 30 phút",
                                                       "message_zh": "暂停30分钟"},
                           headers=tok("officer", agency="traffic-police")), 201)
    assert {r["declaration_id"] for r in order["recipients"]} == set(ids[:2])
    assert not any("driver_phone" in r for r in order["recipients"])   # the notifiers' to text, not the officer's
    assert any(m["event"]["type"] == "vn.langson.border.traffic-order.issued.v2" for m in tail(fn.settings, 100))


def test_weighbridge_mismatch_holds_and_a_reading_counts_once(client, tok, fn):
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, plate="桂B·54321", trailer=None, booking={"mode": "living"}),
                   headers=ent), 201)
    ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(tok("yard-operator", unit="huu-nghi"))))
    gate = tok("gate-operator", unit="huu-nghi")
    # the gate camera registers the called truck at the gate
    client.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 5}, headers=idem(gate))
    r = device_event(client, "vn.langson.border.plate.read.v1",
                     {"reading_id": "g-1", "gate": "huu-nghi", "camera": "gate", "flow": "in", "plate": "桂B54321",
                      "confidence": 0.99, "read_at": "2025-09-01T08:00:00Z", "device": "anpr-g"})
    assert r.status_code == 200
    assert ok(client.get(f"/v1/declarations/{did}", headers=ent))["status"] == "at_gate"
    reading = {"reading_id": "wb-77", "gate": "huu-nghi", "plate": "桂B·54321", "gross_kg": 45000,
               "measured_at": "2025-09-01T08:00:00Z", "device": "wb-1"}
    assert device_event(client, "vn.langson.border.weight.measured.v1", reading).status_code == 200
    ev = events.new_event("vn.langson.border.weight.measured.v1", "/border/devices/other", reading)  # another envelope
    h, b = events.to_binary_http(ev)
    assert client.post("/events", data=b, headers={**h, **delivered_by_dispatcher(client)}).status_code == 200
    doc = ok(client.get(f"/v1/declarations/{did}", headers=ent))
    assert doc["status"] == "held" and doc["weight_mismatches"] == 1 and doc["holds"]["weight"]["measured_kg"] == 45000
    mismatches = [m for m in tail(fn.settings, 200) if m["event"]["type"] == "vn.langson.border.weight.mismatched.v1"
                  and m["event"]["data"]["declaration_id"] == did]
    assert len(mismatches) == 1


def _at_the_gate(client, tok, plate: str) -> str:
    """A declaration of ``plate`` called to Hữu Nghị's gate; its id."""
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, plate=plate, trailer=None, booking={"mode": "living"}),
                   headers=tok("enterprise", sub=TAX)), 201)
    ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(tok("yard-operator", unit="huu-nghi"))))
    client.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 5}, headers=idem(tok("gate-operator", unit="huu-nghi")))
    return did


def test_a_device_reading_whose_first_run_failed_is_applied_by_its_redelivery(client, tok, fn, monkeypatch):
    """The reading's record is made first; a run that fails after it (the store, here a read) is
    answered 5xx, and the redelivery of the same event applies the reading. (It used to find the
    record and answer 200 with nothing done: the truck never reached the gate.) The same reading in
    another envelope still counts once."""
    from functions.border.function import device_events

    ent = tok("enterprise", sub=TAX)
    did = _at_the_gate(client, tok, "桂B·11111")
    cut_once(monkeypatch, device_events, "candidates")
    read = {"reading_id": "g-re-1", "gate": "huu-nghi", "camera": "gate", "flow": "in", "plate": "桂B11111",
            "confidence": 0.99, "read_at": "2025-09-01T08:00:00Z", "device": "anpr-g"}
    assert device_event(client, "vn.langson.border.plate.read.v1", read).status_code == 503
    assert ok(client.get(f"/v1/declarations/{did}", headers=ent))["status"] == "called"
    assert device_event(client, "vn.langson.border.plate.read.v1", read).status_code == 200
    assert ok(client.get(f"/v1/declarations/{did}", headers=ent))["status"] == "at_gate"

    # a weighbridge reading whose write landed before the run failed is not counted twice
    reading = {"reading_id": "wb-re-1", "gate": "huu-nghi", "plate": "桂B·11111", "gross_kg": 45000,
               "measured_at": "2025-09-01T08:05:00Z", "device": "wb-1"}
    cut_once(monkeypatch, device_events.metrics, "weighed", error=RuntimeError("the run stops after the write"))
    assert device_event(client, "vn.langson.border.weight.measured.v1", reading).status_code >= 500
    assert device_event(client, "vn.langson.border.weight.measured.v1", reading).status_code == 200
    doc = ok(client.get(f"/v1/declarations/{did}", headers=ent))
    assert doc["status"] == "held" and doc["weight_mismatches"] == 1
    mismatched = [m for m in tail(fn.settings, 200) if m["event"]["type"] == "vn.langson.border.weight.mismatched.v1"
                  and m["event"]["data"]["declaration_id"] == did]
    assert len(mismatched) == 1


def test_an_older_weighbridge_reading_delivered_late_does_not_undo_a_newer_one(client, tok, fn):
    """Deliveries may come in any order (Knative delivers in parallel): the latest measurement decides."""
    ent = tok("enterprise", sub=TAX)
    did = _at_the_gate(client, tok, "桂B·22222")
    ok(client.post(f"/v1/declarations/{did}/at-gate", headers=idem(tok("gate-operator", unit="huu-nghi"))))
    newer = {"reading_id": "wb-n", "gate": "huu-nghi", "plate": "桂B·22222", "gross_kg": 45000,
             "measured_at": "2025-09-01T08:10:00+07:00", "device": "wb-1"}
    older = {**newer, "reading_id": "wb-o", "gross_kg": 33400, "measured_at": "2025-09-01T01:05:00Z"}   # 08:05 local
    assert device_event(client, "vn.langson.border.weight.measured.v1", newer).status_code == 200
    assert ok(client.get(f"/v1/declarations/{did}", headers=ent))["status"] == "held"
    assert device_event(client, "vn.langson.border.weight.measured.v1", older).status_code == 200
    doc = ok(client.get(f"/v1/declarations/{did}", headers=ent))
    assert doc["status"] == "held" and doc["weight"]["reading_id"] == "wb-n"


def test_a_weighbridge_reading_for_a_truck_gone_meanwhile_changes_nothing(client, tok, monkeypatch):
    """The reading's candidates are read first, the declaration written after: a truck that exited in
    between got the mismatch counted and a weight hold, after its exit (and the IOC a mismatch)."""
    from functions.border.function import device_events

    did = _exited(client, tok, "12C-222.22")
    customs = tok("officer", agency="customs")
    gone = ok(client.get(f"/v1/declarations/{did}", headers=customs))
    stale = {**ledger.docs([did])[0], "status": "cleared"}   # as the candidates' read saw it, a moment before
    monkeypatch.setattr(device_events, "candidates", lambda plate, gate: [stale])
    reading = {"reading_id": "wb-late", "gate": "huu-nghi", "plate": "12C-222.22", "gross_kg": 90000,
               "measured_at": "2025-09-01T08:20:00Z", "device": "wb-1"}
    assert device_event(client, "vn.langson.border.weight.measured.v1", reading).status_code == 200
    after = ok(client.get(f"/v1/declarations/{did}", headers=customs))
    assert after["status"] == "exited" and after.get("weight_mismatches", 0) == gone.get("weight_mismatches", 0)
    assert after.get("weight") == gone.get("weight") and ledger.RECORDS.trail(did)[-1]["action"] == "exit"


@pytest.mark.parametrize("plate", ["?", "·", "-"])
def test_a_plate_read_as_separators_only_names_no_truck(client, plate):
    """A camera reading nothing but separators passes the schema; its empty index key raised
    InvalidKey, a 404 that dead-lettered the reading and left the barrier without a decision."""
    for camera, kind in (("barrier", "vn.langson.border.plate.read.v1"), (None, "vn.langson.border.weight.measured.v1")):
        code = ord(plate)   # the reading's id: its schema takes no "?" in it
        data = ({"reading_id": f"r-{camera}-{code}", "gate": "huu-nghi", "camera": camera, "flow": "out",
                 "plate": plate, "confidence": 0.5, "read_at": "2025-09-01T08:10:00Z", "device": "anpr-huu-nghi-b1"}
                if camera else {"reading_id": f"w-{code}", "gate": "huu-nghi", "plate": plate, "gross_kg": 30000,
                                "measured_at": "2025-09-01T08:10:00Z", "device": "wb-1"})
        r = device_event(client, kind, data)
        assert r.status_code == 200, (kind, r.get_data(as_text=True))


def test_border_settings_come_through_the_platform_config(border, tok, settings):
    """BORDER_* variables reach the function through lscloud.config (the Service's environment as the
    platform read it), checked at start: a bad value stops it; the weighbridge uses the tolerance set."""
    with pytest.raises(config.ConfigError, match="BORDER_CALL_MINUTES"):
        create_app(settings.replace(service="border", function_env={"BORDER_CALL_MINUTES": "soon"}))
    with pytest.raises(config.ConfigError, match="BORDER_WEIGHT_TOLERANCE"):
        create_app(settings.replace(service="border", function_env={"BORDER_WEIGHT_TOLERANCE": "2"}))
    client = border(BORDER_WEIGHT_TOLERANCE="0.5").app.test_client()
    ent, gate = tok("enterprise", sub=TAX), tok("gate-operator", unit="huu-nghi")
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, plate="桂C·24680", trailer=None, booking={"mode": "living"}),
                   headers=ent), 201)
    ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(tok("yard-operator", unit="huu-nghi"))))
    ok(client.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 20}, headers=idem(gate)))
    ok(client.post(f"/v1/declarations/{did}/at-gate", headers=idem(gate)))
    reading = {"reading_id": "wb-tol", "gate": "huu-nghi", "plate": "桂C·24680", "gross_kg": 45000,   # 36 % over
               "measured_at": "2025-09-01T08:00:00Z", "device": "wb-1"}
    assert device_event(client, "vn.langson.border.weight.measured.v1", reading).status_code == 200
    doc = ok(client.get(f"/v1/declarations/{did}", headers=ent))
    assert doc["status"] == "at_gate" and doc["weight"]["ok"] and doc["weight"]["tolerance"] == 0.5


def test_device_ingest_checks_the_device_and_publishes(client, tok, fn):
    dev = tok("device", sub="anpr-hn-1", unit="huu-nghi")
    ev = events.new_event("vn.langson.border.plate.read.v1", "/devices/anpr-hn-1",
                          {"reading_id": "r-100", "gate": "huu-nghi", "camera": "yard", "flow": "in", "plate": "桂A·99999",
                           "read_at": "2025-09-01T08:00:00Z"})
    h, b = events.to_binary_http(ev)
    r = client.post("/v1/device-events", data=b, headers={**h, **dev})
    assert r.status_code == 202 and r.get_json()["id"] == "anpr-hn-1.r-100"
    assert client.post("/v1/device-events", data=b, headers={**h, **tok("device", unit="tan-thanh")}).status_code == 403
    bad = events.new_event("vn.langson.border.plate.read.v1", "/d", {"reading_id": "r", "gate": "huu-nghi"})
    h2, b2 = events.to_binary_http(bad)
    r = client.post("/v1/device-events", data=b2, headers={**h2, **dev})
    assert r.status_code == 422 and any(e["field"].startswith("/data") for e in r.get_json()["errors"])
    stored = [m["event"] for m in tail(fn.settings, 50) if m["event"]["id"] == "anpr-hn-1.r-100"]
    assert stored and stored[0]["data"]["device"] == "anpr-hn-1"


def test_every_endpoint_with_every_role(app, keys):
    """Held to functions/border/access.yaml, not to @allow (tests/integration/role_matrix.py)."""
    assert role_matrix.check(app, "border", keys[0], samples={"gate": "huu-nghi", "flow": "in"}) > 300


def test_a_refused_create_leaves_no_code_and_no_claimed_id(client, tok):
    """Issue 9: nothing half-written. A create that books into a full slot is refused (409); the code
    it reserved is given back and the id is free for the corrected request."""
    op, ent = tok("operator", sub="op-1"), tok("enterprise", sub=TAX)
    ok(client.put("/v1/gates/tan-thanh/capacity/in", json={"per_hour": 1, "reason": "one lane"}, headers=op))
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    slot = (datetime.now(timezone.utc) + timedelta(hours=40)).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y%m%d%H")
    ok(client.post("/v1/declarations", json=declaration(new_id(), gate="tan-thanh",
                                                        booking={"mode": "reservation", "slot": slot}), headers=ent), 201)
    table = models.DeclarationCode.Meta.table

    def codes():
        objects, bucket = store.connection()
        return sorted(o.key for o in objects.list(bucket, prefix=table + "/"))

    before = codes()
    refused_id = new_id()
    r = client.post("/v1/declarations", json=declaration(refused_id, gate="tan-thanh",
                                                         booking={"mode": "reservation", "slot": slot}), headers=ent)
    assert r.status_code == 409 and r.get_json()["type"].endswith("slot-full")
    assert codes() == before
    again = ok(client.post("/v1/declarations", json=declaration(refused_id, gate="tan-thanh"), headers=ent), 201)
    assert again["id"] == refused_id and "Idempotent-Replayed" not in r.headers


def test_odd_path_ids_get_a_problem_never_a_5xx(app, tok):
    from path_ids import assert_no_route_fails_on_odd_ids

    claims = {"officer": {"agency": "customs", "unit": "huu-nghi"}, "gate-operator": {"unit": "huu-nghi"},
              "yard-operator": {"unit": "huu-nghi"}, "device": {"unit": "huu-nghi"}, "enterprise": {"sub": TAX}}
    assert assert_no_route_fails_on_odd_ids(app, lambda role: tok(role, **claims.get(role, {}))) > 100


def test_events_admits_only_the_platforms_delivery(app, keys):
    assert role_matrix.events_refusals(app, keys[0]) == []


def test_a_position_asked_again_costs_one_round_trip_whatever_the_number_waiting(start_function, directory, tok):
    """Position comes from the queue's tally and a listing of the truck's own slot part, not from
    listing every truck ahead. Asked the first time, the declaration's GET comes first, then the
    tally's GET and that one listing at once: three calls in two round trips. Asked again (a
    driver's app polls), this replica knows the slot it answered from, and all three go out at
    once: one round trip, the same with no truck ahead and with 2,100 (three listing pages) ahead.
    The driver's public lookup does the same after its code's read. The gate's capacity
    override, which only changes the expected wait, is read as it was at most LSCLOUD_PEER_FRESH_S
    ago (here an hour, so that a slow machine does not let it expire between the reads counted),
    and an override set here shows at once. (The old code made four calls one after the other,
    the override's GET every time; the last made two rounds every time.)"""
    from concurrent.futures import ThreadPoolExecutor as Pool

    from store_calls import Rounds, counting

    client = start_function("border", peer_url_template=directory.template, peer_fresh_s=3600).app.test_client()
    ent, yard = tok("enterprise", sub=TAX), tok("yard-operator", unit="huu-nghi")
    qn = "huu-nghi_in"
    warm, did = new_id(), new_id()
    for i in (warm, did):
        created = ok(client.post("/v1/declarations", json=declaration(i, booking={"mode": "living"}), headers=ent), 201)
        ok(client.post(f"/v1/declarations/{i}/arrival", headers=idem(yard)))
    ok(client.get(f"/v1/declarations/{warm}/position", headers=ent))   # the gate's override, read once per bound
    queue_reads = [("get", models.QueueTally.Meta.table), ("list", models.QueueEntry.Meta.table)]

    def rounds_of(path, expected, query=None, headers=None):
        rounds = Rounds()
        with Pool(1) as pool, counting(rounds) as calls:
            answer = pool.submit(client.get, path, query_string=query, headers=headers)
            seen = [sorted((m, k.split("/")[0]) for m, k in rounds.next_round(len(want))) for want in expected]
            body = ok(answer.result())
        assert seen == [sorted(want) for want in expected], seen
        assert len(calls.log) == sum(len(want) for want in expected), calls
        return body

    path = f"/v1/declarations/{did}/position"
    decl = ("get", models.Declaration.Meta.table)
    first = rounds_of(path, ((decl,), tuple(queue_reads)), headers=ent)["queue"]
    again = rounds_of(path, ((decl, *queue_reads),), headers=ent)["queue"]
    assert again == first
    # trucks of an earlier slot, already in the yard before the measured one (written as the store
    # holds them), then counted as the clock's tick mends a tally
    with Pool(16) as pool:
        list(pool.map(lambda i: models.QueueEntry(qn, f"1_2025010107_{1735689600000000 + i:016d}_LSQ{i:06d}",
                                                  declaration_id=f"q-{i}").save(), range(2100)))
    from functions.border.function import tally
    tally.recount_all(qn)
    q = rounds_of(path, ((decl, *queue_reads),), headers=ent)["queue"]
    assert q["position"] == first["position"] + 2100 and q["ahead_by_rule"]["earlier_slot"] == 2100, (first, q)
    board = ok(client.get("/v1/gates/huu-nghi/board"))
    assert board["flows"]["in"]["waiting"] == q["position"]

    # the driver's lookup: the code's GET, then the declaration's with the queue's reads once asked before;
    # the gate's traffic orders (none here: one listing) are read as they were at most LSCLOUD_PEER_FRESH_S
    # ago, like the override: listed by the first lookup (this replica's memory of them dropped here),
    # not by the next
    lookup = {"code": created["code"], "plate": declaration(did)["vehicle"]["tractor_plate"]}
    code = ("get", models.DeclarationCode.Meta.table)
    from functions.border.function import i18n, traffic

    traffic._shown.drop((store.connection()[1], "huu-nghi"))
    orders = ("list", models.OpenTrafficOrder.Meta.table)
    told = rounds_of("/v1/lookup", ((code,), (decl,), tuple(queue_reads), (orders,)), query=lookup)["queue"]
    assert told == {**q, "rules": i18n.rules("vi")}   # the lookup tells the rules in the driver's language
    assert rounds_of("/v1/lookup", ((code, *queue_reads), (decl,)), query=lookup)["queue"] == {**q, "rules": i18n.rules("vi")}

    # an operator halves the gate's capacity: this replica's next position shows the longer wait
    per_hour = board["flows"]["in"]["capacity_per_hour"]
    ok(client.put("/v1/gates/huu-nghi/capacity/in", json={"per_hour": per_hour // 2, "reason": "one lane closed"},
                  headers=tok("operator", sub="op-1")))
    slower = ok(client.get(path, headers=ent))["queue"]
    assert slower["expected_wait_minutes"] == round(q["ahead"] * 60 / (per_hour // 2)), (q, slower)


def test_a_position_asked_again_after_the_truck_moved_is_read_for_its_new_place(client, tok):
    """The slot this replica last answered from is only a hint: once the truck holds another
    (a priority grant moves it to the priority lane; a call takes it out of the queue), the answer
    is read for the place it holds now, never the one hinted — each position here is the one the
    queue's listing gives; another enterprise asking gets the same 404 as before, however the hint
    stands. A truck of the normal lane arrives first: read for the old slot, this truck's priority
    place would count it as ahead."""
    from functions.border.function import queueing

    ent, yard = tok("enterprise", sub=TAX), tok("yard-operator", unit="tan-thanh")
    ahead, did = new_id(), new_id()
    for i in (ahead, did):
        ok(client.post("/v1/declarations", json=declaration(i, gate="tan-thanh", booking={"mode": "living"}),
                       headers=ent), 201)
        ok(client.post(f"/v1/declarations/{i}/arrival", headers=idem(yard)))

    def listed_position():
        _, key = queueing.HINTS.get(did)
        return len(queueing.ahead_of("tan-thanh", "in", key)) + 1

    path = f"/v1/declarations/{did}/position"
    last = ok(client.get(path, headers=ent))["queue"]
    hint = queueing.HINTS.get(did)
    assert last["lane"] == "normal" and last["position"] == listed_position() >= 2
    assert ok(client.get(path, headers=ent))["queue"] == last   # from the hint: the same answer
    ok(client.post(f"/v1/declarations/{did}/priority", json={"category": "perishable", "reason": "durian"},
                   headers=idem(tok("operator"))))
    moved = ok(client.get(path, headers=ent))["queue"]
    assert queueing.HINTS.get(did) != hint
    assert moved["lane"] == "priority" and moved["position"] == listed_position(), (last, moved)
    r = client.get(path, headers=tok("enterprise", sub=TAX2))
    assert r.status_code == 404 and "tan-thanh" not in r.get_data(as_text=True)
    # calls go in the queue's order: as many as the trucks up to this one call it
    assert moved["position"] <= 20
    ok(client.post("/v1/gates/tan-thanh/calls", json={"flow": "in", "count": moved["position"]},
                   headers=idem(tok("gate-operator", unit="tan-thanh"))))
    called = ok(client.get(path, headers=ent))
    assert called["status"] == "called" and called["queue"] is None and queueing.HINTS.get(did) is None


def test_the_tally_matches_the_queue_after_concurrent_arrivals_and_calls(client, tok):
    """Trucks arriving at once at one gate, then called: every count is the listing's count."""
    from functions.border.function import queueing, tally

    ent, yard = tok("enterprise", sub=TAX2), tok("yard-operator", unit="tan-thanh")
    gate = tok("gate-operator", unit="tan-thanh")
    ids = [new_id() for _ in range(8)]
    for i in ids:
        ok(client.post("/v1/declarations", json=declaration(i, gate="tan-thanh", tax=TAX2, booking={"mode": "living"}),
                       headers=ent), 201)
    with ThreadPoolExecutor(8) as pool:
        for r in pool.map(lambda i: client.post(f"/v1/declarations/{i}/arrival", headers=idem(yard)), ids):
            ok(r)
    qn = "tan-thanh_in"
    listed = queueing.waiting("tan-thanh", "in")
    assert sum(tally.counts(qn).values()) == len(listed) >= 8
    positions = sorted(ok(client.get(f"/v1/declarations/{i}/position", headers=ent))["queue"]["position"] for i in ids)
    assert len(set(positions)) == 8 and positions[-1] <= len(listed)
    ok(client.post("/v1/gates/tan-thanh/calls", json={"flow": "in", "count": 3}, headers=idem(gate)))
    assert sum(tally.counts(qn).values()) == len(queueing.waiting("tan-thanh", "in")) == len(listed) - 3


def test_a_submitted_declaration_costs_two_serial_puts_and_one_concurrent_round(client, tok):
    """Issue 11: a submitted declaration writes, one after another, only what must be ordered — the
    code claimed create-only, then the declaration create-only, which is its own idempotency record
    (it keeps keyed digests of the request) — and then its audit entries and indexes all in one
    round. Beside the declaration, in its round, goes its unfinished-create marker (what lets the
    clock finish a create cut off before its side round; deleted in a batch of markers, no DELETE
    of its own): eleven PUTs in three rounds (ten before the marker; the old code also wrote an
    idempotency record before the code and completed it after the side round: twelve PUTs in five
    rounds)."""
    from lscloud.aggregate import UnfinishedCreate
    from store_calls import Rounds, counting

    ent = tok("enterprise", sub=TAX)
    did = new_id()
    body = declaration(did)   # an import of fruit and fish: all eight agencies decide
    rounds = Rounds()
    with ThreadPoolExecutor(1) as pool, counting(rounds) as calls:
        answer = pool.submit(client.post, "/v1/declarations", json=body, headers=ent)
        # one after another: the code, the declaration with its unfinished-create marker; then one
        # round of 2 audit entries (create, submit), 2 owners, 2 plates, the day and one work item
        # for all eight agencies
        serial = [rounds.next_round(1), rounds.next_round(2)]
        side = rounds.next_round(8)
        created = ok(answer.result(), 201)
    assert [sorted((m, k.split("/")[0]) for m, k in r) for r in serial] == [
        [("put", models.DeclarationCode.Meta.table)],
        sorted([("put", models.Declaration.Meta.table), ("put", UnfinishedCreate.Meta.table)])], serial
    assert all(m == "put" for m, _ in side), side
    assert not any(k.startswith("idempotency/") for _, k in calls.log), calls
    assert len(created["required_agencies"]) == len(AGENCIES)
    assert calls["put"] == 11, calls   # 10 and the unfinished-create marker
    assert calls["get"] == calls["list"] == calls["head"] == calls["delete"] == 0, calls
    # the same request again is the first answer, from the declaration itself: the code it claimed
    # first is given back once its create-only write finds the declaration there, which is read;
    # a declaration still at its first version has its side round looked up (one round of HEADs of
    # the 8 objects written above), and as all are there, nothing more is written
    table = models.DeclarationCode.Meta.table
    with counting() as again:
        resent = client.post("/v1/declarations", json=body, headers=ent)
    assert resent.status_code == 201 and resent.headers["Idempotent-Replayed"] == "true"
    assert resent.get_json() == created and resent.headers["ETag"] == answer.result().headers["ETag"]
    # the refused create's marker too, beside its declaration's PUT (in either order), deleted in a batch
    marker = UnfinishedCreate.Meta.table
    assert [(m, k.split("/")[0]) for m, k in again.log if m != "head" and not k.startswith(f"{marker}/")] == [
        ("put", table), ("put", models.Declaration.Meta.table), ("delete", table),
        ("get", models.Declaration.Meta.table)], again
    assert [m for m, k in again.log if k.startswith(f"{marker}/")] == ["put"], again
    assert sorted(again.keys_of("head")) == sorted(k for _, k in side), again
    objects, bucket = store.connection()
    assert list(objects.list(bucket, again.keys_of("delete")[0])) == []


def test_concurrent_identical_creates_store_one_declaration_and_answer_it(client, tok):
    """The declaration is its own idempotency record: the same request sent at once from several
    threads stores one declaration with one code and one trail, every answer is that declaration
    (or a 409, for a resend refused by its own checks before the first was stored), and every
    code the resends claimed is given back; the same id from another enterprise is a plain 409.
    (A guard of the give-back: the old separate record let no resend claim anything.)"""
    ent = tok("enterprise", sub=TAX)
    did = new_id()
    body = declaration(did, booking={"mode": "living"})
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/declarations", json=body, headers=ent), range(4)))
    created = [r for r in answers if r.status_code == 201]
    assert created and all(r.status_code in (201, 409) for r in answers), [r.get_data(as_text=True) for r in answers]
    assert len({r.get_json()["code"] for r in created}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in created) == 1
    code = created[0].get_json()["code"]
    assert [c.code for c in models.DeclarationCode.scan() if c.declaration_id == did] == [code]
    assert [e["action"] for e in ok(client.get(f"/v1/declarations/{did}/audit", headers=ent))["items"]] == \
        ["create", "submit", "book"]
    seats = [s for s in models.SlotSeat.scan() if s.declaration_id == did]
    assert len(seats) == 1, seats
    other = client.post("/v1/declarations", json=declaration(did, tax=TAX2), headers=tok("enterprise", sub=TAX2))
    assert other.status_code == 409 and other.get_json()["type"].endswith("conflict"), other.get_json()


def test_one_work_item_serves_every_agency_until_each_decides(client, tok):
    """The declaration's one work item is on each required agency's list; a decision takes only that
    agency off (under If-Match, concurrent deciders included); the last one removes the item."""
    from functions.border.function import indexes

    ent = tok("enterprise", sub=TAX)
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, gate="tan-thanh"), headers=ent), 201)
    officers = {a: tok("officer", agency=a, unit="tan-thanh") for a in AGENCIES}

    def listed(agency):
        items = ok(client.get("/v1/gates/tan-thanh/worklist", headers=officers[agency]))["items"]
        return did in [w["declaration_id"] for w in items]

    assert all(listed(a) for a in AGENCIES)
    deciders = [a for a in AGENCIES if a != "customs"]
    with ThreadPoolExecutor(len(deciders)) as pool:
        for r in pool.map(lambda a: client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"},
                                                headers=idem(officers[a])), deciders):
            ok(r)
    assert [a for a in AGENCIES if listed(a)] == ["customs"]
    doc = ok(client.get(f"/v1/declarations/{did}", headers=ent))
    assert models.WorkItem.get("tan-thanh", indexes.work_entry(doc)).agencies == ["customs"]
    ok(client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"}, headers=idem(officers["customs"])))
    assert not listed("customs")
    assert not models.WorkItem.exists("tan-thanh", indexes.work_entry(doc))


def test_the_per_agency_work_items_of_the_older_layout_are_merged(client, tok):
    """migrate: each old per-agency object adds its agency to the declaration's one work item and goes."""
    from functions.border.function import migrate

    summary = {"code": "LSOLDWORK", "direction": "import", "plate": "12C-000.01", "submitted_at": "2026-01-01T00:00:00Z",
               "risk_lane": "green"}
    for agency in ("customs", "border-guard"):
        models.AgencyWorkItem(f"tan-thanh_{agency}", "1767225600000000_d_old", declaration_id="d-old",
                              summary=summary).save()
    assert migrate.merge_work_lists() == {"moved": 2}
    assert sorted(models.WorkItem.get("tan-thanh", "1767225600000000_d_old").agencies) == ["border-guard", "customs"]
    assert models.AgencyWorkItem.count() == 0
    assert migrate.merge_work_lists() == {"moved": 0}
    items = ok(client.get("/v1/gates/tan-thanh/worklist", headers=tok("officer", agency="border-guard", unit="tan-thanh")))
    assert [w["declaration_id"] for w in items["items"]] == ["d-old"]


def test_the_clock_tick_mends_a_tally_a_crashed_writer_left_behind(client, tok):
    """A writer that dies between its queue entry and its count leaves the tally wrong; every tenth
    minute's tick counts each queue again, and the board is right again."""
    from datetime import datetime, timezone

    from lscloud import clock
    from functions.border.function import tally

    ent, yard = tok("enterprise", sub=TAX), tok("yard-operator", unit="huu-nghi")
    did = new_id()
    ok(client.post("/v1/declarations", json=declaration(did, booking={"mode": "living"}), headers=ent), 201)
    ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(yard)))
    qn = "huu-nghi_in"
    right = tally.counts(qn)
    assert sum(right.values()) == 1
    drifted = models.QueueTally.get(qn)
    drifted.counts = {part: n + 5 for part, n in right.items()}   # the crash: counted, entries never written
    drifted.save()
    assert ok(client.get("/v1/gates/huu-nghi/board"))["flows"]["in"]["waiting"] == 6

    def tick_at(minute):
        ev = clock.tick_event(datetime.now(timezone.utc).replace(minute=minute))
        headers, body = events.to_binary_http(ev)
        return ok(client.post("/events", data=body, headers={**headers, **delivered_by_dispatcher(client)}))

    assert tick_at(7)["status"] == "done"   # not a tenth minute: the tally is left alone
    assert tally.counts(qn) != right
    assert tick_at(10)["status"] == "done"
    assert tally.counts(qn) == right
    assert ok(client.get("/v1/gates/huu-nghi/board"))["flows"]["in"]["waiting"] == 1


def _side_of(did: str, settings) -> dict:
    """What a declaration's create leaves beside it: its trail, its indexes (counted by table) and
    its events (type and id, as the stream holds them)."""
    def count(model):
        return sum(1 for i in model.scan() if i.declaration_id == did)

    return {"audit": [e["action"] for e in ledger.trail(did)], "owners": count(models.OwnerRecent),
            "plates": count(models.PlateIndex), "days": count(models.DayIndex), "work": count(models.WorkItem),
            "events": [(".".join(m["event"]["type"].split(".")[3:-1]), m["event"]["id"].replace(did, "<id>"))
                       for m in tail(settings, 200) if m["event"].get("data", {}).get("declaration_id") == did]}


@pytest.mark.parametrize("cut", ["a side write fails", "the process dies after the write"])
def test_a_resend_finishes_a_create_cut_off_before_its_side_round(client, fn, tok, monkeypatch, cut):
    """The declaration is stored, then its side round is cut off (the store refuses one index, or
    the process dies before any of it): the client gets a 503 and sends the same request again,
    which is answered with the declaration as created AND finds its trail, indexes and events
    finished, each once, as an uncut create leaves them (the old code replayed the answer and left
    them missing). A third send writes nothing more."""
    from lscloud import aggregate
    from lscloud.store.errors import StoreUnavailable
    from store_calls import counting

    ent = tok("enterprise", sub=TAX)
    ref, did = new_id(), new_id()
    ok(client.post("/v1/declarations", json=declaration(ref, booking={"mode": "living"}), headers=ent), 201)
    if cut == "a side write fails":
        cuts = cut_once(monkeypatch, models.PlateIndex, "save", lambda item, **_: item.declaration_id == did)
    else:
        cuts = cut_once(monkeypatch, aggregate.Aggregate, "commit", lambda agg, outcome, *_, **__: outcome.doc["id"] == did,
                        error=StoreUnavailable("the process died here"))
    body = declaration(did, booking={"mode": "living"})
    first = client.post("/v1/declarations", json=body, headers=ent)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    stored = ledger.RECORDS.get(did)
    assert int(stored.version) == 1

    again = client.post("/v1/declarations", json=body, headers=ent)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.get_data(as_text=True)
    assert again.get_json()["code"] == stored.code and again.get_json()["status"] == "queued"
    expected = _side_of(ref, fn.settings)
    assert expected["audit"] == ["create", "submit", "book"] and expected["owners"] == 2, expected
    assert [i for _, i in expected["events"]] == ["<id>.1.0", "<id>.1.1", "<id>.1.2"], expected
    assert _side_of(did, fn.settings) == expected

    with counting() as third:
        assert client.post("/v1/declarations", json=body, headers=ent).status_code == 201
    # what any resend writes: a code and a seat claimed and given back, the declaration's 412, and
    # beside it its unfinished-create marker (deleted in a batch of markers, not by a DELETE counted here)
    assert sorted(k.split("/")[0] for k in third.keys_of("put")) == sorted(
        t.Meta.table for t in (models.DeclarationCode, models.SlotSeat, models.Declaration,
                               aggregate.UnfinishedCreate)), third
    assert third["delete"] == 2, third
    assert _side_of(did, fn.settings) == expected


def _exited(client, tok, plate: str) -> str:
    """An export of phones by ``plate`` at Hữu Nghị (customs, the border guard and the zone board
    decide) taken through to its exit at the barrier; its id."""
    did = new_id()
    goods = [{"hs_code": "8517", "description": "phones", "packages": 10, "gross_weight_kg": 500, "value": 9000,
              "currency": "USD", "origin": "VN"}]
    ok(client.post("/v1/declarations", json=declaration(did, direction="export", plate=plate, trailer=None, goods=goods,
                                                        booking={"mode": "living"}),
                   headers=tok("enterprise", sub=TAX)), 201)
    ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(tok("yard-operator", unit="huu-nghi"))))
    gate = tok("gate-operator", unit="huu-nghi")
    ok(client.post("/v1/gates/huu-nghi/calls", json={"flow": "out", "count": 5}, headers=idem(gate)))
    ok(client.post(f"/v1/declarations/{did}/at-gate", headers=idem(gate)))
    for agency in ("border-guard", "ezone-board"):
        ok(client.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass"},
                       headers=idem(tok("officer", agency=agency))))
    customs = tok("officer", agency="customs")
    ok(client.post(f"/v1/declarations/{did}/release", json={"notes": "ok"}, headers=idem(customs)))
    r = device_event(client, "vn.langson.border.plate.read.v1",
                     {"reading_id": f"b-{did}", "gate": "huu-nghi", "camera": "barrier", "flow": "out", "plate": plate,
                      "confidence": 0.97, "read_at": "2025-09-01T08:10:00Z", "device": "anpr-huu-nghi-b1"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert ok(client.get(f"/v1/declarations/{did}", headers=customs))["status"] == "exited"
    return did


def test_figures_read_a_finished_declaration_once_then_take_it_from_the_day_s_summary(client, tok):
    """The figures read every declaration of every day asked on every request (a month at the
    peak: some 15,000 GETs). A finished one (exited, cancelled: it never changes again) is read
    once, and its part is kept in its day's summary; later requests read only the live ones, and
    one that finishes meanwhile is read once more, then no more. The figures are those of every
    declaration read directly, for all gates and for one."""
    from lscloud.store import keys

    from functions.border.function import stats
    from store_calls import counting

    ent, customs = tok("enterprise", sub=TAX), tok("officer", agency="customs")
    done = _exited(client, tok, "12C-111.11")
    cancelled, live, later = new_id(), new_id(), new_id()
    ok(client.post("/v1/declarations", json=declaration(cancelled, gate="tan-thanh"), headers=ent), 201)
    ok(client.post(f"/v1/declarations/{cancelled}/cancel", headers=idem(ent)))
    for i in (live, later):
        ok(client.post("/v1/declarations", json=declaration(i, booking={"mode": "living"}), headers=ent), 201)
    ids = [done, cancelled, live, later]
    docs = ledger.docs(ids)
    days = sorted({stats.contribution(d)[2] for d in docs})   # their local day (two, if the test spans midnight)
    period = {"from": days[0], "to": days[-1]}
    key_of = {models.Declaration.located(i)[1]: i for i in ids}
    summaries = {models.DayFigures.located(day)[1] for day in days}

    def declarations_read(calls):
        read = [k for k in calls.keys_of("get") if k.startswith(keys.table_prefix(models.Declaration.Meta.table))]
        return sorted(key_of.get(k, k) for k in read)

    def figures(**query):
        with counting() as calls:
            got = ok(client.get("/v1/stats", query_string={**period, **query}, headers=customs))
        expected = stats.compute([d for d in ledger.docs(ids) if d["gate"] == query.get("gate", d["gate"])])
        assert {k: got[k] for k in expected} == expected, (got, expected)
        return got, calls

    first, calls = figures()
    assert declarations_read(calls) == sorted(ids), calls
    assert set(calls.keys_of("put")) == summaries, calls
    assert first["dwell_arrival_to_exit"]["count"] == 1 and "border-guard" in first["decision_time_by_agency"]
    again, calls = figures()
    assert again == first
    assert declarations_read(calls) == sorted([live, later]), calls
    assert {k for k in calls.keys_of("get") if k not in key_of} <= summaries | {
        models.DayIndex.located(day, e)[1] for day in days for e in models.DayIndex.query_keys(day)}, calls
    assert calls["put"] == 0, calls
    # two GETs (the index entry, then the declaration) for each live one, one for the summary
    assert calls["get"] == 2 * 2 + len(days), calls

    ok(client.post(f"/v1/declarations/{later}/cancel", headers=idem(ent)))
    _, calls = figures()
    assert declarations_read(calls) == sorted([live, later]), calls
    assert set(calls.keys_of("put")) <= summaries and calls["put"] >= 1, calls
    _, calls = figures()
    assert declarations_read(calls) == [live], calls
    one_gate, calls = figures(gate="tan-thanh")
    assert declarations_read(calls) == [], calls
    assert [r["gate"] for r in one_gate["by_gate_direction_day"]] == ["tan-thanh"] * len(one_gate["by_gate_direction_day"])
