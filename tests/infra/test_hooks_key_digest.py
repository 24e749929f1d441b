"""A changed pseudonym key runs the function's migration again (infra/components/hooks.py): the
migration Jobs' names carry a digest of the ``lscloud-pseudonym`` Secret's key, as the Service's
config digest does, so the new key re-keys the data; before, the name came from the image and the
package only, and a rotated Secret rolled out a revision whose indexes found nothing.

Each case runs the component as the program does (the key a secret Output) and reads what it
sends: the Job's name, and every object, for the key."""

from __future__ import annotations

import json
import re

import pytest

from infra_support import REPO, RecordingMocks, is_secret, normalize

pulumi = pytest.importorskip("pulumi")

from lscloud import manifest  # noqa: E402

from components import function as fn, hooks  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FUNCTIONS = manifest.discover(REPO / "functions")
BY_NAME = {m.name: m for m in FUNCTIONS}
PLATFORM = fn.PlatformEndpoints(namespace="lscloud", s3_endpoint="https://minio.lscloud-data.svc:9000",
                                nats_url="tls://nats", stream="LSCLOUD", otlp_endpoint="http://o", bucket_prefix="lscloud",
                                jwt_issuer="i", jwt_audience="a", api_server_cidrs=("10.30.0.0/20",))
KEY_A = "pseudonym-key-a-0123456789abcdefghijklmnopqrstuv"
KEY_B = "pseudonym-key-b-0123456789abcdefghijklmnopqrstuv"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MIGRATED = [m for m in FUNCTIONS if "migrate" in hooks.wanted(m)]
SEEDED = [m for m in FUNCTIONS if "seed" in hooks.wanted(m)]


def test_there_are_migrations_and_seeds_to_test():
    assert MIGRATED and SEEDED, ([m.name for m in MIGRATED], [m.name for m in SEEDED])


def run_hook(kind: str, key: str, m, image: str = "r/app:1") -> list[dict]:
    """Every resource the hook component sends with the pseudonym key ``key`` (inputs, as sent)."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="lscloud", stack="unit", preview=False)

    @pulumi.runtime.test
    def run():
        hook = hooks.FunctionHook(f"lscloud-{kind}-{m.name}", m, kind, PLATFORM, image=image, store_image="minio:1",
                                  pseudonym_key=pulumi.Output.secret(key))
        return pulumi.Output.from_input(hook.object["metadata"]["name"])

    run()
    return [r.inputs for r in mocks.resources]


def job(sent: list[dict]) -> dict:
    (out,) = [r for r in sent if r.get("kind") == "Job"]
    return out


def job_name(kind: str, key: str, m, image: str = "r/app:1") -> str:
    name = job(run_hook(kind, key, m, image))["metadata"]["name"]
    # the digest is no secret: `pulumi preview` shows which Job replaces which
    assert not is_secret(name)
    return normalize(name)


@pytest.mark.parametrize("kind", hooks.KEYED)
@pytest.mark.parametrize("m", MIGRATED, ids=lambda m: m.name)
def test_a_changed_key_names_a_new_migration_job_and_the_same_key_the_same(kind, m):
    a, b = job_name(kind, KEY_A, m), job_name(kind, KEY_B, m)
    assert a != b                           # a new Job: the data is re-keyed under the new key
    assert job_name(kind, KEY_A, m) == a    # the same key (or switching back): the same Job
    assert job_name(kind, KEY_B, m, image="r/app:2") != b   # the image still counts
    for name in (a, b):
        assert len(name) <= 63 and DNS_LABEL.fullmatch(name), name


@pytest.mark.parametrize("kind", [*hooks.KEYED, "store-check"])
def test_the_key_is_in_no_object_the_hook_sends(kind):
    m = MIGRATED[0]
    sent = json.dumps(run_hook(kind, KEY_A, m))
    # nor what its digest is taken of: the Job's name, env, labels and annotations name no key
    assert json.loads(sent)   # the Job and what comes with it
    for secret in (KEY_A, json.dumps({"pseudonym": KEY_A}, sort_keys=True)):
        assert secret not in sent


@pytest.mark.parametrize("m", SEEDED, ids=lambda m: m.name)
def test_seed_and_store_check_jobs_keep_their_name_when_the_key_changes(m):
    assert job_name("seed", KEY_A, m) == job_name("seed", KEY_B, m)
    assert job_name("store-check", KEY_A, m) == job_name("store-check", KEY_B, m)
