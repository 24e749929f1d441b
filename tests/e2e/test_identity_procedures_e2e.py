"""Through a real `lscloud up` (the repo's functions/): a citizen verifies, signs in and finds a
procedure; an officer signs in for an agency the directory knows; only the identity process
holds the dev signing key."""

from __future__ import annotations

import hashlib

import httpx
import psutil
import pytest

from localcloud import running
from lscloud.auth import dev_keys, verify_token
from lscloud.config import Settings
from lscloud.local.processes import SIGNING_KEY_ENV

pytestmark = pytest.mark.e2e

AN = {"id_number": "020095001234", "full_name": "nguyễn  văn AN", "date_of_birth": "1995-03-12"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "identity-cloud") as c:
        yield c


@pytest.fixture(scope="module")
def gw(cloud):
    with httpx.Client(base_url=cloud.gateway, timeout=30) as client:
        yield client


def test_a_citizen_verifies_signs_in_and_finds_a_procedure(cloud, gw):
    state = cloud.state()
    assert state["functions"]["identity"]["state"] == "ready" and state["functions"]["procedures"]["state"] == "ready"
    assert "seeded       identity" in cloud.output() and "seeded       procedures" in cloud.output()

    r = gw.get("/identity/v1/cccd/020095001234")
    assert r.status_code == 200 and r.json()["province"] == "Lạng Sơn"
    v = gw.post("/identity/v1/verifications", json=AN)
    assert v.status_code == 200 and v.json()["match"] is True
    bad = gw.post("/identity/v1/verifications", json={**AN, "full_name": "Nguyen Van An"})
    assert bad.json()["fields"]["full_name"] == "mismatch"

    t = gw.post("/identity/v1/tokens/citizen", json=AN)
    assert t.status_code == 201, t.text
    settings = Settings(jwt_public_key=dev_keys(cloud.state_dir)[1])
    who = verify_token(t.json()["access_token"], settings)
    assert (who.sub, who.role) == ("020095001234", "citizen")

    o = gw.post("/identity/v1/tokens/officer", json={"officer_id": "cb-xd-01", "agency": "so-xay-dung", "unit": "20"})
    assert o.status_code == 201, o.text
    assert verify_token(o.json()["access_token"], settings).agency == "so-xay-dung"
    assert gw.post("/identity/v1/tokens/officer",
                   json={"officer_id": "x", "agency": "so-khong-co", "unit": "20"}).status_code == 422

    bearer = {"Authorization": "Bearer " + t.json()["access_token"]}
    found = gw.get("/procedures/v1/procedures", params={"q": "KHAI SINH"}, headers=bearer)
    assert found.status_code == 200 and found.json()["items"][0]["code"] == "HT-KS"
    ks = gw.get("/procedures/v1/procedures/HT-KS")
    assert ks.json()["agency"] == "ubnd-xa" and ks.json()["processing_days"] == 0
    again = gw.get("/procedures/v1/procedures/HT-KS", headers={"If-None-Match": ks.headers["ETag"]})
    assert again.status_code == 304
    link = gw.get("/procedures/v1/procedures/HT-KS/documents/to-khai/template")
    assert link.status_code == 303
    pdf = httpx.get(link.headers["Location"], timeout=10)
    assert pdf.content.startswith(b"%PDF") and hashlib.sha256(pdf.content).hexdigest() == \
        ks.json()["documents"][0]["template"]["sha256"]


def test_only_the_identity_process_holds_the_signing_key(cloud):
    """No process of the cloud but identity is started with the key's path, the fork server included
    (identity signing with it is the test above).

    A function forked from the fork server shows in /proc the environment the fork server was
    started with; it runs with the one the supervisor handed it (tests/integration/test_up_forks.py
    holds that), and that the supervisor hands the key to identity alone is
    tests/unit/test_identity_procedures_domain.py::test_only_identity_gets_the_signing_key."""
    state = cloud.state()
    pids = {p["role"]: p["pid"] for p in state.get("processes", []) if p.get("role") == "forkserver"}
    pids.update({name: fn["pid"] for name, fn in state["functions"].items() if fn.get("pid")})
    for name, pid in pids.items():
        env = psutil.Process(pid).environ()
        assert SIGNING_KEY_ENV not in env or name == "identity", name
