"""A crossing through a real `lscloud up`: the directory answers the gate over HTTP, devices'
events go through the ingest endpoint to NATS and back through the dispatcher to /events.

Submission → yard (ANPR yard camera) → gate call → gate camera → every agency → weighbridge →
customs release → barrier camera → barrier opened, truck exited.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from localcloud import running, wait_for
from lscloud import events
from lscloud.auth import dev_keys, issue_token

pytestmark = pytest.mark.e2e

AGENCIES = ("customs", "border-guard", "health-quarantine", "animal-quarantine", "plant-quarantine",
            "traffic-police", "tax", "ezone-board")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "border-cloud") as c:
        yield c


@pytest.fixture(scope="module")
def api(cloud):
    with httpx.Client(base_url=cloud.gateway + "/border", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def tok(cloud):
    private, _ = dev_keys(cloud.state_dir)

    def make(role, sub=None, agency=None, unit=None):
        return {"Authorization": "Bearer " + issue_token(private, sub or f"{role}-e2e", role, agency=agency, unit=unit)}

    return make


def idem(h):
    return {**h, "Idempotency-Key": uuid.uuid4().hex}


def device(api, tok, type_, data):
    ev = events.new_event(type_, "/devices/" + data["device"], {k: v for k, v in data.items() if k != "device"})
    r = api.post("/v1/device-events", content=events.to_structured(ev),
                 headers={**tok("device", sub=data["device"], unit=data["gate"]),
                          "Content-Type": "application/cloudevents+json"})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def status_becomes(api, h, did, want, cloud):
    return wait_for(lambda: api.get(f"/v1/declarations/{did}", headers=h).json()["status"] == want,
                    30, f"status {want}", log=cloud.log)


def test_a_crossing_through_the_local_cloud(cloud, api, tok):
    ent = tok("enterprise", sub="0100109106")
    did = "e2e-" + uuid.uuid4().hex[:12]
    plate_n = str(10000 + int(uuid.uuid4().int % 89999))
    plate = f"桂A·{plate_n}"
    body = {"id": did, "gate": "huu-nghi", "direction": "import",
            "expected_arrival": (datetime.now(timezone.utc) + timedelta(minutes=10)).isoformat(),
            "vehicle": {"tractor_plate": plate, "type": "tractor-trailer", "axles": 5, "empty_weight_kg": 15000},
            "driver": {"name": "Lý Văn A", "nationality": "CN", "id_type": "passport", "id_number": "E7654321",
                       "phone": "+8613800000000"},
            "enterprise": {"tax_code": "0100109106", "name": "Công ty A"},
            "goods": [{"hs_code": "081090", "description": "Sầu riêng", "packages": 800, "gross_weight_kg": 16000,
                       "value": 40000, "currency": "USD", "origin": "CN", "perishable": True},
                      {"hs_code": "0303", "description": "Cá", "packages": 10, "gross_weight_kg": 2000,
                       "value": 3000, "currency": "USD", "origin": "CN"}],
            "health": {"fever": False, "symptoms": [], "contact_with_case": False},
            "submit": True, "booking": {"mode": "living"}}
    r = api.post("/v1/declarations", json=body, headers=ent)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["Location"] == f"/border/v1/declarations/{did}"   # under the gateway's prefix: it resolves
    assert created["status"] == "queued" and [a["agency"] for a in created["required_agencies"]] == list(AGENCIES)

    read = {"gate": "huu-nghi", "flow": "in", "plate": plate_n.join(["桂A ", ""]), "confidence": 0.98,
            "read_at": datetime.now(timezone.utc).isoformat()}
    device(api, tok, "vn.langson.border.plate.read.v1", {**read, "reading_id": f"{did}-yard", "camera": "yard",
                                                          "device": "anpr-hn-yard"})
    status_becomes(api, ent, did, "in_yard", cloud)
    board = api.get("/v1/gates/huu-nghi/board").json()
    assert board["flows"]["in"]["waiting"] >= 1

    gate = tok("gate-operator", unit="huu-nghi")
    called = api.post("/v1/gates/huu-nghi/calls", json={"flow": "in", "count": 20}, headers=idem(gate)).json()
    assert did in [c["declaration_id"] for c in called["called"]]
    lookup = api.get("/v1/lookup", params={"code": created["code"], "plate": plate}, headers={"Accept-Language": "en"})
    assert lookup.json()["status_text"].startswith("Called to the gate")
    device(api, tok, "vn.langson.border.plate.read.v1", {**read, "reading_id": f"{did}-gate", "camera": "gate",
                                                          "device": "anpr-hn-gate"})
    status_becomes(api, ent, did, "at_gate", cloud)

    for agency in AGENCIES[1:]:
        r = api.post(f"/v1/declarations/{did}/decisions", json={"decision": "pass", "notes": "ok"},
                     headers=idem(tok("officer", sub=f"{agency}-1", agency=agency)))
        assert r.status_code == 200, r.text
    device(api, tok, "vn.langson.border.weight.measured.v1",
           {"reading_id": f"{did}-wb", "gate": "huu-nghi", "plate": plate, "gross_kg": 33200,
            "measured_at": datetime.now(timezone.utc).isoformat(), "device": "wb-hn-1"})
    customs = tok("officer", sub="customs-1", agency="customs")
    wait_for(lambda: (api.get(f"/v1/declarations/{did}", headers=customs).json().get("weight") or {}).get("ok"),
             30, "the weighbridge reading", log=cloud.log)
    r = api.post(f"/v1/declarations/{did}/release", json={"notes": "released"}, headers=idem(customs))
    assert r.status_code == 200 and r.json()["status"] == "cleared", r.text

    device(api, tok, "vn.langson.border.plate.read.v1", {**read, "reading_id": f"{did}-barrier", "camera": "barrier",
                                                          "device": "anpr-hn-barrier"})
    status_becomes(api, ent, did, "exited", cloud)

    trail = api.get(f"/v1/declarations/{did}/audit", headers=ent).json()["items"]
    assert [e["to"] for e in trail if e["from"] != e["to"]] == [
        "draft", "submitted", "queued", "in_yard", "called", "at_gate", "under_inspection", "cleared", "exited"]
    tail = cloud.cli("events", "tail", "-n", "200", "--json")
    assert tail.returncode == 0, tail.stderr
    stream = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    evs = [s.get("event", s) for s in stream]
    opened = [e for e in evs if e.get("type") == "vn.langson.border.barrier.opened.v1"]
    assert opened and opened[-1]["data"]["declaration"]["declaration_id"] == did
    stats = api.get("/v1/stats", headers=customs).json()
    assert any(r["exited"] >= 1 for r in stats["by_gate_direction_day"])
