"""The identity function against a real weed mini: CCCD decoding, verification against the
seeded registry, the store-backed rate limit, dev tokens (citizen, officer via a directory over
HTTP), cluster mode, the HttpRegistry against a local HTTP server, every endpoint x every role."""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from lscloud import runtime
from lscloud.auth import dev_key_file, dev_keys, verify_token
from lscloud.knative import load_function
from lscloud.runtime import Runtime

import role_matrix

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AN = {"id_number": "020095001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1995-03-12"}


class Stub:
    """A tiny HTTP server answering from a dict of path -> (status, json body); counts hits."""

    def __init__(self, routes: dict, delay_s: float = 0.0):
        self.routes, self.delay_s, self.hits = routes, delay_s, []

        @Request.application
        def app(request):
            self.hits.append((request.path, request.headers.get("Authorization")))
            time.sleep(self.delay_s)
            status, body = self.routes.get(request.path, (404, {"status": 404}))
            payload = json.dumps(body, ensure_ascii=False).encode() if not isinstance(body, bytes) else body
            resp = Response(payload, status=status, mimetype="application/json")
            resp.set_etag(hashlib.sha256(payload).hexdigest()[:32])
            return resp.make_conditional(request)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def fn():
    return load_function(ROOT / "functions" / "identity")


@pytest.fixture(scope="module")
def pkg(fn):
    return lambda name: importlib.import_module(f"{fn.__name__}.{name}")


@pytest.fixture(scope="module")
def directory():
    stub = Stub({
        "/directory/v1/agencies/so-xay-dung": (200, {"code": "so-xay-dung", "kind": "department", "unit_code": "06280"}),
        "/directory/v1/agencies/ubnd-06040": (200, {"code": "ubnd-06040", "kind": "commune-committee", "unit_code": "06040"}),
        "/directory/v1/units/20": (200, {"code": "20"}),
        "/directory/v1/units/06040": (200, {"code": "06040"}),
        "/directory/v1/units/06280": (200, {"code": "06280"}),
    })
    yield stub
    stub.stop()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("identity-state")
    dev_keys(d)
    return d


@pytest.fixture(scope="module")
def seeded_bucket(fn, pkg, base_settings, object_store):
    bucket = f"t-id-{uuid.uuid4().hex[:16]}"
    object_store.ensure_bucket(bucket)
    rt = runtime.install(Runtime(base_settings.replace(bucket=bucket)))
    result = pkg("seed").seed(rt)
    runtime.uninstall()
    assert result["citizens"] >= 300 and result["known"] >= 5
    return bucket


@pytest.fixture
def rt(base_settings, seeded_bucket, directory, state_dir):
    r = runtime.install(Runtime(base_settings.replace(
        bucket=seeded_bucket, peer_url_template=directory.url + "/{name}", state_dir=str(state_dir),
        jwt_public_key=dev_keys(state_dir)[1], service="identity")))
    yield r
    runtime.uninstall()


@pytest.fixture
def make_client(pkg, rt, state_dir):
    def make(settings=None, **options):
        opts = pkg("options").Options(**{"signing_key_file": str(dev_key_file(state_dir)), **options})
        app = pkg("app").create_app(settings or rt.settings, options=opts)
        app.testing = True
        return app.test_client()

    return make


@pytest.fixture
def client(make_client):
    return make_client()


def ip(n=None) -> dict:
    """A distinct client address per test (as the gateway appends it), so counters never mix."""
    return {"X-Forwarded-For": f"203.0.113.{n if n is not None else uuid.uuid4().int % 250}, 10.0.{uuid.uuid4().int % 250}.7"}


def ok(resp, status=200):
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def test_cccd_decoding_and_the_rule_a_bad_number_breaks(client):
    assert ok(client.get("/v1/cccd/020095001234")) == {
        "number": "020095001234", "valid": True, "province_code": "020", "province": "Lạng Sơn", "sex": "male",
        "century": 20, "birth_year": 1995}
    assert ok(client.get("/v1/cccd/020305000789"))["century"] == 21
    for number, words in (("02009500123", "12 digits"), ("003095001234", "province code 003"),
                          ("020899001234", "future"), ("02009500123x", "12 digits")):
        r = client.get(f"/v1/cccd/{number}")
        assert r.status_code == 422 and r.mimetype == "application/problem+json"
        assert words in r.get_json()["detail"] and r.get_json()["errors"][0]["field"] == "/number"


def test_verification_answers_per_field_and_never_the_record(client):
    h = ip()
    assert ok(client.post("/v1/verifications", json=AN, headers=h)) == {
        "match": True, "fields": {"id_number": "match", "full_name": "match", "date_of_birth": "match"}}
    # case, spaces, decomposed Unicode: still the same name
    typed = {**AN, "full_name": "  NGUYỄN   văn " + "An".upper()}
    assert ok(client.post("/v1/verifications", json=typed, headers=h))["match"] is True
    nfd = {**AN, "full_name": "Nguye\u0302\u0303n Va\u0306n An"}
    assert ok(client.post("/v1/verifications", json=nfd, headers=h))["match"] is True
    # old-style tone placement is the same name
    hoa = {"id_number": "020305000789", "full_name": "Lương Thị Hoà", "date_of_birth": "2005-01-19"}
    assert ok(client.post("/v1/verifications", json=hoa, headers=h))["match"] is True
    # diacritics are not forgiven
    bare = ok(client.post("/v1/verifications", json={**AN, "full_name": "Nguyen Van An"}, headers=h))
    assert bare == {"match": False, "fields": {"id_number": "match", "full_name": "mismatch", "date_of_birth": "match"}}
    dob = ok(client.post("/v1/verifications", json={**AN, "date_of_birth": "1995-03-13"}, headers=h))
    assert dob["fields"] == {"id_number": "match", "full_name": "match", "date_of_birth": "mismatch"}
    unknown = client.post("/v1/verifications", json={**AN, "id_number": "020095999999"}, headers=ip())
    assert ok(unknown)["fields"] == {"id_number": "mismatch", "full_name": "mismatch", "date_of_birth": "mismatch"}
    assert "Nguyễn" not in unknown.get_data(as_text=True) and "1995" not in unknown.get_data(as_text=True)


def test_verification_validation(client):
    r = client.post("/v1/verifications", json={"id_number": "12", "full_name": "", "extra": 1}, headers=ip())
    assert r.status_code == 422
    assert {e["field"] for e in r.get_json()["errors"]} >= {"/id_number", "/full_name", "/date_of_birth", "/extra"}
    r = client.post("/v1/verifications", json={**AN, "id_number": "099095001234"}, headers=ip())
    assert r.status_code == 422 and r.get_json()["errors"] == [
        {"field": "/id_number", "message": "CCCD province code 099 does not exist"}]
    r = client.post("/v1/verifications", json={**AN, "date_of_birth": "1995-02-30"}, headers=ip())
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/date_of_birth"


def test_rate_limit_per_caller_then_per_number(make_client):
    client = make_client(max_mismatches=3, window_s=600)
    me = ip()
    wrong = {**AN, "id_number": "020196004321", "date_of_birth": "1996-01-01", "full_name": "Hoàng Thị Lan"}
    for _ in range(3):
        assert ok(client.post("/v1/verifications", json=wrong, headers=me))["match"] is False
    blocked = client.post("/v1/verifications", json=AN, headers=me)   # even right data: the caller is blocked
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 600
    assert blocked.get_json()["type"].endswith("too-many-mismatches")
    # another caller is not blocked; a signed-in caller is counted by its token, not its address
    assert ok(client.post("/v1/verifications", json=AN, headers=ip()))["match"] is True
    # the number itself: 2 x 3 mismatches from many addresses block it for everyone
    for _ in range(3):
        client.post("/v1/verifications", json=wrong, headers=ip())
    r = client.post("/v1/verifications", json=wrong, headers=ip())
    assert r.status_code == 429 and "for this number" in r.get_json()["detail"]
    # a forged X-Forwarded-For prefix does not help: the last entry (the gateway's) counts
    forged = {"X-Forwarded-For": "1.2.3.4, " + me["X-Forwarded-For"].split(", ")[-1]}
    assert client.post("/v1/verifications", json=AN, headers=forged).status_code == 429


def test_concurrent_mismatches_are_all_counted(pkg, rt):
    limiter = pkg("ratelimit").Limiter(pkg("ratelimit").Limits(max_mismatches=1000, window_s=600))
    caller, number = f"ip:{uuid.uuid4()}", "020088002468"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: limiter.record_mismatch(caller, number), range(24)))
    window = limiter._window()[0]
    M = pkg("models").AttemptWindow
    assert M.get(pkg("ratelimit").subject("caller", caller), window).mismatches == 24
    # subjects are hashed: neither the number nor the address is in any object key
    keys = [o.key for o in rt.objects.list(rt.settings.bucket, "identity-attempts/")]
    assert keys and not any(number in k or caller[3:] in k for k in keys)


def test_citizen_token(client, rt):
    r = client.post("/v1/tokens/citizen", json={**AN, "full_name": "nguyễn văn an"}, headers=ip())
    body = ok(r, 201)
    assert body["role"] == "citizen" and body["sub"] == "020095001234" and body["token_type"] == "Bearer"
    who = verify_token(body["access_token"], rt.settings)
    assert (who.sub, who.role, who.agency, who.unit) == ("020095001234", "citizen", None, None)
    bad = client.post("/v1/tokens/citizen", json={**AN, "date_of_birth": "1995-12-03"}, headers=ip())
    assert bad.status_code == 401 and bad.get_json()["errors"] == [{"field": "/date_of_birth", "message": "does not match"}]


def test_officer_token_checks_the_directory(client, rt, directory):
    body = ok(client.post("/v1/tokens/officer", json={"officer_id": "cb-xd-001", "agency": "so-xay-dung", "unit": "20"}), 201)
    who = verify_token(body["access_token"], rt.settings)
    assert (who.sub, who.role, who.agency, who.unit) == ("cb-xd-001", "officer", "so-xay-dung", "20")
    sup = ok(client.post("/v1/tokens/officer", json={"officer_id": "ct-06040", "agency": "ubnd-06040", "unit": "06040",
                                                     "role": "supervisor"}), 201)
    assert verify_token(sup["access_token"], rt.settings).role == "supervisor"
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "so-khong-co", "unit": "20"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/agency"
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "so-xay-dung", "unit": "99999"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/unit"
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "ubnd-06040", "unit": "06280"})
    assert r.status_code == 422 and "06040" in r.get_json()["errors"][0]["message"]
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "so-xay-dung", "unit": "20", "role": "admin"})
    assert r.status_code == 422


def test_directory_down_is_503(make_client, rt):
    client = make_client(rt.settings.replace(peer_url_template="http://127.0.0.1:9/{name}"))
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "so-xay-dung", "unit": "20"})
    assert r.status_code == 503 and r.headers["Retry-After"]


def test_no_signing_key_and_cluster_mode(make_client, pkg, rt):
    assert make_client(signing_key_file="").post("/v1/tokens/citizen", json=AN, headers=ip()).status_code == 503
    registry = Stub({})
    try:
        cluster = rt.settings.replace(env="cluster")
        client = make_client(cluster, registry_url=registry.url)
        for path, body in (("/v1/tokens/citizen", AN), ("/v1/tokens/officer", {"officer_id": "x", "agency": "tax", "unit": "20"})):
            r = client.post(path, json=body)
            assert r.status_code == 404 and r.get_json()["type"].endswith("token-issuing-disabled")
        with pytest.raises(Exception, match="IDENTITY_REGISTRY_URL"):
            make_client(cluster)
    finally:
        registry.stop()


def test_http_registry_against_a_local_server(pkg):
    population = pkg("population")
    record = {"id_number": "020095001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1995-03-12", "sex": "male"}
    server = Stub({"/api/citizens/020095001234": (200, record),
                   "/api/citizens/020095000001": (500, {"error": "boom"}),
                   "/api/citizens/020095000002": (403, {"error": "no"}),
                   "/api/citizens/020095000003": (200, {"oops": 1}),
                   "/api/citizens/020095000004": (200, {**record, "id_number": "020095009999"})})
    slow = Stub({"/citizens/020095001234": (200, record)}, delay_s=1.0)
    try:
        reg = population.HttpRegistry(server.url + "/api/", "s3cr3t-token", timeout_s=2)
        assert isinstance(reg, population.PopulationRegistry)
        assert reg.lookup("020095001234").full_name == "Nguyễn Văn An"
        assert server.hits[-1] == ("/api/citizens/020095001234", "Bearer s3cr3t-token")
        assert reg.lookup("020095123456") is None
        with pytest.raises(population.RegistryUnavailable):
            reg.lookup("020095000001")
        for n in ("020095000002", "020095000003", "020095000004"):
            with pytest.raises(population.RegistryError) as err:
                reg.lookup(n)
            assert not isinstance(err.value, population.RegistryUnavailable)
        with pytest.raises(population.RegistryUnavailable, match="in time"):
            population.HttpRegistry(slow.url, "t", timeout_s=0.2).lookup("020095001234")
        with pytest.raises(population.RegistryUnavailable):
            population.HttpRegistry("http://127.0.0.1:9", "t", timeout_s=0.5).lookup("020095001234")
        with pytest.raises(ValueError):
            reg.lookup("../admin")
    finally:
        server.stop()
        slow.stop()


def test_the_app_maps_registry_errors(make_client):
    server = Stub({"/citizens/020095001234": (503, {}), "/citizens/020196004321": (401, {})})
    try:
        client = make_client(registry_url=server.url, registry_token="t")
        r = client.post("/v1/verifications", json=AN, headers=ip())
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        lan = {"id_number": "020196004321", "full_name": "Hoàng Thị Lan", "date_of_birth": "1996-11-02"}
        assert client.post("/v1/verifications", json=lan, headers=ip()).status_code == 502
    finally:
        server.stop()


def test_every_endpoint_with_every_role(client, state_dir):
    """Held to functions/identity/access.yaml (every route public), not to @allow."""
    assert role_matrix.check(client.application, "identity", dev_keys(state_dir)[0]) >= 5 * 14


def test_odd_path_ids_get_a_problem_never_a_5xx(client):
    from path_ids import assert_no_route_fails_on_odd_ids

    assert assert_no_route_fails_on_odd_ids(client.application, lambda role: {}) >= 10

