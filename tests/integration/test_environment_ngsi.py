"""NGSI-LD (ETSI GS CIM 009) on real servers: entities in keyValues form validate against the vendored
Smart Data Models schemas; q, georel=near and paging; the temporal API with aggregation; NGSI-LD errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from test_environment_api import TZ7, Directory, hours_of, op, station

SDM = Path(__file__).resolve().parents[1] / "data" / "smart-data-models"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def validator(model: str) -> Draft202012Validator:
    resources = []
    for path, aliases in (("common-schema.json", ()),
                          ("Environment-schema.json",
                           ("https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/Environment-schema.json",))):
        doc = json.loads((SDM / path).read_text())
        res = Resource.from_contents(doc, default_specification=DRAFT202012)
        resources += [(doc["$id"], res)] + [(a, res) for a in aliases]
    schema = json.loads((SDM / f"{model}.schema.json").read_text())
    return Draft202012Validator(schema, registry=Registry().with_resources(resources),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def directory():
    d = Directory()
    yield d
    d.stop()


@pytest.fixture
def bare(start_function, directory, rt, tokens):
    client = start_function("environment", peer_url_template=directory.template).app.test_client()
    station(client, tokens, "lsn-air-1", "air", "05986", lat=21.8537, lon=106.7615)
    return client


@pytest.fixture
def env(bare, tokens):
    start = (datetime.now(TZ7) - timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    for sid, kind, unit, lat, lon, per_hour, values in (
            ("lsn-air-1", "air", "05986", 21.8537, 106.7615, 46, lambda h: {"pm25": 30.0 + h, "pm10": 50.0, "no2": 40.0}),
            ("gate-noise-1", "noise", "06184", 21.9707, 106.7106, 4, lambda h: {"laeq": 66.0, "lamax": 80.0}),
            ("river-1", "water", "05986", 21.85, 106.75, 4, lambda h: {"ph": 7.1, "do": 6.5, "cod": 12.0})):
        if sid != "lsn-air-1":
            station(bare, tokens, sid, kind, unit, lat=lat, lon=lon)
        r = bare.post(f"/v1/stations/{sid}/observations", json=hours_of(start, 6, per_hour, values), headers=op(tokens))
        assert r.status_code == 200, r.get_json()
    return bare


def test_entities_queries_and_temporal(env):
    """One data set, every read: schemas, q, georel, paging, the temporal API."""
    _key_values_validate_against_the_smart_data_models(env)
    _q_georel_and_paging(env)
    _query_by_id(env)
    _temporal_aggregated_per_hour(env)


def _key_values_validate_against_the_smart_data_models(env):
    for model in ("AirQualityObserved", "NoiseLevelObserved", "WaterQualityObserved"):
        r = env.get(f"/ngsi-ld/v1/entities?type={model}&options=keyValues")
        assert r.status_code == 200 and r.headers["Link"].startswith("<https://raw.githubusercontent.com/smart-data-models")
        entities = r.get_json()
        assert len(entities) == 1
        errors = sorted(validator(model).iter_errors(entities[0]), key=str)
        assert not errors, [e.message for e in errors]
    air = env.get("/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:lsn-air-1?options=keyValues",
                  headers={"Accept": "application/ld+json"})
    body = air.get_json()
    assert air.mimetype == "application/ld+json" and body["@context"][0].endswith("context.jsonld")
    assert body["airQualityIndex"] > 0 and body["airQualityLevel"] in ("good", "moderate", "poor")
    normal = env.get("/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:lsn-air-1").get_json()
    assert normal["pm25"]["type"] == "Property" and normal["location"]["type"] == "GeoProperty"


def _q_georel_and_paging(env):
    assert [e["id"] for e in env.get("/ngsi-ld/v1/entities?type=AirQualityObserved&q=pm25>30;no2<100&options=keyValues").get_json()] \
        == ["urn:ngsi-ld:AirQualityObserved:lsn-air-1"]
    assert env.get("/ngsi-ld/v1/entities?type=AirQualityObserved&q=pm25>500").get_json() == []
    near = env.get("/ngsi-ld/v1/entities", query_string={"georel": "near;maxDistance==2000", "geometry": "Point",
                                                        "coordinates": "[106.7610,21.8540]", "options": "keyValues"}).get_json()
    assert {e["id"].rsplit(":", 1)[1] for e in near} == {"lsn-air-1", "river-1"}      # the gate is ~14 km away
    page = env.get("/ngsi-ld/v1/entities?type=AirQualityObserved,NoiseLevelObserved,WaterQualityObserved&limit=2&offset=1&count=true")
    assert len(page.get_json()) == 2 and page.headers["NGSILD-Results-Count"] == "3"


def _query_by_id(env):
    """5.7.2: ``id`` lists the entities wanted (URIs; one not ours matches nothing)."""
    all_types = "AirQualityObserved,NoiseLevelObserved,WaterQualityObserved"
    r = env.get("/ngsi-ld/v1/entities", query_string={
        "type": all_types, "options": "keyValues", "count": "true",
        "id": "urn:ngsi-ld:AirQualityObserved:lsn-air-1,urn:ngsi-ld:NoiseLevelObserved:gate-noise-1,urn:ngsi-ld:Foo:bar"})
    assert r.status_code == 200 and r.headers["NGSILD-Results-Count"] == "2", r.get_json()
    assert [e["id"] for e in r.get_json()] == ["urn:ngsi-ld:NoiseLevelObserved:gate-noise-1", "urn:ngsi-ld:AirQualityObserved:lsn-air-1"]
    one = env.get("/ngsi-ld/v1/entities?type=AirQualityObserved&id=urn:ngsi-ld:AirQualityObserved:lsn-air-1").get_json()
    assert [e["id"] for e in one] == ["urn:ngsi-ld:AirQualityObserved:lsn-air-1"] and one[0]["pm25"]["type"] == "Property"
    assert env.get("/ngsi-ld/v1/entities?type=WaterQualityObserved&id=urn:ngsi-ld:AirQualityObserved:lsn-air-1").get_json() == []
    # an equivalent URN (RFC 8141: "urn" and the namespace id in any case) names the same entity, as we issue it
    same = env.get("/ngsi-ld/v1/entities?type=AirQualityObserved&id=URN:NGSI-LD:AirQualityObserved:lsn-air-1").get_json()
    assert [e["id"] for e in same] == ["urn:ngsi-ld:AirQualityObserved:lsn-air-1"]
    r = env.get("/ngsi-ld/v1/entities/URN:ngsi-LD:AirQualityObserved:lsn-air-1")
    assert r.status_code == 200 and r.get_json()["id"] == "urn:ngsi-ld:AirQualityObserved:lsn-air-1"


def _temporal_aggregated_per_hour(env):
    now = datetime.now(TZ7)
    r = env.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:lsn-air-1", query_string={
        "timerel": "between", "timeAt": (now - timedelta(hours=8)).isoformat(), "endTimeAt": now.isoformat(),
        "aggrMethods": "avg,max,totalCount", "aggrPeriodDuration": "PT1H", "attrs": "pm25"})
    body = r.get_json()
    assert r.status_code == 200 and set(body) == {"id", "type", "pm25"}
    avg = [v for v, _, _ in body["pm25"]["avg"]]
    assert avg[:2] == [30.0, 31.0] and body["pm25"]["totalCount"][0][0] == 46
    values = env.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:NoiseLevelObserved:gate-noise-1", query_string={
        "timerel": "after", "timeAt": (now - timedelta(hours=8)).isoformat(), "options": "temporalValues"}).get_json()
    assert values["LAeq"]["values"][0][0] == pytest.approx(66.0, abs=0.01)


CASES = [
    ("/ngsi-ld/v1/entities", 400, "BadRequestData", "type"),
    # a type we hold none of is an empty answer (test_environment_ngsi_conformance); one that is no name is not
    ("/ngsi-ld/v1/entities?type=Weather%20Observed", 400, "BadRequestData", "type"),
    ("/ngsi-ld/v1/entities?type=(AirQualityObserved", 400, "BadRequestData", "type"),
    ("/ngsi-ld/v1/entities?type=AirQualityObserved&q=pm25~=(a%2B)%2B$", 400, "BadRequestData", "q"),
    ("/ngsi-ld/v1/entities?type=AirQualityObserved&limit=1000", 400, "BadRequestData", "limit"),
    ("/ngsi-ld/v1/entities?georel=within&geometry=Point&coordinates=[1,2]", 400, "BadRequestData", "georel"),
    # 5.7.2.4: an id list with a URI that is not valid (checked before the query's width)
    ("/ngsi-ld/v1/entities?id=abc", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/entities?type=AirQualityObserved&id=abc", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/entities?type=AirQualityObserved&id=urn:ngsi-ld:AirQualityObserved:lsn-air-1,urn:x%20y", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/entities?type=AirQualityObserved&id=urn:ngsi-ld:AirQualityObserved:lsn-air-1,", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/entities?id=urn:ngsi-ld:AirQualityObserved:lsn-air-1", 400, "BadRequestData", "type"),   # too wide
    # 5.7.1.4: an entity id that is not a URI is BadRequestData; a URI not ours ResourceNotFound
    ("/ngsi-ld/v1/entities/not-a-urn", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/entities/abc", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/entities/%20x", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:a%20b", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:nope", 404, "ResourceNotFound", "id"),
    ("/ngsi-ld/v1/entities/urn:ngsi-ld:Foo:bar", 404, "ResourceNotFound", "id"),
    ("/ngsi-ld/v1/entities/tag:example.org,2026:x", 404, "ResourceNotFound", "id"),
    ("/ngsi-ld/v1/entities/urn:ngsi-ld:NoiseLevelObserved:lsn-air-1", 404, "ResourceNotFound", "id"),   # ours, another type
    # 5.7.3.4: the same for the temporal evolution, before its own parameters
    ("/ngsi-ld/v1/temporal/entities/abc", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/temporal/entities/%20x?timerel=after&timeAt=2026-12-01T00:00:00Z", 400, "BadRequestData", "id"),
    ("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Foo:bar?timerel=after&timeAt=2026-12-01T00:00:00Z", 404, "ResourceNotFound", "id"),
    ("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:nope?timerel=after&timeAt=2026-12-01T00:00:00Z",
     404, "ResourceNotFound", "id"),
    ("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:lsn-air-1?timerel=between&timeAt=2026-12-01T00:00:00Z",
     400, "BadRequestData", "endTimeAt"),
    ("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:lsn-air-1?timerel=after&timeAt=2026-12-01T00:00:00Z"
     "&aggrMethods=stddev", 400, "BadRequestData", "aggrMethods"),
]


def test_errors_are_ngsi_ld_problems(bare):
    for url, status, kind, field in CASES:
        r = bare.get(url)
        body = r.get_json()
        assert r.status_code == status and r.mimetype == "application/problem+json" and body["type"] == ERRORS + kind, (url, body)
        if field:
            assert body["errors"][0]["field"] == field, (url, body)


def test_a_non_uri_entity_id_is_told_in_both_languages(bare):
    """The 400 for a path id that is not a URI names the parameter, in English and Vietnamese."""
    for url in ("/ngsi-ld/v1/entities/abc", "/ngsi-ld/v1/temporal/entities/abc"):
        r = bare.get(url)
        body = r.get_json()
        assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/problem+json"), body
        assert body["type"] == ERRORS + "BadRequestData" and body["title_vi"] == "Dữ liệu yêu cầu không hợp lệ"
        assert body["errors"] == [{"field": "id", "message": body["detail"], "message_vi": body["detail_vi"]}]
        assert "'abc' is not a URI" in body["detail"]
        assert "không phải là một URI" in body["detail_vi"]


def test_a_bad_query_parameter_is_told_in_both_languages(bare):
    """A query parameter out of its range: the detail and the item in English and Vietnamese."""
    r = bare.get("/ngsi-ld/v1/entities?type=AirQualityObserved&limit=1000")
    body = r.get_json()
    assert r.status_code == 400 and body["type"] == ERRORS + "BadRequestData", body
    [item] = body["errors"]
    assert item["field"] == "limit" and "Tham số 'limit'" in item["message_vi"]
    assert body["detail_vi"] == item["message_vi"]
