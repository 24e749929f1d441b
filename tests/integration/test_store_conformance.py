"""`lscloud store-check` against the real weed mini: every promise kept, nothing left behind, and
from the environment as an operator runs it in the cluster."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lscloud.store import conformance

pytestmark = pytest.mark.integration


def test_weed_keeps_every_promise_and_the_check_leaves_nothing(object_store, bucket):
    findings = conformance.check(object_store.http, bucket, conditional_delete=True, writers=6)
    assert [f.name for f in findings if not f.kept] == [], conformance.format_findings(findings)
    assert len(findings) == 7 and all(f.required for f in findings)
    assert list(object_store.list(bucket, conformance.PREFIX)) == []


def test_configured_without_conditional_delete_the_delete_check_is_only_a_note(object_store, bucket):
    findings = conformance.check(object_store.http, bucket, conditional_delete=False, writers=2)
    delete = findings[-1]
    assert delete.kept and not delete.required and "may be true" in delete.detail


def test_the_command_from_a_function_s_environment(base_settings, bucket):
    env = {**os.environ, "LSCLOUD_S3_ENDPOINT": base_settings.s3_endpoint,
           "LSCLOUD_S3_ACCESS_KEY": base_settings.s3_access_key, "LSCLOUD_S3_SECRET_KEY": base_settings.s3_secret_key,
           "LSCLOUD_BUCKET": bucket, "LSCLOUD_S3_CONDITIONAL_DELETE": "true"}
    out = subprocess.run([sys.executable, "-m", "lscloud.cli", "store-check", "--from-env", "--writers", "4"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"bucket {bucket}" in out.stdout and out.stdout.count("\nok  ") == 7
    assert "keeps every promise" in out.stdout
    # a store that does not answer is a clear error, not a traceback
    dead = subprocess.run([sys.executable, "-m", "lscloud.cli", "store-check", "--from-env"],
                          env={**env, "LSCLOUD_S3_ENDPOINT": "http://127.0.0.1:9"}, capture_output=True, text=True,
                          timeout=180)
    assert dead.returncode == 1 and "did not answer" in dead.stderr and "Traceback" not in dead.stderr


def test_every_put_carries_its_body_s_md5_and_the_store_checks_it(object_store, bucket):
    """S3 wants Content-MD5 (or a checksum) on writes to a bucket under object lock; the runtime
    sends it on every PUT, and a body that does not match it is refused, not stored."""
    import base64
    import hashlib

    etag = object_store.put(bucket, "md5/ok.json", b'{"a": 1}', if_none_match=True)
    assert etag.strip('"') == hashlib.md5(b'{"a": 1}').hexdigest()
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    reply = object_store.http.request("PutObject", "PUT", bucket, "md5/damaged.json", body=b'{"a": 1}',
                                      headers={"content-type": "application/json", "content-md5": wrong})
    assert reply.status == 400 and reply.error_code() == "BadDigest"
    assert object_store.http.request("HeadObject", "HEAD", bucket, "md5/damaged.json").status == 404
