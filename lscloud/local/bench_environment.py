"""`lscloud bench environment`: readings ingested per second over HTTP and over MQTT, against raw S3
PUTs, and a 30-day hourly temporal query (NGSI-LD) against raw GETs — all measured in the same run.

- **HTTP, one reading a request** (a device posting each minute) and **HTTP, 60 a request** (a
  gateway posting an hour): ``POST /environment/v1/stations/{id}/observations`` through the gateway
  (checks, hour and day documents under ``If-Match``, the CloudEvent on NATS).
- **MQTT**: QoS 1 publishes with the station's own credentials, timed until every reading is stored
  (nats-server → devices stream → relay → dispatcher → the function's ``/events`` → the store).
- **Raw PUT**: create-only PUTs of a reading-sized JSON document (boto3), the store's own speed.
- **30-day query**: ``/ngsi-ld/v1/temporal/entities/…?aggrMethods=avg,max&aggrPeriodDuration=PT1H``
  over 30 days of data against raw GETs of the same 31 day documents it reads.
Figures are printed, nothing is asserted.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import httpx

from .bench import local_cloud
from .bench_load import BenchError, run_load, s3_create_call
from .cloud import cloud_settings


def bench_environment(*, requests: int = 300, concurrency: int = 8, mqtt_messages: int = 300,
                      functions_dir: Path = Path("functions"), reuse_state_dir: Path | None = None,
                      max_seconds: float = 60.0, queries: int = 20) -> int:
    import paho.mqtt.client as mqtt

    from lscloud.auth import dev_keys, issue_token
    from lscloud.store.objects import ObjectStore

    if requests < 1 or concurrency < 1 or mqtt_messages < 1:
        raise BenchError("--requests, --concurrency and --mqtt-messages must be at least 1")
    for name in ("environment", "directory"):
        if not (functions_dir / name / "func.yaml").is_file():
            raise BenchError(f"no {name} function in {functions_dir}")
    run = uuid.uuid4().hex[:6]
    sid = f"bench-{run}"
    with local_cloud(functions_dir.resolve(), reuse_state_dir, only=("directory", "environment")) as cloud:
        settings = cloud_settings(cloud)
        gw = cloud["gateway"]["url"] + "/environment"
        mqtt_url = (cloud.get("mqtt") or {}).get("url")
        private = dev_keys(settings.state_dir)[0]
        op = {"Authorization": "Bearer " + issue_token(private, "bench-operator", "operator", ttl_s=7200)}
        http = httpx.Client(trust_env=False, timeout=60.0)
        # one station per client, as in the field (a station's device posts one reading after another);
        # readings go back 20 days from now, one minute apart, each client its own minutes
        base = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(days=20)
        ids = [f"{sid}-{k}" for k in range(concurrency + 1)]
        for s_id in ids:
            r = http.post(f"{gw}/v1/stations", headers=op, json={"id": s_id, "kind": "air", "name": "Bench", "unit": "05986",
                                                                 "lat": 21.85, "lon": 106.76})
            if r.status_code != 201:
                raise BenchError(f"could not register a bench station: {r.status_code} {r.text[:200]}")
        free = list(ids[:-1])
        lock = threading.Lock()

        def reading(i: int) -> dict:
            t = base + timedelta(minutes=i)
            return {"observed_at": t.isoformat(), "pm25": 20 + i % 17 + 0.1 * (i % 3), "pm10": 40 + i % 23, "no2": 30 + i % 7}

        def post_call(per: int, offset: int):
            def make():
                with lock:
                    station = free.pop()
                    free.insert(0, station)
                head = {"Authorization": "Bearer " + issue_token(private, f"bench-{station}", "device", unit=station, ttl_s=7200)}
                client = httpx.Client(trust_env=False, timeout=60.0)
                minute = iter(range(offset, 10 ** 7, per))

                def call():
                    first = next(minute)
                    r = client.post(f"{gw}/v1/stations/{station}/observations", headers=head,
                                    json=[reading(first + k) for k in range(per)])
                    if r.status_code != 200 or r.json()["accepted"] != per:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")
                return call
            return make

        print(f"… {requests} HTTP requests of 1 reading and {max(1, requests // 10)} of 60, at concurrency {concurrency}",
              flush=True)
        run_load("warm-up", post_call(1, 0), min(10, requests), 2, 30)
        one = run_load("HTTP, 1 reading per request", post_call(1, 100), requests, concurrency, max_seconds)
        sixty = run_load("HTTP, 60 readings per request", post_call(60, 5_000), max(1, requests // 10), concurrency, max_seconds)
        raw = run_load("S3 PUT If-None-Match: * of a reading-sized JSON (boto3)",
                       s3_create_call(settings, f"bench-raw/{run}", lambda i: json.dumps(reading(i)).encode(),
                                      concurrency=concurrency), requests, concurrency, max_seconds)
        sid = ids[-1]

        mqtt_rate = mqtt_note = None
        if mqtt_url:
            creds = http.post(f"{gw}/v1/stations/{sid}/mqtt-credentials", headers=op).json()
            u = urlparse(mqtt_url)
            start_min = 20_000
            client = None
            deadline = time.monotonic() + 60   # the supervisor loads new credentials into nats-server within 5 s
            while client is None and time.monotonic() < deadline:
                connected = threading.Event()
                accepted = {}

                def on_connect(c, userdata, flags, reason, props, accepted=accepted, connected=connected):
                    accepted["ok"] = not reason.is_failure
                    connected.set()

                c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{run}")
                c.username_pw_set(creds["username"], creds["password"])
                c.on_connect = on_connect
                c.connect(u.hostname, u.port, keepalive=60)
                c.loop_start()
                if connected.wait(10) and accepted.get("ok"):
                    client = c
                else:
                    c.loop_stop()
                    c.disconnect()
                    time.sleep(1)
            if client is None:
                raise BenchError("the MQTT listener did not accept the issued credentials within 60 s")
            t0 = time.perf_counter()
            infos = [client.publish(creds["topic"], json.dumps(reading(start_min + k)), qos=1) for k in range(mqtt_messages)]
            for info in infos:
                info.wait_for_publish(30)
            published = time.perf_counter() - t0
            first = base + timedelta(minutes=start_min)
            last = first + timedelta(minutes=mqtt_messages)
            deadline = time.monotonic() + max_seconds * 4
            stored = 0
            while time.monotonic() < deadline:
                items = http.get(f"{gw}/v1/stations/{sid}/aqi/hourly", params={
                    "from": (first - timedelta(hours=1)).isoformat(), "to": (last + timedelta(hours=1)).isoformat()}).json()["items"]
                stored = sum(i["readings"].get("pm25", 0) for i in items)
                if stored >= mqtt_messages:
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - t0
            client.loop_stop()
            client.disconnect()
            mqtt_rate = stored / elapsed if elapsed else 0.0
            mqtt_note = f"{stored}/{mqtt_messages} stored in {elapsed:.1f} s (published in {published:.1f} s)"

        # 30 days of one reading per hour, then the temporal query against raw GETs of its day documents
        now = datetime.now(timezone.utc).replace(microsecond=0)
        month = [{"observed_at": (now - timedelta(hours=h, minutes=1)).isoformat(), "pm25": 15 + h % 40, "pm10": 30 + h % 50}
                 for h in range(30 * 24 - 1, -1, -1)]
        qsid = f"{sid}-q"
        http.post(f"{gw}/v1/stations", headers=op, json={"id": qsid, "kind": "air", "name": "Bench 30 days", "unit": "05986",
                                                         "lat": 21.85, "lon": 106.76})
        qdev = {"Authorization": "Bearer " + issue_token(private, "bench-device-q", "device", unit=qsid, ttl_s=7200)}
        for i in range(0, len(month), 250):
            r = http.post(f"{gw}/v1/stations/{qsid}/observations", headers=qdev, json=month[i:i + 250])
            if r.status_code != 200:
                raise BenchError(f"backfill failed: {r.status_code} {r.json().get('errors')}")
        params = {"timerel": "between", "timeAt": (now - timedelta(days=30)).isoformat(), "endTimeAt": now.isoformat(),
                  "aggrMethods": "avg,max", "aggrPeriodDuration": "PT1H", "attrs": "pm25"}
        url = f"{gw}/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:{qsid}"

        def query_call():
            client = httpx.Client(trust_env=False, timeout=60.0)

            def call():
                r = client.get(url, params=params)
                if r.status_code != 200 or len(r.json()["pm25"]["avg"]) < 700:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")
            return call

        objects = ObjectStore.from_settings(settings)
        day_keys = [o.key for o in objects.list(settings.bucket, f"environment-days/{qsid.replace('-', '~2D')}/")]

        def raw_days_call():
            def call():
                for k in day_keys:
                    objects.get(settings.bucket, k)
            return call

        query = run_load("30-day hourly temporal query (avg,max per PT1H)", query_call, queries, 2, max_seconds)
        raw_get = run_load(f"raw GETs of its {len(day_keys)} day documents, one after another", raw_days_call, queries, 2,
                           max_seconds)

    print()
    print(f"lscloud bench environment — {os.cpu_count()} CPU(s), concurrency {concurrency}")
    rows = [("HTTP, 1 reading per request", one.rps, one), ("HTTP, 60 readings per request", sixty.rps * 60, sixty),
            (raw.name, raw.rps, raw)]
    width = max(len(n) for n, _, _ in rows + [(query.name, 0, 0), (raw_get.name, 0, 0)])
    print(f"{'ingestion'.ljust(width)}  {'readings/s':>10}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for name, rate, r in rows:
        print(f"{name.ljust(width)}  {rate:10.1f}  {r.pct(0.5):7.1f}  {r.pct(0.99):7.1f}  {r.errors:6d}"
              + (f"  ({r.first_error})" if r.errors else ""))
    if mqtt_rate is not None:
        print(f"{'MQTT QoS 1, 1 reading per message'.ljust(width)}  {mqtt_rate:10.1f}  {'':7}  {'':7}  {'':6}  ({mqtt_note})")
    else:
        print("MQTT: the cloud has no MQTT listener (external NATS): not measured")
    print(f"{'query'.ljust(width)}  {'per s':>10}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    for r in (query, raw_get):
        print(f"{r.name.ljust(width)}  {r.rps:10.2f}  {r.pct(0.5):7.1f}  {r.pct(0.99):7.1f}  {r.errors:6d}"
              + (f"  ({r.first_error})" if r.errors else ""))
    if raw.rps and one.rps:
        print(f"a reading posted alone costs about {raw.rps / one.rps:.1f} raw PUTs of time; batched by 60, "
              f"{raw.rps / (sixty.rps * 60):.2f}" if sixty.rps else "")
    if query.rps and raw_get.rps:
        print(f"the 30-day query takes {raw_get.rps / query.rps:.1f}× the time of reading its day documents raw")
    return 1 if one.ok == 0 else 0
