"""What the dossiers' events say of the people in them, on real weed mini + nats-server: an
applicant (a citizen, a household business under its owner's personal number) is named by a
pseudonym and the dossier's owner not at all, since the stream keeps an event 30 days and its dead
letter a year for every function that reads it; the audit trail keeps who acted in clear; officers
stay in clear, and a result signed in the documents function still finishes the dossier."""

from __future__ import annotations

import json
import uuid

import pytest

from functions.dossiers.function.models import Dossier
from lscloud import events, pseudonyms
from lscloud.auth import delivery_headers
from lscloud.delivery import tail

from dossiers_support import CITIZEN, CITIZEN2
from test_dossiers_api import app, client, dossier_peers, fn, idem, ok, rt, submit_birth, tok, upload  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

CLERK = {"sub": "clerk-05983", "agency": "ubnd-05983", "unit": "05983"}


def events_of(settings, *dossier_ids: str) -> list[dict]:
    return [e["event"] for e in tail(settings, 200) if e["event"].get("subject") in dossier_ids]


def by_fact(evts: list[dict], dossier_id: str) -> dict[str, dict]:
    return {e["type"].split(".", 3)[3].removesuffix(".v1"): e["data"] for e in evts if e["subject"] == dossier_id}


def test_applicants_are_pseudonyms_in_the_events_and_in_clear_in_the_audit_trail(
        client, tok, rt):  # noqa: F811 - the imported fixtures
    cit, clerk = tok("citizen", sub=CITIZEN), tok("officer", **CLERK)
    _, r = submit_birth(client, cit)
    did = ok(r, 201)["id"]
    ok(client.post(f"/v1/dossiers/{did}/start", headers=idem(clerk)))
    ok(client.post(f"/v1/dossiers/{did}/supplement-requests", headers=idem(clerk),
                   json={"missing": [{"code": "giay-chung-sinh", "name": "Giấy chứng sinh bản chính"}],
                         "message": "Bổ sung giấy chứng sinh bản chính"}))
    again = upload(client, cit, "giay-chung-sinh-" + uuid.uuid4().hex)
    ok(client.post(f"/v1/dossiers/{did}/supplements", headers=idem(cit),
                   json={"documents": [{"code": "giay-chung-sinh", "sha256": again}]}))
    # a household business files under its owner's personal number (its tax code), then cancels
    business = tok("enterprise", sub=CITIZEN2)
    _, r = submit_birth(client, business)
    hid = ok(r, 201)["id"]
    ok(client.post(f"/v1/dossiers/{hid}/cancel", json={"reason": "Nộp nhầm"}, headers=idem(business)))

    evts = events_of(rt.settings, did, hid)
    assert CITIZEN not in json.dumps(evts) and CITIZEN2 not in json.dumps(evts)
    assert all("owner" not in e["data"] for e in evts)
    mine, theirs = by_fact(evts, did), by_fact(evts, hid)
    citizen = {"kind": "citizen", "sub": pseudonyms.pseudonym("dossiers-actors", CITIZEN)}
    assert mine["dossier.received"]["actor"] == mine["supplement.provided"]["actor"] == citizen
    household = {"kind": "enterprise", "sub": pseudonyms.pseudonym("dossiers-actors", CITIZEN2)}
    assert theirs["dossier.received"]["actor"] == theirs["dossier.cancelled"]["actor"] == household
    officer = {"kind": "officer", **CLERK}
    assert mine["processing.started"]["actor"] == mine["supplement.requested"]["actor"] == officer

    # the dossier's own accountable record names who acted, as they acted
    trail = ok(client.get(f"/v1/dossiers/{did}/audit", headers=tok("auditor")))["items"]
    actors = {e["fact"]: e["actor"] for e in trail if e["fact"]}
    assert actors["dossier.received"] == actors["supplement.provided"] == {"kind": "citizen", "sub": CITIZEN}
    assert actors["processing.started"] == officer
    trail = ok(client.get(f"/v1/dossiers/{hid}/audit", headers=tok("auditor")))["items"]
    assert {e["actor"]["sub"] for e in trail if e["fact"] in ("dossier.received", "dossier.cancelled")} == {CITIZEN2}


def test_a_result_signed_by_the_steps_officer_finishes_the_dossier_naming_them(
        client, tok, rt):  # noqa: F811 - the imported fixtures
    """The documents function's ``document.issued`` names its signing officer in clear: the dossier
    checks them against its last step, finishes, and its own event names them as they are."""
    clerk = tok("officer", **CLERK)
    _, r = submit_birth(client, tok("citizen", sub=CITIZEN))
    did = ok(r, 201)["id"]
    ok(client.post(f"/v1/dossiers/{did}/start", headers=idem(clerk)))
    for _ in range(2):   # to the last of the three steps, the signing one
        ok(client.post(f"/v1/dossiers/{did}/steps/complete", json={}, headers=idem(clerk)))
    data = {"dossier_id": did, "document_id": "doc-" + uuid.uuid4().hex[:12], "sha256": "ab" * 32,
            "agency": CLERK["agency"], "direction": "outgoing", "status": "issued", "doc_type": "ket-qua",
            "signatures": 1, "number": 12, "symbol": "GKS", "display": "Giấy khai sinh số 12", "from": "signed",
            "to": "issued", "action": "issue", "at": "2025-09-01T08:00:00Z", "actor": {"kind": "officer", **CLERK},
            "reason": None, "details": {}}
    ev = events.new_event("vn.langson.documents.document.issued.v1", "/documents", data, id=f"issued-{uuid.uuid4().hex}")
    headers, body = events.to_binary_http(ev)
    r = client.post("/events", data=body, headers={**headers, **delivery_headers(rt.settings)})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert Dossier.get(did).data["status"] == "done"
    done = by_fact(events_of(rt.settings, did), did)["dossier.done"]
    assert done["actor"] == {"kind": "officer", **CLERK} and done["details"]["result_sha256"] == data["sha256"]
