"""MinIO's servers may not share a node: with 4 servers holding one erasure set (prod: 8 drives,
EC:4), a node holding two holds half the drives, and losing it drops the set below write quorum
(N/2 + 1 = 5). A soft spread ("ScheduleAnyway") lets the scheduler do just that."""

from __future__ import annotations

import pytest

from infra_support import k8s_objects

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

pytest.importorskip("pulumi")

from components.settings import ClusterSettings, ObjectStoreSettings, SettingsError, StackSettings  # noqa: E402

HOST = "kubernetes.io/hostname"


def _minio(objs) -> dict:
    (sts,) = [o for o in objs if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "minio"]
    return sts["spec"]["template"]["spec"]


def _hard_spread(pod: dict) -> None:
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "DoNotSchedule" and spread["topologyKey"] == HOST
    assert spread["maxSkew"] == 1 and spread["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == "minio"
    # a tainted control plane counted as a place to spread would cap the workers at one server each
    assert spread.get("nodeTaintsPolicy") == "Honor"


def test_prod_puts_each_server_on_a_node_of_its_own(program):
    pod = _minio(k8s_objects(program("prod")))
    _hard_spread(pod)
    (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == HOST and term["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == "minio"


def test_dev_with_fewer_workers_than_servers_spreads_hard_without_one_per_node(program):
    # dev: 4 servers on 3 workers. One per node would leave a server Pending forever (and distributed
    # MinIO waits for all its peers at its first start); an even spread places them 2/1/1
    pod = _minio(k8s_objects(program("dev")))
    _hard_spread(pod)
    assert "podAntiAffinity" not in pod.get("affinity", {})


def test_one_per_node_with_fewer_workers_than_servers_is_refused():
    with pytest.raises(SettingsError, match="onePerNode") as err:
        StackSettings(domain="d", imageRegistry="r", imageTag="t",
                      cluster=ClusterSettings(externalNetworkId="n", sshPublicKey="k", workerCount=3),
                      objectStore=ObjectStoreSettings(servers=4))
    assert "workerCount" in str(err.value)
    StackSettings(domain="d", imageRegistry="r", imageTag="t",
                  cluster=ClusterSettings(externalNetworkId="n", sshPublicKey="k", workerCount=3),
                  objectStore=ObjectStoreSettings(servers=4, onePerNode=False))


def test_one_per_node_must_be_a_boolean():
    with pytest.raises(SettingsError, match="onePerNode"):
        ObjectStoreSettings(onePerNode="yes")
