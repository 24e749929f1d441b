"""Register the simulated stations with the environment function and issue their MQTT credentials
(local cloud only), through the environment function's own code (same store and bucket locally).

The directory check is skipped (the seed runs before any function serves); the communes are the
directory's codes. Passwords are created once under <state dir>/keys (0600) and reused.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

from lscloud import devices, store
from lscloud.loading import load_function
from lscloud.statemachine import Actor
from lscloud.store import ConditionalCheckFailed

from . import sim
from .stations import STATIONS

ENVIRONMENT = Path(__file__).resolve().parents[3] / "functions" / "environment"


def fingerprint() -> str:
    return hashlib.sha256(json.dumps([STATIONS, sorted(sim.passwords_file_hint())]).encode()).hexdigest()


def seed(runtime) -> dict:
    store.configure(runtime.objects, runtime.settings.bucket)
    env = load_function(ENVIRONMENT).__name__
    stations = importlib.import_module(env + ".stations")
    models = importlib.import_module(env + ".models")
    passwords = sim.passwords(runtime.settings.state_dir)
    actor = Actor("operator", "environment-sim-seed")
    registered = 0
    for s in STATIONS:
        doc = {k: s[k] for k in ("id", "kind", "name", "unit", "commune", "lat", "lon")}
        doc.update(interval_s=60, ceilings={}, operator=actor.sub, status="new", simulated=True)
        if s["kind"] == "noise":
            doc["zone"] = s["zone"]
        t = stations.MACHINE.apply(doc, "register", actor)
        doc["registered_at"] = t.at
        try:
            stations.records().create(models.Station(doc["id"], kind=doc["kind"], data=doc), [t])
            registered += 1
        except stations.errors.Conflict:
            pass
        except ConditionalCheckFailed:
            pass
        if s["via"] == "mqtt":
            devices.issue("environment", sim.user(s), [sim.topic(s)], issued_by=actor.sub, password=passwords[s["id"]])
    return {"stations": len(STATIONS), "registered": registered,
            "mqtt_credentials": sum(1 for s in STATIONS if s["via"] == "mqtt")}
