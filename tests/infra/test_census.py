"""The census: every stack file exactly as committed, with only the secrets the program refuses to go
without (market's stamp key: a function that cannot start would fail `pulumi up`), yields a program
that would deploy — objects that validate, every pod reachable through a NetworkPolicy that opens
what it needs, every Secret and ConfigMap a pod reads created by the program, every release URL one
that was published, every stream bounded and within its store."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra_support import INFRA, REQUIRED_SECRETS, k8s_objects, normalize, run_program

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from components import knative, releases  # noqa: E402
from components.settings import StackSettings  # noqa: E402

K8S_VERSION = "1.34.0"  # what Knative 1.23 needs at least
STACK_FILES = sorted(p.name for p in INFRA.glob("Pulumi.*.yaml"))
CHANNEL_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "natsjetstreamchannel-stream.json").read_text())
# namespaces the program denies by default (components/namespaces.py)
DENIED = ("lscloud", "lscloud-data")
# present in every namespace without us (Kubernetes publishes the API server's CA there)
BUILT_IN_CONFIGMAPS = {"kube-root-ca.crt"}

_runs: dict[str, object] = {}


def committed(stack_file: str):
    stack = stack_file.split(".")[1]
    if stack not in _runs:
        _runs[stack] = run_program(stack, secrets=dict(REQUIRED_SECRETS))
    return _runs[stack]


@pytest.fixture(params=STACK_FILES)
def census(request):
    mocks = committed(request.param)
    return request.param, mocks, k8s_objects(mocks)


def test_there_are_stack_files():
    assert {"Pulumi.dev.yaml", "Pulumi.prod.yaml"} <= set(STACK_FILES)


def _pods(objs):
    """(workload, namespace, pod labels, pod spec) for everything that makes pods."""
    for o in objs:
        spec, labels = None, {}
        if o["kind"] in ("Deployment", "StatefulSet", "Job") and o["apiVersion"] in ("apps/v1", "batch/v1"):
            spec, labels = o["spec"]["template"]["spec"], o["spec"]["template"]["metadata"].get("labels", {})
        elif o["kind"] == "CronJob":
            t = o["spec"]["jobTemplate"]["spec"]["template"]
            spec, labels = t["spec"], t["metadata"].get("labels", {})
        elif o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1":
            t = o["spec"]["template"]
            spec = t["spec"]
            labels = {**t["metadata"].get("labels", {}), "serving.knative.dev/service": o["metadata"]["name"]}
        if spec is not None:
            yield o, o["metadata"]["namespace"], labels, spec


def _selects(policy, namespace, labels) -> bool:
    if policy["metadata"]["namespace"] != namespace:
        return False
    sel = policy["spec"]["podSelector"].get("matchLabels", {})
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def test_the_program_runs_as_committed_and_its_objects_validate(census):
    name, _, objs = census
    checked = 0
    for obj in objs:
        group = obj["apiVersion"].split("/")[0]
        if "." in group and not group.endswith("k8s.io") and group != "policy":
            continue  # custom resources: below
        kubernetes_validate.validate(normalize(obj), K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 40, name
    for svc in (o for o in objs if o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1"):
        spec = {k: v for k, v in svc["spec"]["template"]["spec"].items() if k not in ("containerConcurrency", "timeoutSeconds")}
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec},
                                     K8S_VERSION, strict=True)


def test_channels_are_bounded_in_fields_eventing_natss_knows(census):
    _, _, objs = census
    channels = [o for o in objs if o["kind"] == "NatsJetStreamChannel"]
    templates = [yaml.safe_load(o["data"]["channel-template-spec"]) for o in objs
                 if o["kind"] == "ConfigMap" and "channel-template-spec" in o.get("data", {})]
    assert channels and templates
    for spec in [c["spec"] for c in channels] + [t["spec"] for t in templates]:
        jsonschema.validate(spec["stream"], CHANNEL_SCHEMA)
        cfg = spec["stream"]["config"]
        assert cfg["maxBytes"] > 0 and cfg["maxAge"] and cfg["discard"] == "Old" and cfg["retention"] == "Limits"


def test_every_pod_in_a_denied_namespace_has_a_policy_of_its_own(census):
    """Default-deny namespaces: a pod no NetworkPolicy selects can reach nothing (the seed could not
    reach MinIO), so each one must be selected by a policy that opens something."""
    _, _, objs = census
    policies = [o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] != "default-deny"]
    for workload, namespace, labels, _ in _pods(objs):
        if namespace not in DENIED:
            continue
        mine = [p for p in policies if _selects(p, namespace, labels)]
        assert mine, f"{workload['kind']}/{workload['metadata']['name']} in {namespace}: no NetworkPolicy selects it"
        assert any(p["spec"].get("egress") for p in mine), f"{workload['metadata']['name']}: no egress opened"


def test_every_secret_and_config_map_a_pod_reads_is_made_by_the_program(census):
    """Nothing is created by hand: each secretKeyRef, configMapKeyRef and volume names an object the
    program creates in the pod's namespace (or a Certificate's secret, or Kubernetes' own CA map)."""
    _, _, objs = census
    made = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs}
    made |= {("Secret", o["metadata"]["namespace"], o["spec"]["secretName"]) for o in objs if o["kind"] == "Certificate"}
    for workload, namespace, _, spec in _pods(objs):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    assert ("Secret", namespace, ref["secretKeyRef"]["name"]) in made, f"{where}: {e['name']}"
                if "configMapKeyRef" in ref:
                    assert ("ConfigMap", namespace, ref["configMapKeyRef"]["name"]) in made, f"{where}: {e['name']}"
        for v in spec.get("volumes", []):
            if "secret" in v:
                assert ("Secret", namespace, v["secret"]["secretName"]) in made, f"{where}: volume {v['name']}"
            if "configMap" in v and v["configMap"]["name"] not in BUILT_IN_CONFIGMAPS:
                assert ("ConfigMap", namespace, v["configMap"]["name"]) in made, f"{where}: volume {v['name']}"


def test_every_release_url_was_published_and_certificates_come_from_the_internal_ca(census):
    name, mocks, objs = census
    groups = [r for r in mocks.resources if r.typ == "kubernetes:yaml/v2:ConfigGroup"]
    stack = StackSettings.from_values(lambda k: _stack_value(name, k))
    expected = knative.release_urls(stack.knative) if stack.knative.install else []
    urls = [u for g in groups for u in normalize(g.inputs.get("files", []))]
    assert urls == expected
    published = {r.url(a) for r in releases.PUBLISHED for a in r.assets}
    assert all(u in published for u in urls) and not any("net-certmanager" in u for u in urls)
    for cert in (o for o in objs if o["kind"] == "Certificate"):
        issuer = cert["spec"]["issuerRef"]
        assert issuer["kind"] == "ClusterIssuer" and issuer["name"] in ("lscloud-internal-ca", "lscloud-selfsigned")


def _stack_value(stack_file: str, key: str):
    doc = yaml.safe_load((INFRA / stack_file).read_text(encoding="utf-8"))["config"]
    return doc.get(f"lscloud:{key}")
