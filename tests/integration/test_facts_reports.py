"""The reports function on real weed mini + nats-server: its handling deadlines are placeholders
nobody checked against a published service level, and every answer that gives one says so —
/v1/services, a report's own view, and the Open311 ``service_notice``."""

from __future__ import annotations

import pytest

from digital_support import ok

pytestmark = pytest.mark.integration

DONG_DANG = "06184"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(start_function, peers):
    return start_function("reports", peer_url_template=peers.template).app.test_client()


def test_placeholder_deadlines_are_served_as_unverified(client, tokens):
    services = ok(client.get("/v1/services"))["items"]
    assert services and all(s["deadline_verified"] is False and s["deadline_source"] for s in services)

    key = ok(client.post("/v1/api-keys", json={"name": "Ứng dụng đối tác"}, headers=tokens.header("operator")), 201)
    r = client.post("/open311/v2/requests.json", headers=FORM,
                    data=f"api_key={key['api_key']}&service_code=ANTT&lat=21.85&long=106.76&attribute[commune]={DONG_DANG}")
    created = ok(r, 201)[0]
    assert "chưa đối chiếu" in created["service_notice"] and "not checked" in created["service_notice"]
    rid = created["service_request_id"]
    one = ok(client.get(f"/open311/v2/requests/{rid}.json"))[0]
    assert one["service_notice"] == created["service_notice"]
    assert ok(client.get(f"/v1/reports/{rid}"))["deadline_verified"] is False
