"""A reporter's erasure request (Law 91/2025/QH15, Art. 14(1)) and the contact keep period, in citizen
reports on real weed mini + nats-server: ``lscloud erase`` finds one phone's reports by the owner index,
takes the person out of every object of the bucket (its bytes scanned, stored answers decoded), keeps
the reports, records the request and prints a report without the identifier; two erasures at once
change each report once; reports stored before the index are found once migrated; the clock's tick
anonymises the closed reports past ``REPORTS_CONTACT_KEEP_DAYS`` and no other."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import pytest

from digital_support import ok
import test_reports_api
from test_reports_api import DONG_DANG, FORM, ROOT, api_key, valid

from lscloud import cli, erasure
from lscloud.statemachine import now
from lscloud.store.keys import encode_part
from bucket_scan import bucket_bytes, every_object  # tests/integration helper module
from lscloud.store import DoesNotExist

pytestmark = pytest.mark.integration

client, reports = test_reports_api.client, test_reports_api.reports   # the reports tests' fixtures

PHONE, OTHER_PHONE = "0912 345 678", "0987 654 321"
NAME, EMAIL, CCCD = "Hoàng Văn Tú", "tu.hoang@example.vn", "020088001111"
# the person as any object could hold them: the digits however grouped, the address, the full name
TRACES = ("912345678", "912 345 678", "912.345.678", "912-345-678", EMAIL, "TU.HOANG@example.vn", NAME, CCCD)
OFFICER = {"agency": "so-xay-dung"}


def holding(objects: dict[str, bytes], *values: str) -> list[str]:
    forms = {f.encode() for v in values for f in (v, json.dumps(v)[1:-1])}
    return sorted(k for k, body in objects.items() if any(f in body for f in forms))


def photo(client) -> str:
    from PIL import Image

    raw = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 120, 60)).save(raw, "JPEG")
    return ok(client.post("/v1/photos", data=raw.getvalue(), headers={"Content-Type": "image/jpeg"}), 201)["sha256"]


def file_reports(client, tokens) -> dict[str, str]:
    """One person's reports through the app (with a key: its answer is kept), Open311 (the number
    spelt +84) and signed in, an agency's note quoting the number, and a neighbour's report."""
    body = {"service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
            "reporter": {"name": NAME, "phone": PHONE, "email": EMAIL}, "photos": [photo(client)],
            "description": f"Ổ gà lớn, gọi {NAME} 0912.345.678 hoặc {EMAIL}, CCCD {CCCD}"}
    app = ok(client.post("/v1/reports", json=body, headers={"Idempotency-Key": "erase-app-1"}), 201)["id"]
    key = api_key(client, tokens)["api_key"]
    form = (f"api_key={key}&service_code=GT-HU-HONG&lat=21.8539&long=106.7611&attribute[commune]={DONG_DANG}"
            "&first_name=T%C3%BA&last_name=Ho%C3%A0ng&phone=%2B84%20912%20345%20678&email=TU.HOANG%40example.vn"
            "&description=C%E1%BB%99t%20%C4%91i%E1%BB%87n%20nghi%C3%AAng")
    open311 = ok(client.post("/open311/v2/requests.json", data=form, headers=FORM), 201)[0]["service_request_id"]
    signed = ok(client.post("/v1/reports", headers=tokens("citizen", CCCD), json={
        "service_code": "GT-HU-HONG", "lat": 21.8541, "long": 106.7613, "commune": DONG_DANG,
        "reporter": {"phone": "0912345678"}, "description": "Đèn đường hỏng"}), 201)["id"]
    neighbour = ok(client.post("/v1/reports", headers={"X-Forwarded-For": "198.51.100.7"}, json={
        "service_code": "GT-HU-HONG", "lat": 21.8545, "long": 106.7615, "commune": DONG_DANG,
        "reporter": {"name": "Lê Thị Mai", "phone": OTHER_PHONE}, "description": "Cống tắc"}), 201)["id"]
    officer = tokens("officer", "cb-sxd", **OFFICER)
    ok(client.post(f"/v1/reports/{app}/actions/acknowledge", json={"note": f"Đã gọi {PHONE}, {NAME} xác nhận"},
                   headers=officer))
    return {"app": app, "open311": open311, "signed": signed, "neighbour": neighbour}


def erase_by_cli(monkeypatch, settings, *argv: str, stdin: str) -> int:
    monkeypatch.chdir(ROOT)
    for k, v in settings.env_vars().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(["erase", "--from-env", "--function", "reports", "--operator", "op-dpo", *argv])


def erase_entries(rid: str) -> list[dict]:
    from functions.reports.function import reports as domain

    return [e for e in domain.records().trail(rid) if e["action"] == "erase_contact"]


def test_a_phones_reports_are_erased_from_every_object_and_the_request_recorded(
        client, tokens, rt, settings, object_store, monkeypatch, capsys):
    ids = file_reports(client, tokens)
    officer = tokens("officer", "cb-sxd", **OFFICER)
    before = {k: ok(client.get(f"/v1/reports/{rid}", headers=officer)) for k, rid in ids.items()}
    assert holding(bucket_bytes(object_store, settings.bucket), *TRACES)   # the old code: nothing took them out

    assert erase_by_cli(monkeypatch, settings, "--kind", "phone", "--value", "-", stdin="+84 912 345 678\n") == 0
    printed = capsys.readouterr()
    assert not [t for t in TRACES if t in printed.out + printed.err]
    record = json.loads(printed.out)
    assert record["found"] == 3 and record["functions"] == ["reports"] and not record["failed"]
    erased = {e["what"].split(" / ")[-1]: e["count"] for e in record["erased"]}
    assert erased["reports: the reporter's name, phone, e-mail and account; ID numbers, phones and e-mails in "
                  "their text"] == 3
    assert erased["answers stored for a client's retry"] >= 1
    assert any("photo" in k["what"] and k["why"] for k in record["kept"])

    # no object of the bucket holds the person any more; the neighbour's report still holds theirs
    objects = bucket_bytes(object_store, settings.bucket)
    assert holding(objects, *TRACES) == []
    assert holding(objects, OTHER_PHONE)
    # the request is recorded under a pseudonym, create-only, without the identifier
    stored = json.loads(object_store.get(settings.bucket, record["record"]).body)
    assert stored["operator"] == "op-dpo" and stored["subject"]["kind"] == "phone" and stored["found"] == 3
    assert [r["request"] for r in erasure.recorded(rt, erasure.Subject("phone", "0912-345-678"))] == [record["request"]]

    # the reports stay: place, category, agency, state and photos; the reporter is gone
    for name in ("app", "open311", "signed"):
        after = ok(client.get(f"/v1/reports/{ids[name]}", headers=officer))
        assert after["reporter"] == {}
        for field in ("lat", "long", "category", "agency", "state", "photos", "media_url", "commune"):
            assert after[field] == before[name][field], (name, field)
        assert [e["details"]["request"] for e in erase_entries(ids[name])] == [record["request"]]
    app = ok(client.get(f"/v1/reports/{ids['app']}", headers=officer))
    assert all(m in app["description"] for m in ("[phone]", "[email]", "[cccd]", "[name]")), app["description"]
    assert "Ổ gà lớn" in app["description"] and app["history"][-1]["note"].startswith("Đã gọi [phone]")
    assert ok(client.get(f"/v1/reports/{ids['neighbour']}", headers=officer))["reporter"]["phone"] == OTHER_PHONE
    # the signed-in citizen is no longer linked to it either
    r = client.post(f"/v1/reports/{ids['signed']}/actions/close", headers=tokens("citizen", CCCD))
    assert r.status_code == 404

    # Open311 answers every field of the spec, the contact simply absent
    for name in ("open311", "app"):
        (o,) = valid("service-requests", ok(client.get(f"/open311/v2/requests/{ids[name]}.json")))
        assert o["service_request_id"] == ids[name] and o["status"] == "open" and o["lat"] is not None
    assert not [t for t in TRACES if t in client.get("/open311/v2/requests.json").get_data(as_text=True)]

    # the app's retry of its first request: answered from the report, which no longer holds them
    again = client.post("/v1/reports", headers={"Idempotency-Key": "erase-app-1"}, json={
        "service_code": "GT-HU-HONG", "lat": 21.8537, "long": 106.7610, "commune": DONG_DANG,
        "reporter": {"name": NAME, "phone": PHONE, "email": EMAIL}, "photos": before["app"]["photos"],
        "description": f"Ổ gà lớn, gọi {NAME} 0912.345.678 hoặc {EMAIL}, CCCD {CCCD}"})
    assert again.status_code == 201 and again.get_json()["id"] == ids["app"], again.get_data(as_text=True)
    assert again.get_json()["reporter"] == {}

    # done again: nothing left to find, and a second record
    assert erase_by_cli(monkeypatch, settings, "--kind", "phone", "--value", "-", stdin="0912345678\n") == 0
    assert json.loads(capsys.readouterr().out)["found"] == 0
    assert [len(erase_entries(ids[n])) for n in ("app", "open311", "signed")] == [1, 1, 1]


def test_a_bad_identifier_is_refused_without_repeating_it(settings, monkeypatch, capsys):
    assert erase_by_cli(monkeypatch, settings, "--kind", "cccd", "--value", "-", stdin="02008800111x\n") == 1
    err = capsys.readouterr().err
    assert "12" in err and "02008800111x" not in err


def test_two_erasures_at_once_change_each_report_once(client, tokens, rt, settings, object_store):
    from functions.reports.function.erase import erase

    ids = file_reports(client, tokens)
    records, failures = [], []

    def one():
        try:
            records.append(erasure.run(rt, erasure.Subject("phone", PHONE), {"reports": erase}, operator="op"))
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures and len(records) == 2 and len({r["record"] for r in records}) == 2
    assert sum(r["erased"][0]["count"] for r in records) == 3   # each report written once, by one of them
    assert [len(erase_entries(ids[n])) for n in ("app", "open311", "signed")] == [1, 1, 1]
    assert holding(bucket_bytes(object_store, settings.bucket), *TRACES) == []


def test_reports_stored_before_the_owner_index_are_found_once_migrated(client, tokens, rt, settings, object_store,
                                                                      monkeypatch, capsys):
    from functions.reports.function.migrate import migrate
    from functions.reports.function.models import ReportOwner

    ids = file_reports(client, tokens)
    for o in object_store.list(settings.bucket, "reports-owners/"):   # as the version before this one left them
        object_store.delete(settings.bucket, o.key)
    assert erase_by_cli(monkeypatch, settings, "--kind", "email", "--value", "-", stdin=EMAIL.upper() + "\n") == 0
    assert json.loads(capsys.readouterr().out)["found"] == 0
    # phone and e-mail of two, phone and owner of the signed one, the neighbour's phone; once
    assert migrate(rt) == {"reports": 4, "owner_entries": 7, "closed_entries": 0}
    assert migrate(rt)["owner_entries"] == 0
    assert len(ReportOwner.query_keys(erasure.Subject("phone", PHONE).pseudonym(
        "reports-reporters", "{kind}:{value}"))) == 3
    assert erase_by_cli(monkeypatch, settings, "--kind", "cccd", "--value", "-", stdin="020 088 001 111\n") == 0
    assert json.loads(capsys.readouterr().out)["found"] == 1   # the signed-in citizen's, by their CCCD
    assert erase_by_cli(monkeypatch, settings, "--kind", "email", "--value", "-", stdin=EMAIL + "\n") == 0
    assert json.loads(capsys.readouterr().out)["found"] == 2   # the app's and the Open311 one
    assert len(erase_entries(ids["signed"])) == 1 and len(erase_entries(ids["neighbour"])) == 0


def test_the_tick_anonymises_closed_reports_past_the_keep_period_and_no_other(client, tokens, rt, settings,
                                                                              object_store):
    from functions.reports.function import retention, schedule
    from functions.reports.function import reports as domain
    from functions.reports.function.models import ClosedReport

    ids = file_reports(client, tokens)
    officer = tokens("officer", "cb-sxd", **OFFICER)
    for action, body in (("start", {}), ("fix", {"note": f"Đã sửa, báo {PHONE}"})):
        ok(client.post(f"/v1/reports/{ids['app']}/actions/{action}", json=body, headers=officer))
    ok(client.post(f"/v1/reports/{ids['open311']}/actions/not_responsible",
                   json={"reason": f"Không thuộc thẩm quyền, đã báo {PHONE}"}, headers=officer))

    def contact(name):
        return domain.records().get(ids[name]).data["reporter"]

    assert retention.sweep(now() + timedelta(days=300)) == {"anonymised": 0}   # within the keep period
    assert schedule.on_tick({"id": "tick-1"})["contacts"] == {"anonymised": 0}
    late = now() + timedelta(days=366)
    assert retention.sweep(late, limit=1) == {"anonymised": 1}                 # bounded: one a run here
    done = []   # two replicas' ticks at once
    threads = [threading.Thread(target=lambda: done.append(retention.sweep(late))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(d["anonymised"] for d in done) == 1 and retention.sweep(late) == {"anonymised": 0}
    assert contact("app") == {} and contact("open311") == {}
    assert contact("signed")["phone"] == "0912345678" and contact("neighbour")["phone"] == OTHER_PHONE   # open
    for name in ("app", "open311"):
        (entry,) = erase_entries(ids[name])
        assert entry["details"] == {"why": "keep-period"} and entry["actor"] == {"kind": "system"}
    assert ClosedReport.query_keys("closed") == []
    mine = (encode_part(ids["app"]), encode_part(ids["open311"]))   # their document, audit entries, indexes
    objects = {k: v for k, v in bucket_bytes(object_store, settings.bucket).items() if any(m in k for m in mine)}
    assert len(objects) > 10 and holding(objects, *TRACES) == []
    # a closed report moved again after its contact went is not indexed again
    ok(client.post(f"/v1/reports/{ids['app']}/actions/reopen", json={"reason": "Chưa sửa xong"}, headers=officer))
    ok(client.post(f"/v1/reports/{ids['app']}/actions/fix", json={}, headers=officer))
    assert ClosedReport.query_keys("closed") == []


def snapshot(object_store, bucket) -> dict:
    """What a backup keeps of the bucket: every object, its type and metadata."""
    out = {}
    for key, o in every_object(object_store, bucket).items():
        out[key] = (o.body, o.content_type, o.metadata)
    return out


def restore(object_store, bucket, backup: dict) -> None:
    """The bucket as the backup had it (what is newer goes, a record of an erasure with it)."""
    for info in list(object_store.list(bucket, "")):
        try:
            object_store.delete(bucket, info.key)
        except DoesNotExist:
            continue
    for key, (body, content_type, metadata) in backup.items():
        object_store.put(bucket, key, body, content_type=content_type, metadata=metadata or None)


def test_an_erasure_run_in_the_cluster_way_is_applied_again_after_a_restore(client, tokens, rt, settings,
                                                                            object_store, monkeypatch, capsys,
                                                                            tmp_path):
    """``python -m lscloud.serve --erase phone`` in a child with the function's environment, the number
    typed on stdin (not in its arguments); then a backup from before the request is restored, which
    brings the person back and takes the request's record away; ``lscloud erase --reapply`` with the
    printed record (no identifier in it) takes them out again."""
    import os
    import subprocess
    import sys

    ids = file_reports(client, tokens)
    backup = snapshot(object_store, settings.bucket)
    argv = [sys.executable, "-m", "lscloud.serve", "--erase", "phone", "--operator", "op-dpo",
            str(ROOT / "functions" / "reports")]
    done = subprocess.run(argv, input="0912 345 678\n", capture_output=True, text=True, timeout=300,
                          env={**os.environ, **settings.env_vars(), "K_SERVICE": "reports", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert not [t for t in TRACES if t in done.stdout + done.stderr]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["found"] == 3 and record["functions"] == ["reports"]
    assert holding(bucket_bytes(object_store, settings.bucket), *TRACES) == []
    refused = subprocess.run(argv[:5] + argv[7:], input="0912345678\n", capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--operator" in refused.stderr   # a request says who made it

    restore(object_store, settings.bucket, backup)
    assert holding(bucket_bytes(object_store, settings.bucket), *TRACES)
    (tmp_path / "record.json").write_text(done.stdout.strip().splitlines()[-1])
    assert erase_by_cli(monkeypatch, settings, "--reapply", str(tmp_path / "record.json"), stdin="") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["found"] == 3 and again["reapplies"] == record["request"] and again["request"] != record["request"]
    assert holding(bucket_bytes(object_store, settings.bucket), *TRACES) == []
    assert [len(erase_entries(ids[n])) for n in ("app", "open311", "signed")] == [1, 1, 1]
