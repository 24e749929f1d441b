"""The deadline and the fees a citizen is given, from the real procedures catalogue through the real
dossiers function on real weed mini + nats-server: same-day procedures are due the same day, a fee
waived online is not charged online, a per-page fee is not summed as if flat, and a deadline nobody
checked says so."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from werkzeug.wrappers import Request, Response

from dossiers_support import AGENCIES, CITIZEN, UNITS, pdf
from lscloud import runtime
from lscloud.timestamps import TZ
from peer_stubs import Served, conditional_json

pytestmark = pytest.mark.integration

MONDAY_9 = datetime(2026, 12, 7, 9, 0, tzinfo=TZ)      # a working day of a published calendar year
MONDAY_1530 = datetime(2026, 12, 7, 15, 30, tzinfo=TZ)


class Peers(Served):
    """``/procedures/*`` answered by the real procedures app; ``/directory/*`` by the dossiers tests' units."""

    def __init__(self, procedures_app):
        client = procedures_app.test_client()

        @Request.application
        def app(request):
            parts = request.path.strip("/").split("/")
            if parts[0] == "procedures":
                r = client.get("/" + "/".join(parts[1:]),
                               headers={k: v for k, v in request.headers if k.lower() == "if-none-match"})
                return Response(r.get_data(), status=r.status_code, headers=dict(r.headers))
            table = {"units": UNITS, "agencies": AGENCIES}
            if len(parts) == 4 and parts[0] == "directory" and parts[2] in table and parts[3] in table[parts[2]]:
                return conditional_json(table[parts[2]][parts[3]], request, cache_control="public, max-age=300")
            return Response('{"status":404}', status=404, mimetype="application/problem+json")
        super().__init__(app)


@pytest.fixture
def env(start_function, tokens, monkeypatch):
    from functions.procedures.function import seed

    procs = start_function("procedures")
    seed.seed(runtime.current())
    peers = Peers(procs.app)
    dos = start_function("dossiers", peer_url_template=peers.template)
    runtime.current().bus.ensure_stream()
    yield procs.app.test_client(), dos.app.test_client(), tokens, monkeypatch
    peers.stop()


def submit(env, code: str, at: datetime) -> dict:
    pc, dc, tokens, monkeypatch = env
    from functions.dossiers.function import submission

    monkeypatch.setattr(submission, "now", lambda: at)
    proc = pc.get(f"/v1/procedures/{code}").get_json()
    cit = tokens.header("citizen", CITIZEN)
    docs = []
    for d in proc["documents"]:
        if d["required"]:
            r = dc.post("/v1/attachments", data=pdf(d["code"] + uuid.uuid4().hex),
                        headers={**cit, "Content-Type": "application/pdf"}, query_string={"filename": d["code"] + ".pdf"})
            assert r.status_code == 201, r.get_data(as_text=True)
            docs.append({"code": d["code"], "sha256": r.get_json()["sha256"]})
    r = dc.post("/v1/dossiers", json={"id": "facts-" + uuid.uuid4().hex[:10], "procedure": code, "unit": "05983",
                                      "documents": docs}, headers=cit)
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()


@pytest.mark.parametrize("code", ["CT-BSBC", "CT-CK", "HT-KH", "HT-KT"])
def test_same_day_procedures_are_due_the_day_they_are_received(env, code):
    """Decree 23/2015 Art. 7 (certification) and the Law on Civil Status Art. 18(2)/34(2): the same
    working day, the next one when received after 15:00; the 1, 5 and 3 days were the exceptions."""
    pc = env[0]
    proc = pc.get(f"/v1/procedures/{code}").get_json()
    assert (proc["processing_days"], proc["same_day_cutoff"]) == (0, "15:00")
    days = [s for s in proc["sources"] if s["fact"] == "processing_days"]
    assert days and all(s["verified"] and s["url"].startswith("https://") for s in days)
    morning = submit(env, code, MONDAY_9)
    assert morning["receipt"]["appointment_date"] == "2026-12-07" and morning["receipt"]["processing_days"] == 0
    assert morning["procedure"]["processing_days_verified"] is True
    late = submit(env, code, MONDAY_1530)
    assert late["receipt"]["appointment_date"] == "2026-12-08"


def test_an_unchecked_deadline_is_served_as_unverified(env):
    pc = env[0]
    items, token = [], None
    while True:
        page = pc.get("/v1/procedures", query_string={"limit": 100, **({"page_token": token} if token else {})}).get_json()
        items += page["items"]
        token = page["next_page_token"]
        if not token:
            break
    assert len(items) == page["total"] >= 100
    assert all(any(s["fact"] == "processing_days" for s in p["sources"]) for p in items)
    bstl = pc.get("/v1/procedures/HT-BSTL").get_json()
    assert [s["verified"] for s in bstl["sources"] if s["fact"] == "processing_days"] == [False]
    doc = submit(env, "HT-BSTL", MONDAY_9)
    assert doc["procedure"]["processing_days_verified"] is False


def test_a_fee_waived_online_is_not_charged_online_and_per_page_fees_are_not_summed(env):
    dn = submit(env, "DN-TNHH1", MONDAY_9)["receipt"]
    assert dn["channel"] == "online" and dn["fee_total_vnd"] == 100000
    waived = [f for f in dn["fees"] if f.get("waived_vnd")]
    assert [(f["amount_vnd"], f["waived_vnd"]) for f in waived] == [(0, 50000)] and "trực tuyến" in waived[0]["note"]
    copy = submit(env, "CT-BSBC", MONDAY_9)["receipt"]
    assert copy["fee_total_vnd"] == 0
    assert [(f["per"], f["rate_vnd"], f["max_vnd"]) for f in copy["fees"]] == [("page", 2000, 200000), ("page", 1000, 200000)]
    assert all("page count" in f["note"] and "số trang" in f["note"] for f in copy["fees"])
