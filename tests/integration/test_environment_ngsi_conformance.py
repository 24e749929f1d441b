"""NGSI-LD conformance of the environment function on real servers, held to ETSI GS CIM 009 and to what a
real client sends: the requests below are those the survey saw ngsildclient 0.5.2 send (its connection
check, get, exists, query, count), then type selection, attrs, representations, lastN, content
negotiation, and the paths and methods the broker does not offer."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_environment_api import TZ7, Directory, hours_of, op, station

from lscloud import web
from lscloud.problems import TYPE_BASE

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
NOT_ACCEPTABLE = TYPE_BASE + "not-acceptable"
NGSI = "/ngsi-ld/v1"
AIR = "urn:ngsi-ld:AirQualityObserved:lsn-air-1"
NOISE = "urn:ngsi-ld:NoiseLevelObserved:gate-noise-1"
SDM = "https://smartdatamodels.org/dataModel.Environment/"
# ngsildclient's requests.Session headers; its calls override Accept and drop Content-Type, except exists()
UA = {"User-Agent": "ngsildclient/0.5.2"}
CLIENT_GET = {**UA, "Accept": "application/ld+json"}
CLIENT_PROBE = {**UA, "Accept": "application/json"}
CLIENT_SESSION = {**UA, "Accept": "application/ld+json", "Content-Type": "application/ld+json"}


@pytest.fixture(scope="module")
def directory():
    d = Directory()
    yield d
    d.stop()


@pytest.fixture
def env(start_function, directory, rt, tokens):
    """An air station with six hours of pm25 30, 31 … 35 and a noise station, both with data."""
    client = start_function("environment", peer_url_template=directory.template).app.test_client()
    start = (datetime.now(TZ7) - timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    for sid, kind, unit, lat, lon, per_hour, values in (
            ("lsn-air-1", "air", "05986", 21.8537, 106.7615, 12, lambda h: {"pm25": 30.0 + h, "pm10": 50.0, "no2": 40.0}),
            ("gate-noise-1", "noise", "06184", 21.9707, 106.7106, 4, lambda h: {"laeq": 66.0, "lamax": 80.0})):
        station(client, tokens, sid, kind, unit, lat=lat, lon=lon)
        r = client.post(f"/v1/stations/{sid}/observations", json=hours_of(start, 6, per_hour, values), headers=op(tokens))
        assert r.status_code == 200, r.get_json()
    return client


def problem(r, status: int, kind: str, field: str | None = None) -> dict:
    body = r.get_json()
    assert r.status_code == status and r.mimetype == "application/problem+json" and body["type"] == ERRORS + kind, \
        (r.request.method, r.request.url, r.status_code, body)
    if field:
        assert body["errors"][0]["field"] == field, body
    return body


def test_what_ngsildclient_sends_is_answered(env):
    """The survey's probe: Client() checks the connection with a type of no entity and needs a 2xx;
    then get, exists (by "@context" in the body), query and count."""
    r = env.get(f"{NGSI}/entities?type=None&limit=0&count=true", headers=CLIENT_PROBE)
    assert r.status_code == 200 and r.get_json() == [] and r.headers["NGSILD-Results-Count"] == "0", r.get_json()
    r = env.get(f"{NGSI}/entities/{AIR}", headers=CLIENT_GET)
    assert r.status_code == 200 and r.mimetype == "application/ld+json" and r.get_json()["pm25"]["value"] == 35.0
    assert "@context" in env.get(f"{NGSI}/entities/{AIR}", headers=CLIENT_SESSION).get_json()
    problem(env.get(f"{NGSI}/entities/urn:ngsi-ld:AirQualityObserved:nope", headers=CLIENT_SESSION), 404, "ResourceNotFound")
    r = env.get(f"{NGSI}/entities?type=AirQualityObserved", headers=CLIENT_GET)
    assert [e["id"] for e in r.get_json()] == [AIR]
    r = env.get(f"{NGSI}/entities?limit=0&count=true&type=AirQualityObserved", headers=CLIENT_GET)
    assert r.status_code == 200 and r.get_json() == [] and r.headers["NGSILD-Results-Count"] == "1"
    r = env.get(f"{NGSI}/entities?limit=0&count=true&type=WeatherObserved", headers=CLIENT_GET)
    assert r.status_code == 200 and r.headers["NGSILD-Results-Count"] == "0"


def test_type_selection(env):
    """4.17: short names and the URIs the Smart Data Models context expands them to select the same
    entities; "," and "|" or, ";" and; a type we hold none of selects nothing; "*" everything."""
    def ids(selection):
        r = env.get(f"{NGSI}/entities", query_string={"type": selection, "count": "true"})
        assert r.status_code == 200, r.get_json()
        assert r.headers["NGSILD-Results-Count"] == str(len(r.get_json()))
        return sorted(e["id"] for e in r.get_json())

    for model, entity in (("AirQualityObserved", AIR), ("NoiseLevelObserved", NOISE)):
        assert ids(model) == ids(SDM + model) == [entity]
    assert ids(SDM + "WaterQualityObserved") == ids("WaterQualityObserved") == []
    assert ids("AirQualityObserved|NoiseLevelObserved") == ids(f"{SDM}AirQualityObserved,NoiseLevelObserved") == sorted([AIR, NOISE])
    assert ids("(AirQualityObserved;NoiseLevelObserved)") == [] and ids("(AirQualityObserved;AirQualityObserved)") == [AIR]
    assert ids("*") == sorted([AIR, NOISE]) and ids("WeatherObserved") == [] and ids("urn:x:Other") == []
    for malformed in ("Weather Observed", "(AirQualityObserved", "AirQualityObserved)", "Air<x>", ",AirQualityObserved"):
        problem(env.get(f"{NGSI}/entities", query_string={"type": malformed}), 400, "BadRequestData", "type")


def test_attrs_select_and_project(env):
    """attrs: "List of Attributes to be matched by the Entity and included in the response. If the
    Entity does not have any of the Attributes in attrs, then a 404 Not Found shall be retrieved"."""
    r = env.get(f"{NGSI}/entities/{AIR}?attrs=nothere")
    problem(r, 404, "ResourceNotFound", "attrs")
    assert "nothere" in r.get_json()["detail"] and r.get_json()["detail_vi"]
    assert set(env.get(f"{NGSI}/entities/{AIR}?attrs=pm25,nothere").get_json()) == {"id", "type", "pm25"}
    assert env.get(f"{NGSI}/entities/{AIR}", query_string={"attrs": SDM + "pm25", "options": "keyValues"}).get_json() \
        == {"id": AIR, "type": "AirQualityObserved", "pm25": 35.0}
    # on a query, with a type or alone: the entities having any of them, with only those
    r = env.get(f"{NGSI}/entities?type=AirQualityObserved,NoiseLevelObserved&attrs=LAeq&count=true&options=keyValues")
    assert r.get_json() == [{"id": NOISE, "type": "NoiseLevelObserved", "LAeq": pytest.approx(66.0, abs=0.01)}]
    assert r.headers["NGSILD-Results-Count"] == "1"
    r = env.get(f"{NGSI}/entities?attrs=pm25,LAeq&options=keyValues")
    assert r.status_code == 200 and {e["id"]: set(e) for e in r.get_json()} == {
        AIR: {"id", "type", "pm25"}, NOISE: {"id", "type", "LAeq"}}
    assert env.get(f"{NGSI}/entities?type=WaterQualityObserved&attrs=pm25").get_json() == []
    problem(env.get(f"{NGSI}/entities?attrs=pm25,a%20b"), 400, "BadRequestData", "attrs")
    # the temporal evolution of attributes the entity has none of
    problem(env.get(f"{NGSI}/temporal/entities/{AIR}", query_string={
        "timerel": "after", "timeAt": (datetime.now(TZ7) - timedelta(hours=8)).isoformat(), "attrs": "LAeq"}),
        404, "ResourceNotFound", "attrs")


def test_representations(env):
    """6.3.7: "keyValues" (or "simplified" as a synonym); "concise" is lossless without the
    Attributes' "type" members."""
    key_values = env.get(f"{NGSI}/entities/{AIR}?options=keyValues").get_json()
    assert env.get(f"{NGSI}/entities/{AIR}?options=simplified").get_json() == key_values
    assert env.get(f"{NGSI}/entities?type=AirQualityObserved&options=simplified").get_json() == [key_values]
    normalized = env.get(f"{NGSI}/entities/{AIR}").get_json()
    concise = env.get(f"{NGSI}/entities/{AIR}?options=concise").get_json()
    assert concise["pm25"] == {"value": 35.0, "observedAt": normalized["pm25"]["observedAt"]}
    assert concise["name"] == "Trạm lsn-air-1" and concise["location"] == {"value": normalized["location"]["value"]}
    assert set(concise) == set(normalized)
    assert not [k for k, v in concise.items() if k not in ("id", "type") and isinstance(v, dict) and "type" in v]
    # lossless: each concise attribute says what the normalized one does
    for k, v in normalized.items():
        if k not in ("id", "type"):
            c = concise[k] if isinstance(concise[k], dict) else {"value": concise[k]}
            assert {m: x for m, x in v.items() if m != "type"} == c, k


def test_last_n(env):
    """lastN: "Only the last n instances, per Attribute, per Entity (under the specified time interval)
    shall be retrieved": the most recent, listed oldest first like every temporal answer here."""
    since = (datetime.now(TZ7) - timedelta(hours=8)).isoformat()
    url = f"{NGSI}/temporal/entities/{AIR}"
    full = env.get(url, query_string={"timerel": "after", "timeAt": since, "attrs": "pm25"}).get_json()["pm25"]
    assert [i["value"] for i in full] == [30.0, 31.0, 32.0, 33.0, 34.0, 35.0]
    r = env.get(url, query_string={"timerel": "after", "timeAt": since, "attrs": "pm25,pm10", "lastN": 2})
    body = r.get_json()
    assert r.status_code == 200 and body["pm25"] == full[-2:] and len(body["pm10"]) == 2
    values = env.get(url, query_string={"timerel": "after", "timeAt": since, "attrs": "pm25", "lastN": 3,
                                        "options": "temporalValues"}).get_json()
    assert [v for v, _ in values["pm25"]["values"]] == [33.0, 34.0, 35.0]
    aggregated = env.get(url, query_string={"timerel": "after", "timeAt": since, "attrs": "pm25", "lastN": 2,
                                            "options": "aggregatedValues", "aggrMethods": "max,avg",
                                            "aggrPeriodDuration": "PT1H"}).get_json()["pm25"]
    assert [v for v, _, _ in aggregated["avg"]] == [34.0, 35.0] and len(aggregated["max"]) == 2
    for bad in (0, -1, "x"):
        problem(env.get(url, query_string={"timerel": "after", "timeAt": since, "lastN": bad}), 400, "BadRequestData", "lastN")


ACCEPT = [(None, "application/json"), ("*/*", "application/json"), ("application/json", "application/json"),
          ("application/ld+json", "application/ld+json"), ("application/ld+json;q=0, application/json", "application/json"),
          ("application/json;q=0.5, application/ld+json", "application/ld+json"),
          ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/json")]


def test_content_negotiation(env):
    """Accept is read with its q-values; a type we do not serve (GeoJSON among them) is 406."""
    now = datetime.now(TZ7)
    for url in (f"{NGSI}/entities/{AIR}", f"{NGSI}/entities?type=AirQualityObserved",
                f"{NGSI}/temporal/entities/{AIR}?timerel=before&timeAt={now.strftime('%Y-%m-%dT%H:%M:%SZ')}"):
        for accept, media in ACCEPT:
            r = env.get(url, headers={"Accept": accept} if accept else {})
            assert r.status_code == 200 and r.mimetype == media, (url, accept, r.status_code, r.mimetype)
            assert ("Link" in r.headers) == (media == "application/json") and "Accept" in r.headers["Vary"]
            body = r.get_json()
            first = body[0] if isinstance(body, list) else body
            assert ("@context" in first) == (media == "application/ld+json"), (url, accept)
        for accept in ("application/geo+json", "text/html", "application/json;q=0, application/ld+json;q=0"):
            r = env.get(url, headers={"Accept": accept})
            body = r.get_json()
            # NGSI-LD defines no error type for 406 (Table 5.5.2-1): the platform's own, not one under ERRORS
            assert r.status_code == 406 and r.mimetype == "application/problem+json" and body["type"] == NOT_ACCEPTABLE, body
            assert body["errors"][0]["field"] == "Accept" and body["title_vi"] and body["detail_vi"]


UNOFFERED = [
    ("POST", "/entities", 422, "OperationNotSupported"),                      # Create Entity
    ("DELETE", f"/entities/{AIR}", 422, "OperationNotSupported"),             # Delete Entity
    ("PATCH", f"/entities/{AIR}", 422, "OperationNotSupported"),              # Merge Entity
    ("PUT", f"/entities/{AIR}", 422, "OperationNotSupported"),                # Replace Entity
    ("POST", f"/entities/{AIR}/attrs", 422, "OperationNotSupported"),         # Append Attributes
    ("PATCH", f"/entities/{AIR}/attrs/pm25", 422, "OperationNotSupported"),   # Partial Attribute update
    ("POST", "/entityOperations/upsert", 422, "OperationNotSupported"),       # what ngsildclient's upsert sends
    ("POST", "/entityOperations/query", 422, "OperationNotSupported"),
    ("GET", "/types", 422, "OperationNotSupported"),
    ("GET", "/attributes/pm25", 422, "OperationNotSupported"),
    ("GET", "/subscriptions", 422, "OperationNotSupported"),
    ("POST", "/subscriptions", 422, "OperationNotSupported"),
    ("GET", "/temporal/entities?type=AirQualityObserved", 422, "OperationNotSupported"),   # Query Temporal Evolution
    ("DELETE", f"/temporal/entities/{AIR}", 422, "OperationNotSupported"),
    ("GET", "/jsonldContexts", 422, "OperationNotSupported"),
    ("GET", "/nothing-here", 404, "ResourceNotFound"),
    ("POST", "/nothing/here", 404, "ResourceNotFound"),
    ("GET", "/entities/", 404, "ResourceNotFound"),
]


@pytest.fixture
def bare(start_function, directory, rt, tokens):
    client = start_function("environment", peer_url_template=directory.template).app.test_client()
    station(client, tokens, "lsn-air-1", "air", "05986")
    return client


def test_what_the_broker_does_not_offer_is_told_in_ngsi_ld_terms(bare):
    """The API's own problem types for the rest of /ngsi-ld/v1/: OperationNotSupported ("It is used to
    indicate that the operation is not available") for an NGSI-LD operation this read-only broker
    does not offer, ResourceNotFound for a path that is no NGSI-LD resource; with the JSON bodies
    NGSI-LD writes carry, or none."""
    for method, path, status, kind in UNOFFERED + [("HEAD", "/types", 422, "OperationNotSupported"),
                                                   ("GET", "", 404, "ResourceNotFound")]:
        for headers, data in (({"Content-Type": "application/ld+json"}, '[{"id": "urn:ngsi-ld:X:1", "type": "X"}]'),
                              ({"Content-Type": "application/json"}, '{"id": "urn:ngsi-ld:X:1"}'), ({}, None)):
            if method == "HEAD":
                r = bare.open(NGSI + path, method=method, headers=headers, data=data)
                assert r.status_code == status and r.mimetype == "application/problem+json", path
                continue
            body = problem(bare.open(NGSI + path, method=method, headers=headers, data=data), status, kind)
            assert body["title_vi"] and body["detail_vi"] and method in body["detail"], body
    assert bare.get(f"{NGSI}/entities/{AIR}").status_code == 200      # what is offered still is


def test_a_filtered_query_reads_each_station_once(env):
    """q (or attrs) read each station's latest hour to filter, then read it again to answer the
    page: the same store reads twice for every entity answered."""
    from store_calls import counting

    plain = "/ngsi-ld/v1/entities?type=AirQualityObserved"
    env.get(plain)   # warmed: the reference data read once
    with counting() as unfiltered:
        assert len(env.get(plain).get_json()) == 1
    with counting() as filtered:
        assert len(env.get(plain + "&q=pm25>30").get_json()) == 1
    assert filtered["get"] + filtered["list"] == unfiltered["get"] + unfiltered["list"], (filtered, unfiltered)


# -- CIM 009 4.8 (observedAt) and 4.9 (the query language) ------------------------------------------

def _instant(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    assert at.tzinfo is not None, text
    return at


@pytest.mark.parametrize("options", ["normalized", "concise"])
def test_observed_at_is_a_date_time_the_hours_end(env, options):
    """4.8: "Temporal Properties in NGSI-LD shall be represented based on the DateTime data type". A
    noise station's dateObserved is the Smart Data Model's interval start/end; its observedAt is the
    hour's end (dateObservedTo), the instant the temporal representation gives that hour."""
    kv = env.get(f"{NGSI}/entities/{NOISE}?options=keyValues").get_json()
    assert "/" in kv["dateObserved"] and kv["dateObserved"].endswith("/" + kv["dateObservedTo"])
    e = env.get(f"{NGSI}/entities/{NOISE}", query_string={"options": options}).get_json()
    stamps = {k: v["observedAt"] for k, v in e.items() if isinstance(v, dict) and "observedAt" in v}
    assert set(stamps) == {"LAeq", "LAmax"}, e
    assert {_instant(t) for t in stamps.values()} == {_instant(kv["dateObservedTo"])}, stamps
    series = env.get(f"{NGSI}/temporal/entities/{NOISE}", query_string={
        "timerel": "after", "timeAt": (datetime.now(TZ7) - timedelta(hours=8)).isoformat(), "attrs": "LAeq"}).get_json()
    assert _instant(series["LAeq"][-1]["observedAt"]) == _instant(stamps["LAeq"])


SCHEMAS = web.SchemaSet(Path(__file__).resolve().parents[2] / "schemas")


def test_the_entity_schema_refuses_an_observed_at_that_is_no_date_time(env):
    """The answer schema checked every attribute it lists, but the measured ones (LAeq, pm25 …) fell
    under "additionalProperties": true, so an interval in their observedAt passed; every attribute
    is now an NgsiLdAttribute, whose observedAt is a date-time."""
    validator = SCHEMAS.validator("environment/ngsi-entity.json")
    for options in ("normalized", "concise", "keyValues"):
        for entity in (AIR, NOISE):
            body = env.get(f"{NGSI}/entities/{entity}", query_string={"options": options}).get_json()
            assert not [e.message for e in validator.iter_errors(body)], (entity, options)
    body = env.get(f"{NGSI}/entities/{NOISE}").get_json()
    body["LAeq"]["observedAt"] = body["dateObservedFrom"]["value"] + "/" + body["dateObservedTo"]["value"]
    assert [list(e.absolute_path) for e in validator.iter_errors(body)] == [["LAeq"]]


def test_q_is_the_ngsi_ld_query_language(env):
    """4.9: the grammar "shall be supported by implementations": existence (EXAMPLE 0), Range and
    ValueList, associations in parentheses, a dotted path with an unquoted DateTime (EXAMPLE 8),
    patterns; date-times compare as instants ("the order relation considered shall be a temporal
    one"), so 14:00Z written as 21:00+07:00 is the same hour."""
    def ids(q, **extra):
        r = env.get(f"{NGSI}/entities", query_string={"q": q, **extra})
        assert r.status_code == 200, (q, r.get_json())
        return sorted(e["id"] for e in r.get_json())

    observed = env.get(f"{NGSI}/entities/{AIR}?options=keyValues").get_json()["dateObserved"]
    local = _instant(observed).astimezone(TZ7).isoformat()
    assert ids("pm25") == [AIR] and ids("LAeq") == [NOISE] and ids("pm25|LAeq") == sorted([AIR, NOISE])
    assert ids("pm25==30..40") == ids("pm25==35,36") == ids("(pm25>1)") == ids("((pm25>50|no2<45);pm25<40)") == [AIR]
    assert ids("pm25==36..40") == ids("pm25==34,36") == [] and ids("LAeq!=60..70") == [] and ids("LAeq==60..70") == [NOISE]
    assert ids("pm25.observedAt>=2017-12-24T12:00:00Z") == [AIR] and ids("LAeq.observedAt>=2017-12-24T12:00:00Z") == [NOISE]
    assert ids(f'dateObserved>="{local}"', type="AirQualityObserved") == [AIR]
    assert ids(f'dateObserved>"{local}"', type="AirQualityObserved") == []
    assert ids(f"pm25.observedAt=={local}") == [AIR]
    assert ids('typeofLocation~="^out"') == [AIR] and ids("typeofLocation!~=door") == []
    for malformed in ("(pm25>1", "pm25>abc", "pm25==", "pm25>1..2", "pm25.observedAt>=2017-12-24T12:00:00",
                      "pm25~=(a+)+$", "name~=(x|x)*y"):
        body = problem(env.get(f"{NGSI}/entities", query_string={"q": malformed}), 400, "BadRequestData", "q")
        assert body["detail_vi"], body
