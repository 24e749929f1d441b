"""The identity function against a real weed mini: CCCD decoding, verification against the
seeded registry, the store-backed rate limit, dev tokens (citizen, officer via a directory over
HTTP), cluster mode, the HttpRegistry against a local HTTP server, every endpoint x every role."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from werkzeug.wrappers import Request

from functions.identity.function import mismatches, models, population, seed as identity_seed
from lscloud.pseudonyms import pseudonym
from functions.identity.function.app import create_app
from lscloud import runtime
from lscloud.auth import verify_token
from lscloud.config import ConfigError
from lscloud.runtime import Runtime

from peer_stubs import Served, conditional_json
import role_matrix
from waiting import clear_of_a_window_edge
from client_answers import ok

pytestmark = pytest.mark.integration

AN = {"id_number": "020095001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1995-03-12"}


class Stub(Served):
    """A tiny HTTP server answering from a dict of path -> (status, json body); counts hits."""

    def __init__(self, routes: dict, delay_s: float = 0.0):
        self.routes, self.delay_s, self.hits = routes, delay_s, []

        @Request.application
        def app(request):
            self.hits.append((request.path, request.headers.get("Authorization")))
            time.sleep(self.delay_s)
            status, body = self.routes.get(request.path, (404, {"status": 404}))
            return conditional_json(body, request, status=status)

        super().__init__(app)


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
def seeded_bucket(base_settings, object_store):
    """A bucket holding the local population registry, seeded once for the module."""
    bucket = f"t-id-{uuid.uuid4().hex[:16]}"
    object_store.ensure_bucket(bucket)
    rt = runtime.install(Runtime(base_settings.replace(bucket=bucket)))
    try:
        result = identity_seed.seed(rt)
    finally:
        runtime.uninstall()
    assert result["citizens"] >= 300 and result["known"] >= 5
    return bucket


@pytest.fixture
def signing_key_file(tmp_path, keys) -> str:
    """The test's dev private key where the local cloud would put it for identity."""
    path = tmp_path / "dev-signing.pem"
    path.write_text(keys[0])
    return str(path)


@pytest.fixture
def start_identity(start_function, seeded_bucket, directory, signing_key_file):
    """``start_identity(function_env={"IDENTITY_…": …}, **settings)``: identity started as Knative starts
    it, on the seeded registry, asking the stand-in directory, holding the test's signing key."""

    def start(**changes):
        return start_function("identity", **{"bucket": seeded_bucket, "peer_url_template": directory.url + "/{name}",
                                             "jwt_signing_key_file": signing_key_file, **changes})

    return start


@pytest.fixture
def identity(start_identity):
    return start_identity()


@pytest.fixture
def client(identity):
    return identity.app.test_client()


def ip(n=None) -> dict:
    """A distinct client address per call (as the gateway appends it), so counters never mix. The
    last entry is the one counted: drawn from 2^24 addresses, not 250, two of a test's six calls
    once shared one (1-2% of runs), and a "new" caller found itself blocked (CI at eece7cd)."""
    r = uuid.uuid4().int
    return {"X-Forwarded-For": f"203.0.113.{n if n is not None else r % 250}, "
                               f"10.{(r >> 8) % 256}.{(r >> 16) % 256}.{(r >> 24) % 256}"}


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


def test_rate_limit_per_caller_then_per_number(start_identity):
    client = start_identity(function_env={"IDENTITY_MAX_MISMATCHES": "3", "IDENTITY_WINDOW_S": "600"}).app.test_client()
    clear_of_a_window_edge(600)
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
    for _ in range(3):   # each one a counted mismatch (an answer that is not would show here, not below)
        assert ok(client.post("/v1/verifications", json=wrong, headers=ip()))["match"] is False
    r = client.post("/v1/verifications", json=wrong, headers=ip())
    assert r.status_code == 429 and "for this number" in r.get_json()["detail"]
    # a forged X-Forwarded-For prefix does not help: the last entry (the gateway's) counts
    forged = {"X-Forwarded-For": "1.2.3.4, " + me["X-Forwarded-For"].split(", ")[-1]}
    assert client.post("/v1/verifications", json=AN, headers=forged).status_code == 429


def test_concurrent_mismatches_are_all_counted(install, seeded_bucket):
    rt = install(bucket=seeded_bucket)
    limiter = mismatches.MismatchLimits(mismatches.Limits(max_mismatches=1000, window_s=600))
    clear_of_a_window_edge(600)
    caller, number = f"ip:{uuid.uuid4()}", "020088002468"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: limiter.record_mismatch(caller, number), range(24)))
    assert limiter.caller.peek("caller:" + caller) == 24 and limiter.target.peek("target:" + number) == 24
    # the same keys as identity's own limiter kept: the pseudonym of "caller:<who>" / "target:<cccd>"
    window = limiter.caller._window()[0]
    assert models.AttemptWindow.get(pseudonym("identity-attempts", f"caller:{caller}"), window).hits == 24
    # subjects are hashed: neither the number nor the address is in any object key
    keys = [o.key for o in rt.objects.list(rt.settings.bucket, "identity-attempts/")]
    assert keys and not any(number in k or caller[3:] in k for k in keys)


def test_citizen_token(identity, client):
    r = client.post("/v1/tokens/citizen", json={**AN, "full_name": "nguyễn văn an"}, headers=ip())
    body = ok(r, 201)
    assert body["role"] == "citizen" and body["sub"] == "020095001234" and body["token_type"] == "Bearer"
    who = verify_token(body["access_token"], identity.settings)
    assert (who.sub, who.role, who.agency, who.unit) == ("020095001234", "citizen", None, None)
    bad = client.post("/v1/tokens/citizen", json={**AN, "date_of_birth": "1995-12-03"}, headers=ip())
    assert bad.status_code == 401 and bad.get_json()["errors"] == [{"field": "/date_of_birth", "message": "does not match"}]


def test_officer_token_checks_the_directory(identity, client):
    body = ok(client.post("/v1/tokens/officer", json={"officer_id": "cb-xd-001", "agency": "so-xay-dung", "unit": "20"}), 201)
    who = verify_token(body["access_token"], identity.settings)
    assert (who.sub, who.role, who.agency, who.unit) == ("cb-xd-001", "officer", "so-xay-dung", "20")
    sup = ok(client.post("/v1/tokens/officer", json={"officer_id": "ct-06040", "agency": "ubnd-06040", "unit": "06040",
                                                     "role": "supervisor"}), 201)
    assert verify_token(sup["access_token"], identity.settings).role == "supervisor"
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "so-khong-co", "unit": "20"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/agency"
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "so-xay-dung", "unit": "99999"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "/unit"
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "ubnd-06040", "unit": "06280"})
    assert r.status_code == 422 and "06040" in r.get_json()["errors"][0]["message"]
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "so-xay-dung", "unit": "20", "role": "admin"})
    assert r.status_code == 422


def test_directory_down_is_503(start_identity):
    client = start_identity(peer_url_template="http://127.0.0.1:9/{name}").app.test_client()
    r = client.post("/v1/tokens/officer", json={"officer_id": "x", "agency": "so-xay-dung", "unit": "20"})
    assert r.status_code == 503 and r.headers["Retry-After"] and r.get_json()["type"].endswith("/directory-unavailable")


def test_no_signing_key_and_cluster_mode(start_identity):
    no_key = start_identity(jwt_signing_key_file="").app.test_client().post("/v1/tokens/citizen", json=AN, headers=ip())
    assert no_key.status_code == 503 and no_key.get_json()["type"].endswith("/signing-key-missing")
    registry = Stub({})
    try:
        # the cluster's own settings (its keys, its event senders) are not this test's concern: the app alone
        cluster = start_identity().settings.replace(env="cluster")
        client = create_app(cluster.replace(function_env={"IDENTITY_REGISTRY_URL": registry.url})).test_client()
        for path, body in (("/v1/tokens/citizen", AN), ("/v1/tokens/officer", {"officer_id": "x", "agency": "tax", "unit": "20"})):
            r = client.post(path, json=body)
            assert r.status_code == 404 and r.get_json()["type"].endswith("token-issuing-disabled")
        with pytest.raises(ConfigError, match="IDENTITY_REGISTRY_URL"):
            create_app(cluster)
    finally:
        registry.stop()


def test_bad_options_stop_the_start(start_identity):
    with pytest.raises(ConfigError, match="IDENTITY_MAX_MISMATCHES must be at least 1"):
        start_identity(function_env={"IDENTITY_MAX_MISMATCHES": "0"})
    with pytest.raises(ConfigError, match="IDENTITY_TOKEN_TTL_S"):
        start_identity(function_env={"IDENTITY_TOKEN_TTL_S": "90000"})


def test_http_registry_against_a_local_server():
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


def test_the_app_maps_registry_errors(start_identity):
    server = Stub({"/citizens/020095001234": (503, {}), "/citizens/020196004321": (401, {})})
    try:
        env = {"IDENTITY_REGISTRY_URL": server.url, "IDENTITY_REGISTRY_TOKEN": "t"}
        client = start_identity(function_env=env).app.test_client()
        r = client.post("/v1/verifications", json=AN, headers=ip())
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        lan = {"id_number": "020196004321", "full_name": "Hoàng Thị Lan", "date_of_birth": "1996-11-02"}
        broken = client.post("/v1/verifications", json=lan, headers=ip())
        assert broken.status_code == 502 and broken.get_json()["type"].endswith("/registry-error")
    finally:
        server.stop()


def test_every_endpoint_with_every_role(client, keys):
    """Held to functions/identity/access.yaml (every route public), not to @allow."""
    assert role_matrix.check(client.application, "identity", keys[0]) >= 5 * 14


def test_odd_path_ids_get_a_problem_never_a_5xx(client):
    from path_ids import assert_no_route_fails_on_odd_ids

    assert assert_no_route_fails_on_odd_ids(client.application, lambda role: {}) >= 10

