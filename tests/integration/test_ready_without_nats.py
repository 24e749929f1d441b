"""A NATS outage leaves every function in service that can answer without the bus: their events
wait in the outbox (tests/integration/test_outbox_disconnected.py), so readiness asks NATS only of
a function that cannot answer without it (the soft ATM: its partner banks' nonces live in a
JetStream key-value bucket). Readiness that asked every function took nine of them out of service,
reads and all, within Knative's three failed probes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lscloud import knative

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(d.name for d in (ROOT / "functions").iterdir() if (d / "func.yaml").is_file())
NEEDS_THE_BUS = {"softatm"}
NOWHERE = "nats://127.0.0.1:9"   # nothing listens there: the bus is down


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_is_ready_without_nats_unless_it_cannot_answer_without_it(start_function, name):
    instance = start_function(name, nats_url=NOWHERE)
    # its own checks (an index built from a peer's data: the assistant's) are not what is asked here
    instance.app.extensions[knative.READINESS_CHECKS] = []
    ok, message = instance.ready()
    if name in NEEDS_THE_BUS:
        assert (ok, "nats" in message) == (False, True)
    else:
        assert (ok, message) == (True, "OK")
