"""Environment monitoring through a real `lscloud up`: nats-server's MQTT listener (printed in the
summary), credentials issued by an operator and loaded into nats-server, a device publishing over
MQTT, the relay and the dispatcher delivering to the function, the simulator's stations, NGSI-LD."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from urllib.parse import urlparse

import httpx
import pytest

from localcloud import ROOT, running, wait_for
from lscloud import telemetry
from lscloud.auth import dev_keys, issue_token

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "environment-cloud", [ROOT / "functions", ROOT / "peers"],
                 only=["directory", "environment", "environment-sim"]) as c:
        yield c


def mqtt_connect(url: str, user: str | None, password: str | None):
    """(client, accepted?) once the broker answered the CONNECT."""
    import paho.mqtt.client as mqtt

    answered, accepted = threading.Event(), {}

    def on_connect(c, userdata, flags, reason, props):
        accepted["ok"] = not reason.is_failure
        answered.set()

    u = urlparse(url)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"e2e-{uuid.uuid4().hex[:8]}")
    if user:
        c.username_pw_set(user, password)
    c.on_connect = on_connect
    c.connect(u.hostname, u.port, keepalive=30)
    c.loop_start()
    answered.wait(15)
    return c, accepted.get("ok", False)


def test_a_device_over_mqtt_and_the_simulated_stations(cloud):
    state = cloud.state()
    mqtt_url = state["mqtt"]["url"]
    assert mqtt_url.startswith("mqtt://127.0.0.1:")
    # the summary is printed as the state turns ready, and reaches the log a moment later
    wait_for(lambda: f"MQTT {mqtt_url}" in cloud.output(), 30, "the summary to name the MQTT listener", log=cloud.log)
    private, _ = dev_keys(cloud.state_dir)
    op = {"Authorization": "Bearer " + issue_token(private, "op-e2e", "operator")}
    api = httpx.Client(base_url=cloud.gateway + "/environment", timeout=30, trust_env=False)

    # a station registered through the gateway (the directory checks its commune), its credentials issued
    sid = "e2e-" + uuid.uuid4().hex[:8]
    r = api.post("/v1/stations", headers=op, json={"id": sid, "kind": "air", "name": "E2E", "unit": "05983",
                                                   "lat": 21.85, "lon": 106.75})
    assert r.status_code == 201 and r.json()["commune"] == "Phường Lương Văn Tri", r.text
    creds = api.post(f"/v1/stations/{sid}/mqtt-credentials", headers=op).json()
    assert creds["topic"] == f"devices/environment/stations/{sid}/observations"

    anonymous, ok = mqtt_connect(mqtt_url, None, None)
    anonymous.loop_stop()
    assert not ok                                           # no credentials, no MQTT

    def connected():
        c, ok = mqtt_connect(mqtt_url, creds["username"], creds["password"])
        if not ok:
            c.loop_stop()
            return None
        return c

    device = wait_for(connected, 30, "the issued credentials to be loaded into nats-server", log=cloud.log)
    at = datetime.now(timezone.utc).replace(microsecond=0)
    device.publish(creds["topic"], json.dumps({"observed_at": at.isoformat(), "pm25": 41.5, "no2": 20}), qos=1).wait_for_publish(15)
    device.loop_stop()
    hour = (at.astimezone(timezone.utc).timestamp() // 3600 + 1) * 3600
    key = datetime.fromtimestamp(hour, timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%dT%H")
    stored = wait_for(lambda: api.get(f"/v1/stations/{sid}/readings", headers=op, params={"hour": key}).json()["readings"],
                      60, "the MQTT reading to be stored", log=cloud.log)
    assert stored[0]["via"] == "mqtt" and stored[0]["v"] == {"pm25": 41.5, "no2": 20.0}

    # the reading's trace starts at the relay (service devices-relay: its CONSUMER span on the
    # devices stream, the event's PRODUCER span) and continues into the function that stored it
    def relay_trace():
        spans = telemetry.read_trace_file(state["trace_file"])
        starts = [sp for sp in spans if sp["name"] == "process devices.environment.>"
                  and sp["attributes"].get("cloudevents.event_subject") == f"stations/{sid}/observations"]
        if not starts:
            return None
        trace = [sp for sp in spans if sp["trace_id"] == starts[0]["trace_id"]]
        return trace if any(sp["service"] == "environment" for sp in trace) else None

    trace = wait_for(relay_trace, 30, "the relay's trace into the environment function", log=cloud.log)
    names = {(sp["service"], sp["name"]) for sp in trace}
    assert ("devices-relay", "process devices.environment.>") in names
    assert ("devices-relay", "publish lscloud.environment.device.message.received") in names

    # revoked (a retired station, a lost device): refused from the next sync of nats-server's users on
    r = api.delete(f"/v1/stations/{sid}/mqtt-credentials", headers=op)
    assert r.status_code == 200 and r.json() == {"station": sid, "username": creds["username"], "revoked": True}
    assert api.delete(f"/v1/stations/{sid}/mqtt-credentials", headers=op).json()["revoked"] is False

    def refused():
        c, ok = mqtt_connect(mqtt_url, creds["username"], creds["password"])
        c.disconnect()
        c.loop_stop()
        return (not ok) or None

    wait_for(refused, 30, "the revoked credentials to be refused", log=cloud.log)

    # the simulator's stations, backfilled over HTTP: hourly AQI and NGSI-LD entities
    hours = wait_for(lambda: [h for h in api.get("/v1/stations/huu-lung-quarry-air/aqi/hourly").json()["items"]
                              if h["aqi"] is not None], 90, "the simulator's backfill", log=cloud.log)
    assert hours[-1]["level"]["vi"]
    entities = api.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved,NoiseLevelObserved",
                                                       "options": "keyValues", "limit": 10}).json()
    assert {"urn:ngsi-ld:NoiseLevelObserved:huu-nghi-gate-noise", "urn:ngsi-ld:AirQualityObserved:dong-dang-air"} \
        <= {e["id"] for e in entities}
