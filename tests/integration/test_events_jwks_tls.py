"""/events verifies Knative's sender tokens with the API server's keys, served over TLS under the
cluster's own CA (kube-root-ca.crt): trusted through LSCLOUD_EVENTS_JWKS_CA_FILE, and refused
(503, retry later) when the CA is not given — never accepted unverified."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lscloud import config
from lscloud.auth import verify_delivery_token
from lscloud.local.servers import free_port
from lscloud.problems import Problem

from tls_support import ThrowawayCA

pytestmark = pytest.mark.integration

ISSUER = config.CLUSTER_EVENTS_ISSUER   # what a function in the cluster accepts unless told otherwise
AUDIENCE = "serving.knative.dev/service/lscloud/border"
SUBJECT = "system:serviceaccount:lscloud:border-weight-oidc-eventing.knative.dev-trigger"


SERVED: dict[str, bytes] = {}   # path → the JWKS the API server answers with


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    """An HTTPS server answering /openid/v1/jwks with one EC key, as the API server does."""
    root = tmp_path_factory.mktemp("jwks")
    ca = ThrowawayCA(root)
    cert = ca.issue("apiserver", dns=("localhost",), ips=("127.0.0.1",), server=True)
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    SERVED["/openid/v1/jwks"] = json.dumps({"keys": [{**jwk, "kid": "sa-key-1", "use": "sig", "alg": "ES256"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = SERVED.get(self.path.split("?")[0])
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args):
            pass

    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    yield f"https://127.0.0.1:{port}/openid/v1/jwks", ca.path, pem
    httpd.shutdown()
    httpd.server_close()


def token(pem: bytes) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + 300,
                       "jti": uuid.uuid4().hex}, serialization.load_pem_private_key(pem, None), algorithm="ES256",
                      headers={"kid": "sa-key-1"})


def settings(url: str, ca_file: str = "") -> config.Settings:
    env = {"LSCLOUD_ENV": "cluster", "K_SERVICE": "border", "LSCLOUD_JWT_JWKS_URL": "https://idp.example/jwks",
           "LSCLOUD_PSEUDONYM_KEY": "k" * 40, "LSCLOUD_EVENTS_AUDIENCE": AUDIENCE, "LSCLOUD_EVENTS_JWKS_URL": url,
           "LSCLOUD_EVENTS_SUBJECTS": "system:serviceaccount:lscloud:*"}
    if ca_file:
        env["LSCLOUD_EVENTS_JWKS_CA_FILE"] = ca_file
    return config.load(env)


def test_a_trigger_token_verifies_against_a_jwks_under_the_clusters_ca(api_server):
    url, ca, pem = api_server
    principal = verify_delivery_token(token(pem), settings(url, str(ca)))
    assert principal.sub == SUBJECT


def test_without_the_ca_the_keys_cannot_be_fetched_and_nothing_is_accepted(api_server):
    url, _, pem = api_server
    with pytest.raises(Problem) as refused:
        verify_delivery_token(token(pem), settings(url.replace("/jwks", "/jwks?no-ca")))
    assert refused.value.status == 503 and refused.value.type.endswith("jwks-unavailable")


def test_a_key_taken_out_of_the_jwks_stops_verifying(api_server, monkeypatch):
    """A rotated-out (or compromised) key verifies nothing once the set is fetched again. PyJWT's
    key cache kept it, with no expiry, for as long as the process lived."""
    from lscloud import auth

    url, ca, pem = api_server
    monkeypatch.setattr(auth, "JWKS_FRESH_S", 0.2)
    rotating = url.replace("/openid/v1/jwks", "/rotating/jwks")   # its own key ring
    SERVED["/rotating/jwks"] = SERVED["/openid/v1/jwks"]
    try:
        assert verify_delivery_token(token(pem), settings(rotating, str(ca))).sub == SUBJECT
        other = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(other.public_key()))
        SERVED["/rotating/jwks"] = json.dumps({"keys": [{**jwk, "kid": "sa-key-2", "use": "sig", "alg": "ES256"}]}).encode()
        time.sleep(0.3)   # past the set's freshness
        with pytest.raises(Problem) as refused:
            verify_delivery_token(token(pem), settings(rotating, str(ca)))
        assert refused.value.status == 401
    finally:
        SERVED.pop("/rotating/jwks", None)
