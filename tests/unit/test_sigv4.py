"""The store's SigV4 signer gives the very signature botocore's S3 signers give (the reference
implementation), for the requests the store makes: conditional PUTs with metadata, GETs with
If-None-Match, HEADs, listings with awkward query values, keys outside ASCII."""

from __future__ import annotations

import datetime
import hashlib
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lscloud.store import sigv4

NOW = datetime.datetime(2026, 12, 3, 18, 59, 7, tzinfo=datetime.timezone.utc)
HOST = "127.0.0.1:8333"
CREDS = ("lscloud", "lscloud-local-secret")


def botocore_headers(method, path, query, headers, body):
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(Credentials(*CREDS), "s3", "us-east-1").add_auth(request)
    return request.headers


CASES = [
    ("PUT", "border/decl/ab12.json", [], {"content-type": "application/json", "if-none-match": "*",
                                         "x-amz-meta-sha256": "ab" * 32}, b'{"a": 1}'),
    ("PUT", "k.json", [], {"content-type": "application/json", "if-match": '"0f343b0931126a20f133d67c2b018a3b"'}, b"2"),
    ("GET", "trees/ngõ  hẻm/a b+c~d.json", [], {"if-none-match": '"abc"'}, b""),
    ("HEAD", "blobs/sha256/00ff", [], {}, b""),
    ("GET", "", [("list-type", "2"), ("prefix", "q/ä b+c/"), ("start-after", "q/01 ~x"), ("max-keys", "7"),
                 ("encoding-type", "url"), ("continuation-token", "1Ab/+==")], {}, b""),
    ("DELETE", "x/y.json", [], {"if-match": '"e"'}, b""),
]


@pytest.mark.parametrize("method,key,params,headers,body", CASES)
def test_signature_matches_botocore(method, key, params, headers, body):
    path, query = sigv4.uri_path("bkt", key), sigv4.query_string(params)
    payload = hashlib.sha256(body).hexdigest()
    mine = sigv4.Signer(*CREDS, "us-east-1").sign(method, HOST, path, query, dict(headers), payload, now=NOW)
    theirs = botocore_headers(method, path, query, headers, body)
    assert mine["authorization"] == theirs["Authorization"]
    assert mine["x-amz-content-sha256"] == theirs["X-Amz-Content-SHA256"]
    assert mine["x-amz-date"] == theirs["X-Amz-Date"]


def test_the_user_agent_is_not_signed_as_botocore_does_not():
    signer = sigv4.Signer(*CREDS, "us-east-1")
    plain = signer.sign("GET", HOST, "/b/k", "", {}, now=NOW)["authorization"]
    assert signer.sign("GET", HOST, "/b/k", "", {"user-agent": "lscloud"}, now=NOW)["authorization"] == plain


def test_the_secret_is_not_in_the_repr():
    assert "lscloud-local-secret" not in repr(sigv4.Signer(*CREDS, "us-east-1"))
