"""The OpenStack layer: network, subnet, router, security groups, keypair and the Kubernetes nodes.

``cluster.mode``:

- ``magnum``: a Magnum cluster (ClusterTemplate + Cluster) on our network; its kubeconfig is an
  output (a Pulumi secret) that the platform layer's Kubernetes provider uses;
- ``instances``: Nova VMs (control plane and workers) with the tier security groups below; you
  bootstrap Kubernetes on them (kubeadm, Ansible …) and set ``lscloud:kubeconfig`` (secret);
- ``existing``: no OpenStack resources, an existing cluster (``lscloud:kubeconfig`` or the
  ambient kubeconfig).

Security groups open only what each tier needs: the API server (6443) to the control plane from
the configured CIDRs and the nodes; etcd and the control-plane components among control-plane
nodes; the kubelet (10250) from the control plane; the pod network overlay (VXLAN 8472/4789, BGP
179) among nodes; NodePorts from the subnet (the load balancer's members); HTTP/HTTPS to the
workers (the ingress tier); SSH only from ``sshAllowedCidrs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from .settings import ClusterSettings


@dataclass(frozen=True)
class Rule:
    protocol: str
    port_min: int
    port_max: int
    cidr: str | None = None  # from an address range …
    group: str | None = None  # … or from members of a tier's security group


def tier_rules(s: ClusterSettings) -> dict[str, list[Rule]]:
    """The ingress rules of each tier's security group (plain data, tested)."""
    ssh = [Rule("tcp", 22, 22, cidr=c) for c in s.sshAllowedCidrs]
    return {
        "control-plane": [
            *[Rule("tcp", 6443, 6443, cidr=c) for c in s.apiAllowedCidrs],
            Rule("tcp", 6443, 6443, group="nodes"),
            Rule("tcp", 2379, 2380, group="control-plane"),   # etcd
            Rule("tcp", 10257, 10257, group="control-plane"),  # controller-manager
            Rule("tcp", 10259, 10259, group="control-plane"),  # scheduler
            *ssh,
        ],
        "nodes": [
            Rule("tcp", 10250, 10250, group="control-plane"),  # kubelet
            Rule("tcp", 10250, 10250, group="nodes"),
            Rule("udp", 8472, 8472, group="nodes"),   # VXLAN (flannel / cilium)
            Rule("udp", 4789, 4789, group="nodes"),   # VXLAN (calico)
            Rule("tcp", 179, 179, group="nodes"),     # BGP (calico)
            Rule("tcp", 30000, 32767, cidr=s.subnetCidr),  # NodePorts, from the load balancer
            *ssh,
        ],
        "ingress": [Rule("tcp", port, port, cidr=c) for c in s.ingressAllowedCidrs for port in (80, 443)],
    }


class ClusterNetwork(pulumi.ComponentResource):
    """Network, subnet, router, tier security groups, keypair, and nodes or a Magnum cluster."""

    def __init__(self, name: str, settings: ClusterSettings, *, kubeconfig: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:ClusterNetwork", name, None, opts)
        s = settings
        child = pulumi.ResourceOptions(parent=self)
        self.kubeconfig: pulumi.Output[str] | None = pulumi.Output.secret(kubeconfig) if kubeconfig is not None else None
        self.security_groups: dict[str, openstack.networking.SecGroup] = {}
        self.nodes: list[openstack.compute.Instance] = []
        if s.mode == "existing":
            self.register_outputs({})
            return

        self.network = openstack.networking.Network(f"{name}-net", name=f"{name}-net", admin_state_up=True, opts=child)
        self.subnet = openstack.networking.Subnet(f"{name}-subnet", name=f"{name}-subnet", network_id=self.network.id,
                                                  cidr=s.subnetCidr, ip_version=4,
                                                  dns_nameservers=list(s.dnsNameservers), opts=child)
        self.router = openstack.networking.Router(f"{name}-router", name=f"{name}-router",
                                                  external_network_id=s.externalNetworkId, opts=child)
        openstack.networking.RouterInterface(f"{name}-router-if", router_id=self.router.id, subnet_id=self.subnet.id,
                                             opts=child)
        self.keypair = openstack.compute.Keypair(f"{name}-keypair", name=f"{name}-keypair", public_key=s.sshPublicKey,
                                                 opts=child)

        for tier in ("control-plane", "nodes", "ingress"):
            self.security_groups[tier] = openstack.networking.SecGroup(
                f"{name}-{tier}", name=f"{name}-{tier}", description=f"Lạng Sơn Cloud {tier} tier", opts=child)
        for tier, rules in tier_rules(s).items():
            for i, r in enumerate(rules):
                openstack.networking.SecGroupRule(
                    f"{name}-{tier}-rule-{i}", direction="ingress", ethertype="IPv4", protocol=r.protocol,
                    port_range_min=r.port_min, port_range_max=r.port_max, remote_ip_prefix=r.cidr,
                    remote_group_id=self.security_groups[r.group].id if r.group else None,
                    security_group_id=self.security_groups[tier].id, opts=child)

        if s.mode == "magnum":
            template = openstack.containerinfra.ClusterTemplate(
                f"{name}-template", name=f"{name}-template", coe="kubernetes", image=s.nodeImage,
                flavor=s.workerFlavor, master_flavor=s.controlPlaneFlavor, external_network_id=s.externalNetworkId,
                fixed_network=self.network.name, fixed_subnet=self.subnet.name, network_driver="calico",
                volume_driver="cinder", docker_volume_size=s.dockerVolumeSize, floating_ip_enabled=False,
                master_lb_enabled=True, server_type="vm", tls_disabled=False,
                labels={"kube_tag": s.kubernetesVersion, "cloud_provider_enabled": "true",
                        "cinder_csi_enabled": "true", **({"availability_zone": s.availabilityZone} if s.availabilityZone else {})},
                opts=child)
            self.cluster = openstack.containerinfra.Cluster(
                f"{name}-cluster", name=name, cluster_template_id=template.id, master_count=s.controlPlaneCount,
                node_count=s.workerCount, keypair=self.keypair.name, fixed_network=self.network.name,
                fixed_subnet=self.subnet.name, create_timeout=60, opts=child)
            if self.kubeconfig is None:
                self.kubeconfig = pulumi.Output.secret(self.cluster.kubeconfig.apply(_raw_config))
        else:
            groups = {"control-plane": ["control-plane", "nodes"], "worker": ["nodes", "ingress"]}
            for role, count, flavor in (("control-plane", s.controlPlaneCount, s.controlPlaneFlavor),
                                        ("worker", s.workerCount, s.workerFlavor)):
                for i in range(count):
                    self.nodes.append(openstack.compute.Instance(
                        f"{name}-{role}-{i}", name=f"{name}-{role}-{i}", flavor_name=flavor, image_name=s.nodeImage,
                        key_pair=self.keypair.name, availability_zone=s.availabilityZone or None,
                        security_groups=[self.security_groups[g].name for g in groups[role]],
                        networks=[{"uuid": self.network.id}], metadata={"lscloud-role": role},
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[self.subnet])))
        self.register_outputs({"network": self.network.id, "subnet": self.subnet.id})


def _raw_config(kubeconfig) -> str | None:
    if kubeconfig is None:
        return None
    if isinstance(kubeconfig, dict):
        return kubeconfig.get("raw_config") or kubeconfig.get("rawConfig")
    return getattr(kubeconfig, "raw_config", None)
