"""AWS Signature Version 4 for S3, header-signed requests.

The same canonical request and signature as botocore's ``S3SigV4Auth``
(checked byte for byte in ``tests/unit/test_sigv4.py``), without importing botocore: a function
signs its S3 calls for a few microseconds and starts without botocore's import and S3 model parse.
The spec: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from typing import Iterable, MutableMapping
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# headers botocore never signs (a proxy or the HTTP library may change them on the way)
_UNSIGNED_HEADERS = frozenset(("expect", "user-agent", "x-amzn-trace-id"))


def uri_path(bucket: str, key: str = "") -> str:
    """The path-style request path of ``key`` in ``bucket``, encoded as botocore encodes it (``/``
    and ``~`` kept, everything else outside ``A-Za-z0-9_.-`` percent-encoded as UTF-8); S3 signs
    this path as sent, never encoded twice."""
    path = "/" + quote(bucket, safe="")
    return path + "/" + quote(key, safe="/~") if key else path


def query_string(params: Iterable[tuple[str, str]]) -> str:
    """``params`` sorted and encoded as the canonical query string (also what is sent)."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


class Signer:
    """Signs S3 requests with one access key for one region (thread-safe; the day's signing key is
    derived once a day, not once a request)."""

    def __init__(self, access_key: str, secret_key: str, region: str, service: str = "s3"):
        self.access_key, self.region, self.service = access_key, region, service
        self._secret = secret_key
        self._derived: tuple[str, bytes] = ("", b"")

    def __repr__(self) -> str:   # never the secret
        return f"Signer({self.access_key!r}, region={self.region!r})"

    def _signing_key(self, day: str) -> bytes:
        derived = self._derived
        if derived[0] != day:
            key = _hmac(("AWS4" + self._secret).encode("utf-8"), day)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            derived = self._derived = (day, key)
        return derived[1]

    def _signature(self, method: str, path: str, query: str, headers: MutableMapping[str, str],
                   payload_hash: str, stamp: str) -> tuple[str, str, str]:
        """(signature, scope, signed header names) of a request whose ``headers`` are lower-case."""
        names = sorted(n for n in headers if n not in _UNSIGNED_HEADERS)
        canonical_headers = "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names)
        signed = ";".join(names)
        canonical = f"{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}"
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
        return hmac.new(self._signing_key(stamp[:8]), to_sign.encode("utf-8"), hashlib.sha256).hexdigest(), scope, signed

    def sign(self, method: str, host: str, path: str, query: str, headers: MutableMapping[str, str],
             payload_hash: str = EMPTY_SHA256, now: datetime.datetime | None = None) -> MutableMapping[str, str]:
        """Add ``host``, ``x-amz-date``, ``x-amz-content-sha256`` and ``authorization`` to ``headers``
        (lower-case names; every one of them but ``user-agent``/``expect`` is signed) and return them.
        ``path`` and ``query`` are sent as given (see :func:`uri_path`, :func:`query_string`)."""
        stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        headers["host"] = host
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_hash
        signature, scope, signed = self._signature(method, path, query, headers, payload_hash, stamp)
        headers["authorization"] = (f"{ALGORITHM} Credential={self.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        return headers
