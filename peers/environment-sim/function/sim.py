"""The simulator's feeder: a backfill over HTTP at start, then one reading a minute per station —
over MQTT (QoS 1, the station's own credentials) or HTTP (a device token for its station).

Load: four stations at one reading a minute is four small messages a minute; the backfill is a dozen
batches once. The device tokens are minted with the local cloud's dev key (as `lscloud token` does):
this peer exists only in the local cloud.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

from lscloud import config, devices, http_client, peers
from lscloud.auth import dev_keys, issue_token

from .stations import STATIONS, reading

log = logging.getLogger("environment-sim")


class SimSettings:
    def __init__(self, settings):
        env = settings.function_env
        self.interval_s = max(1, int(env.get("ENVIRONMENT_SIM_INTERVAL_S", "60")))
        self.backfill_hours = max(0, int(env.get("ENVIRONMENT_SIM_BACKFILL_HOURS", "12")))


def user(station: dict) -> str:
    return f"env-{station['id']}"


def topic(station: dict) -> str:
    return devices.topic("environment", "stations", station["id"], "observations")


def passwords_file_hint() -> list[str]:
    return [s["id"] for s in STATIONS if s["via"] == "mqtt"]


def passwords(state_dir) -> dict[str, str]:
    """The MQTT stations' passwords, created once under <state dir>/keys (0600)."""
    path = Path(state_dir) / "keys" / "environment-sim-mqtt.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        tmp = path.with_name(f".env-sim.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({sid: secrets.token_urlsafe(24) for sid in passwords_file_hint()}, f)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return json.loads(path.read_text())


class Feeder:
    def __init__(self, settings: config.Settings):
        self.settings = settings
        self.sim = SimSettings(settings)
        self.sent = {s["id"]: {"http": 0, "mqtt": 0, "errors": 0} for s in STATIONS}
        self._stop = threading.Event()
        self._mqtt: dict[str, object] = {}
        self._tokens: dict[str, tuple[float, str]] = {}
        self.http = http_client.Client(timeout_s=20)

    def start(self) -> "Feeder":
        threading.Thread(target=self._run, name="environment-sim", daemon=True).start()
        return self

    def status(self) -> dict:
        return {"interval_s": self.sim.interval_s, "mqtt_url": self.settings.mqtt_url or None,
                "stations": [{"id": s["id"], "kind": s["kind"], "via": s["via"], "sent": self.sent[s["id"]]}
                             for s in STATIONS]}

    # -- sending --

    def _token(self, station: dict) -> str:
        exp, tok = self._tokens.get(station["id"], (0.0, ""))
        if time.time() > exp - 300:
            private, _ = dev_keys(Path(self.settings.state_dir))
            tok = issue_token(private, f"sim-{station['id']}", "device", unit=station["id"], ttl_s=3600,
                              issuer=self.settings.jwt_issuer, audience=self.settings.jwt_audience)
            self._tokens[station["id"]] = (time.time() + 3600, tok)
        return tok

    def post(self, station: dict, items: list[dict]) -> bool:
        url = peers.peer_url("environment", self.settings) + f"/v1/stations/{station['id']}/observations"
        try:
            r = self.http.post(url, json.dumps(items).encode(), headers={
                "Authorization": f"Bearer {self._token(station)}", "Content-Type": "application/json"})
        except http_client.NoAnswer:
            self.sent[station["id"]]["errors"] += 1
            return False
        ok = r.status_code == 200
        self.sent[station["id"]]["http" if ok else "errors"] += len(items) if ok else 1
        return ok

    def _client(self, station: dict):
        import paho.mqtt.client as mqtt

        c = self._mqtt.get(station["id"])
        if c is None:
            u = urlparse(self.settings.mqtt_url)
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{station['id']}")
            c.username_pw_set(user(station), passwords(self.settings.state_dir)[station["id"]])
            c.connect_async(u.hostname, u.port or 1883, keepalive=60)
            c.loop_start()
            self._mqtt[station["id"]] = c
        return c

    def publish(self, station: dict, item: dict) -> None:
        if not self.settings.mqtt_url:
            self.post(station, [item])   # an external NATS without MQTT: HTTP instead
            return
        info = self._client(station).publish(topic(station), json.dumps(item), qos=1)
        self.sent[station["id"]]["mqtt" if info.rc == 0 else "errors"] += 1

    # -- the loop --

    def _wait_for_environment(self) -> None:
        url = peers.peer_url("environment", self.settings) + f"/v1/stations/{STATIONS[0]['id']}"
        while not self._stop.is_set():
            try:
                if self.http.get(url).status_code == 200:
                    return
            except http_client.NoAnswer:
                pass
            self._stop.wait(2)

    def _run(self) -> None:
        self._wait_for_environment()
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        minutes = self.sim.backfill_hours * 60
        for s in STATIONS:
            items = [{"observed_at": (t := now - timedelta(minutes=m)).isoformat(), **reading(s, t)}
                     for m in range(minutes, 0, -1)]
            for i in range(0, len(items), 500):
                self.post(s, items[i:i + 500])
        while not self._stop.wait(self.sim.interval_s - time.time() % self.sim.interval_s):
            t = datetime.now(timezone.utc).replace(microsecond=0)
            for s in STATIONS:
                item = {"observed_at": t.isoformat(), **reading(s, t)}
                try:
                    self.publish(s, item) if s["via"] == "mqtt" else self.post(s, [item])
                except Exception:  # noqa: BLE001 - the next minute tries again
                    log.exception("sending for %s failed", s["id"])
