"""A partner's photo through Open311, on real weed mini + nats-server: uploaded with the public
``POST /v1/photos``, its URL sent as the request's ``media_url``. The report kept the URL alone, so
nothing claimed the upload and the sweep of unclaimed uploads deleted it two days later: every reader
of the report met a dead link. The function's own photo URL is claimed now, and kept in the report's
photos as the app's report keeps its own; any other URL is kept as a URL, never fetched."""

from __future__ import annotations

import importlib
import io
import time
from urllib.parse import urlencode, urlsplit

import pytest

from digital_support import ok
from lscloud import runonce, runtime

UNCLAIMED_S = importlib.import_module("lscloud.store.blobs").UNCLAIMED_S   # store.blobs is the function

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DONG_DANG = "06184"


@pytest.fixture
def reports(start_function, peers):
    return start_function("reports", peer_url_template=peers.template)


@pytest.fixture
def client(reports):
    return reports.app.test_client()


def upload(client, shade: int) -> dict:
    from PIL import Image

    raw = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 120, 60)).save(raw, "JPEG")
    return ok(client.post("/v1/photos", data=raw.getvalue(), headers={"Content-Type": "image/jpeg"}), 201)


def post(client, key: str, media_url: str, headers: dict | None = None):
    form = {"api_key": key, "service_code": "MT-RAC-THAI", "lat": "21.8537", "long": "106.7610",
            "attribute[commune]": DONG_DANG, "description": "Rác đổ trộm", "media_url": media_url}
    return client.post("/open311/v2/requests.json", headers=FORM | (headers or {}), data=urlencode(form))


def sweep_two_days_on() -> None:
    rt = runtime.current()
    runonce.sweep(rt.objects, rt.settings.bucket, rt.settings, now=time.time() + UNCLAIMED_S + 60)


def kept(client, sha: str) -> bool:
    return client.get(f"/v1/photos/{sha}").status_code == 200


def test_a_partners_photo_sent_as_media_url_is_kept_with_its_report(client, reports, tokens, rt):
    key = ok(client.post("/v1/api-keys", json={"name": "FixMyStreet Lạng Sơn"}, headers=tokens("operator")),
             201)["api_key"]
    direct, via_gateway, foreign = upload(client, 10), upload(client, 20), upload(client, 30)
    assert direct["url"] == f"{reports.settings.public_url()}/v1/photos/{direct['sha256']}"

    rid = ok(post(client, key, direct["url"]), 201)[0]["service_request_id"]
    # the URL as the partner reached the function: the gateway's host and prefix
    gateway = {"X-Forwarded-Host": "gw.langson.example", "X-Forwarded-Prefix": "/reports",
               "X-Forwarded-Proto": "https"}
    gw_url = f"https://gw.langson.example/reports/v1/photos/{via_gateway['sha256']}"
    rid_gw = ok(post(client, key, gw_url, gateway), 201)[0]["service_request_id"]
    # the same path on another host is someone else's URL: kept as it is, nothing claimed
    elsewhere = f"https://cdn.example.org/reports/v1/photos/{foreign['sha256']}"
    rid_foreign = ok(post(client, key, elsewhere), 201)[0]["service_request_id"]

    mine = ok(client.get(f"/v1/reports/{rid}", headers=tokens("operator")))
    assert mine["photos"] == [direct["sha256"]] and mine["media_url"] == direct["url"]
    through = ok(client.get(f"/v1/reports/{rid_gw}", headers=tokens("operator")))
    # kept as the platform's address of the photo, as the app's report keeps it (never a request's headers)
    assert through["photos"] == [via_gateway["sha256"]]
    assert through["media_url"] == f"{reports.settings.public_url()}/v1/photos/{via_gateway['sha256']}"
    theirs = ok(client.get(f"/v1/reports/{rid_foreign}", headers=tokens("operator")))
    assert theirs["photos"] == [] and theirs["media_url"] == elsewhere

    sweep_two_days_on()
    assert kept(client, direct["sha256"]) and kept(client, via_gateway["sha256"])
    assert not kept(client, foreign["sha256"])   # no report claimed it: an unclaimed upload, swept
    (listed,) = ok(client.get(f"/open311/v2/requests/{rid}.json"))
    assert client.get(urlsplit(listed["media_url"]).path.removeprefix("/reports")).status_code == 200


def test_a_media_url_of_ours_that_names_no_upload_is_refused_and_nothing_is_written(client, reports, tokens, rt):
    from functions.reports.function.models import Report

    key = ok(client.post("/v1/api-keys", json={"name": "Đối tác"}, headers=tokens("operator")), 201)["api_key"]
    never = f"{reports.settings.public_url()}/v1/photos/{'ab' * 32}"
    r = post(client, key, never)
    assert r.status_code == 400 and "media_url" in r.get_json()[0]["description"], r.get_data(as_text=True)
    assert not list(Report.scan(limit=5))


@pytest.mark.parametrize("spelt", ["{base}/v1/photos/{sha}?size=display", "{base}/v1/photos/{SHA}",
                                   "{base}/v1/photos/../photos/{sha}", "{base}//v1/photos/{sha}",
                                   "{base}/v1/photos/{sha}/", "{base}/v1/photos/{sha}#x"])
def test_our_photo_url_spelt_another_way_is_a_url_like_any_other(client, reports, tokens, rt, spelt):
    key = ok(client.post("/v1/api-keys", json={"name": "Đối tác"}, headers=tokens("operator")), 201)["api_key"]
    photo = upload(client, 40)
    url = spelt.format(base=reports.settings.public_url(), sha=photo["sha256"], SHA=photo["sha256"].upper())
    rid = ok(post(client, key, url), 201)[0]["service_request_id"]
    doc = ok(client.get(f"/v1/reports/{rid}", headers=tokens("operator")))
    assert doc["photos"] == [] and doc["media_url"] == url
