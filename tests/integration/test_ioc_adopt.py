"""The IOC puts a projection rebuilt from the stream live (POST /v1/replay?apply=true) while events keep
arriving, against real weed mini + nats-server: nothing absorbed meanwhile is lost, in memory or in
the store, and a station-hour's tally is never written over a copy that counts more."""

# ruff: noqa: F811 (the no_peers fixture imported from ioc_support is named as a parameter)
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

import ioc_support as ev
from ioc_support import deliver, no_peers  # noqa: F401
from lscloud import runtime, store

pytestmark = pytest.mark.integration


def readings_and_declaration():
    """Three readings of one station-hour and a declaration's submission, in the hour before this one."""
    hour = ev.ago(60).replace(minute=0, second=0, microsecond=0)
    e1, e2, e3 = (ev.observations("lsn-adopt", hour + timedelta(minutes=m)) for m in (5, 10, 15))
    return e1, e2, e3, ev.border("d-adopt-1", "submitted", hour + timedelta(minutes=20))


class Paused:
    """``POST /v1/replay?apply=true`` run in a thread of its own, held at :meth:`hold` until :meth:`resume`."""

    def __init__(self, app, headers):
        self.reached, self.go, self.answer = threading.Event(), threading.Event(), None
        self.thread = threading.Thread(target=self._run, args=(app, headers))

    def hold(self, value=None):
        self.reached.set()
        self.go.wait(120)
        return value

    def _run(self, app, headers):
        self.answer = app.test_client().post("/v1/replay?apply=true", headers=headers)

    def start(self):
        self.thread.start()
        assert self.reached.wait(120), "the replay never reached its pause"

    def resume(self) -> dict:
        self.go.set()
        self.thread.join()
        assert self.answer.status_code == 200, self.answer.get_json()
        return self.answer.get_json()


def check_every_fact_kept(one, start_function, no_peers, tokens, e1, e2, e3, declaration):
    from functions.ioc.function import live, tallies

    names = {live.fact_of(e)["id"]: n for n, e in (("e1", e1), ("e2", e2), ("e3", e3))}
    tally_id = tallies.tally_of(live.fact_of(e1))["id"]
    declared = live.fact_of(declaration)["id"]
    held = one.app.config["IOC_LIVE"].projection
    assert sorted(names[i] for i in held.fact(tally_id)["tally"]) == ["e1", "e2", "e3"]
    assert held.fact(declared) is not None
    objects, bucket = store.connection()
    stored = json.loads(objects.get(bucket, live.stored_key(held.fact(tally_id))).body)
    assert sorted(names[i] for i in stored["tally"]) == ["e1", "e2", "e3"] and stored["values"] == {"readings": 3.0}

    two = start_function("ioc", peer_url_template=no_peers)
    restarted = two.app.config["IOC_LIVE"].ensure_loaded()
    assert sorted(names[i] for i in restarted.fact(tally_id)["tally"]) == ["e1", "e2", "e3"]
    assert restarted.fact(declared) is not None
    # every event is on the stream: a replay now finds what the restarted instance holds
    assert two.app.test_client().post("/v1/replay", headers=tokens.header("operator")).get_json()["identical"] is True


def test_facts_absorbed_while_a_replay_runs_are_kept_when_it_is_put_live(start_function, rt, tokens, no_peers,
                                                                          monkeypatch):
    """The replay has read the stream and begun its projection; a reading and a declaration arrive
    before it is put live, a reading of the same station-hour after. The tally was written over by
    the rebuilt one's (counting e1 and e3) and the declaration deleted from memory and the store."""
    from functions.ioc.function import figures

    e1, e2, e3, declaration = readings_and_declaration()
    one = start_function("ioc", peer_url_template=no_peers)
    client = one.app.test_client()
    rt.bus.publish(e1)
    deliver(client, rt, e1)

    paused = Paused(one.app, tokens.header("operator"))
    made = figures.new_projection
    monkeypatch.setattr(figures, "new_projection", lambda: paused.hold(made()))
    paused.start()
    for e in (e2, declaration):   # on the stream after the replay read it, and delivered meanwhile
        rt.bus.publish(e)
        deliver(client, rt, e)
    assert paused.resume()["applied"] is True
    monkeypatch.undo()
    rt.bus.publish(e3)
    deliver(client, rt, e3)

    check_every_fact_kept(one, start_function, no_peers, tokens, e1, e2, e3, declaration)


def test_a_tally_is_never_written_over_a_copy_that_counts_more(start_function, rt, no_peers):
    """Another instance (a rollout's new one beside the old) counted a reading into the station-hour's
    tally: this one's next reading is counted with it, not written over it."""
    from functions.ioc.function import live, tallies

    e1, e2, e3, _ = readings_and_declaration()
    one = start_function("ioc", peer_url_template=no_peers)
    deliver(one.app.test_client(), rt, e1)
    other = start_function("ioc", peer_url_template=no_peers)
    deliver(other.app.test_client(), rt, e2)
    deliver(one.app.test_client(), rt, e3)

    names = {live.fact_of(e)["id"]: n for n, e in (("e1", e1), ("e2", e2), ("e3", e3))}
    tally_id = tallies.tally_of(live.fact_of(e1))["id"]
    held = one.app.config["IOC_LIVE"].projection.fact(tally_id)
    objects, bucket = store.connection()
    stored = json.loads(objects.get(bucket, live.stored_key(held)).body)
    assert sorted(names[i] for i in stored["tally"]) == ["e1", "e2", "e3"] and stored["values"] == {"readings": 3.0}
    assert sorted(names[i] for i in held["tally"]) == ["e1", "e2", "e3"]


def test_facts_absorbed_between_the_stream_read_and_the_projection_are_kept(start_function, rt, tokens, no_peers,
                                                                            monkeypatch):
    """As above, the pause right after the stream is read, before the route makes its projection."""
    e1, e2, e3, declaration = readings_and_declaration()
    one = start_function("ioc", peer_url_template=no_peers)
    client = one.app.test_client()
    rt.bus.publish(e1)
    deliver(client, rt, e1)

    paused = Paused(one.app, tokens.header("operator"))
    bus = runtime.current().bus
    read = bus.replay
    monkeypatch.setattr(bus, "replay", lambda *a, **k: paused.hold(read(*a, **k)))
    paused.start()
    for e in (e2, declaration):
        rt.bus.publish(e)
        deliver(client, rt, e)
    assert paused.resume()["applied"] is True
    monkeypatch.undo()
    rt.bus.publish(e3)
    deliver(client, rt, e3)

    check_every_fact_kept(one, start_function, no_peers, tokens, e1, e2, e3, declaration)
