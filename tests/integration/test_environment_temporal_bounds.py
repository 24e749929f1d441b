"""What one NGSI-LD temporal query may cost, counted in store requests (never timed): an answer
holds at most a month of hourly values per attribute (ETSI GS CIM 009 TooManyResults, 403, naming
what to change), a year is asked for aggregated or with lastN, and the days no reading can reach
any more are read once per replica, not on every query."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone

import pytest

import test_environment_ngsi as ngsi_env
from store_calls import counting

# the NGSI suite's station and six hours of readings (lsn-air-1 among them)
directory, bare, env = ngsi_env.directory, ngsi_env.bare, ngsi_env.env

NGSI = "/ngsi-ld/v1"
AIR = "urn:ngsi-ld:AirQualityObserved:lsn-air-1"
URL = f"{NGSI}/temporal/entities/{AIR}"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
MAX_LATE_DAYS = 30   # the environment's default (settings.max_late_days)


def stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def window(days: int, **extra) -> dict:
    end = datetime.now(timezone.utc).replace(microsecond=0)
    return {"timerel": "between", "timeAt": stamp(end - timedelta(days=days)), "endTimeAt": stamp(end), **extra}


def day_reads(calls) -> tuple[int, int]:
    """(listings, GETs) of day documents."""
    return (len([k for k in calls.keys_of("list") if "environment-days" in k]),
            len([k for k in calls.keys_of("get") if "environment-days" in k]))


def too_many(r, field: str) -> dict:
    body = r.get_json()
    assert r.status_code == 403 and r.mimetype == "application/problem+json", (r.status_code, body)
    assert body["type"] == ERRORS + "TooManyResults" and body["detail_vi"], body
    assert [e["field"] for e in body["errors"]] == [field], body
    return body


def year_of_days(station: str = "lsn-air-1") -> None:
    """A full day document for each of the 365 days before the last one the env fixture wrote (its
    readings span two of the province's days when the run is near its midnight: those are kept)."""
    from functions.environment.function.models import Day
    written = list(Day.query(station))
    last = written[-1]
    full = {f"{h:02d}": next(iter(last.hours.values())) for h in range(1, 25)}
    first = date.fromisoformat(last.day)
    there = {d.day for d in written}

    def put(i: int) -> None:
        Day(station, (first - timedelta(days=i)).isoformat(), hours=full).save()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [i for i in range(1, 366) if (first - timedelta(days=i)).isoformat() not in there]))


def test_a_year_of_hourly_values_is_too_many_results(env):
    """The survey's query: a year of raw values (1 LIST + 367 GETs, 1.8 MB, every time) is refused
    before anything is read, naming the end of the window; so is a year aggregated per hour."""
    with counting() as calls:
        body = too_many(env.get(URL, query_string=window(366)), "endTimeAt")
        assert "744" in body["detail"] and "aggrMethods" in body["detail"]
        since = stamp(datetime.now(timezone.utc) - timedelta(days=40))
        too_many(env.get(URL, query_string={"timerel": "after", "timeAt": since}), "timeAt")
        too_many(env.get(URL, query_string=window(366, aggrMethods="avg", aggrPeriodDuration="PT1H")),
                 "aggrPeriodDuration")
        too_many(env.get(URL, query_string=window(32, options="temporalValues")), "endTimeAt")
    assert day_reads(calls) == (0, 0)
    # a month of hourly values, a year per day, or the last n of a year are answered
    assert env.get(URL, query_string=window(31)).status_code == 200
    assert env.get(URL, query_string=window(366, aggrMethods="avg,max", aggrPeriodDuration="P1D")).status_code == 200
    assert env.get(URL, query_string=window(366, aggrMethods="max")).status_code == 200
    r = env.get(URL, query_string=window(366, lastN=744, attrs="pm25"))
    assert r.status_code == 200 and len(r.get_json()["pm25"]) == 6
    assert env.get(URL, query_string=window(30, aggrMethods="avg", aggrPeriodDuration="PT1H")).status_code == 200


def test_settled_days_are_read_once(env):
    """A year aggregated per day reads its 366 days once; asked again, only the days a late reading
    may still reach (max_late_days and a margin) are read again, and the answer is the same."""
    from functions.environment.function.models import Day
    year_of_days()
    q = window(365, aggrMethods="avg,max", aggrPeriodDuration="P1D", attrs="pm25")
    with counting() as first:
        a = env.get(URL, query_string=q)
    assert a.status_code == 200 and len(a.get_json()["pm25"]["avg"]) == 365
    lists, gets = day_reads(first)
    assert lists <= 2 and gets >= 360, (lists, gets)
    with counting() as again:
        b = env.get(URL, query_string=q)
    assert b.status_code == 200 and b.get_json() == a.get_json()
    lists, gets = day_reads(again)
    assert lists == 1 and gets <= MAX_LATE_DAYS + 4, (lists, gets)
    # the recent days are still read from the store: a late reading's summary shows at once
    recent = sorted(d.day for d in Day.query("lsn-air-1"))[-5]
    doc = Day.get("lsn-air-1", recent)
    doc.hours = {h: {**s, "pm25": {**s["pm25"], "max": 999.0}} for h, s in doc.hours.items()}
    doc.save()
    assert 999.0 in [v for v, _, _ in env.get(URL, query_string=q).get_json()["pm25"]["max"]]
    # lastN over the same year shares what is held
    with counting() as last_n:
        r = env.get(URL, query_string=window(365, lastN=24, attrs="pm25"))
    assert r.status_code == 200 and len(r.get_json()["pm25"]) == 24
    assert day_reads(last_n)[1] <= MAX_LATE_DAYS + 4


@pytest.mark.parametrize("depth", [17, 340, 580])   # 580: 598 characters, within type's maxLength (600)
def test_deeply_nested_type_is_bad_request_data(bare, depth):
    r = bare.get(f"{NGSI}/entities?type=" + "(" * depth + "AirQualityObserved")
    body = r.get_json()
    assert r.status_code == 400 and r.mimetype == "application/problem+json", (r.status_code, body)
    assert body["type"] == ERRORS + "BadRequestData" and [e["field"] for e in body["errors"]] == ["type"]
