"""``Aggregate(event_actor=...)``: the actor as a transition's event names it, the audit entry
keeping the actor as they acted (plain Python: the round is built, nothing is written)."""

from __future__ import annotations

from datetime import datetime, timezone

from lscloud import pseudonyms
from lscloud.aggregate import Aggregate, Outcome
from lscloud.statemachine import Action, Actor, StateMachine
from lscloud.store import Model, attributes as A

CCCD = "020095001234"
PURPOSE = "test-parcel-actors"
AT = datetime(2026, 3, 2, 1, 2, 3, tzinfo=timezone.utc)


class Parcel(Model):
    class Meta:
        table = "unit-event-actor-parcels"

    id = A.UnicodeAttribute(hash_key=True)
    status = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()


class ParcelAudit(Model):
    class Meta:
        table = "unit-event-actor-audit"

    parcel_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


MACHINE = StateMachine("test", [
    Action("send", {"new"}, "sent", "parcel.sent", actors={"citizen"}),
    Action("stamp", {"sent"}, "sent", "parcel.stamped", actors={"officer"}),
], states=("new", "sent"), noun=("parcel", "bưu phẩm"))
CITIZEN = Actor("citizen", CCCD, unit="05983")
OFFICER = Actor("officer", "o-17", agency="post", unit="05983")


def people_by_pseudonym(actor: Actor) -> Actor:
    return actor.pseudonymous(PURPOSE) if actor.kind == "citizen" else actor


def aggregate(**options) -> Aggregate:
    return Aggregate(Parcel, machine=MACHINE, source="/test", audit=ParcelAudit,
                     summary=lambda doc: {"parcel_id": doc["id"]}, **options)


def round_of(agg: Aggregate):
    """The audit entries and events of a parcel sent by a citizen and stamped by an officer."""
    doc = {"id": "p-1", "status": "new"}
    moves = [MACHINE.apply(doc, "send", CITIZEN, at=AT), MACHINE.apply(doc, "stamp", OFFICER, at=AT)]
    item = Parcel("p-1", status=doc["status"], data=doc)
    item.version = 2
    return agg._round(Outcome(item, moves))


def test_the_event_names_the_actor_as_event_actor_says_and_the_audit_entry_as_they_acted():
    entries, evts = round_of(aggregate(event_actor=people_by_pseudonym))
    sent, stamped = (e["data"]["actor"] for e in evts)
    assert sent == {"kind": "citizen", "sub": pseudonyms.pseudonym(PURPOSE, CCCD), "unit": "05983"}
    assert CCCD not in str(evts)
    assert stamped == {"kind": "officer", "sub": "o-17", "agency": "post", "unit": "05983"}   # as it was
    assert [e.data["actor"] for e in entries] == [CITIZEN.as_dict(), OFFICER.as_dict()]
    # the rest of the event is the transition's and the summary's, as without the option
    plain = round_of(aggregate())[1]
    assert [{k: v for k, v in e["data"].items() if k != "actor"} for e in evts] == \
        [{k: v for k, v in e["data"].items() if k != "actor"} for e in plain]
    assert [e["id"] for e in evts] == [e["id"] for e in plain] == ["p-1.2.0", "p-1.2.1"]


def test_a_round_run_again_publishes_the_same_events():
    """A re-run round (a resend, a refused move finishing the last one) publishes under the same ids:
    the same data, so JetStream's dedupe and the consumers see one event."""
    agg = aggregate(event_actor=people_by_pseudonym)
    assert [e["data"] for e in round_of(agg)[1]] == [e["data"] for e in round_of(agg)[1]]


def test_without_the_option_the_event_names_the_actor_as_they_acted():
    _, evts = round_of(aggregate())
    assert evts[0]["data"]["actor"] == CITIZEN.as_dict()
