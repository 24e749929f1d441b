"""The Pulumi program under mocks: what it would create for the dev and prod stacks."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from infra_support import (INFRA, JWT_PUBLIC_KEY, KUBECONFIG, MARKET_STAMP_KEY, REPO, is_secret, k8s_objects, normalize,
                           run_program, stack_config)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from lscloud.bus import STREAM_SUBJECTS  # noqa: E402
from lscloud import manifest  # noqa: E402

FUNCTIONS = manifest.discover(REPO / "functions")
STACKS = ("dev", "prod")
K8S_VERSION = "1.30.0"
LONG_RUNNING = ("Deployment", "StatefulSet")
# sidecars that serve nothing: nats-server's certificate reloader
SIDECARS_WITHOUT_PORTS = ("tls-reloader",)


def of_kind(objs, kind, api=None):
    return [o for o in objs if o["kind"] == kind and (api is None or o["apiVersion"] == api)]


def containers(obj) -> list[dict]:
    spec = obj["spec"]["template"]["spec"]
    return spec.get("containers", []) + spec.get("initContainers", [])


@pytest.fixture(params=STACKS)
def objs(request, program):
    return k8s_objects(program(request.param))


# --- functions --------------------------------------------------------------------------------

def test_functions_folder_is_not_empty():
    assert FUNCTIONS, "no functions/*/func.yaml found"


def test_every_function_yields_a_service_and_its_triggers(objs):
    services = {o["metadata"]["name"]: o for o in of_kind(objs, "Service", "serving.knative.dev/v1")}
    triggers = of_kind(objs, "Trigger", "eventing.knative.dev/v1")
    assert set(services) == {m.name for m in FUNCTIONS}
    for m in FUNCTIONS:
        mine = [t for t in triggers if t["spec"]["subscriber"]["ref"]["name"] == m.name]
        assert sorted(t["spec"]["filter"]["attributes"]["type"] for t in mine) == sorted(s.type for s in m.subscriptions)


def test_knative_service_shape(objs):
    for svc in of_kind(objs, "Service", "serving.knative.dev/v1"):
        m = next(f for f in FUNCTIONS if f.name == svc["metadata"]["name"])
        assert svc["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
        ann = svc["spec"]["template"]["metadata"]["annotations"]
        lo, hi = int(ann["autoscaling.knative.dev/min-scale"]), int(ann["autoscaling.knative.dev/max-scale"])
        assert 0 <= lo <= hi
        if m.scale.target is not None:
            assert float(ann["autoscaling.knative.dev/target"]) == m.scale.target
        spec = svc["spec"]["template"]["spec"]
        if "concurrency" in m.resources.limits:
            assert spec["containerConcurrency"] == m.resources.limits["concurrency"]
        (c,) = spec["containers"]
        assert c["image"] and ":" in c["image"].rsplit("/", 1)[-1]
        assert c["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
        assert c["livenessProbe"]["httpGet"]["path"] == "/health/liveness"
        assert "concurrency" not in c["resources"]["limits"]  # Knative's, not a Kubernetes resource
        for k, v in m.resources.requests.items():
            assert c["resources"]["requests"][k] == str(v)
        env = {e["name"]: e for e in c["env"]}
        assert env["LSCLOUD_ENV"]["value"] == "cluster"
        assert env["LSCLOUD_S3_ENDPOINT"]["value"].startswith("https://minio.")
        assert env["LSCLOUD_NATS_URL"]["value"].startswith("tls://nats.")
        # TLS to NATS and MinIO with the function's own client certificate, metrics to the one collector
        assert env["LSCLOUD_NATS_CERT_FILE"]["value"] == "/var/run/lscloud/tls/tls.crt"
        assert env["LSCLOUD_S3_CA_FILE"]["value"] == env["LSCLOUD_NATS_CA_FILE"]["value"]
        assert env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]["value"].startswith("http://otel-collector-metrics.")
        assert {"name": "lscloud-tls", "secret": {"secretName": f"nats-fn-{m.name}", "defaultMode": 0o444}} in spec["volumes"]
        assert env["LSCLOUD_STREAM"]["value"] == "LSCLOUD"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].startswith("http://otel-collector.")
        assert "LSCLOUD_JWT_JWKS_URL" in env or "secretKeyRef" in env["LSCLOUD_JWT_PUBLIC_KEY"]["valueFrom"]
        # one pseudonym key for every function: indexes keyed by one are found by all
        assert env["LSCLOUD_PSEUDONYM_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "lscloud-pseudonym", "key": "key"}
        assert "K_SERVICE" not in env  # Knative sets it
        # where callers reach it (a certificate's CRL address names it): Serving's domain template, over TLS
        assert env["LSCLOUD_PUBLIC_URL_TEMPLATE"]["value"] in (
            "https://{name}.lscloud.dev.cloud.langson.gov.vn", "https://{name}.lscloud.cloud.langson.gov.vn")


def test_the_exported_urls_are_where_the_functions_say_they_are(program):
    mocks = program("prod")
    services = of_kind(k8s_objects(mocks), "Service", "serving.knative.dev/v1")
    for svc in services:
        env = {e["name"]: e for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}
        name = svc["metadata"]["name"]
        assert env["LSCLOUD_PUBLIC_URL_TEMPLATE"]["value"].format(name=name) == \
            f"https://{name}.lscloud.cloud.langson.gov.vn"
    # the documents function names no loopback address in the certificates it issues
    docs = next(s for s in services if s["metadata"]["name"] == "documents")
    assert all("127.0.0.1" not in str(e.get("value", "")) for e in docs["spec"]["template"]["spec"]["containers"][0]["env"])


def test_prod_uses_jwks_and_stack_scale_overrides(program):
    services = of_kind(k8s_objects(program("prod")), "Service", "serving.knative.dev/v1")
    svc = next(s for s in services if s["metadata"]["name"] == "directory")   # one function per Service
    ann = svc["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/min-scale"] == "2"
    env = {e["name"]: e for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LSCLOUD_JWT_JWKS_URL"]["value"].startswith("https://")
    assert svc["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.cloud.langson.gov.vn/lscloud/directory:2025.07.1"


def test_every_container_has_limits_and_probes(objs):
    workloads = [o for o in objs if o["kind"] in (*LONG_RUNNING, "Job")
                 or (o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1")]
    assert workloads
    for w in workloads:
        for c in containers(w):
            where = f"{w['kind']}/{w['metadata']['name']}/{c['name']}"
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            initial = c in w["spec"]["template"]["spec"].get("initContainers", [])   # probes never apply
            if w["kind"] != "Job" and not initial and c["name"] not in SIDECARS_WITHOUT_PORTS:
                assert "httpGet" in c["readinessProbe"] and "httpGet" in c["livenessProbe"], where


def test_queue_proxy_sidecar_gets_limits_too(program):
    patches = [r.inputs for r in program("dev").resources if r.typ == "kubernetes:core/v1:ConfigMapPatch"]
    deployment = next(p for p in patches if p["metadata"]["name"] == "config-deployment")
    assert deployment["data"]["queue-sidecar-cpu-limit"] and deployment["data"]["queue-sidecar-memory-limit"]


# --- object store -----------------------------------------------------------------------------

def test_no_bucket_is_public_and_each_function_reaches_only_its_own(objs):
    (policies,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == "minio-policies"]
    script = policies["data"]["setup.sh"]
    assert not re.search(r"anonymous set (public|download|upload|custom)", script)
    assert "policy" not in script.replace("admin policy", "")  # no bucket policies at all
    services = of_kind(objs, "Service", "serving.knative.dev/v1")
    secrets = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in of_kind(objs, "Secret")}
    for svc in services:
        name = svc["metadata"]["name"]
        env = {e["name"]: e for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}
        bucket = env["LSCLOUD_BUCKET"]["value"]
        assert f"mc anonymous set none lscloud/{bucket}" in script
        doc = json.loads(policies["data"][f"{name}.json"])
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow" and "Principal" not in st
            assert all(r in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*") for r in st["Resource"])
            assert not any(a in ("s3:*", "admin:*") or a.startswith("s3:PutBucket") for a in st["Action"])
        # the S3 credentials it gets are its own
        ref = env["LSCLOUD_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == f"lscloud-s3-{name}"
        assert (svc["metadata"]["namespace"], ref["name"]) in secrets
        assert secrets[(svc["metadata"]["namespace"], ref["name"])]["stringData"]["access-key"] == f"fn-{name}"
        assert f"mc admin policy attach lscloud lscloud-{name}-rw --user fn-{name}" in script


def test_minio_is_distributed_with_volumes(objs):
    (minio,) = [o for o in of_kind(objs, "StatefulSet") if o["metadata"]["name"] == "minio"]
    assert minio["spec"]["replicas"] >= 4
    args = minio["spec"]["template"]["spec"]["containers"][0]["args"]
    assert any(a.startswith("https://minio-{0...") for a in args)  # TLS between peers too
    assert "--certs-dir" in args
    assert minio["spec"]["volumeClaimTemplates"]


# --- bus ----------------------------------------------------------------------------------------

def test_nats_jetstream_cluster_of_three_with_r3_stream(objs):
    (nats,) = [o for o in of_kind(objs, "StatefulSet") if o["metadata"]["name"] == "nats"]
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    (cm,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == "nats-config"]
    assert "jetstream" in cm["data"]["nats.conf"] and cm["data"]["nats.conf"].count("nats://nats-") == 3
    stream = json.loads(cm["data"]["stream.json"])
    assert stream["num_replicas"] == 3 and stream["subjects"] == list(STREAM_SUBJECTS)
    # the brokers' and the dead-letter channel's streams are R3 as well
    (channel,) = of_kind(objs, "NatsJetStreamChannel")
    assert channel["spec"]["stream"]["config"]["replicas"] == 3


def test_field_devices_reach_the_stream_through_mqtt_and_the_relay(objs):
    """The environment function owns a device domain: nats-server listens for MQTT behind its own
    Service, the device users are synced into the accounts nats.conf includes, read with a store
    user that may read device credentials only, and the relay has its Deployment and certificate."""
    (cm,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == "nats-config"]
    conf = cm["data"]["nats.conf"]
    assert "mqtt {\n  port: 8883" in conf and "verify" not in conf.split("mqtt {", 1)[1].split("}\n}", 1)[0]
    # nats-server reads an include relative to nats.conf's folder, an absolute path too
    assert 'include "../nats-auth/accounts.conf"' in conf and "accounts {" not in conf
    assert "# lscloud:device-users" in cm["data"]["accounts.conf"]
    assert '"devices-relay@nats.lscloud"' in cm["data"]["accounts.conf"]
    devices_stream = json.loads(cm["data"]["devices-stream.json"])
    assert devices_stream["subjects"] == ["devices.>"] and devices_stream["num_replicas"] == 3
    assert devices_stream["max_msg_size"] == 256 * 1024   # lscloud.devices.MAX_MESSAGE_BYTES

    (nats,) = [o for o in of_kind(objs, "StatefulSet") if o["metadata"]["name"] == "nats"]
    spec = nats["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    sidecar = next(c for c in spec["containers"] if c["name"] == "device-users")
    env_bucket = next(e["value"] for svc in of_kind(objs, "Service", "serving.knative.dev/v1")
                      if svc["metadata"]["name"] == "environment"
                      for e in svc["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "LSCLOUD_BUCKET")
    for c in (init, sidecar):
        assert c["command"][:4] == ["python", "-m", "lscloud.devices", "sync-users"]
        assert c["command"][c["command"].index("--bucket") + 1] == env_bucket
        keys = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") for e in c["env"]}
        assert keys["LSCLOUD_S3_ACCESS_KEY"] == keys["LSCLOUD_S3_SECRET_KEY"] == "minio-nats-device-users"
    assert "--every" in sidecar["command"] and "--every" not in init["command"]
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["/etc/nats-auth"]["readOnly"] is True   # only the sync writes the users

    (mqtt,) = [o for o in of_kind(objs, "Service") if o["metadata"]["name"] == "nats-mqtt"]
    assert mqtt["spec"]["ports"] == [{"name": "mqtt", "port": 8883, "targetPort": 8883}]
    assert mqtt["spec"]["type"] == "LoadBalancer" and mqtt["spec"]["externalTrafficPolicy"] == "Local"
    policies = {p["metadata"]["name"]: p for p in of_kind(objs, "NetworkPolicy")}
    (mqtt_in,) = [r for r in policies["nats"]["spec"]["ingress"] if r["ports"][0]["port"] == 8883]
    assert all("ipBlock" in f for f in mqtt_in["from"])
    assert any(r["ports"][0]["port"] == 9000 for r in policies["nats"]["spec"]["egress"] if r.get("ports"))

    (store_policies,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == "minio-policies"]
    reader = json.loads(store_policies["data"]["nats-device-users.json"])
    assert {a for st in reader["Statement"] for a in st["Action"]} == {"s3:ListBucket", "s3:GetObject"}
    assert [r for st in reader["Statement"] for r in st["Resource"]] == [
        f"arn:aws:s3:::{env_bucket}", f"arn:aws:s3:::{env_bucket}/device-credentials/*"]

    (relay,) = [o for o in of_kind(objs, "Deployment") if o["metadata"]["name"] == "devices-relay"]
    volumes = relay["spec"]["template"]["spec"]["volumes"]
    cert = next(v["secret"]["secretName"] for v in volumes if "secret" in v)
    (certificate,) = [o for o in of_kind(objs, "Certificate") if o["metadata"]["name"] == cert]
    assert certificate["spec"]["emailAddresses"] == ["devices-relay@nats.lscloud"]


def test_disruption_budgets(objs):
    pdbs = {o["metadata"]["name"] for o in of_kind(objs, "PodDisruptionBudget")}
    assert {"nats", "minio"} <= pdbs


# --- telemetry ----------------------------------------------------------------------------------

def test_collector_runs_the_repository_config_one_pipeline_per_deployment(objs):
    """Traces on a replicated collector, metrics on exactly one: a series never exported twice."""
    repo = yaml.safe_load((REPO / "observability" / "collector.yaml").read_text(encoding="utf-8"))
    configs = {o["metadata"]["name"]: yaml.safe_load(o["data"]["collector.yaml"]) for o in of_kind(objs, "ConfigMap")
               if o["metadata"]["name"] in ("otel-collector", "otel-collector-metrics")}
    assert configs["otel-collector"]["service"]["pipelines"] == {"traces": repo["service"]["pipelines"]["traces"]}
    assert configs["otel-collector-metrics"]["service"]["pipelines"] == {"metrics": repo["service"]["pipelines"]["metrics"]}
    for cfg in configs.values():
        assert cfg["receivers"] == repo["receivers"]
        assert all(cfg["exporters"][e] == repo["exporters"][e] for e in cfg["exporters"])
    deployments = {o["metadata"]["name"]: o for o in of_kind(objs, "Deployment")}
    env = {e["name"] for e in deployments["otel-collector"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"TRACES_BACKEND_ENDPOINT", "TRACES_BACKEND_INSECURE"} <= env
    metrics = deployments["otel-collector-metrics"]["spec"]
    assert metrics["replicas"] == 1 and metrics["strategy"] == {"type": "Recreate"}  # never two, not even in a rollout
    ports = {p["port"] for o in of_kind(objs, "Service") if o["metadata"]["name"] == "otel-collector" for p in o["spec"]["ports"]}
    assert 8889 not in ports  # Prometheus scrapes only the metrics collector


# --- network policies ---------------------------------------------------------------------------

def test_every_function_has_a_network_policy(objs):
    policies = of_kind(objs, "NetworkPolicy")
    namespace = FUNCTIONS and of_kind(objs, "Service", "serving.knative.dev/v1")[0]["metadata"]["namespace"]
    assert any(p["metadata"]["name"] == "default-deny" and p["metadata"]["namespace"] == namespace
               and p["spec"]["podSelector"] == {} for p in policies)
    for m in FUNCTIONS:
        (pol,) = [p for p in policies if p["spec"]["podSelector"].get("matchLabels") == {"serving.knative.dev/service": m.name}]
        assert set(pol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        sources = {f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                   for rule in pol["spec"]["ingress"] for f in rule["from"]}
        assert sources <= {"knative-serving", "kourier-system", "knative-eventing"}
        # the stack's own egress for this function (softatm: its banks) opens what it names, nothing more
        own = [rule for rule in pol["spec"]["egress"]
               if [t.get("ipBlock", {}).get("cidr") for t in rule["to"]] in _own_egress(m.name)]
        ports = {p["port"] for rule in pol["spec"]["egress"] if rule not in own for p in rule["ports"]}
        assert ports <= {4222, 9000, 4317, 4318, 53, 443, 6443, 8081}
        # the API server (its JWKS verifies event senders) on 443/6443, nothing else by address
        assert any({p["port"] for p in rule["ports"]} == {443, 6443} and all("ipBlock" in t for t in rule["to"])
                   for rule in pol["spec"]["egress"])
        # other functions only through Kourier's gateway (LSCLOUD_PEER_URL_TEMPLATE)
        assert any(peer.get("podSelector") == {"matchLabels": {"app": "3scale-kourier-gateway"}}
                   and {p["port"] for p in rule["ports"]} == {8081}
                   for rule in pol["spec"]["egress"] for peer in rule["to"])
        for rule in pol["spec"]["egress"]:
            for peer in rule["to"]:  # only named workloads, DNS or configured CIDRs (on 443, the API server's 6443)
                assert "podSelector" in peer or rule in own or \
                    ("ipBlock" in peer and {p["port"] for p in rule["ports"]} <= {443, 6443})


def _own_egress(function: str) -> list[list[str]]:
    """The ``functions.<name>.egress`` CIDRs the committed stack files give ``function``, one list per rule."""
    out = []
    for stack in STACKS:
        o = (json.loads(stack_config(stack)["lscloud:functions"]).get(function) or {})
        out += [[rule["cidr"]] for rule in o.get("egress", [])]
    return out


def test_data_services_accept_only_their_clients(objs):
    policies = {p["metadata"]["name"]: p for p in of_kind(objs, "NetworkPolicy")}
    for name, port in (("nats", 4222), ("minio", 9000)):
        rules = [r for r in policies[name]["spec"]["ingress"] if any(p["port"] == port for p in r["ports"])]
        namespaces = {f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                      for r in rules for f in r["from"] if "namespaceSelector" in f}
        assert "lscloud" in namespaces and "default" not in namespaces


def test_functions_are_public_only_through_tls_ingress(program):
    patches = {r.inputs["metadata"]["name"]: r.inputs["data"] for r in program("prod").resources
               if r.typ == "kubernetes:core/v1:ConfigMapPatch"}
    assert patches["config-network"]["external-domain-tls"] == "Enabled"
    assert patches["config-network"]["http-protocol"] == "Redirected"
    assert "ClusterIssuer" in patches["config-certmanager"]["issuerRef"]


# --- secrets ------------------------------------------------------------------------------------

SECRETISH = re.compile(r"secret|password|passwd|token|private|hmac|credential|partnerkeys|kubeconfig|jwtpublickey",
                       re.IGNORECASE)


def _walk(value, path=""):
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            yield path, value
            return
        for k, v in value.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}/{i}")
    else:
        yield path, value


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_in_plain_stack_config(stack):
    doc = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    for path, value in _walk(doc.get("config", {})):
        if isinstance(value, dict):
            continue  # a `secure:` value, encrypted by Pulumi
        if path.startswith("/lscloud:generatedSecrets/"):
            assert value in ("fernet", "password"), path  # a kind to generate, never a value
            continue
        assert not SECRETISH.search(path.replace("sshPublicKey", "")), f"{path} must be a Pulumi secret (--secret)"
        assert "PRIVATE KEY" not in str(value) and "BEGIN" not in str(value), path


def test_secret_values_reach_only_kubernetes_secrets(program):
    mocks = program("dev")
    needles = [JWT_PUBLIC_KEY, MARKET_STAMP_KEY, *mocks.passwords, KUBECONFIG]
    assert mocks.passwords
    for r in mocks.resources:
        if r.typ in ("kubernetes:core/v1:Secret", "pulumi:providers:kubernetes") or r.typ.startswith("random:"):
            continue
        text = json.dumps(r.inputs)
        for needle in needles:
            assert needle not in text, f"a secret value appears in {r.typ} {r.name}"
    raw = {r.inputs["metadata"]["name"]: r.inputs["stringData"] for r in mocks.resources
           if r.typ == "kubernetes:core/v1:Secret"}
    assert all(is_secret(v) for v in raw.values()), "every Secret's data must stay a Pulumi secret"
    secrets = {k: normalize(v) for k, v in raw.items()}
    assert secrets["lscloud-jwt"]["public-key"] == JWT_PUBLIC_KEY
    assert secrets["market-stamp-key"]["private-key"] == MARKET_STAMP_KEY
    # the pseudonym key is generated (kept in the stack's state), long enough for the runtime's check
    assert secrets["lscloud-pseudonym"]["key"] in mocks.passwords
    assert len(secrets["lscloud-pseudonym"]["key"]) >= 16


def test_secret_looking_env_comes_only_from_secret_refs(objs):
    from components.function import SECRET_ENV_RE

    for w in objs:
        if w["kind"] not in (*LONG_RUNNING, "Job", "Service") or "template" not in w.get("spec", {}):
            continue
        for c in containers(w):
            for e in c.get("env", []):
                if SECRET_ENV_RE.search(e["name"]) or e["name"] in ("LSCLOUD_JWT_PUBLIC_KEY", "MINIO_ROOT_USER"):
                    assert "secretKeyRef" in e.get("valueFrom", {}), f"{w['metadata']['name']}: {e['name']}"


def test_magnum_kubeconfig_feeds_the_kubernetes_provider(program):
    (provider,) = [r for r in program("dev").resources if r.typ == "pulumi:providers:kubernetes"]
    assert is_secret(provider.inputs["kubeconfig"]) and normalize(provider.inputs["kubeconfig"]) == KUBECONFIG


# --- schemas ------------------------------------------------------------------------------------

def test_core_objects_validate_against_kubernetes_schemas(objs):
    checked = 0
    for obj in objs:
        if "." in obj["apiVersion"].split("/")[0] and not obj["apiVersion"].startswith(("networking.k8s.io", "policy")):
            continue  # CRDs (Knative, eventing-natss): shape-checked separately
        if obj["apiVersion"] == "v1" or "/" in obj["apiVersion"]:
            kubernetes_validate.validate(normalize(obj), K8S_VERSION, strict=True)
            checked += 1
    assert checked >= 15


def test_knative_pod_templates_validate_as_pods(objs):
    for svc in of_kind(objs, "Service", "serving.knative.dev/v1"):
        spec = {k: v for k, v in svc["spec"]["template"]["spec"].items() if k not in ("containerConcurrency", "timeoutSeconds")}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": svc["metadata"]["name"]}, "spec": spec}
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


# --- OpenStack ----------------------------------------------------------------------------------

def test_openstack_layer(program):
    types = [r.typ for r in program("dev").resources]
    for t in ("openstack:networking/network:Network", "openstack:networking/subnet:Subnet",
              "openstack:networking/router:Router", "openstack:networking/routerInterface:RouterInterface",
              "openstack:compute/keypair:Keypair", "openstack:containerinfra/cluster:Cluster"):
        assert t in types
    assert types.count("openstack:networking/secGroup:SecGroup") == 3
    rules = [r.inputs for r in program("dev").resources if r.typ == "openstack:networking/secGroupRule:SecGroupRule"]
    for rule in rules:
        assert rule["direction"] == "ingress" and rule.get("portRangeMin") is not None
        if rule.get("remoteIpPrefix") == "0.0.0.0/0":
            assert rule["portRangeMin"] in (80, 443)


def test_instances_mode_creates_nodes_and_waits_for_a_kubeconfig():
    cluster = json.loads(stack_config("dev")["lscloud:cluster"])
    mocks = run_program("dev", cluster={**cluster, "mode": "instances"})
    types = [r.typ for r in mocks.resources]
    nodes = [r for r in mocks.resources if r.typ == "openstack:compute/instance:Instance"]
    assert len(nodes) == cluster["controlPlaneCount"] + cluster["workerCount"]
    workers = [n for n in nodes if n.inputs["metadata"]["lscloud-role"] == "worker"]
    assert all(set(n.inputs["securityGroups"]) == {"lscloud-nodes", "lscloud-ingress"} for n in workers)
    assert not any(t.startswith("kubernetes:") for t in types)  # platform waits for lscloud:kubeconfig


def _pod_specs(objs):
    """(kind/name, pod spec) of everything that runs a pod: workloads, Jobs, CronJobs, Knative Services."""
    for o in objs:
        spec = o.get("spec") or {}
        if o["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        template = spec.get("template") if isinstance(spec, dict) else None
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            yield f"{o['kind']}/{o['metadata']['name']}", template["spec"]


def test_every_secret_a_container_must_read_is_readable_by_its_user(objs):
    """A secret volume's files are root:root with the volume's mode (0644 unless set); only fsGroup
    changes their group. A container running as a user of its own (USER 10001 in the platform image,
    runAsUser elsewhere) reads them through the 'other' bits, or as fsGroup through the group bits:
    0440 without fsGroup made every function, bridge and clock pod fail its start (the client key)."""
    unreadable = []
    for where, spec in _pod_specs(objs):
        fs_group = (spec.get("securityContext") or {}).get("fsGroup")
        for vol in spec.get("volumes", []):
            secret = vol.get("secret")
            if secret is None:
                continue
            modes = [secret.get("defaultMode", 0o644)] + [i["mode"] for i in secret.get("items", []) if "mode" in i]
            for mode in modes:
                if not mode & 0o004 and not (fs_group is not None and mode & 0o040):
                    unreadable.append((where, vol["name"], oct(mode), fs_group))
    assert not unreadable, unreadable


def test_no_mount_is_nested_in_a_directory_its_container_writes(objs):
    """mc writes its config in $MC_CONFIG_DIR; a volume mounted below it makes the container runtime
    create that directory as root, and mc (running as 1000) then fails at its first command. The
    store's CA is mounted elsewhere and copied in by the script (objectstore.mc_trust)."""
    nested = []
    for where, spec in _pod_specs(objs):
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            config_dir = env.get("MC_CONFIG_DIR")
            if not config_dir:
                continue
            for mount in c.get("volumeMounts", []):
                if mount["mountPath"].rstrip("/").startswith(config_dir.rstrip("/") + "/"):
                    nested.append((where, c["name"], mount["mountPath"]))
    assert not nested, nested
