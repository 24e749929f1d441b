"""Which of a declaration's actions a caller is offered (``allowed_actions``) is read from the same
tables the routes are held to: every action the machine has a route for is mapped to it, every
mapped route is in functions/border/access.yaml, and the sweep's moves, which it makes as the
platform's whoever asks, are offered to every role its route admits when the sweep would make them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lscloud.statemachine import Actor, iso

from functions.border.function import lifecycle, scopes


def test_every_action_but_create_and_lapse_has_a_route_in_the_access_table():
    assert set(lifecycle.ACTIONS) - set(scopes.ACTION_ROUTES) == {"create", "lapse"}
    assert set(scopes.ACTION_ROUTES) <= set(lifecycle.ACTIONS)
    missing = {a: r for a, r in scopes.ACTION_ROUTES.items() if scopes._access().row(*r) is None}
    assert missing == {}


def _called(deadline: datetime, misses: int = 0) -> dict:
    return {"id": "d-0001", "status": "called", "gate": "huu-nghi", "flow": "in", "owner": "0100109106",
            "driver": {"id_number": "E12345678"}, "call": {"deadline": iso(deadline), "misses": misses}}


def test_the_sweep_s_moves_are_offered_to_every_role_its_route_admits_once_due():
    past, future = datetime.now(timezone.utc) - timedelta(minutes=1), datetime.now(timezone.utc) + timedelta(hours=1)
    operator, gate_op = Actor("operator", "op-1"), Actor("gate-operator", "g-1", unit="huu-nghi")
    elsewhere = Actor("gate-operator", "g-2", unit="tan-thanh")
    row = scopes._access().row(*scopes.ACTION_ROUTES["miss_call"])
    assert row.admits("operator") and row.admits("gate-operator")
    # the operator is no actor of miss_call in the machine: the sweep makes it as the system's
    assert "operator" not in lifecycle.ACTIONS["miss_call"].actors
    for who in (operator, gate_op):
        assert scopes.may_take(who, _called(past), "miss_call"), who
        assert not scopes.may_take(who, _called(past), "expire"), who
        assert scopes.may_take(who, _called(past, misses=1), "expire"), who
        assert not scopes.may_take(who, _called(future), "miss_call"), who
    assert not scopes.may_take(elsewhere, _called(past), "miss_call")   # another gate's
    assert not scopes.may_take(Actor("enterprise", "0100109106"), _called(past), "miss_call")   # not admitted
