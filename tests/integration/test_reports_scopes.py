"""Who reads what of a report, each scope held by a second caller of the same role: the reporter and
the report's agency everything (the reporter's contact, to call back), the public a masked view, the
platform's operators the masked view of any report — hidden ones too — for moderation.

``access.yaml`` says the reporter and the agency only see the reporter's contact; operators were
answered the full view, with the reporter's name, phone and e-mail and the text unmasked."""

from __future__ import annotations

import json

import pytest
from digital_support import ok
from test_reports_api import CCCD, DONG_DANG, PHONE, client, reports  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

NAME, EMAIL = "Hoàng Văn Tú", "tu.hoang@example.vn"
CONTACT = (NAME, PHONE, EMAIL, CCCD)


def filed(http, tokens) -> str:
    return ok(http.post("/v1/reports", headers=tokens("citizen", CCCD), json={
        "service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
        "reporter": {"name": NAME, "phone": PHONE, "email": EMAIL},
        "description": f"Ổ gà lớn trước nhà, gọi {NAME} {PHONE} hoặc {EMAIL}"}), 201)["id"]


def no_contact(view: dict):
    text = json.dumps(view, ensure_ascii=False)
    assert "reporter" not in view and "token" not in view, sorted(view)
    assert not [c for c in CONTACT if c in text], text


def test_an_operator_reads_a_report_without_the_reporters_contact(client, tokens):  # noqa: F811 - the imported fixtures
    rid = filed(client, tokens)
    operator = ok(client.get(f"/v1/reports/{rid}", headers=tokens("operator", "op-1")))
    no_contact(operator)
    assert "***" in operator["description"] and operator["allowed_actions"] and operator["transfers"] == []
    # the reporter and the agency: everything, the contact among it
    for who in (tokens("citizen", CCCD), tokens("officer", "cb-sxd", agency="so-xay-dung")):
        full = ok(client.get(f"/v1/reports/{rid}", headers=who))
        assert full["reporter"] == {"name": NAME, "phone": PHONE, "email": EMAIL} and PHONE in full["description"]


def test_another_citizen_and_another_agency_read_the_public_view(client, tokens):  # noqa: F811 - the imported fixtures
    """Guard (held before): a second caller of the reporter's role, and an officer of an agency the
    report is not routed to, read what anyone reads; neither may move or rate it (404)."""
    rid = filed(client, tokens)
    other_citizen = tokens("citizen", "020099009999")
    other_agency = tokens("officer", "cb-ca", agency="cong-an-tinh")
    for who in (other_citizen, other_agency):
        view = ok(client.get(f"/v1/reports/{rid}", headers=who))
        no_contact(view)
        assert "allowed_actions" not in view
    assert client.post(f"/v1/reports/{rid}/actions/acknowledge", headers=other_agency).status_code == 404
    r = client.post(f"/v1/reports/{rid}/actions/transfer", json={"agency": "so-xay-dung", "reason": "x"},
                    headers=other_agency)
    assert r.status_code == 404
    assert client.post(f"/v1/reports/{rid}/actions/reopen", json={"reason": "x"}, headers=other_citizen).status_code == 404
    assert client.post(f"/v1/reports/{rid}/rating", json={"rating": 1}, headers=other_citizen).status_code == 404


def test_moderation_answers_and_reads_without_the_contact_hidden_reports_too(client, tokens):  # noqa: F811 - the imported fixtures
    """An operator's transfer and hide were answered with the full view; a hidden report is a 404
    to the public but still the operators' to read, masked."""
    rid = filed(client, tokens)
    operator = tokens("operator", "op-1")
    moved = ok(client.post(f"/v1/reports/{rid}/actions/transfer",
                           json={"agency": "cong-an-tinh", "reason": f"Gây rối, báo {PHONE}"}, headers=operator))
    no_contact(moved)
    assert moved["agency"] == "cong-an-tinh" and moved["transfers"][0]["to_agency"] == "cong-an-tinh"
    hidden = ok(client.post(f"/v1/reports/{rid}/actions/hide", json={"reason": "Lời lẽ xúc phạm"}, headers=operator))
    no_contact(hidden)
    assert hidden["state"] == "hidden"
    assert client.get(f"/v1/reports/{rid}").status_code == 404
    assert client.get(f"/v1/reports/{rid}", headers=tokens("citizen", "020099009999")).status_code == 404
    read = ok(client.get(f"/v1/reports/{rid}", headers=tokens("operator", "op-2")))
    no_contact(read)
    assert read["state"] == "hidden" and "***" in read["description"]
    # the agency it went to still reads everything
    assert ok(client.get(f"/v1/reports/{rid}", headers=tokens("officer", "cb-ca", agency="cong-an-tinh")))["reporter"]
