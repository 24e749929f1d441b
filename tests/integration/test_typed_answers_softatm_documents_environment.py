"""The answers of softatm, documents and environment, on real weed mini + nats-server, match the
schemas their /openapi.json documents for them, in the media type they were sent in (NGSI-LD's
application/ld+json too; a file's own media type), read through the document's own components as a
generated client reads them: operators' and banks' soft ATM answers, documents' audit trail, batch
and register book, and the NGSI-LD entities in each representation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator

from documents_support import make_pdf
from lscloud import rulesyntax, runtime
from softatm_support import DirectoryStub
from test_environment_api import TZ7, Directory, hours_of, op, station
from test_softatm_api import K1, Bank, tell_dead_letter, transfer_event

pytestmark = pytest.mark.integration

POINT = "bd-06040"
AGENCY = "ubnd-tinh"
PDF = {"Content-Type": "application/pdf"}


def documented(app):
    """``check(response)``: the answer's status and media type are documented for its operation in
    the app's /openapi.json and, for JSON, the body matches that media type's schema; returns the
    parsed body (the bytes for any other media type)."""
    doc = app.test_client().get("/openapi.json").get_json()
    urls = app.url_map.bind("localhost")

    def check(response):
        method, path = response.request.method, response.request.path
        assert 200 <= response.status_code < 300, (method, path, response.status_code, response.get_data(as_text=True))
        rule, _ = urls.match(path, method, return_rule=True)
        answer = doc["paths"][rulesyntax.openapi_path(rule.rule)][method.lower()]["responses"].get(str(response.status_code))
        assert answer and response.mimetype in answer.get("content", {}), (method, path, response.mimetype, answer)
        if not response.is_json:
            return response.get_data()
        schema = {"allOf": [answer["content"][response.mimetype]["schema"]], "components": doc["components"]}
        body = json.loads(response.get_data())
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in
                    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).iter_errors(body)]
        assert not problems, (method, path, problems)
        return body

    return check


@pytest.fixture(scope="module")
def post_offices():
    stub = DirectoryStub()
    yield stub
    stub.stop()


def test_the_soft_atms_operator_and_bank_answers_are_the_documented_ones(start_function, post_offices, tmp_path, tokens):
    app = start_function("softatm", peer_url_template=post_offices.template, state_dir=str(tmp_path)).app
    runtime.current().bus.ensure_stream()
    client, check, vcb = app.test_client(), documented(app), Bank(app.test_client())
    operator, teller = tokens("operator", "operator-typed"), tokens("teller", "teller-typed", unit=POINT)
    assert client.post("/v1/banks", headers=operator, json={"code": "vcb", "name": "Vietcombank", "keys": [K1],
                                                            "webhook_url": "http://127.0.0.1:9/hook"}).status_code == 201
    assert check(client.get("/v1/banks", headers=operator))["items"][0]["code"] == "vcb"

    fund = {"id": "fund-typed-1", "amount_vnd": 50_000_000}
    delivered = check(client.post(f"/v1/points/{POINT}/cash-deliveries", json=fund, headers=operator))
    again = client.post(f"/v1/points/{POINT}/cash-deliveries", json=fund, headers=operator)
    assert again.status_code == 200 and again.get_json() == delivered   # the documented 200: the first body
    assert check(client.post(f"/v1/points/{POINT}/cash-collections", json={"id": "collect-typed-1", "amount_vnd": 1_000_000},
                             headers=operator))["kind"] == "collection"

    def withdrawal(tid):
        return {"id": tid, "bank": "vcb", "amount_vnd": 2_000_000, "account": "0011223344",
                "customer_id_number": "020090001234"}

    assert client.post("/v1/withdrawals", json=withdrawal("w-typed-000001"), headers=teller).status_code == 201
    assert vcb.call("POST", "/v1/bank/withdrawals/w-typed-000001/reserve", {"bank_reference": "VCB-1"}).status_code == 200
    committed = client.post("/v1/withdrawals/w-typed-000001/commit", json={}, headers=teller).get_json()["committed_at"]
    assert client.post("/v1/withdrawals", json=withdrawal("w-typed-000002"), headers=teller).status_code == 201
    assert client.post("/v1/transfers/w-typed-000002/abort", json={"reason": "customer left"}, headers=teller).status_code == 200
    day = datetime.fromisoformat(committed.replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()

    assert check(vcb.call("GET", f"/v1/bank/transfers?from={day}"))["total"] == 2
    assert check(vcb.call("GET", f"/v1/bank/settlements/{day}"))["count"] == 1
    assert check(client.get(f"/v1/settlements/vcb/{day}", headers=operator))["net_position_vnd"] == 2_000_000
    assert b"w-typed-000001" in check(vcb.call("GET", f"/v1/bank/settlements/{day}?format=csv"))
    theirs = {"id": "rec-typed-1", "day": day, "transfers": [{"id": "w-typed-000001", "kind": "withdrawal", "amount_vnd": 2_000_000},
                                                             {"id": "w-not-ours-1", "kind": "deposit", "amount_vnd": 1000}]}
    rec = check(vcb.call("POST", "/v1/bank/reconciliations", theirs))
    assert [m["problem"] for m in rec["mismatches"]] == ["only-bank"] and rec["matched"] == 1
    replayed = vcb.call("POST", "/v1/bank/reconciliations", theirs)
    assert replayed.status_code == 200 and replayed.get_json() == rec

    check(client.post("/v1/sweep", headers=operator))
    for query in ({}, {"full": "true"}):
        assert check(client.get("/v1/ledger/verify", query_string=query, headers=operator))["ok"]

    # a webhook about a transfer that moved past it: settled without sending
    told = tell_dead_letter(client, runtime.current(), transfer_event("w-typed-000002"))
    assert told.status_code == 200, told.get_data(as_text=True)
    letter = told.get_json()["id"]
    assert check(client.get("/v1/webhooks/dead-letters", headers=operator))["items"][0]["settled"] is None
    settled = check(client.post(f"/v1/webhooks/dead-letters/{letter}/redeliver", headers=operator))
    assert settled["settled"]["action"] == "skipped"
    assert check(client.get("/v1/webhooks/dead-letters?state=settled", headers=operator))["items"][0]["id"] == letter


def test_documents_audit_batch_register_book_and_files_are_the_documented_ones(start_function, peers, tokens):
    app = start_function("documents", peer_url_template=peers.template,
                         function_env={"DOCUMENTS_PUBLIC_URL": "http://127.0.0.1:9/documents"}).app
    client, check = app.test_client(), documented(app)
    officer = tokens("officer", "cv-typed", agency=AGENCY, unit="vp")

    def upload(**query):
        r = client.post("/v1/documents", query_string={"title": "Quyết định", "type": "quyet-dinh", **query},
                        data=make_pdf(), headers={**officer, **PDF})
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()["id"]

    ids = [upload(), upload()]
    done = check(client.post("/v1/batches", json={"documents": ids + ["0" * 32], "name": "Nguyễn Văn An"}, headers=officer))
    assert done["signed"] == 2 and done["results"][2]["error"]["field"] == "/documents/2"
    year = check(client.post(f"/v1/documents/{ids[0]}/registration", json={}, headers=officer))["registration"]["year"]
    incoming = upload(direction="incoming")
    assert client.post(f"/v1/documents/{incoming}/registration", json={}, headers=officer).status_code == 200

    trail = check(client.get(f"/v1/documents/{ids[0]}/audit", headers=officer))
    assert [e["action"] for e in trail["entries"]] == ["draft", "sign", "issue"]
    for direction in ("outgoing", "incoming"):
        book = check(client.get(f"/v1/registers/{year}/{direction}", headers=officer))
        assert [e["number"] for e in book["entries"]] == [1]
    assert check(client.get(f"/v1/registers/{year}/outgoing", query_string={"confidential": "true"},
                            headers=officer))["entries"] == []
    assert check(client.get(f"/v1/documents/{ids[0]}/file", headers=officer)).startswith(b"%PDF")
    assert b"BEGIN CERTIFICATE" in check(client.get("/v1/trust/root.pem"))
    assert check(client.get("/v1/trust/crl/root.crl"))


@pytest.fixture(scope="module")
def units():
    d = Directory()
    yield d
    d.stop()


def test_ngsi_ld_entities_in_every_representation_are_the_documented_ones(start_function, units, rt, tokens):
    app = start_function("environment", peer_url_template=units.template).app
    client, check = app.test_client(), documented(app)
    start = (datetime.now(TZ7) - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
    for sid, kind, values in (("lsn-air-1", "air", lambda h: {"pm25": 30.0 + h, "pm10": 50.0, "no2": 40.0}),
                              ("gate-noise-1", "noise", lambda h: {"laeq": 66.0, "lamax": 80.0}),
                              ("river-1", "water", lambda h: {"ph": 7.1, "do": 6.5, "cod": 12.0})):
        station(client, tokens, sid, kind, "05986")
        r = client.post(f"/v1/stations/{sid}/observations", json=hours_of(start, 4, 4, values), headers=op(tokens))
        assert r.status_code == 200, r.get_json()
    station(client, tokens, "quiet-air-1", "air", "05986")      # no reading yet
    types = "AirQualityObserved,NoiseLevelObserved,WaterQualityObserved"
    ld = {"Accept": "application/ld+json"}
    for options in ("", "keyValues", "concise", "normalized"):
        for headers in ({}, ld):
            found = check(client.get("/ngsi-ld/v1/entities", query_string={"type": types, "options": options},
                                     headers=headers))
            assert len(found) == 4 and ("@context" in found[0]) == bool(headers)
            for sid in ("urn:ngsi-ld:AirQualityObserved:lsn-air-1", "urn:ngsi-ld:WaterQualityObserved:river-1",
                        "urn:ngsi-ld:AirQualityObserved:quiet-air-1"):
                assert check(client.get(f"/ngsi-ld/v1/entities/{sid}", query_string={"options": options},
                                        headers=headers))["id"] == sid
    assert check(client.get("/ngsi-ld/v1/entities?attrs=LAeq&count=true"))[0]["type"] == "NoiseLevelObserved"
    now = datetime.now(TZ7)
    window = {"timerel": "between", "timeAt": (now - timedelta(hours=6)).isoformat(), "endTimeAt": now.isoformat()}
    for sid in ("urn:ngsi-ld:AirQualityObserved:lsn-air-1", "urn:ngsi-ld:NoiseLevelObserved:gate-noise-1"):
        for extra in ({}, {"options": "temporalValues"}, {"aggrMethods": "avg,max,totalCount", "aggrPeriodDuration": "PT1H"},
                      {"lastN": 2}):
            for headers in ({}, ld):
                series = check(client.get(f"/ngsi-ld/v1/temporal/entities/{sid}", query_string={**window, **extra},
                                          headers=headers))
                assert len(series) > 2, series     # values, not just id and type


NEW_ANSWERS = ["softatm/bank-list.json", "softatm/transfer-list.json", "softatm/cash-movement.json", "softatm/sweep.json",
               "softatm/ledger-verification.json", "softatm/settlement.json", "softatm/reconciliation-result.json",
               "softatm/dead-letter.json", "softatm/dead-letter-list.json", "documents/audit-trail.json",
               "documents/batch-result.json", "documents/register-book.json", "environment/ngsi-entity.json",
               "environment/ngsi-temporal-entity.json"]


@pytest.mark.parametrize("name", NEW_ANSWERS)
def test_these_answer_schemas_leave_room_for_new_members(name):
    def closed(node) -> list:
        if isinstance(node, dict):
            return ([node] if node.get("additionalProperties") is False else []) + \
                [c for v in node.values() for c in closed(v)]
        return [c for v in node for c in closed(v)] if isinstance(node, list) else []

    root = Path(__file__).resolve().parents[2] / "schemas"
    assert closed(json.loads((root / name).read_text(encoding="utf-8"))) == [], name
