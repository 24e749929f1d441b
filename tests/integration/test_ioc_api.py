"""The IOC against real weed mini + nats-server: events in through /events (as the platform delivers
them) and on the bus, figures out through the API, the stream, replay from the stream, the role matrix."""

# ruff: noqa: F811 (the no_peers fixture imported from ioc_support is named as a parameter)
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

import ioc_support as ev
from ioc_support import deliver, no_peers  # noqa: F401
import role_matrix

pytestmark = pytest.mark.integration
FULL = ("ioc", "officer", "supervisor", "operator", "auditor")


@pytest.fixture
def ioc(start_function, no_peers):
    return start_function("ioc", peer_url_template=no_peers).app.test_client()


# two reports' ids, the same for every sample(): a redelivery must be the same report
FIRST, SECOND = ev.report_id(ev.ago(0)), ev.report_id(ev.ago(0))


def sample():
    now = ev.ago(0)
    return [
        ev.border("d1", "submitted", now - timedelta(minutes=90)), ev.border("d1", "cleared", now - timedelta(minutes=30)),
        ev.border("d2", "submitted", now - timedelta(minutes=10)),
        ev.dossier("h1", "received", now - timedelta(hours=3), deadline=now - timedelta(hours=1)),
        ev.dossier("h1", "done", now - timedelta(hours=2), deadline=now - timedelta(hours=1)),
        ev.report(FIRST, "submitted", "submitted", "open", now - timedelta(minutes=50), deadline=now - timedelta(minutes=5)),
        ev.report(SECOND, "submitted", "submitted", "open", now - timedelta(minutes=40), commune="06016"),
        ev.report(SECOND, "rated", "closed", "closed", now - timedelta(minutes=20), commune="06016", rating=5),
        ev.transfer("t1", 700_000),
    ]


def by_id(body) -> dict:
    return {i["id"]: i for i in body["items"]}


def test_figures_from_delivered_events_and_redelivery_counts_once(ioc, rt, tokens):
    for e in sample():
        assert deliver(ioc, rt, e)["status"] == "done"
    assert deliver(ioc, rt, sample()[0] | {"id": "x"})["status"] == "done"  # a new id: counts (same truck)
    first = sample()[5]
    deliver(ioc, rt, first)
    again = deliver(ioc, rt, first)
    # the fact is its own record (the same key, the same bytes, folded in once): a repeat is answered
    # done and counts for nothing below, and no events-seen record is kept for any event
    assert again["status"] == "done"
    from lscloud import store

    objects, bucket = store.connection()
    assert list(objects.list(bucket, "events-seen/")) == []
    body = ioc.get("/v1/indicators", headers=tokens.header("ioc")).get_json()
    items = by_id(body)
    assert items["border.declared"]["value"] == 2 and items["border.cleared"]["value"] == 1
    assert items["border.waiting"]["value"] == 1 and items["border.clearance-median"]["value"] == 60.0
    assert items["reports.open"]["value"] == 1 and items["reports.overdue"]["value"] == 1
    assert items["reports.satisfaction"]["value"] == 5.0 and items["softatm.volume"]["value"] == 700_000
    assert items["dossiers.on-time-rate"]["value"] == 100.0 and items["border.declared"]["by"]["gate"] == {"huu-nghi": 2}
    areas = {a["id"]: a for a in body["areas"]}
    assert areas["tourism"]["status"] == "no-source" and areas["petitions"]["status"] == "ok"
    # the environment function does not run here and sent nothing: not connected, no made-up zero
    assert items["environment.alerts-active"]["status"] == "no-source" and items["environment.alerts-active"]["value"] is None

    card = ioc.get("/v1/communes/06016", headers=tokens.header("commune-officer", unit="06016")).get_json()
    assert card["commune"] == "06016" and by_id(card)["reports.open"]["value"] == 0
    other = ioc.get("/v1/communes/06001", headers=tokens.header("commune-officer", unit="06016"))
    assert other.status_code == 403 and other.get_json()["type"].endswith("not-your-commune")
    public = by_id(ioc.get("/v1/indicators").get_json())
    assert "reports.overdue" not in public and public["reports.open"]["value"] == 1

    s = ioc.get("/v1/indicators/border.declared/series?step=hour", headers=tokens.header("officer")).get_json()
    assert len(s["points"]) in (24, 25) and sum(p["value"] for p in s["points"]) == 2
    t = {x["id"]: x for x in ioc.get("/v1/targets").get_json()["items"]}
    assert t["online-dossier-share"]["current"] == 100.0 and t["online-dossier-share"]["verified"] is False
    assert t["households-shop-or-payment"]["status"] == "no-source" and t["households-shop-or-payment"]["target"] == 50


def test_communes_are_named_as_the_directory_names_them(start_function, peers, rt, tokens):
    """The wall labels communes by name: the directory's, beside the codes the figures stay keyed by."""
    from functions.directory.function import units

    ioc = start_function("ioc", peer_url_template=peers.template).app.test_client()
    # a report filed under a code the directory does not list (none of the province's 65 units):
    # counted under its code and left unnamed, the wall shows the code
    unlisted = ev.report(ev.report_id(ev.ago(0)), "submitted", "submitted", "open", ev.ago(30), commune="06004")
    for e in sample() + [unlisted]:
        deliver(ioc, rt, e)
    body = ioc.get("/v1/indicators", headers=tokens.header("ioc")).get_json()
    assert by_id(body)["reports.received"]["by"]["commune"] == {"06001": 1, "06016": 1, "06004": 1}
    assert "06004" not in units.by_code()
    named = {"06001": units.by_code()["06001"]["name"], "06016": units.by_code()["06016"]["name"]}
    assert body["commune_names"] == named == {"06001": "Xã Đoàn Kết", "06016": "Xã Quốc Khánh"}
    card = ioc.get("/v1/communes/06001", headers=tokens.header("commune-officer", unit="06001")).get_json()
    assert card["commune"] == "06001" and card["name"] == "Xã Đoàn Kết"
    assert ioc.get("/v1/communes/06004", headers=tokens.header("ioc")).get_json()["name"] is None
    asked = [s["path"] for s in peers.seen if s["path"] == "/directory/v1/units"]
    assert asked and all(s["authorization"] is None for s in peers.seen)   # public reference data, no token sent


def test_without_the_directory_the_codes_go_out_alone_and_it_is_asked_once_a_minute(start_function, peers, rt,
                                                                                   tokens):
    ioc = start_function("ioc", peer_url_template=peers.template)
    client = ioc.app.test_client()
    deliver(client, rt, sample()[6])
    peers.stop()
    body = client.get("/v1/indicators", headers=tokens.header("ioc")).get_json()
    assert by_id(body)["reports.received"]["by"]["commune"] == {"06016": 1} and body["commune_names"] == {}
    names = ioc.app.config["IOC_NAMES"]
    failed_at = names._failed_at
    assert failed_at is not None
    card = client.get("/v1/communes/06016", headers=tokens.header("ioc")).get_json()
    assert card["name"] is None and names._failed_at == failed_at   # not asked again within RETRY_S


def test_the_tick_sweeps_its_dead_letters_and_keeps_no_record_of_itself(ioc, rt, object_store, settings):
    """Its subscriptions' dead letters come to the IOC's own sink and are kept a year: with no tick,
    nothing ever swept them. The tick is repeat-safe (no events-seen record)."""
    from datetime import datetime, timezone

    from lscloud import clock, runonce
    from store_calls import counting

    tick = clock.tick_event(datetime.now(timezone.utc))
    with counting() as calls:
        assert deliver(ioc, rt, tick)["status"] == "done"
    assert "lscloud-dead-letters/" in calls.keys_of("list")   # the sweep looked for expired letters
    assert deliver(ioc, rt, tick)["status"] == "done"          # again: repeat-safe, not a duplicate
    assert list(object_store.list(settings.bucket, runonce.EVENTS_SEEN.prefix)) == []


def test_bad_parameters_are_named(ioc, tokens):
    h = tokens.header("ioc")
    r = ioc.get("/v1/indicators?area=nowhere&commune=12", headers=h)
    assert r.status_code == 400 and {e["field"] for e in r.get_json()["errors"]} == {"area", "commune"}
    r = ioc.get("/v1/indicators/border.declared/series?from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z", headers=h)
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "from"
    r = ioc.get("/v1/indicators/border.declared/series?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", headers=h)
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "from"
    assert ioc.get("/v1/indicators/nope/series", headers=h).status_code == 404
    assert ioc.get("/v1/indicators/reports.overdue/series").status_code == 404  # not in the public subset
    r = ioc.get("/v1/communes/abc", headers=h)
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "code"
    assert ioc.get("/v1/stream?max_seconds=0").status_code == 400


def test_replay_from_the_stream_gives_identical_figures(ioc, rt, tokens):
    op = tokens.header("operator")
    evts = sample()
    for e in evts:
        rt.bus.publish(e)
    for e in reversed(evts):  # delivered in another order than the stream's, some twice
        deliver(ioc, rt, e)
    deliver(ioc, rt, evts[2])
    r = ioc.post("/v1/replay", headers=op).get_json()
    assert r["identical"] is True and r["events"] == len(evts) and r["differences"] == []
    assert r["facts"] == {"live": len(evts), "replayed": len(evts), "only_live": 0, "only_replayed": 0}
    # a fact the stream does not hold (delivered by hand only): the comparison says so
    deliver(ioc, rt, ev.transfer("t9", 1_000))
    r = ioc.post("/v1/replay", headers=op).get_json()
    assert r["identical"] is False and "softatm.volume" in r["differences"] and r["facts"]["only_live"] == 1
    # put live, it would lose that fact: refused; told to, it drops it (no older than the stream's start)
    assert ioc.post("/v1/replay?apply=true", headers=op).status_code == 409
    r = ioc.post("/v1/replay?apply=true&keep_older=true", headers=op).get_json()
    assert r["applied"] is True and r["kept_live"] == 0
    assert ioc.post("/v1/replay", headers=op).get_json()["identical"] is True


def test_replay_rebuilds_the_stations_tallies_as_the_live_ones(ioc, rt, tokens):
    op = tokens.header("operator")
    now = ev.ago(0)
    evts = [ev.observations(f"lsn-{s}", now - timedelta(minutes=m), 3) for s in range(2) for m in range(0, 120, 15)]
    for e in evts:
        rt.bus.publish(e)
    for e in reversed(evts + evts[:3]):   # another order than the stream's, some twice
        deliver(ioc, rt, e)
    r = ioc.post("/v1/replay", headers=op).get_json()
    assert r["identical"] is True and r["events"] == len(evts) and r["differences"] == []
    assert r["facts"]["only_live"] == r["facts"]["only_replayed"] == 0 and r["facts"]["live"] <= 6   # station-hours


def test_a_restarted_instance_shows_what_it_had_absorbed(start_function, rt, tokens, no_peers):
    one = start_function("ioc", peer_url_template=no_peers).app.test_client()
    for e in sample():
        deliver(one, rt, e)
    before = one.get("/v1/indicators?as_of=2030-01-01T00:00:00Z", headers=tokens.header("ioc")).get_json()
    two = start_function("ioc", peer_url_template=no_peers).app.test_client()
    after = two.get("/v1/indicators?as_of=2030-01-01T00:00:00Z", headers=tokens.header("ioc")).get_json()
    assert [(i["id"], i["value"]) for i in after["items"]] == [(i["id"], i["value"]) for i in before["items"]]
    assert by_id(after)["reports.open"]["value"] == 1 and by_id(after)["border.waiting"]["value"] == 1


def test_a_stations_messages_are_stored_as_station_hours_and_count_once_across_a_restart(start_function, rt,
                                                                                           tokens, no_peers):
    """Each message of a station used to be a fact of its own (an object, 1.7 KB of the IOC's memory,
    a step of every figure's scan): they are counted into one tally per station and hour, in the
    store as in memory, and a store an earlier version filled one fact per message is moved over."""
    import json

    from functions.ioc.function import live
    from lscloud import store

    objects, bucket = store.connection()
    now = ev.ago(0).replace(minute=30, second=0, microsecond=0)
    messages = [ev.observations(f"lsn-{s}", now - timedelta(minutes=m), 2) for s in range(2) for m in range(0, 90, 10)]
    # what an earlier version kept: one fact per message, the entity its own id
    earlier = [ev.observations("lsn-9", now - timedelta(minutes=m), 1) for m in range(3)]
    for e in earlier:
        fact = live.fact_of(e)
        objects.put(bucket, live.stored_key(fact), json.dumps({**fact, "entity": fact["id"]}).encode())

    one = start_function("ioc", peer_url_template=no_peers).app.test_client()
    for e in messages + messages[:4]:   # four delivered twice
        deliver(one, rt, e)
    hdr = tokens.header("ioc")
    counted = by_id(one.get("/v1/indicators", headers=hdr).get_json())["environment.readings"]["value"]
    assert counted == 2 * len(messages) + len(earlier)
    kept = [i.key for i in objects.list(bucket, "ioc/facts/environment/")]
    # two stations over two hours, and lsn-9's hour (or two); none of the earlier per-message objects
    assert 5 <= len(kept) <= 6 and not {live.stored_key(live.fact_of(e)) for e in earlier} & set(kept)

    two = start_function("ioc", peer_url_template=no_peers).app.test_client()
    assert by_id(two.get("/v1/indicators", headers=hdr).get_json())["environment.readings"]["value"] == counted
    for e in messages[-3:] + earlier:   # redelivered after the restart
        deliver(two, rt, e)
    assert by_id(two.get("/v1/indicators", headers=hdr).get_json())["environment.readings"]["value"] == counted


def test_a_stations_days_past_their_ids_are_stored_as_one_tally_each(start_function, rt, tokens, no_peers):
    """Hours all of whose messages are older than TALLY_IDS_KEPT_H keep their sums only; a day of them is
    rolled into one tally with each hour's sums, in the store as in memory, and counts as before."""
    import json

    from lscloud import store

    objects, bucket = store.connection()
    hdr = tokens.header("ioc")
    now = ev.ago(0).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=4)
    messages = [ev.observations("lsn-1", start + timedelta(minutes=m), 2) for m in range(0, 4 * 24 * 60, 30)]
    one = start_function("ioc", peer_url_template=no_peers).app.test_client()
    for e in messages:
        deliver(one, rt, e)
    stored = [json.loads(objects.get(bucket, i.key).body) for i in objects.list(bucket, "ioc/facts/environment/")]
    days = [f for f in stored if "hours" in f]
    hours = [f for f in stored if "hours" not in f]
    # the older days one tally each, their hour tallies deleted; the last 48 hours or so by the hour
    assert days and not {d["at"][:10] for d in days} & {h["at"][:10] for h in hours}
    assert len(hours) <= 24 * 3 and sum(len(d["hours"]) for d in days) + len(hours) == 4 * 24
    series = f"/v1/indicators/environment.readings/series?step=hour&from={ev.iso(start)}&to={ev.iso(now)}"
    points = one.get(series.replace("+", "%2B"), headers=hdr).get_json()["points"]
    assert sum(p["value"] for p in points) == 2 * len(messages) and {p["value"] for p in points} == {4}

    two = start_function("ioc", peer_url_template=no_peers).app.test_client()
    assert two.get(series.replace("+", "%2B"), headers=hdr).get_json()["points"] == points


def test_loose_facts_are_packed_and_a_restart_reads_the_packs(start_function, rt, tokens, no_peers, monkeypatch):
    """A start read every fact as an object of its own; once PACK_AT loose facts gather they are
    written as one pack and deleted. Whatever a pack run is cut off at, every fact counts once."""
    import gzip
    import json
    import time

    from functions.ioc.function import live
    from lscloud import store

    objects, bucket = store.connection()
    monkeypatch.setattr(live, "PACK_AT", 6)
    hdr = tokens.header("ioc")
    now = ev.ago(0).replace(minute=30, second=0, microsecond=0)

    def figures_of(client) -> dict:
        return {i["id"]: (i["value"], i.get("by")) for i in client.get("/v1/indicators", headers=hdr).get_json()["items"]}

    def loose() -> list[str]:
        return [i.key for i in objects.list(bucket, live.PREFIX)]

    def packs() -> list[str]:
        return [i.key for i in objects.list(bucket, live.PACKS)]

    one = start_function("ioc", peer_url_template=no_peers)
    client = one.app.test_client()
    stations = [ev.observations("lsn-1", now - timedelta(minutes=m), 2) for m in range(0, 30, 10)]
    for e in sample() + stations:   # nine facts and one station-hour's tally
        deliver(client, rt, e)
    deadline = time.monotonic() + 30
    while not packs() and time.monotonic() < deadline:   # packed in the background once six are loose
        time.sleep(0.05)
    (first,) = packs()
    held = json.loads(gzip.decompress(objects.get(bucket, first).body))["facts"]
    assert len(held) >= 6 and all("id" in f and "kind" in f for f in held)
    state = one.app.config["IOC_LIVE"]
    while state._packing.locked():
        time.sleep(0.05)
    state.pack()   # whatever the background run did not take (facts it found written, not yet folded in)
    assert loose() == [] and len(packs()) in (1, 2)
    before = figures_of(client)

    # the station's tally counts on, loose again beside its packed copy: the start takes the larger
    for e in [ev.observations("lsn-1", now + timedelta(minutes=m), 2) for m in (5, 15)]:
        deliver(client, rt, e)
    assert len(loose()) == 1
    # a pack run cut off before its deletes: the same facts in a pack and loose
    redundant = [json.loads(objects.get(bucket, k).body) for k in loose()]
    live._put_pack(objects, bucket, redundant + held[:3])
    counted = figures_of(client)
    assert counted["environment.readings"][0] == before["environment.readings"][0] + 4

    two = start_function("ioc", peer_url_template=no_peers).app.test_client()
    assert figures_of(two) == counted
    for e in sample()[:3] + stations:   # redelivered after the restart: nothing counts twice
        deliver(two, rt, e)
    assert figures_of(two) == counted


def test_a_rebuilt_projection_is_put_live_as_packs(start_function, rt, tokens, no_peers):
    from functions.ioc.function import live
    from lscloud import store

    objects, bucket = store.connection()
    op, hdr = tokens.header("operator"), tokens.header("ioc")
    one = start_function("ioc", peer_url_template=no_peers)
    client = one.app.test_client()
    evts = sample()
    for e in evts:
        rt.bus.publish(e)
        deliver(client, rt, e)
    one.app.config["IOC_LIVE"].pack()
    deliver(client, rt, ev.transfer("t-by-hand", 1_000))   # loose, and not on the stream
    assert client.post("/v1/replay?apply=true", headers=op).get_json()["only_live"] == 1   # refused (409)
    assert client.post("/v1/replay?apply=true&keep_older=true", headers=op).get_json()["facts"]["only_live"] == 1
    assert [i.key for i in objects.list(bucket, live.PREFIX)] == []
    assert len(list(objects.list(bucket, live.PACKS))) == 1   # the old pack deleted, the rebuilt one written
    two = start_function("ioc", peer_url_template=no_peers).app.test_client()
    volume = by_id(two.get("/v1/indicators", headers=hdr).get_json())["softatm.volume"]["value"]
    assert volume == 700_000   # what the stream holds: the transfer by hand is gone
    assert two.post("/v1/replay", headers=op).get_json()["identical"] is True


def test_the_stream_announces_a_change_and_closes(ioc, rt):
    r = ioc.get("/v1/stream?max_seconds=20", buffered=False)
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    chunks = r.response.__iter__()
    hello = next(chunks).decode()
    assert "event: hello" in hello
    poster = threading.Thread(target=deliver, args=(ioc, rt, ev.transfer("t-live", 5)))
    poster.start()
    got = ""
    while "event: changed" not in got:
        got += next(chunks).decode()
    poster.join()
    assert '"sources": ["softatm"]' in got
    r.close()
    short = ioc.get("/v1/stream?max_seconds=1").get_data(as_text=True)
    assert short.startswith("retry: 2000") and short.rstrip().endswith("}") and "event: bye" in short


def test_openapi_document_is_valid(ioc):
    from openapi_spec_validator import validate

    doc = ioc.get("/openapi.json").get_json()
    validate(doc)
    assert {"/v1/indicators", "/v1/indicators/{indicator_id}/series", "/v1/communes/{code}", "/v1/targets",
            "/v1/stream"} <= set(doc["paths"])
    # a client (and `lscloud fuzz`) knows the wall's stream is one from the document alone
    assert set(doc["paths"]["/v1/stream"]["get"]["responses"]["200"]["content"]) == {"text/event-stream"}


def test_wall_and_assets(ioc):
    page = ioc.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html" and b"assets/plotly.min.js" in page.data
    assert b'<base href="/">' in page.data
    assert b'<base href="/ioc/">' in ioc.get("/", headers={"X-Forwarded-Prefix": "/ioc"}).data
    assert b'<base href="/">' in ioc.get("/", headers={"X-Forwarded-Prefix": '/"><script>'}).data
    js = ioc.get("/assets/plotly.min.js")
    assert js.status_code == 200 and b"plotly.js" in js.data[:200] and js.headers["ETag"]
    assert ioc.get("/assets/plotly.min.js", headers={"If-None-Match": js.headers["ETag"]}).status_code == 304
    assert ioc.get("/assets/../func.py").status_code == 404
    assert ioc.get("/assets/nope.js").status_code == 404


def test_who_may_call_what(start_function, keys, rt, no_peers):
    fn = start_function("ioc", peer_url_template=no_peers)
    assert role_matrix.check(fn.app, "ioc", keys[0], samples={"indicator_id": "border.declared", "code": "06001",
                                                                "name": "wall.css"}) > 0
    assert role_matrix.events_refusals(fn.app, keys[0]) == []


def test_a_source_whose_function_answers_is_connected_before_its_first_event(start_function, tokens):
    import http.server

    class Peer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            ok = self.path == "/environment/openapi.json"
            body = b'{"openapi": "3.1.0"}' if ok else b'{}'
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Peer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = start_function("ioc", peer_url_template=f"http://127.0.0.1:{server.server_address[1]}/{{name}}").app.test_client()
        items = by_id(client.get("/v1/indicators", headers=tokens.header("ioc")).get_json())
        assert items["environment.alerts-active"]["status"] == "ok" and items["environment.alerts-active"]["value"] == 0
        assert items["reports.open"]["status"] == "no-source" and items["reports.open"]["value"] is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_no_caller_takes_every_stream_and_some_are_kept_for_staff(ioc, tokens):
    """A stream holds a worker thread: anyone may open one (the wall is public), but an anonymous
    caller holds at most two, and the last two of the eight slots wait for ioc/officer/operator tokens."""
    def open_stream(**headers):
        r = ioc.get("/v1/stream?max_seconds=30", headers=headers, buffered=False)
        if r.status_code == 200:
            assert "event: hello" in next(iter(r.response)).decode()
        return r

    def refused(r) -> bool:
        body = r.get_json()
        return (r.status_code == 429 and r.mimetype == "application/problem+json" and r.headers["Retry-After"] == "15"
                and body["title_vi"] and body["detail_vi"] and body["detail"])

    held = [open_stream() for _ in range(2)]   # one address (the test client's)
    assert [h.status_code for h in held] == [200, 200]
    third = open_stream()
    assert refused(third) and "2 streams per caller" in third.get_json()["detail"]   # answered at once, not queued
    held += [open_stream(**{"X-Forwarded-For": f"203.0.113.{n}"}) for n in (1, 1, 2, 2)]
    assert [h.status_code for h in held] == [200] * 6
    ninth = open_stream(**{"X-Forwarded-For": "203.0.113.3"})   # a new address: only the staff's slots are left
    assert refused(ninth) and "taken" in ninth.get_json()["detail"]
    staff = [open_stream(**tokens.header("ioc", "wall-1")), open_stream(**tokens.header("operator", "op-1"))]
    assert [s.status_code for s in staff] == [200, 200]
    assert refused(open_stream(**tokens.header("officer", "off-1")))   # all eight are open now
    held[0].close()   # a stream given back (its browser went away) frees its slot
    staff.append(open_stream(**tokens.header("officer", "off-1")))
    assert staff[-1].status_code == 200
    for h in held[1:] + staff:
        h.close()
    again = [open_stream() for _ in range(2)]
    assert [a.status_code for a in again] == [200, 200]   # the address's two again
    for a in again:
        a.close()
