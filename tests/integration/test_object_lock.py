"""A bucket under object lock (the dossiers' legal records, ten years in governance mode) keeps
every version of every object for its default retention, whatever deletes it. Only the records
should be kept so: the machinery around them (idempotency records holding whole answers,
events-seen records, outbox entries, the open dossiers and their clocks) is written and deleted by
the hundred thousand a year, and was kept ten years too. A working object's version is now
retained a day (lscloud.store.working). Checked against weed mini's own object lock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from lscloud import clock, events, runtime
from lscloud.auth import delivery_headers
from lscloud.store import ObjectStore, working

from dossiers_support import CITIZEN, PeerStub, pdf

pytestmark = pytest.mark.integration

YEARS_10 = 3650


@pytest.fixture
def bucket(object_store) -> str:
    """The test's own bucket, made with object lock and a ten-year default retention, as the setup
    Job makes the dossiers' (infra/components/objectstore.py)."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3 = object_store.client
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": YEARS_10}}})
    return name


def retained_days(s3, bucket: str) -> dict[str, list[float]]:
    """Every version of every object (delete markers have none), by key: days it is retained for."""
    now = datetime.now(timezone.utc)
    out: dict[str, list[float]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            r = s3.get_object_retention(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Retention"]
            out.setdefault(v["Key"], []).append((r["RetainUntilDate"] - now).total_seconds() / 86400)
    return out


def test_a_working_objects_version_is_retained_a_day_and_a_records_ten_years(settings, object_store, bucket):
    store = ObjectStore.from_settings(settings.replace(s3_object_lock="governance"))
    assert store.object_lock == {bucket: "governance"}
    store.put(bucket, "dossiers/d-1/_.json", b"{}")
    store.put(bucket, "idempotency/abc.json", b"{}")
    store.put(bucket, "idempotency/abc.json", b'{"done": true}')
    store.delete(bucket, "idempotency/abc.json")
    kept = retained_days(object_store.client, bucket)
    assert [round(d) for d in kept["idempotency/abc.json"]] == [1, 1]   # both versions, a day each
    assert [d > YEARS_10 - 1 for d in kept["dossiers/d-1/_.json"]] == [True]
    # the lock is real: a record's version cannot be removed
    version = object_store.client.head_object(Bucket=bucket, Key="dossiers/d-1/_.json")["VersionId"]
    with pytest.raises(Exception, match="AccessDenied"):
        object_store.client.delete_object(Bucket=bucket, Key="dossiers/d-1/_.json", VersionId=version)


def test_an_unlocked_store_sends_no_retention(settings, object_store, bucket):
    store = ObjectStore.from_settings(settings)   # no LSCLOUD_S3_OBJECT_LOCK: the bucket's default for all
    store.put(bucket, "idempotency/abc.json", b"{}")
    assert [d > YEARS_10 - 1 for d in retained_days(object_store.client, bucket)["idempotency/abc.json"]] == [True]


# What the dossiers function writes, by table: each is a record (kept with the bucket's retention) or
# working (a day). A table not named here fails the test below, so a new one is classified on purpose.
RECORDS = {"dossiers", "dossiers-codes", "dossiers-audit", "dossiers-owners-recent", "dossiers-work", "dossiers-days",
           "dossiers-ratings", "dossiers-files", "dossiers-files-claims"}
WORKING = {"idempotency", "events-seen", "outbox", "unfinished-creates", "dossiers-open", "dossiers-clock", "dossiers-day-figures",
           "dossiers-files-unclaimed"}


def test_a_dossiers_life_keeps_only_its_records_for_ten_years(start_function, settings, object_store, bucket, tokens):
    peers = PeerStub()
    try:
        fn = start_function("dossiers", peer_url_template=peers.template, s3_object_lock="governance")
        rt = runtime.current()
        rt.bus.ensure_stream()
        client = fn.app.test_client()
        cit = tokens.header("citizen", CITIZEN)
        clerk = tokens.header("officer", "clerk-1", agency="ubnd-05983", unit="05983")

        def idem(h):
            return {**h, "Idempotency-Key": uuid.uuid4().hex}

        def ok(r, status=200):
            assert r.status_code == status, r.get_data(as_text=True)
            return r.get_json()

        shas = [ok(client.post("/v1/attachments", data=pdf(f"{c}-{uuid.uuid4().hex}"), query_string={"filename": f"{c}.pdf"},
                               headers={**cit, "Content-Type": "application/pdf"}), 201)["sha256"]
                for c in ("to-khai", "giay-chung-sinh")]
        body = {"id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983",
                "documents": [{"code": c, "sha256": s} for c, s in zip(("to-khai", "giay-chung-sinh"), shas)]}
        did = ok(client.post("/v1/dossiers", json=body, headers=idem(cit)), 201)["id"]
        ok(client.post(f"/v1/dossiers/{did}/start", headers=idem(clerk)))
        ticked = clock.tick_event(datetime.now(timezone.utc) + timedelta(days=3))   # the overdue sweep, the outbox
        headers, raw = events.to_binary_http(ticked)
        assert ok(client.post("/events", data=raw, headers={**headers, **delivery_headers(rt.settings)}))["status"] == "done"
        for step in ("tiep-nhan", "xu-ly"):
            ok(client.post(f"/v1/dossiers/{did}/steps/complete", json={"step": step}, headers=idem(clerk)))
        result = ok(client.post("/v1/attachments", data=pdf("kq-" + uuid.uuid4().hex), query_string={"filename": "kq.pdf"},
                                headers={**clerk, "Content-Type": "application/pdf"}), 201)["sha256"]
        assert ok(client.post(f"/v1/dossiers/{did}/result", json={"sha256": result}, headers=idem(clerk)))["status"] == "done"
    finally:
        peers.stop()

    kept = retained_days(object_store.client, bucket)
    tables = {key.split("/", 1)[0] for key in kept}
    assert tables <= RECORDS | WORKING, f"classify {sorted(tables - RECORDS - WORKING)} as a record or working"
    assert {"dossiers", "dossiers-audit", "dossiers-open", "dossiers-clock", "idempotency"} <= tables
    for key, days in kept.items():
        table = key.split("/", 1)[0]
        if table in WORKING:
            assert all(d < 1.01 for d in days), (key, days)
            assert working.holds(key)
        else:
            assert all(d > YEARS_10 - 1 for d in days), (key, days)
            assert not working.holds(key)


def test_an_upload_no_dossier_names_goes_and_is_not_kept_for_years(start_function, settings, object_store, bucket,
                                                                   tokens):
    """An identity card's scan uploaded for a dossier never submitted was kept ten years by the
    lock, like the dossier's own files. An upload is now retained a day while it waits; naming it in
    a dossier gives it the bucket's ten years; one nobody names is deleted after two days. A file
    sent with the submission is claimed and kept at once."""
    import hashlib
    import io
    import json
    import time

    from lscloud import runonce

    peers = PeerStub()
    try:
        fn = start_function("dossiers", peer_url_template=peers.template, s3_object_lock="governance")
        rt = runtime.current()
        client = fn.app.test_client()
        cit = tokens.header("citizen", CITIZEN)

        def upload(text: str) -> str:
            r = client.post("/v1/attachments", data=pdf(text), headers={**cit, "Content-Type": "application/pdf"})
            assert r.status_code == 201, r.get_data(as_text=True)
            return r.get_json()["sha256"]

        named, forgotten = upload("tk-" + uuid.uuid4().hex), upload("cccd-" + uuid.uuid4().hex)
        waiting = retained_days(object_store.client, bucket)
        assert [round(d) for d in waiting[f"dossiers-files/{named[:2]}/{named}"]] == [1]
        sent = pdf("gcs-" + uuid.uuid4().hex)
        body = {"id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983",
                "documents": [{"code": "to-khai", "sha256": named},
                              {"code": "giay-chung-sinh", "sha256": hashlib.sha256(sent).hexdigest()}]}
        form = {"body": (io.BytesIO(json.dumps(body).encode()), "", "application/json"),
                "giay-chung-sinh": (io.BytesIO(sent), "gcs.pdf", "application/pdf")}
        r = client.post("/v1/dossiers", data=form, headers=cit, content_type="multipart/form-data")
        assert r.status_code == 201, r.get_data(as_text=True)
        report = runonce.sweep(rt.objects, rt.settings.bucket, rt.settings, now=time.time() + 3 * 86_400)
        assert report.counts["dossiers-files-unclaimed/"]["deleted"] == 2   # both uploads' markers
    finally:
        peers.stop()

    kept = retained_days(object_store.client, bucket)
    for sha in (named, hashlib.sha256(sent).hexdigest()):
        assert [d > YEARS_10 - 1 for d in kept[f"dossiers-files/{sha[:2]}/{sha}"]] == [True], sha
        assert [d > YEARS_10 - 1 for d in kept[f"dossiers-files-claims/{sha}"]] == [True], sha
    # the forgotten scan: deleted, its one version retained a day, as the sweep's own claim was
    assert [round(d) for d in kept[f"dossiers-files/{forgotten[:2]}/{forgotten}"]] == [1]
    assert [round(d) for d in kept[f"dossiers-files-claims/{forgotten}"]] == [1]
    with pytest.raises(Exception, match="404|Not Found"):
        object_store.client.head_object(Bucket=bucket, Key=f"dossiers-files/{forgotten[:2]}/{forgotten}")
    assert all(round(d) == 1 for key, days in kept.items() if key.startswith("dossiers-files-unclaimed/")
               for d in days)
