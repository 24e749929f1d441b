"""A changed pseudonym key runs the function's migration again (infra/components/hooks.py): the
migration Jobs' names carry a digest of the ``lscloud-pseudonym`` Secret's key, as the Service's
config digest does, so the new key re-keys the data; before, the name came from the image and the
package only, and a rotated Secret rolled out a revision whose indexes found nothing."""

from __future__ import annotations

import pytest

from infra_support import REPO, RecordingMocks, is_secret, normalize

pulumi = pytest.importorskip("pulumi")

from lscloud import manifest  # noqa: E402

from components import appconfig, function as fn, hooks  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FUNCTIONS = manifest.discover(REPO / "functions")
BY_NAME = {m.name: m for m in FUNCTIONS}
PLATFORM = fn.PlatformEndpoints(namespace="lscloud", s3_endpoint="https://minio.lscloud-data.svc:9000",
                                nats_url="tls://nats", stream="LSCLOUD", otlp_endpoint="http://o", bucket_prefix="lscloud",
                                jwt_issuer="i", jwt_audience="a", api_server_cidrs=("10.30.0.0/20",))
KEY_A = "pseudonym-key-a-0123456789abcdefghijklmnopqrstuv"
KEY_B = "pseudonym-key-b-0123456789abcdefghijklmnopqrstuv"
MIGRATIONS = ("migrate", hooks.AFTER_ROLLOUT)


def digest(key: str) -> str:
    return appconfig.digest_of({"pseudonym": key})


def name(kind: str, key: str | None, m=None, image: str = "r/identity:1") -> str:
    return hooks.render_job(m or BY_NAME["identity"], kind, PLATFORM, image=image, store_image="minio:1",
                            key_digest=digest(key) if key is not None else None)["metadata"]["name"]


def test_the_digest_is_the_config_digests_and_names_no_key():
    assert hooks.key_digest(KEY_A) == digest(KEY_A) != hooks.key_digest(KEY_B)
    assert KEY_A not in digest(KEY_A) and len(digest(KEY_A)) == 16
    assert set(hooks.KEYED) == set(MIGRATIONS)


@pytest.mark.parametrize("kind", MIGRATIONS)
def test_a_changed_key_names_a_new_migration_job(kind):
    a, b = name(kind, KEY_A), name(kind, KEY_B)
    assert a != b                                   # a new Job: the data is re-keyed under the new key
    assert name(kind, KEY_A) == a                   # the same key: the same Job, nothing runs again
    assert name(kind, KEY_B, image="r/identity:2") != b   # the image still counts
    assert len(a) <= 63 and KEY_A not in a and digest(KEY_A) not in a
    # switching back names the first Job again: Pulumi replaces the Job, and the migration (its key
    # record in the bucket names key B) re-keys back (lscloud.serve)
    assert name(kind, KEY_A) == a


def test_hooks_that_key_nothing_keep_their_name():
    m = BY_NAME["directory"] if BY_NAME["directory"].seed_module is not None else BY_NAME["identity"]
    assert name("store-check", KEY_A, m) == name("store-check", KEY_B, m) == name("store-check", None, m)
    if m.seed_module is not None:
        assert name("seed", KEY_A, m) == name("seed", KEY_B, m)


def test_the_component_names_its_job_from_the_secrets_key_not_in_secret():
    def job_of(key):
        mocks = RecordingMocks()
        pulumi.runtime.set_mocks(mocks, project="lscloud", stack="unit", preview=False)
        m = BY_NAME["identity"]

        @pulumi.runtime.test
        def run():
            hook = hooks.FunctionHook(f"lscloud-migrate-{m.name}", m, "migrate", PLATFORM, image="r/identity:1",
                                      pseudonym_key=pulumi.Output.secret(key))
            return pulumi.Output.from_input(hook.object["metadata"]["name"])

        run()
        (job,) = [r.inputs for r in mocks.resources if r.inputs.get("kind") == "Job"]
        # the digest is no secret: `pulumi preview` shows which Job replaces which
        assert not is_secret(job["metadata"]["name"])
        return normalize(job)["metadata"]["name"]

    a, b = job_of(KEY_A), job_of(KEY_B)
    assert a == name("migrate", KEY_A) != b == name("migrate", KEY_B)
