"""The dossiers function through its Flask app against real weed mini + nats-server, with the
`procedures` and `directory` peers served over real HTTP by a stand-in that answers their contract:
submission with attachments, receipt, the workflow across two agencies with a supplement, the
result, tracking, rating, stats, roles, and concurrent officers."""

# ruff: noqa: F811 (pytest fixtures imported from dossiers_support are named as parameters)
from __future__ import annotations

import io
import itertools
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from functions.dossiers.function import metrics, registry
from functions.dossiers.function.models import Dossier
from lscloud import errors, outbox, runtime
from lscloud.auth import delivery_headers
from lscloud.delivery import tail
from lscloud.statemachine import iso, parse_iso

import role_matrix
from cuts import cut_once
from dossiers_support import CITIZEN, CITIZEN2, dossier_peers, pdf  # noqa: F401
from client_answers import idem, ok

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
_n = itertools.count()


def _start(start_function, dossier_peers, **changes):
    started = start_function("dossiers", peer_url_template=dossier_peers.template, **changes)
    runtime.current().bus.ensure_stream()
    return started


@pytest.fixture
def fn(start_function, dossier_peers):
    return _start(start_function, dossier_peers)


@pytest.fixture
def rt(fn):
    return runtime.current()


@pytest.fixture
def app(fn):
    return fn.app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tok(tokens):
    """A bearer header; every caller without a named subject is another person."""
    def make(role, sub=None, agency=None, unit=None):
        return tokens.header(role, sub or f"{role}-{next(_n)}", agency=agency, unit=unit)
    return make


def upload(client, h, text):
    return ok(client.post("/v1/attachments", data=pdf(text), headers={**h, "Content-Type": "application/pdf"},
                          query_string={"filename": f"{text}.pdf"}), 201)["sha256"]


def submit_birth(client, h, unit="05983", channel=None, applicant=None, docs=("to-khai", "giay-chung-sinh")):
    body = {"id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": unit,
            "documents": [{"code": c, "sha256": upload(client, h, f"{c}-{uuid.uuid4().hex}")} for c in docs]}
    if channel:
        body["channel"] = channel
    if applicant:
        body["applicant"] = applicant
    return body, client.post("/v1/dossiers", json=body, headers=h)


def test_permit_across_two_agencies_with_a_supplement_and_the_result(client, tok, rt):
    cit = tok("citizen", sub=CITIZEN)
    docs = {c: upload(client, cit, c + uuid.uuid4().hex) for c in ("don", "ban-ve")}
    body = {"id": "gp-" + uuid.uuid4().hex[:12], "procedure": "XD-TDTK", "unit": "05983",
            "documents": [{"code": c, "sha256": s} for c, s in docs.items()]}
    # a required document is missing: named in errors[]
    r = client.post("/v1/dossiers", json=body, headers=cit)
    err = r.get_json()
    assert r.status_code == 422 and err["type"].endswith("documents-missing")
    assert [e.get("code") for e in err["errors"]] == ["gcn-dat"] and "Giấy tờ chứng minh" in err["detail_vi"]
    body["documents"].append({"code": "gcn-dat", "sha256": upload(client, cit, "gcn" + uuid.uuid4().hex)})
    created = ok(client.post("/v1/dossiers", json=body, headers=cit), 201)
    rc = created["receipt"]
    assert created["status"] == "received" and rc["code"].startswith("LS-") and rc["channel"] == "online"
    assert rc["appointment_date"] and rc["fee_total_vnd"] == 150000 and rc["tracking_secret"]
    assert [(s["agency"], s["unit"]) for s in created["steps"]] == [("public-service-centre", "05983"), ("so-xay-dung", None)]
    again = client.post("/v1/dossiers", json=body, headers=cit)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    did = created["id"]

    psc = tok("officer", agency="public-service-centre", unit="05983")
    sxd = tok("officer", agency="so-xay-dung", unit="05983")
    # the department cannot start the centre's step
    assert client.post(f"/v1/dossiers/{did}/start", headers=idem(sxd)).status_code == 403
    started = client.post(f"/v1/dossiers/{did}/start", headers=idem(psc))
    assert ok(started)["status"] == "processing"
    # the ETag is the dossier's version: the receipt's, then one more for each write
    assert started.headers["ETag"] == client.get(f"/v1/dossiers/{did}", headers=psc).headers["ETag"] != \
        again.headers["ETag"]
    done1 = ok(client.post(f"/v1/dossiers/{did}/steps/complete", json={"step": "tiep-nhan"}, headers=idem(psc)))
    assert done1["steps"][1]["status"] == "active" and done1["steps"][1]["deadline"]

    # the department asks for a supplement: the clock stops, the citizen sees what is missing
    waiting = ok(client.post(f"/v1/dossiers/{did}/supplement-requests",
                             json={"missing": [{"code": "ban-ve", "name": "Bản vẽ mặt cắt"}],
                                   "message": "Bổ sung bản vẽ mặt cắt công trình"}, headers=idem(sxd)))
    assert waiting["status"] == "waiting" and waiting["clock"]["running"] is False
    tracked = ok(client.get("/v1/track", query_string={"code": rc["code"], "secret": rc["tracking_secret"]}))
    assert tracked["status"] == "waiting" and tracked["missing"][0]["name"] == "Bản vẽ mặt cắt"
    assert CITIZEN not in str(tracked)
    assert client.get("/v1/track", query_string={"code": rc["code"], "secret": "WRONG000"}).status_code == 404
    r = client.post(f"/v1/dossiers/{did}/steps/complete", json={}, headers=idem(sxd))
    assert r.status_code == 409 and r.get_json()["current_state"] == "waiting"
    new_sha = upload(client, cit, "ban-ve-2" + uuid.uuid4().hex)
    resumed = ok(client.post(f"/v1/dossiers/{did}/supplements", json={"documents": [{"code": "ban-ve", "sha256": new_sha}]},
                             headers=idem(cit)))
    assert resumed["status"] == "processing" and resumed["pauses"][0]["paused_minutes"] is not None
    assert resumed["deadline"] >= created["deadline"]

    # the result is a blob; the centre cannot return it, the department can
    result_sha = upload(client, sxd, "giay-phep" + uuid.uuid4().hex)
    assert client.post(f"/v1/dossiers/{did}/result", json={"sha256": result_sha}, headers=idem(psc)).status_code == 403
    done = ok(client.post(f"/v1/dossiers/{did}/result", json={"sha256": result_sha, "filename": "giay-phep.pdf"},
                          headers=idem(sxd)))
    assert done["status"] == "done" and done["on_time"] is True and done["result"]["sha256"] == result_sha
    link = ok(client.get(f"/v1/dossiers/{did}/files/{result_sha}", headers=cit))
    assert link["url"].startswith("http://localhost/downloads/") and link["sha256"] == result_sha
    got = client.get(link["url"].removeprefix("http://localhost"))  # the link alone: no token
    assert got.status_code == 200 and got.content_type == "application/pdf" and got.data.startswith(b"%PDF")
    assert "filename=giay-phep.pdf" in got.headers["Content-Disposition"]
    assert got.headers["Cache-Control"].startswith("private, max-age=")
    # illegal now: 409 naming the state
    r = client.post(f"/v1/dossiers/{did}/cancel", headers=idem(cit))
    assert r.status_code == 409 and r.get_json()["current_state"] == "done"

    rated = ok(client.post(f"/v1/dossiers/{did}/rating", json={"score": 5, "comment": "Nhanh"}, headers=cit), 201)
    assert rated["score"] == 5
    assert client.post(f"/v1/dossiers/{did}/rating", json={"score": 1}, headers=cit).status_code == 409

    trail = ok(client.get(f"/v1/dossiers/{did}/audit", headers=tok("auditor")))["items"]
    facts = [e["fact"] for e in trail if e["fact"]]
    assert facts == ["dossier.received", "processing.started", "step.completed", "dossier.handed-over",
                     "supplement.requested", "supplement.provided", "dossier.done", "dossier.rated"]
    stream = [e["event"] for e in tail(rt.settings, 50)]
    types = [e["type"] for e in stream]
    for f in facts:
        assert f"vn.langson.dossiers.{f}.v1" in types
    schema = json.loads((ROOT / "schemas" / "events" / "dossiers" / "transition.json").read_text())
    for e in stream:   # every payload matches its published schema, and carries no applicant's name
        assert list(Draft202012Validator(schema).iter_errors(e["data"])) == [], e["type"]

    stats = ok(client.get("/v1/stats", headers=tok("ioc")))
    assert stats["total"]["received"] == 1 and stats["total"]["resolved"] == 1 and stats["total"]["on_time"] == 1
    assert stats["total"]["online_share"] == 1.0 and stats["by_agency"][0]["agency"] == "so-xay-dung"
    own = ok(client.get("/v1/stats", headers=tok("supervisor", agency="so-tu-phap")))
    assert own["agency"] == "so-tu-phap" and own["total"]["received"] == 0


def test_counter_submission_and_who_sees_what(client, tok):
    clerk = tok("officer", agency="ubnd-06040", unit="06040")
    _, r = submit_birth(client, clerk, unit="06040", channel="counter",
                        applicant={"id_number": CITIZEN2, "name": "Hoàng Thị Mai", "phone": "0912345678"})
    created = ok(r, 201)
    assert created["channel"] == "counter" and created["owner"] == CITIZEN2 and created["received_by"]["agency"] == "ubnd-06040"
    did = created["id"]
    # an officer of another commune may not receive this commune's procedure at their counter
    other = tok("officer", agency="ubnd-05983", unit="05983")
    _, r = submit_birth(client, other, unit="06040", channel="counter", applicant={"id_number": CITIZEN2})
    assert r.status_code == 403
    # visibility: the owner, the commune's officers, its supervisor; nobody else
    owner = tok("citizen", sub=CITIZEN2)
    assert ok(client.get(f"/v1/dossiers/{did}", headers=owner))["tracking_secret"]
    assert "tracking_secret" not in ok(client.get(f"/v1/dossiers/{did}", headers=clerk))
    assert client.get(f"/v1/dossiers/{did}", headers=tok("citizen", sub=CITIZEN)).status_code == 404
    assert client.get(f"/v1/dossiers/{did}", headers=other).status_code == 404
    assert client.get(f"/v1/dossiers/{did}", headers=tok("supervisor", agency="ubnd-06040")).status_code == 200
    assert [d["id"] for d in ok(client.get("/v1/dossiers", headers=owner))["items"]] == [did]
    assert did in [d["id"] for d in ok(client.get("/v1/dossiers", headers=clerk))["items"]]
    assert ok(client.get("/v1/dossiers", headers=other))["items"] == []
    # a citizen cannot claim the counter channel, nor submit for someone else
    _, r = submit_birth(client, owner, channel="counter")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/channel"
    _, r = submit_birth(client, owner, applicant={"id_number": CITIZEN})
    assert r.status_code == 422
    # the owner cancels before processing
    # the reason is optional, and checked when given
    r = client.post(f"/v1/dossiers/{did}/cancel", json={"reason": "x" * 1001}, headers=idem(owner))
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["/reason"]
    r = client.post(f"/v1/dossiers/{did}/cancel", json=["Nộp nhầm"], headers=idem(owner))
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == [""]
    assert ok(client.post(f"/v1/dossiers/{did}/cancel", json={"reason": "Nộp nhầm"}, headers=idem(owner)))["status"] == "cancelled"
    _, r = submit_birth(client, owner)
    assert ok(client.post(f"/v1/dossiers/{ok(r, 201)['id']}/cancel", headers=idem(owner)))["status"] == "cancelled"


def test_unknown_procedure_unit_and_files_are_named(client, tok):
    cit = tok("citizen", sub=CITIZEN)
    sha = upload(client, cit, "x" + uuid.uuid4().hex)
    base = {"id": "x-" + uuid.uuid4().hex[:12], "unit": "05983", "documents": [{"code": "to-khai", "sha256": sha}]}
    r = client.post("/v1/dossiers", json={**base, "procedure": "NO-SUCH"}, headers=cit)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/procedure"
    r = client.post("/v1/dossiers", json={**base, "id": base["id"] + "u", "procedure": "HT-KS", "unit": "99999"}, headers=cit)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/unit"
    r = client.post("/v1/dossiers", json={**base, "id": base["id"] + "f", "procedure": "HT-KS",
                                          "documents": [{"code": "to-khai", "sha256": sha},
                                                        {"code": "giay-chung-sinh", "sha256": "0" * 64}]}, headers=cit)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/documents/1/sha256"
    r = client.post("/v1/attachments", data=b"<script>", headers={**cit, "Content-Type": "application/pdf"})
    assert r.status_code == 422


def test_attachments_take_files_up_to_the_blob_limit(client, tok, rt):
    """A scanned document is bigger than a JSON body: uploads are limited by blob_max_bytes, not by
    max_body_bytes; over it they are a 413 problem, never a 500."""
    cit = tok("citizen", sub=CITIZEN)
    scan = b"%PDF-1.4\n" + b"0" * (rt.settings.max_body_bytes + 1)
    r = client.post("/v1/attachments", data=scan, headers={**cit, "Content-Type": "application/pdf"})
    assert r.status_code == 201, r.get_data(as_text=True)[:300]
    assert r.get_json()["size"] == len(scan)
    too_big = b"%PDF-1.4\n" + b"0" * rt.settings.blob_max_bytes
    r = client.post("/v1/attachments", data=too_big, headers={**cit, "Content-Type": "application/pdf"})
    assert r.status_code == 413 and r.headers["Content-Type"] == "application/problem+json"
    assert str(rt.settings.blob_max_bytes) in r.get_json()["detail"]


def test_concurrent_officers_never_overwrite_each_other(client, tok):
    cit = tok("citizen", sub=CITIZEN)
    clerk = tok("officer", agency="ubnd-05983", unit="05983")
    _, r = submit_birth(client, cit)
    did = ok(r, 201)["id"]
    ok(client.post(f"/v1/dossiers/{did}/start", headers=idem(clerk)))

    # eight officers of the unit complete "the step they see" at once: exactly one wins per step,
    # the others get 409 because the step they named is no longer active
    def complete(_):
        h = idem(tok("officer", agency="ubnd-05983", unit="05983"))
        return client.post(f"/v1/dossiers/{did}/steps/complete", json={"step": "tiep-nhan"}, headers=h).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(complete, range(8)))
    assert sorted(codes) == [200] + [409] * 7
    doc = ok(client.get(f"/v1/dossiers/{did}", headers=clerk))
    assert [s["status"] for s in doc["steps"]] == ["done", "active", "pending"]

    # a supplement request and a denial race: both are applied in some order, never lost
    def act(kind):
        h = idem(tok("officer", agency="ubnd-05983", unit="05983"))
        if kind == "deny":
            return client.post(f"/v1/dossiers/{did}/deny", json={"reason": "Giấy chứng sinh không hợp lệ"}, headers=h)
        return client.post(f"/v1/dossiers/{did}/supplement-requests",
                           json={"missing": [{"name": "Giấy chứng sinh bản chính"}], "message": "Bổ sung"}, headers=h)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(act, ["deny", "supplement"]))
    codes = sorted(r.status_code for r in results)
    final = ok(client.get(f"/v1/dossiers/{did}", headers=clerk))
    trail = [e["fact"] for e in ok(client.get(f"/v1/dossiers/{did}/audit", headers=clerk))["items"] if e["fact"]]
    # whichever lands first, the other no longer applies (deny is not possible from waiting, nor a
    # supplement request from denied): one 200, one 409, and the trail holds exactly the winner
    assert codes == [200, 409]
    assert final["status"] in ("denied", "waiting")
    assert trail.count("dossier.denied") + trail.count("supplement.requested") == 1


def age(item):
    """30 days pass for a started dossier (a direct store edit stands in for time passing)."""
    d = item.data
    d["deadline"] = iso(parse_iso(d["deadline"]) - timedelta(days=30))
    d["steps"][0]["deadline"] = iso(parse_iso(d["steps"][0]["deadline"]) - timedelta(days=30))


def test_overdue_sweep_flags_steps_once_and_feeds_the_gauge(client, tok, rt):
    cit = tok("citizen", sub=CITIZEN)
    clerk = tok("officer", agency="ubnd-05983", unit="05983")
    _, r = submit_birth(client, cit)
    did = ok(r, 201)["id"]
    ok(client.post(f"/v1/dossiers/{did}/start", headers=idem(clerk)))
    # age the dossier: its clock started 30 days ago (a direct store edit stands in for time passing)
    Dossier.update(did, None, age)
    op = tok("operator")
    first = ok(client.post("/v1/overdue/sweep", headers=op))
    assert first["overdue_dossiers"] == 1 and first["steps_flagged"] == 1 and first["by_agency"] == {"ubnd-05983": 1}
    assert ok(client.post("/v1/overdue/sweep", headers=op))["steps_flagged"] == 0
    doc = ok(client.get(f"/v1/dossiers/{did}", headers=clerk))
    assert doc["overdue"] is True and doc["overdue_steps"] == ["tiep-nhan"]
    assert "vn.langson.dossiers.step.overdue.v1" in [e["event"]["type"] for e in tail(rt.settings, 20)]
    assert ok(client.get("/v1/stats", headers=op))["total"]["overdue_now"] == 1


def test_the_overdue_sweep_reads_each_open_dossier_once_and_no_index_entry(client, tok, rt):
    """The sweep runs every minute over every open dossier (thousands in a province): the open index
    is listed, not read entry by entry, so a sweep costs one GET per open dossier."""
    from store_calls import counting

    cit = tok("citizen", sub=CITIZEN)
    opened = {ok(submit_birth(client, cit)[1], 201)["id"] for _ in range(3)}
    assert set(registry.open_ids()) >= opened
    with counting() as calls:
        ok(client.post("/v1/overdue/sweep", headers=tok("operator")))
    assert calls["get"] == len(registry.open_ids()) and calls["list"] >= 1


def test_the_overdue_sweep_works_from_the_clock_index_and_reads_only_what_it_must(client, tok, rt):
    """The sweep read every open dossier every minute; it lists the open index and the clocks
    (functions/dossiers/function/clocks.py) and reads only the dossiers with a step to flag, or whose
    entries do not tell. Its figures are those of reading every dossier, waiting ones included."""
    from datetime import datetime, timezone

    from functions.dossiers.function import clocks, deadlines, overdue
    from functions.dossiers.function.models import DossierClock
    from store_calls import counting

    cit = tok("citizen", sub=CITIZEN)
    clerk = tok("officer", agency="ubnd-05983", unit="05983")
    ids = [ok(submit_birth(client, cit)[1], 201)["id"] for _ in range(4)]
    for did in ids[1:]:
        ok(client.post(f"/v1/dossiers/{did}/start", headers=idem(clerk)))
    ok(client.post(f"/v1/dossiers/{ids[2]}/supplement-requests", headers=idem(clerk), json={
        "missing": [{"code": "to-khai", "name": "Tờ khai"}], "message": "Bổ sung tờ khai"}))   # its clock stops
    ok(client.post(f"/v1/dossiers/{ids[3]}/deny", json={"reason": "Không thuộc thẩm quyền"}, headers=idem(clerk)))

    def as_read(at):   # the figures reading every open dossier gives (the sweep's old way)
        per_agency, due = {}, set()
        for d in registry.get_many(registry.open_ids()):
            per_agency[d["agency"]] = per_agency.get(d["agency"], 0) + deadlines.is_overdue(d, at)
            due |= {d["id"] for s in deadlines.overdue_steps(d, at) if s["status"] == "active" and not s.get("overdue_flagged")}
        return per_agency, due

    soon = datetime.now(timezone.utc)
    overdue.sweep(soon)                          # this bucket's first sweep reads every open dossier
    assert sorted(clocks.parse(e).id for e in DossierClock.query_keys(clocks.BOX)) == sorted(ids[:3])
    with counting() as calls:
        swept = overdue.sweep(soon)
    assert calls["get"] == 0 and swept["read"] == 0 and swept["by_agency"] == as_read(soon)[0]

    later = soon + timedelta(days=60)            # every deadline passed; the waiting one stopped before its own
    expected, due = as_read(later)
    assert expected == {"ubnd-05983": 2} and due == {ids[1]}
    with counting() as calls:
        swept = overdue.sweep(later)
    assert swept["by_agency"] == expected and swept["steps_flagged"] == 1
    assert calls["get"] == 1                     # the one dossier with a step to flag, read by its write
    assert overdue.sweep(later)["steps_flagged"] == 0 and len(DossierClock.query_keys(clocks.BOX)) == 3

    # an entry that no longer tells (a change made around the write path): two for one id are read
    stale = clocks.key(clocks.Clock(ids[0], "ubnd-05983", "05983", "HT-KS", "received", "2020-01-01T00:00:00.000Z", None, None, None,
                                      False))
    DossierClock(clocks.BOX, stale).save()
    with counting() as calls:
        assert overdue.sweep(soon)["read"] == 1
    assert calls["get"] == 1 and stale not in DossierClock.query_keys(clocks.BOX)


def test_the_clock_tick_flags_overdue_steps_and_flushes_the_outbox(client, tok, rt):
    from datetime import datetime, timezone

    from lscloud import clock, events

    cit = tok("citizen", sub=CITIZEN)
    clerk = tok("officer", agency="ubnd-05983", unit="05983")
    _, r = submit_birth(client, cit)
    did = ok(r, 201)["id"]
    ok(client.post(f"/v1/dossiers/{did}/start", headers=idem(clerk)))
    Dossier.update(did, None, age)   # its clock started 30 days ago
    # an event NATS did not confirm at the time waits in the outbox
    pending = events.new_event("vn.langson.dossiers.test.kept.v1", registry.SOURCE, {"n": 1}, id=f"outbox-{uuid.uuid4().hex}")
    outbox.PendingEvent(rt.settings.service, pending["id"], event=pending).save()

    def tick(minutes=0):
        ev = clock.tick_event(datetime.now(timezone.utc) + timedelta(minutes=minutes))
        headers, body = events.to_binary_http(ev)
        return client.post("/events", data=body, headers={**headers, **delivery_headers(rt.settings)})

    r = tick()
    assert r.status_code == 200 and r.get_json()["status"] == "done", r.get_data(as_text=True)
    doc = ok(client.get(f"/v1/dossiers/{did}", headers=clerk))
    assert doc["overdue"] is True and doc["overdue_steps"] == ["tiep-nhan"]
    overdue = [m["event"] for m in tail(rt.settings, 50) if m["event"]["type"] == "vn.langson.dossiers.step.overdue.v1"]
    assert [e["subject"] for e in overdue] == [did]
    assert outbox.pending() == []
    assert pending["id"] in [m["event"]["id"] for m in tail(rt.settings, 50)]
    assert dict(metrics._overdue.fresh())["ubnd-05983"] == 1   # the overdue gauge, fed by the sweep
    assert ok(client.get("/v1/stats", headers=tok("operator")))["total"]["overdue_now"] == 1
    # a redelivered tick runs again (repeat-safe) and flags nothing twice, nor does the next minute's
    assert tick().get_json()["status"] == "done"
    assert tick(1).get_json()["status"] == "done"
    assert len([m for m in tail(rt.settings, 50) if m["event"]["type"] == "vn.langson.dossiers.step.overdue.v1"]) == 1
    # the operators' endpoint stays
    assert ok(client.post("/v1/overdue/sweep", headers=tok("operator")))["steps_flagged"] == 0


@pytest.mark.parametrize("year", ["0", "45035862297", "1899", "3000"])
def test_a_year_no_calendar_can_hold_is_not_found(client, year):
    r = client.get(f"/v1/calendar/{year}")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_the_calendar_shows_swaps_and_where_each_day_comes_from(client):
    year = ok(client.get("/v1/calendar/2026"))
    by_date = {d["date"]: d for d in year["days"]}
    assert year["covered"] is True
    assert by_date["2026-01-02"]["working"] is False and by_date["2026-01-10"]["working"] is True
    assert by_date["2026-01-10"]["source"] == "vpcp-12729-2025" and by_date["2026-01-10"]["verified"] is True
    assert "12729/VPCP-KGVX" in year["sources"]["vpcp-12729-2025"]["document"]
    assert by_date["2026-11-24"]["verified"] is False
    later = ok(client.get("/v1/calendar/2027"))
    assert later["covered"] is False and "2027-09-02" in {d["date"] for d in later["days"]}
    assert later["sources"]["labour-code-2019"]["verified"] is True


def test_a_personal_id_is_a_tax_code_and_a_bad_one_is_named_as_the_tax_code(client, tok):
    clerk = tok("officer", agency="ubnd-06040", unit="06040")
    # a household business files under its owner's 12-digit personal ID (its tax code since 1/7/2025)
    _, r = submit_birth(client, clerk, unit="06040", channel="counter",
                        applicant={"tax_code": "020 095 001 234", "name": "Hộ kinh doanh Nông Văn C"})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["applicant"]["tax_code"] == "020095001234"
    # a 12-digit number that is no CCCD is refused, and the error names the tax code, not the CCCD
    _, r = submit_birth(client, clerk, unit="06040", channel="counter",
                        applicant={"id_number": "020095001234", "tax_code": "003095001234", "name": "x"})
    assert r.status_code == 422
    assert [e["field"] for e in r.get_json()["errors"]] == ["/applicant/tax_code"]


def test_a_rating_whose_dossier_update_fails_can_be_given_again(client, tok, monkeypatch):
    """Issue 9: the rating is claimed first (create-only); when the dossier update after it fails,
    the claim is given back, so the applicant's retry rates instead of hearing 'already rated'."""
    cit = tok("citizen", sub=CITIZEN)
    clerk = tok("officer", agency="ubnd-05983", unit="05983")
    _, r = submit_birth(client, cit)
    did = ok(r, 201)["id"]
    ok(client.post(f"/v1/dossiers/{did}/start", headers=idem(clerk)))
    ok(client.post(f"/v1/dossiers/{did}/deny", json={"reason": "Giấy chứng sinh không hợp lệ"}, headers=idem(clerk)))

    def busy(*args, **kwargs):
        raise errors.Conflict("the dossier kept changing")

    with monkeypatch.context() as m:
        m.setattr(registry.RECORDS, "mutate", busy)
        assert client.post(f"/v1/dossiers/{did}/rating", json={"score": 4}, headers=cit).status_code == 409
    rated = ok(client.post(f"/v1/dossiers/{did}/rating", json={"score": 4}, headers=cit), 201)
    assert rated["score"] == 4
    assert ok(client.get(f"/v1/dossiers/{did}", headers=cit))["rating"]["score"] == 4


def test_odd_path_ids_get_a_problem_never_a_5xx(app, tok):
    from path_ids import assert_no_route_fails_on_odd_ids

    claims = {"officer": {"agency": "ubnd-05983", "unit": "05983"}, "supervisor": {"agency": "ubnd-05983"},
              "citizen": {"sub": CITIZEN}}
    assert assert_no_route_fails_on_odd_ids(app, lambda role: tok(role, **claims.get(role, {}))) > 50


@pytest.mark.parametrize("token", ["²", "١٢", "-1", "1e3", "9" * 40])
def test_an_officers_page_token_that_is_no_position_is_400(client, tok, token):
    officer = tok("officer", agency="ubnd-05983", unit="05983")
    r = client.get("/v1/dossiers", query_string={"page_token": token}, headers=officer)
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "page_token"


def test_an_officers_list_reaches_every_entry_of_a_long_history(client, tok, monkeypatch):
    """The work index keeps every dossier a unit ever had. The officer's list merged the first 100
    entries of the unit and of the agency-wide steps, so once a unit had had 100 dossiers a new one
    was on no page. Now each page starts where the last one stopped, in both listings."""
    from functions.dossiers.function import models

    base = 1_000_000_000_000_000   # µs: 2001, before anything a test receives
    seeded = set()
    for n in range(250):   # a long history: entries of the unit's steps and of agency-wide ones, interleaved
        unit = "05983" if n % 3 else "_"
        seeded.add(f"gone-{n}")
        models.WorkIndex("ubnd-05983", f"{unit}_{base + n:016d}_gone_{n}", dossier_id=f"gone-{n}").save()
    officer = tok("officer", agency="ubnd-05983", unit="05983")
    _, r = submit_birth(client, tok("citizen", sub=CITIZEN))
    new_id = ok(r, 201)["id"]

    asked: list[list[str]] = []
    get_many = registry.get_many
    monkeypatch.setattr(registry, "get_many", lambda ids: asked.append(list(ids)) or get_many(ids))
    listed, tokens, token = [], [], None
    while True:
        page = ok(client.get("/v1/dossiers", query_string={"limit": 40, **({"page_token": token} if token else {})},
                             headers=officer))
        listed += [d["id"] for d in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
        tokens.append(token)
        assert len(tokens) < 200, "the pages never end"
    entries = [i for ids in asked for i in ids]
    assert all(len(ids) <= 40 for ids in asked)
    assert seeded <= set(entries) and len([i for i in entries if i.startswith("gone-")]) == 250   # each once
    assert len(set(tokens)) == len(tokens) and listed.count(new_id) == 1


def test_a_document_issued_event_without_its_document_is_refused_as_a_422(client, tok, rt, caplog):
    """A document.issued event naming a dossier but missing the document id or digest raised
    KeyError: a 500, five deliveries, then a dead letter. It is a 422 (dead-lettered at once, for
    an operator to look at), naming the fields, and the dossier is untouched."""
    from lscloud import events

    _, r = submit_birth(client, tok("citizen", sub=CITIZEN))
    did = ok(r, 201)["id"]
    before = Dossier.get(did).version
    # the rest of the documents function's transition data, so the two fields are all that is wrong
    # (the runtime refuses it against the event's schema before the handler runs: the same 422)
    data = {"dossier_id": did, "agency": "so-tu-phap", "direction": "outgoing", "status": "issued", "doc_type": "ket-qua",
            "signatures": 1, "number": None, "symbol": None, "display": None, "from": "signed", "to": "issued",
            "action": "issue", "at": "2025-09-01T08:00:00Z", "actor": {"kind": "officer", "sub": "clerk"},
            "reason": None, "details": {}}
    ev = events.new_event("vn.langson.documents.document.issued.v1", "/documents", data, id=f"issued-{uuid.uuid4().hex}")
    headers, body = events.to_binary_http(ev)
    r = client.post("/events", data=body, headers={**headers, **delivery_headers(rt.settings)})
    assert r.status_code == 422, r.get_data(as_text=True)
    assert sorted(e["field"] for e in r.get_json()["errors"]) == ["/data/document_id", "/data/sha256"]
    assert Dossier.get(did).version == before
    # what an SRE looks for a dead letter by: the event's id and type in the function's log
    assert any(ev["id"] in m and "document.issued" in m and "(422)" in m for m in caplog.messages), caplog.messages


def test_an_applicants_dossiers_come_newest_first_page_by_page(client, tok):
    """"My dossiers" listed the oldest first: after years of applications (a business files hundreds
    a year) this week's was on the last page, reached only by walking every page before it."""
    cit = tok("citizen", sub="020091009999")
    ids = [ok(submit_birth(client, cit)[1], 201)["id"] for _ in range(5)]
    listed, token = [], None
    while True:
        page = ok(client.get("/v1/dossiers", query_string={"limit": 2, **({"page_token": token} if token else {})},
                             headers=cit))
        listed += [d["id"] for d in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert listed == ids[::-1]


def test_the_figures_read_each_days_summary_and_only_the_entries_it_has_not_taken_in(client, tok):
    """GET /v1/stats read every index entry and every dossier of every day of the period (a year:
    some 200,000 reads a request), and every open dossier. A day's summary now holds what its entries
    add up to, a request reads only the entries since, and the dossiers overdue now come from the
    clock index: the same figures."""
    from functions.dossiers.function import stats
    from store_calls import counting

    cit, clerk = tok("citizen", sub=CITIZEN), tok("officer", agency="ubnd-05983", unit="05983")
    ids = [ok(submit_birth(client, cit)[1], 201)["id"] for _ in range(3)]
    _, r = submit_birth(client, clerk, channel="counter", applicant={"id_number": CITIZEN2})
    ids.append(ok(r, 201)["id"])
    ok(client.post(f"/v1/dossiers/{ids[0]}/cancel", headers=idem(cit)))

    def figures():
        with counting() as calls:
            body = ok(client.get("/v1/stats", headers=tok("operator")))
        read = calls.keys_of("get")
        return body, [k for k in read if k.startswith("dossiers-days/")], [k for k in read if k.startswith("dossiers/")]

    first, entries, _ = figures()
    from datetime import date
    # the default period is the 30 local days up to today, as it says (it was 31)
    assert (date.fromisoformat(first["to"]) - date.fromisoformat(first["from"])).days == 29
    t = first["total"]
    assert (t["received"], t["received_online"], t["cancelled"]) == (4, 3, 1) and len(entries) == 5
    with counting() as calls:
        again = ok(client.get("/v1/stats", headers=tok("operator")))
    read = calls.keys_of("get")
    assert again["total"] == first["total"] and again["by_unit"] == first["by_unit"]
    # one summary (the one day with entries; the 29 others have none to ask for), no entry, and no
    # dossier: overdue now comes from the clock index
    assert [k.split("/")[0] for k in read] == ["dossiers-day-figures"], read
    ids.append(ok(submit_birth(client, cit)[1], 201)["id"])
    later, entries, _ = figures()
    assert later["total"]["received"] == 5 and len(entries) == 1   # the new receipt's entry alone
    # the figures every dossier gives, read one by one as before
    every = registry.get_many(ids)
    whole = stats.compute(every, [d for d in every if d["status"] == "cancelled"], [], parse_iso(later["at"]))
    counts = ("received", "received_online", "resolved", "on_time", "late", "cancelled")
    assert {k: later["total"][k] for k in counts} == {k: whole["total"][k] for k in counts}
    # a supervisor's figures are their agency's; a token naming none sees no agency's, not every one's
    assert ok(client.get("/v1/stats", headers=tok("supervisor")))["total"]["received"] == 0


def test_every_endpoint_with_every_role(app, keys):
    """Held to functions/dossiers/access.yaml, not to @allow (tests/integration/role_matrix.py)."""
    assert role_matrix.check(app, "dossiers", keys[0], samples={"year": "2026", "sha256": "0" * 64}) > 250


def _birth_body(client, h) -> dict:
    return {"id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983",
            "documents": [{"code": c, "sha256": upload(client, h, f"{c}-{uuid.uuid4().hex}")}
                          for c in ("to-khai", "giay-chung-sinh")]}


def test_a_submission_costs_eleven_writes_two_lookups_in_four_round_trips(start_function, tok, dossier_peers):
    """The budget of a submission with two files: the files' claims (an upload no dossier names is
    deleted after two days: the claim keeps it) and the receipt code in one round, the files'
    lookups after their claims; the dossier (its own idempotency record: no separate record, no
    completing write) with its unfinished-create marker beside it (what lets the clock finish a
    submission cut off before its side round; deleted in a batch of markers, no DELETE of its own:
    ten writes before it); its four indexes, its overdue-sweep entry (the clock), audit entry and
    event in one more. The procedure and unit come from the peer
    cache (the catalogue is not asked: its entries are fresh for an hour here, so that a slow
    machine does not let them expire between the warm-up and the submission counted — a CI run
    met one 304 revalidation there with the default 5 s). The old path made 9 PUTs and 2 HEADs
    in 8 rounds."""
    from store_calls import Rounds, counting

    client = _start(start_function, dossier_peers, peer_fresh_s=3600).app.test_client()
    cit = tok("citizen", sub=CITIZEN)
    ok(client.post("/v1/dossiers", json=_birth_body(client, cit), headers=cit), 201)  # the catalogue is cached
    body, asked = _birth_body(client, cit), dossier_peers.hits
    rounds = Rounds()
    with ThreadPoolExecutor(1) as pool, counting(rounds) as calls:
        answer = pool.submit(client.post, "/v1/dossiers", json=body, headers=cit)
        first, lookups = rounds.next_round(3), rounds.next_round(2)
        second, third = rounds.next_round(2), rounds.next_round(6)
        created = ok(answer.result(), 201)
    assert sorted(k.split("/")[0] for m, k in first if m == "put") == ["dossiers-codes", "dossiers-files-claims",
                                                                       "dossiers-files-claims"], first
    assert [m for m, _ in lookups] == ["head", "head"], lookups
    assert sorted((m, k.split("/")[0]) for m, k in second) == [("put", "dossiers"), ("put", "unfinished-creates")]
    assert ("put", f"dossiers/{body['id'].replace('-', '~2D')}/_.json") in second, second
    assert sorted(k.split("/")[0] for _, k in third) == ["dossiers-audit", "dossiers-clock", "dossiers-days",
                                                         "dossiers-open", "dossiers-owners-recent", "dossiers-work"], third
    # 10 and the unfinished-create marker
    assert calls["put"] == 11 and calls["head"] == 2 and calls["get"] == calls["list"] == calls["delete"] == 0, calls
    assert not [k for k in calls.keys_of("put") if k.startswith("idempotency/")], calls
    assert dossier_peers.hits == asked and created["receipt"]["code"].startswith("LS-")


def test_the_dossier_answers_its_own_resends(client, tok, rt):
    """Same caller, same id and body: the dossier's answer again (201, replayed), once however many
    arrive at once: one dossier, one receipt code, one audit entry, one event. Another body: 409
    naming the fields. Another caller: 409, nothing of theirs shown."""
    cit = tok("citizen", sub=CITIZEN)
    body = _birth_body(client, cit)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/dossiers", json=body, headers=cit), range(6)))
    assert [r.status_code for r in answers] == [201] * 6, [r.get_data(as_text=True) for r in answers]
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in answers) == [""] + ["true"] * 5
    assert len({r.get_json()["receipt"]["code"] for r in answers}) == 1
    code = answers[0].get_json()["receipt"]["code"]
    from functions.dossiers.function.models import DossierCode
    assert [c.code for c in DossierCode.scan() if c.dossier_id == body["id"]] == [code]
    assert len(registry.RECORDS.trail(body["id"])) == 1
    received = [e for e in tail(rt.settings, 50) if e["event"]["data"].get("dossier_id") == body["id"]]
    assert [e["event"]["type"] for e in received] == ["vn.langson.dossiers.dossier.received.v1"]
    again = client.post("/v1/dossiers", json=body, headers=cit)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["receipt"] == answers[0].get_json()["receipt"]

    other = {**body, "unit": "06040", "note": "khác"}
    r = client.post("/v1/dossiers", json=other, headers=cit)
    assert r.status_code == 409 and r.get_json()["type"].endswith("idempotency-key-reused"), r.get_data(as_text=True)
    assert sorted(e["field"] for e in r.get_json()["errors"]) == ["/note", "/unit"]
    assert "06040" not in r.get_data(as_text=True)
    theirs = client.post("/v1/dossiers", json=body, headers=tok("citizen", sub=CITIZEN2))
    assert theirs.status_code == 409 and theirs.get_json()["type"].endswith("conflict")
    assert code not in theirs.get_data(as_text=True) and "tracking_secret" not in theirs.get_data(as_text=True)
    assert [c.code for c in DossierCode.scan() if c.dossier_id == body["id"]] == [code]


def test_a_missing_file_keeps_no_receipt_code(client, tok):
    """The code is reserved while the files are looked up; a missing file gives it back."""
    from functions.dossiers.function.models import DossierCode

    cit = tok("citizen", sub=CITIZEN)
    body = _birth_body(client, cit)
    body["documents"][1]["sha256"] = "0" * 64
    r = client.post("/v1/dossiers", json=body, headers=cit)
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["/documents/1/sha256"]
    assert [c for c in DossierCode.scan() if c.dossier_id == body["id"]] == []
    assert client.get(f"/v1/dossiers/{body['id']}", headers=cit).status_code == 404


def _multipart(body: dict, files: dict[str, bytes]) -> dict:
    return {"body": (io.BytesIO(json.dumps(body).encode()), "", "application/json"),
            **{field: (io.BytesIO(data), f"{field}.pdf", "application/pdf") for field, data in files.items()}}


def test_a_dossier_and_its_files_in_one_request(client, tok):
    """The JSON in the field ``body``, the files beside it, named by sha256 like uploaded ones (and
    one uploaded before, mixed in): one request, no lookup of the files sent; readable afterwards.
    A file no document names, a file that is not what it says, and a broken form are refused
    before anything is stored."""
    import hashlib

    from store_calls import counting

    cit = tok("citizen", sub=CITIZEN)
    ok(client.post("/v1/dossiers", json=_birth_body(client, cit), headers=cit), 201)  # the catalogue is cached
    form = {"to-khai": pdf("tk-" + uuid.uuid4().hex), "giay-chung-sinh": pdf("gcs-" + uuid.uuid4().hex)}
    earlier = upload(client, cit, "uq-" + uuid.uuid4().hex)
    body = {"id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983",
            "documents": [{"code": c, "sha256": hashlib.sha256(d).hexdigest()} for c, d in form.items()]
            + [{"code": "uy-quyen", "sha256": earlier}]}
    with counting() as calls:  # as the ASGI bridge hands it over: an input read to its end
        r = client.post("/v1/dossiers", data=_multipart(body, form), headers=cit, content_type="multipart/form-data",
                        environ_base={"wsgi.input_terminated": True})
    created = ok(r, 201)
    # the earlier upload claimed and looked up; 2 files claimed and stored, code, dossier, 6, and the
    # dossier's unfinished-create marker (deleted in a batch of markers, no DELETE of its own): 13 before it
    assert calls["head"] == 1 and calls["put"] == 14, calls
    assert [d["sha256"] for d in created["documents"]] == [d["sha256"] for d in body["documents"]]
    assert created["documents"][0]["size"] == len(form["to-khai"])
    link = ok(client.get(f"/v1/dossiers/{body['id']}/files/{body['documents'][0]['sha256']}", headers=cit))
    assert client.get(link["url"].removeprefix("http://localhost")).data == form["to-khai"]
    again = client.post("/v1/dossiers", data=_multipart(body, form), headers=cit, content_type="multipart/form-data")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"

    stray = {**form, "extra": pdf("stray-" + uuid.uuid4().hex)}
    other = {**body, "id": "ks-" + uuid.uuid4().hex[:12]}
    r = client.post("/v1/dossiers", data=_multipart(other, stray), headers=cit, content_type="multipart/form-data")
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["extra"], r.get_data(as_text=True)
    fake = {"to-khai": b"#!/bin/sh\nrm -rf /\n", "giay-chung-sinh": form["giay-chung-sinh"]}
    r = client.post("/v1/dossiers", data=_multipart(other, fake), headers=cit, content_type="multipart/form-data")
    assert r.status_code == 422 and [e["field"] for e in r.get_json()["errors"]] == ["to-khai"]
    with counting() as refused:
        r = client.post("/v1/dossiers", data={"to-khai": (io.BytesIO(form["to-khai"]), "a.pdf", "application/pdf")},
                        headers=cit, content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "body"
    assert refused["put"] == 0 and client.get(f"/v1/dossiers/{other['id']}", headers=cit).status_code == 404


def _side_of(dossier_id: str, settings) -> dict:
    """What a dossier's receipt leaves beside it: its trail, its indexes (counted by table) and its
    events (type and id, as the stream holds them)."""
    from functions.dossiers.function import models

    def count(model):
        return sum(1 for i in model.scan() if i.dossier_id == dossier_id)

    return {"audit": [e["action"] for e in registry.RECORDS.trail(dossier_id)],
            **{m.__name__: count(m) for m in (models.OwnerRecent, models.WorkIndex, models.DayIndex, models.OpenIndex)},
            "events": [(m["event"]["type"], m["event"]["id"].replace(dossier_id, "<id>"))
                       for m in tail(settings, 200) if m["event"].get("data", {}).get("dossier_id") == dossier_id]}


@pytest.mark.parametrize("cut", ["a side write fails", "the process dies after the write"])
def test_a_resend_finishes_a_submission_cut_off_before_its_side_round(client, tok, rt, monkeypatch, cut):
    """The dossier is stored, then its side round is cut off (the store refuses one index, or the
    process dies before any of it): the citizen gets a 503 and sends the same request again, which
    is answered with the receipt as created AND finds the trail, indexes and event finished, each
    once, as an uncut submission leaves them (the old code replayed the receipt and left them
    missing: the dossier on no officer's work list)."""
    from functions.dossiers.function import models
    from lscloud import aggregate
    from lscloud.store.errors import StoreUnavailable

    cit = tok("citizen", sub=CITIZEN)
    ref = _birth_body(client, cit)
    ok(client.post("/v1/dossiers", json=ref, headers=cit), 201)
    body = _birth_body(client, cit)
    if cut == "a side write fails":
        cuts = cut_once(monkeypatch, models.WorkIndex, "save", lambda item, **_: item.dossier_id == body["id"])
    else:
        cuts = cut_once(monkeypatch, aggregate.Aggregate, "commit",
                        lambda agg, outcome, *_, **__: outcome.doc["id"] == body["id"],
                        error=StoreUnavailable("the process died here"))
    first = client.post("/v1/dossiers", json=body, headers=cit)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    stored = Dossier.get(body["id"])

    again = client.post("/v1/dossiers", json=body, headers=cit)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.get_data(as_text=True)
    assert again.get_json()["receipt"]["code"] == stored.code
    expected = _side_of(ref["id"], rt.settings)
    assert expected["audit"] == ["receive"] and expected["events"] == [
        ("vn.langson.dossiers.dossier.received.v1", "<id>.1.0")], expected
    assert _side_of(body["id"], rt.settings) == expected
    assert client.post("/v1/dossiers", json=body, headers=cit).status_code == 201
    assert _side_of(body["id"], rt.settings) == expected


def test_a_resend_of_a_complete_dossier_writes_nothing_more(client, tok):
    """A resend of a dossier whose side round is complete writes what a resend wrote before — the
    receipt code claimed and given back, the dossier's 412 — and only reads what it checks: its
    files (their claims are there: two refused creates, read back), the dossier, and one round of
    HEADs of the five objects its side round stored."""
    from store_calls import counting

    cit = tok("citizen", sub=CITIZEN)
    body = _birth_body(client, cit)
    with counting() as first:
        ok(client.post("/v1/dossiers", json=body, headers=cit), 201)
    with counting() as again:
        r = client.post("/v1/dossiers", json=body, headers=cit)
    assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "true"
    # and the refused create's unfinished-create marker, beside its dossier's PUT (deleted in a batch
    # of markers, not by a DELETE counted here)
    assert sorted(k.split("/")[0] for k in again.keys_of("put")) == [
        "dossiers", "dossiers-codes", "dossiers-files-claims", "dossiers-files-claims", "unfinished-creates"], again
    assert [k.split("/")[0] for k in again.keys_of("delete")] == ["dossiers-codes"], again
    side = [k for k in first.keys_of("put")
            if k.split("/")[0] not in ("dossiers-codes", "dossiers", "dossiers-files-claims", "unfinished-creates")]
    assert len(side) == 6 and sorted(again.keys_of("head")) == sorted(
        [k for k in first.keys_of("head")] + side), again   # the two files, the side round's six
    claims = [k for k in again.keys_of("get") if k.startswith("dossiers-files-claims/")]
    assert len(claims) == 2 and again["get"] == 3 and again["list"] == 0, again


def test_a_resend_a_check_refuses_before_the_write_gets_the_first_answer(client, tok):
    """A resend refused by a check before the dossier's write — here one of its uploaded files is
    no longer there — still gets the receipt it was given (as border's resends do); a new dossier
    naming that file is refused."""
    from functions.dossiers.function import attachments

    cit = tok("citizen", sub=CITIZEN)
    body = _birth_body(client, cit)
    created = ok(client.post("/v1/dossiers", json=body, headers=cit), 201)
    blobs = attachments.files()
    blobs.objects.delete(blobs.bucket, blobs.key_for(body["documents"][0]["sha256"]))
    again = client.post("/v1/dossiers", json=body, headers=cit)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.get_data(as_text=True)
    assert again.get_json()["receipt"] == created["receipt"]
    other = client.post("/v1/dossiers", json={**body, "id": "ks-" + uuid.uuid4().hex[:12]}, headers=cit)
    assert other.status_code == 422 and [e["field"] for e in other.get_json()["errors"]] == ["/documents/0/sha256"]
