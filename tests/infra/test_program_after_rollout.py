"""The program runs each function's migration again after its Service (infra/__main__.py wiring of
hooks.AFTER_SERVING), and gives every hook Job the Service's environment."""

from __future__ import annotations

import pytest

from infra_support import REPO, k8s_objects

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from lscloud import manifest  # noqa: E402

from components import hooks, rollout  # noqa: E402

FUNCTIONS = manifest.discover(REPO / "functions")
MIGRATED = {m.name for m in FUNCTIONS if m.migrate_module is not None}
FN_LABEL = "lscloud.langson.gov.vn/function"


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_every_function_with_a_migration_migrates_again_after_its_service(program, stack):
    mocks = program(stack)
    order = [(r.inputs.get("kind"), r.inputs.get("apiVersion"), r.inputs.get("metadata", {}).get("name"),
              r.inputs.get("metadata", {}).get("labels", {})) for r in mocks.resources]
    after = {labels[FN_LABEL]: i for i, (kind, _, _, labels) in enumerate(order)
             if kind == "Job" and labels.get("app.kubernetes.io/component") == rollout.COMPONENT}
    assert set(after) == MIGRATED
    for name, i in after.items():
        service = next(j for j, (kind, api, n, _) in enumerate(order)
                       if kind == "Service" and api == "serving.knative.dev/v1" and n == name)
        assert service < i, name
        for kind in ("ServiceAccount", "Role", "RoleBinding"):
            assert [j for j, (k, _, n, _) in enumerate(order) if k == kind and n == rollout.account_name(name)], (name, kind)
    objs = k8s_objects(mocks)
    assert [p for p in objs if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == rollout.POLICY]


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_dossiers_hooks_know_their_bucket_is_under_object_lock(program, stack):
    objs = k8s_objects(program(stack))
    svc = next(o for o in objs if o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1"
               and o["metadata"]["name"] == "dossiers")
    env = svc["spec"]["template"]["spec"]["containers"][0]["env"]
    assert any(e["name"] == "LSCLOUD_S3_OBJECT_LOCK" for e in env)
    jobs = [o for o in objs if o["kind"] == "Job" and o["metadata"]["labels"].get(FN_LABEL) == "dossiers"]
    assert {j["spec"]["template"]["spec"]["containers"][0]["name"] for j in jobs} == set(hooks.wanted(
        next(m for m in FUNCTIONS if m.name == "dossiers")))
    for job in jobs:
        assert job["spec"]["template"]["spec"]["containers"][0]["env"] == env, job["metadata"]["name"]
