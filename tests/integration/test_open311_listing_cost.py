"""What anyone's Open311 listing costs the store, on real weed mini + nats-server, held by counting the
store's calls (never by timing them).

``GET requests`` read the window's newest 2,000 reports and then filtered them: a ``service_code``
naming nothing, or ``status=closed`` in a province of open reports, was 2,000 GETs for an empty
answer, anonymous, unlimited. ``GET servicerequestupdates`` of a window before the updates index read
up to 1,000 reports' trails. Now a listing reads only the reports it can answer with, the answers
byte for byte what they were, and each caller is limited (REPORTS_OPEN311_LIST_LIMIT)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from digital_support import ok
from store_calls import counting

pytestmark = pytest.mark.integration

DONG_DANG = "06184"
MAX = 20          # open311.MAX_REQUESTS for these tests: the window holds three times as many reports
N = 3 * MAX
CODES = ("TTDT-LAN-CHIEM", "MT-RAC-THAI", "GT-HU-HONG")


@pytest.fixture
def reports(start_function, peers):
    return start_function("reports", peer_url_template=peers.template, function_env={
        "REPORTS_OPEN311_LIST_LIMIT": "1000"})


@pytest.fixture
def client(reports):
    return reports.app.test_client()


@pytest.fixture
def seeded(client, tokens, rt, monkeypatch):
    """N reports received over the last hour, newest first: codes in turn, every fourth closed (its
    open index entry gone, as a close leaves it), with the index entries a received report has."""
    from lscloud.statemachine import iso
    from lscloud.workdays import local_day

    from functions.reports.function import open311
    from functions.reports.function.models import OpenReport, Report, ReportByDay

    monkeypatch.setattr(open311, "MAX_REQUESTS", MAX)
    first = ok(client.post("/v1/reports", headers=tokens("citizen", "020088330001"), json={
        "service_code": CODES[0], "lat": 21.8540, "long": 106.7612, "commune": DONG_DANG}), 201)
    src = Report.get(first["id"])
    base = datetime.now(timezone.utc) - timedelta(minutes=2)
    for i in range(1, N):
        rid, at = first["id"][:-4] + f"{i:04d}", iso(base - timedelta(seconds=i))
        status = "closed" if i % 4 == 0 else "submitted"
        Report(rid, status=status, data={**src.data, "id": rid, "requested_at": at, "day": local_day(at),
                                         "service_code": CODES[i % 3], "status": status}).save()
        ReportByDay(local_day(at), f"{at}_{rid}").save()
        if status != "closed":
            OpenReport("open", rid).save()
    return first["id"]


def old_answer(query: dict, fmt: str) -> bytes:
    """The answer as the listing made it: the window's newest 2 * MAX reports read, then filtered."""
    from functions.reports.function import open311, queries, views
    from functions.reports.function.states import open311_status

    start, end = open311.window(query)
    codes, status = open311.listed(query, "service_code"), open311.listed(query, "status")
    docs = [d for d in queries.in_window(start, end, 2 * MAX) if (codes is None or d["service_code"] in codes)
            and (status is None or open311_status(d["status"]) in status)][:MAX]
    return open311.render(fmt, "service_requests", [views.open311(d) for d in docs])[0]


def report_reads(calls) -> int:
    return len([k for k in calls.keys_of("get") if k.startswith("reports/")])


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_listing_reads_only_the_reports_it_answers_with_and_answers_as_before(client, seeded, fmt):
    end = (datetime.now(timezone.utc) + timedelta(minutes=1)).replace(microsecond=0)
    window = {"end_date": end.isoformat().replace("+00:00", "Z")}
    cases = [({"service_code": "NO-SUCH-CODE"}, 0),           # names no report: nothing read
             ({"service_code": "NO-SUCH-CODE,ALSO-NONE"}, 0),
             ({"status": "closed"}, len([i for i in range(2 * MAX) if i and i % 4 == 0])),   # the closed, only
             ({"status": "open"}, MAX),
             ({}, MAX),                                         # all match: MAX read, not 2 * MAX
             ({"status": "open,closed"}, MAX),
             ({"service_code": CODES[1]}, 2 * MAX)]             # nothing tells a code but the report: as before
    for query, reads in cases:
        query = window | query
        with counting() as calls:
            r = client.get(f"/open311/v2/requests.{fmt}", query_string=query)
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.data == old_answer(query, fmt), query
        assert report_reads(calls) == reads, (query, report_reads(calls))
        assert calls["put"] <= 1   # the caller's count, nothing else written


def test_anonymous_listings_are_limited_per_caller_in_open311s_error_format(start_function, peers, rt):
    client = start_function("reports", peer_url_template=peers.template,
                            function_env={"REPORTS_OPEN311_LIST_LIMIT": "3"}).app.test_client()
    me, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
    for path in ("/open311/v2/requests.json?service_code=NO-SUCH-CODE", "/open311/v2/requests.xml",
                 "/open311/v2/servicerequestupdates.json"):
        ok(client.get(path, headers=other))
        assert client.get(path, headers=me).status_code == 200
    with counting() as calls:
        r = client.get("/open311/v2/requests.json?status=closed", headers=me)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.get_json()[0]["code"] == 429 and r.content_type.startswith("application/json")
    assert not [k for k in calls.keys_of("list") if not k.startswith("reports-rate/")]   # refused before listing
    r = client.get("/open311/v2/servicerequestupdates.xml", headers=me)
    assert r.status_code == 429 and r.data.startswith(b'<?xml') and b"<code>429</code>" in r.data
    assert client.get("/open311/v2/requests/20260101-00000000.json", headers=me).status_code == 404   # one read: not counted


def test_updates_of_a_window_before_the_index_read_no_trail_once_migrated(client, tokens, rt):
    from functions.reports.function import lists
    from functions.reports.function.migrate import migrate

    officer = tokens("commune-officer", "cb-dd", unit=DONG_DANG)
    filed = [ok(client.post("/v1/reports", headers=tokens("citizen", f"02008833{n:04d}"), json={
        "service_code": CODES[0], "lat": 21.8540 + n / 1000, "long": 106.7612, "commune": DONG_DANG}), 201)["id"]
        for n in range(3)]
    ok(client.post(f"/v1/reports/{filed[0]}/actions/acknowledge", headers=officer))
    since = datetime.now(timezone.utc) - timedelta(days=30)
    query = {"start_date": since.replace(microsecond=0).isoformat().replace("+00:00", "Z")}
    with counting() as before:
        first = client.get("/open311/v2/servicerequestupdates.json", query_string=query)
    assert [k for k in before.keys_of("list") if k.startswith("reports-audit/")]   # the trails, before the migration

    migrate(rt)
    with counting() as calls:
        again = client.get("/open311/v2/servicerequestupdates.json", query_string=query)
    assert ok(first) and again.data == first.data
    assert not [k for k in calls.log if k[1].startswith("reports-audit/")], calls
    assert lists.backfilled() is not None
    assert sorted({u["service_request_id"] for u in again.get_json()}) == sorted(filed)
