"""No personal identifier leaks out of a full run: one `lscloud up` with every function and the
simulated bank, the journeys of the other e2e tests (a citizen's permit, a truck's crossing) plus a
driver who declares with a CCCD, a soft-ATM withdrawal and deposit and a reused transfer id. Then
every place a run leaves traces is scanned for the test identifiers (CCCDs, a passport, phone and
account numbers): the object keys in the bucket, every message of every JetStream stream (the
events, kept 30 days and read by every subscribing function; the dead-letter stream; the others),
the dead letters kept in the bucket (a year), the span log, the spans and metrics exported over
OTLP, the function and supervisor logs, and the conflict answer to the reused id.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import nats.js.errors
import pytest

from localcloud import ROOT, OtlpReceiver, running, wait_for
from lscloud.auth import dev_keys, issue_token
from lscloud.bus import Bus
from lscloud.deadletters import DeadLetter
from lscloud.delivery import dlq_stream
from lscloud.local.cloud import cloud_settings
from lscloud.local.servers import WeedMini
from lscloud.store.objects import ObjectStore
from test_border_e2e import test_a_crossing_through_the_local_cloud as crossing_journey
from test_dossiers_e2e import CITIZEN, test_a_permit_from_sign_in_to_result as permit_journey

pytestmark = pytest.mark.e2e

DRIVER_CCCD = "020088002468"          # a registered test citizen, here a Vietnamese driver
DRIVER_PHONE = "0987654321"
CUSTOMER_CCCD = "020190004321"        # the soft-ATM customer
CUSTOMER_ACCOUNT = "9900000007"       # one of the simulated bank's accounts
CUSTOMER_PHONE = "0912345678"
OTHER_CCCD = "020192005678"           # the second body sent under the same transfer id
# the crossing journey's Chinese driver
PASSPORT, FOREIGN_PHONE = "E7654321", "+8613800000000"
IDENTIFIERS = (CITIZEN["id_number"], DRIVER_CCCD, DRIVER_PHONE, CUSTOMER_CCCD, CUSTOMER_ACCOUNT, CUSTOMER_PHONE,
               OTHER_CCCD, PASSPORT, FOREIGN_PHONE)


@pytest.fixture(scope="module")
def otlp():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, otlp):
    with running(tmp_path_factory, "privacy-cloud", [ROOT / "functions", ROOT / "peers"],
                 env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "2000"}) as c:
        yield c


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def bearer(private, sub, role, **claims):
    return {"Authorization": "Bearer " + issue_token(private, sub, role, **claims)}


def driver_with_a_cccd(gw, private):
    """A Vietnamese driver declared by CCCD and phone; the driver lists "my declarations"."""
    ent = bearer(private, "0100109106", "enterprise")
    did = "e2e-" + uuid.uuid4().hex[:12]
    body = {"id": did, "gate": "huu-nghi", "direction": "export",
            "expected_arrival": (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat(),
            "vehicle": {"tractor_plate": "12C-345.67", "type": "truck", "axles": 3, "empty_weight_kg": 9000},
            "driver": {"name": "Nông Văn Thắng", "nationality": "VN", "id_type": "cccd", "id_number": DRIVER_CCCD,
                       "phone": DRIVER_PHONE},
            "enterprise": {"tax_code": "0100109106", "name": "Công ty A"},
            "goods": [{"hs_code": "081090", "description": "Thanh long", "packages": 100, "gross_weight_kg": 5000,
                       "value": 9000, "currency": "USD", "origin": "VN"}],
            "health": {"fever": False, "symptoms": [], "contact_with_case": False}}
    ok(gw.post("/border/v1/declarations", json=body, headers=ent), 201)
    mine = ok(gw.get("/border/v1/declarations", headers=bearer(private, DRIVER_CCCD, "driver")))
    assert did in [d["id"] for d in mine["items"]]


def soft_atm(gw, private) -> str:
    """A withdrawal the bank reserves and the teller commits, a deposit by phone, and the
    withdrawal's id sent again with another customer's data: returns that conflict answer."""
    offices = ok(gw.get("/directory/v1/post-offices", params={"limit": 100}))["items"]
    point = next(o["code"] for o in offices if o.get("soft_atm") and o["kind"] == "commune")
    op, teller = bearer(private, "op", "operator"), bearer(private, f"t-{point}", "teller", unit=point)
    ok(gw.post(f"/softatm/v1/points/{point}/cash-deliveries", json={"id": f"fund-{point}", "amount_vnd": 50_000_000},
               headers=op), 201)
    tid = "w" + uuid.uuid4().hex[:15]
    first = {"id": tid, "bank": "simbank", "amount_vnd": 1_300_000, "account": CUSTOMER_ACCOUNT,
             "customer_id_number": CUSTOMER_CCCD}
    ok(gw.post("/softatm/v1/withdrawals", json=first, headers=teller), 201)
    wait_for(lambda: gw.get(f"/softatm/v1/transfers/{tid}", headers=teller).json()["state"] == "RESERVED",
             30, "the simulated bank's reservation")
    assert ok(gw.post(f"/softatm/v1/withdrawals/{tid}/commit", json={}, headers=teller))["state"] == "COMMITTED"
    again = gw.post("/softatm/v1/withdrawals", headers=teller, json={
        **first, "amount_vnd": 2_000_000, "account": "9900000008", "customer_id_number": OTHER_CCCD})
    assert again.status_code in (409, 422), again.text
    ok(gw.post("/softatm/v1/deposits", json={"id": "d" + uuid.uuid4().hex[:15], "bank": "simbank",
                                              "amount_vnd": 500_000, "phone": CUSTOMER_PHONE,
                                              "customer_id_number": CUSTOMER_CCCD}, headers=teller), 201)
    return again.text


def stream_messages(cloud_state: dict) -> dict[str, bytes]:
    """Every message the cloud's nats-server keeps, by stream (each one its server lists: the
    events, their dead letters, the devices', the key-value buckets): subject, headers and data of
    each, read through the runtime's bus client, nothing consumed."""

    async def read() -> dict[str, bytes]:
        bus = Bus(cloud_settings(cloud_state), name="privacy-scan", create_stream=False)
        await bus.connect()
        try:
            out = {}
            for info in await bus.js.streams_info():
                name, held = info.config.name, []
                for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):   # empty: 0, 0
                    try:
                        m = await bus.js.get_msg(name, seq)
                    except nats.js.errors.NotFoundError:   # deleted: an acked work-queue message, a purged key
                        continue
                    held.append(json.dumps({"subject": m.subject, "headers": m.headers}, ensure_ascii=False).encode())
                    held.append(m.data or b"")
                out[name] = b"\n".join(held)
            return out
        finally:
            await bus.close()

    return asyncio.run(read())


def count(text: str | bytes) -> dict[str, int]:
    if isinstance(text, bytes):
        return {i: text.count(i.encode()) for i in IDENTIFIERS if text.count(i.encode())}
    return {i: text.count(i) for i in IDENTIFIERS if text.count(i)}


def test_no_personal_identifier_in_keys_spans_logs_or_metrics(cloud, otlp):
    private, _ = dev_keys(cloud.state_dir)
    with httpx.Client(base_url=cloud.gateway, timeout=30) as gw:
        ok(gw.get(f"/identity/v1/cccd/{CITIZEN['id_number']}"))
        permit_journey(cloud, gw)
        with httpx.Client(base_url=cloud.gateway + "/border", timeout=30) as api:
            crossing_journey(cloud, api, lambda role, sub=None, agency=None, unit=None: bearer(
                private, sub or f"{role}-e2e", role, agency=agency, unit=unit))
        driver_with_a_cccd(gw, private)
        conflict_answer = soft_atm(gw, private)

    state = cloud.state()
    s3 = state["s3"]
    store = ObjectStore(s3["endpoint"], s3["access_key"], WeedMini.__dataclass_fields__["secret_key"].default)
    listed = [o.key for o in store.list(s3["bucket"], "")]
    keys = "\n".join(listed)
    letters = b"\n".join(store.get(s3["bucket"], k).body for k in listed
                         if k.startswith(DeadLetter.Meta.table + "/"))
    streams = stream_messages(state)   # before the cloud stops: its nats-server goes with it
    cloud.terminate()  # flushes every process's spans and metrics
    logs = "\n".join(p.read_text(errors="replace") for p in sorted((cloud.state_dir / "logs").glob("*.log")))
    found = {
        "object keys": count(keys),
        "span log": count((cloud.state_dir / "traces.jsonl").read_text(errors="replace")),
        "OTLP spans": count(otlp.raw("/v1/traces")),
        "OTLP metrics": count(otlp.raw("/v1/metrics")),
        "function logs": count(logs),
        "supervisor output": count(cloud.output()),
        "conflict answer": count(conflict_answer),
        "dead letters in the bucket": count(letters),
        **{f"stream {name}": count(held) for name, held in sorted(streams.items())},
    }
    print("\nidentifier occurrences:", found)
    # the events stream held the journeys' events (a dossier's, a declaration's), and was read
    assert {state["stream"], dlq_stream(cloud_settings(state))} <= set(streams)
    assert b"vn.langson.dossiers.dossier.done.v1" in streams[state["stream"]]
    assert b"vn.langson.border.truck.exited.v1" in streams[state["stream"]]
    # up ran every function's migration before the functions started (a fresh store: nothing to move)
    for name in ("border", "dossiers", "identity", "softatm", "softatm-bank-sim"):
        assert f"migrated     {name}" in cloud.output()
    assert otlp.count("/v1/metrics") and otlp.count("/v1/traces") and keys.count("\n") > 100
    assert found == {where: {} for where in found}
