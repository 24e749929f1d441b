"""The platform clock in the program (dev and prod): a CronJob ticking every minute, a tight
NetworkPolicy, and the tick reaching the broker through the bridge's forwarded types."""

from __future__ import annotations


import pytest

from infra_support import egress_peers, k8s_objects, normalize

pulumi = pytest.importorskip("pulumi")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from lscloud import clock as runtime_clock  # noqa: E402
from lscloud import manifest  # noqa: E402

from components import clock  # noqa: E402
from components.bridge import routes  # noqa: E402
from test_event_bridge import K8S_VERSION, bridges, env_of, of_kind, subscribed_types  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(params=("dev", "prod"))
def objs(request, program):
    return k8s_objects(program(request.param))


def the_cron_job(objs) -> dict:
    (job,) = [o for o in of_kind(objs, "CronJob", "batch/v1") if o["metadata"]["name"] == clock.NAME]
    return job


def test_a_cron_job_publishes_one_tick_a_minute_with_the_platform_image(objs):
    job = the_cron_job(objs)
    spec = job["spec"]
    assert spec["schedule"] == "*/1 * * * *" and spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 60
    jspec = spec["jobTemplate"]["spec"]
    assert jspec["activeDeadlineSeconds"] < 60  # never overlaps the next minute's Job
    pod = jspec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] in ("Never", "OnFailure")
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "lscloud.clock", "--once"]
    assert c["image"].endswith(("/lscloud:main", "/lscloud:2025.07.1"))
    assert c["image"] == bridges(objs)["default"]["spec"]["template"]["spec"]["containers"][0]["image"]


def test_the_clock_gets_nats_and_the_stream_of_the_platform_and_no_secrets(objs):
    job = the_cron_job(objs)
    (c,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in c["env"]}
    bridge_env = env_of(bridges(objs)["default"])
    assert env["LSCLOUD_NATS_URL"]["value"] == bridge_env["LSCLOUD_NATS_URL"]["value"]
    assert env["LSCLOUD_STREAM"]["value"] == bridge_env["LSCLOUD_STREAM"]["value"]
    assert env["LSCLOUD_CLOCK_PERIOD_S"]["value"] == "60"
    assert not any("valueFrom" in e for e in env.values())
    assert not any(n.startswith(("LSCLOUD_S3", "LSCLOUD_JWT")) for n in env)


def test_the_clock_has_limits_and_a_restricted_security_context(objs):
    (c,) = the_cron_job(objs)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert {"cpu", "memory"} <= set(c["resources"]["limits"]) and {"cpu", "memory"} <= set(c["resources"]["requests"])
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_clock_reaches_only_nats_and_dns(objs):
    job = the_cron_job(objs)
    labels = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    (pol,) = [p for p in of_kind(objs, "NetworkPolicy")
              if p["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/name": clock.NAME}]
    assert pol["metadata"]["namespace"] == job["metadata"]["namespace"]
    assert all(labels.get(k) == v for k, v in pol["spec"]["podSelector"]["matchLabels"].items())
    peers = egress_peers(pol)
    assert peers == {("lscloud-data", '{"app.kubernetes.io/name": "nats"}'): {4222},
                     ("kube-system", '{"k8s-app": "kube-dns"}'): {53}}
    # and NATS lets the clock's namespace in
    (nats,) = [p for p in of_kind(objs, "NetworkPolicy") if p["metadata"]["name"] == "nats"]
    allowed = {f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for r in nats["spec"]["ingress"] if any(p["port"] == 4222 for p in r["ports"])
               for f in r["from"] if "namespaceSelector" in f}
    assert job["metadata"]["namespace"] in allowed


def test_clock_objects_validate_against_kubernetes_schemas(objs):
    mine = [o for o in objs if o["metadata"]["name"] == clock.NAME]
    assert sorted(o["kind"] for o in mine) == ["CronJob", "NetworkPolicy", "ServiceAccount"]
    for o in mine:
        kubernetes_validate.validate(normalize(o), K8S_VERSION, strict=True)


def test_the_bridge_forwards_the_tick_because_functions_subscribe(objs):
    assert runtime_clock.TICKED in subscribed_types("default")
    types = env_of(bridges(objs)["default"])["LSCLOUD_BRIDGE_TYPES"]["value"].split(",")
    assert runtime_clock.TICKED in types
    # one Trigger per subscribing function, filtered on the tick's type
    triggers = [t for t in of_kind(objs, "Trigger", "eventing.knative.dev/v1")
                if t["spec"].get("filter", {}).get("attributes", {}).get("type") == runtime_clock.TICKED]
    assert {t["spec"]["subscriber"]["ref"]["name"] for t in triggers} >= {"border", "dossiers"}


def test_routes_pick_the_tick_up_from_func_yaml(tmp_path):
    m = manifest.parse(
        "specVersion: 0.36.0\nname: ticker\nruntime: python\ndeploy:\n  subscriptions:\n"
        f"    - source: default\n      filters:\n        type: {runtime_clock.TICKED}\n", tmp_path / "ticker" / "func.yaml")
    assert routes([m]) == {"default": (runtime_clock.TICKED,)}
