"""The platform clock in the cluster: a CronJob that publishes one tick a minute (``python -m
lscloud.clock --once`` with the platform image) to the JetStream stream.

Functions subscribe to ``vn.langson.platform.clock.ticked.v1`` in their func.yaml; the event bridge
forwards the types the subscriptions ask for (``LSCLOUD_BRIDGE_TYPES``), so the tick reaches the
broker and its Triggers like any domain event. The tick's id is derived from its minute, so a
retried or overlapping Job stores one tick (``Nats-Msg-Id``); ``concurrencyPolicy: Forbid`` and a
short starting deadline keep at most one Job at a time and drop a tick that would come too late
(the next minute's does the same work).

The pod needs nothing but NATS: no service account token, no S3, no collector (it logs the
published id); its NetworkPolicy allows egress to NATS and DNS only, and no ingress.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from . import k8s as kx
from . import natsauth
from . import tls as tlsc

NAME = "platform-clock"
COMPONENT = "platform-clock"
SCHEDULE = "*/1 * * * *"
PERIOD_S = 60
COMMAND = ["python", "-m", "lscloud.clock", "--once"]
REQUESTS = {"cpu": "20m", "memory": "64Mi"}
LIMITS = {"cpu": "250m", "memory": "192Mi"}
NATS_PORT = 4222
CLIENT_CERT = "nats-clock"  # the NATS user "clock": publishes lscloud.platform.> only


@dataclass(frozen=True)
class ClockEndpoints:
    namespace: str
    nats_url: str
    stream: str
    data_namespace: str = "lscloud-data"

    @classmethod
    def from_platform(cls, p) -> "ClockEndpoints":
        return cls(namespace=p.namespace, nats_url=p.nats_url, stream=p.stream, data_namespace=p.data_namespace)


def client_cert(p: ClockEndpoints) -> tlsc.ClientCert:
    user = next(u for u in natsauth.platform_users(p.stream) if u.name == "clock")
    return tlsc.ClientCert(CLIENT_CERT, p.namespace, user.email)


def render_env(p: ClockEndpoints) -> list[dict]:
    # no LSCLOUD_ENV=cluster: that asks for a token key, and the clock authenticates nothing
    return [
        {"name": "LSCLOUD_NATS_URL", "value": p.nats_url},
        {"name": "LSCLOUD_STREAM", "value": p.stream},
        {"name": "LSCLOUD_CLOCK_PERIOD_S", "value": str(PERIOD_S)},
        {"name": "OTEL_SERVICE_NAME", "value": "clock"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        *tlsc.client_env(s3=False),
    ]


def render_cron_job(p: ClockEndpoints, *, image: str) -> dict:
    lbl = kx.labels(NAME, COMPONENT)
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": NAME, "namespace": p.namespace, "labels": lbl},
        "spec": {
            "schedule": SCHEDULE,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 30,  # a tick more than 30 s late is dropped: the next one does the work
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": lbl},
                "spec": {
                    "backoffLimit": 2,  # a retry in the same minute publishes the same (deduped) tick
                    "activeDeadlineSeconds": 50,
                    "ttlSecondsAfterFinished": 600,
                    "template": {
                        "metadata": {"labels": lbl},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": NAME,
                            "automountServiceAccountToken": False,
                            "enableServiceLinks": False,
                            "terminationGracePeriodSeconds": 10,
                            "containers": [{
                                "name": "clock",
                                "image": image,
                                "command": list(COMMAND),
                                "env": render_env(p),
                                "volumeMounts": [tlsc.client_mount()],
                                "resources": {"requests": dict(REQUESTS), "limits": dict(LIMITS)},
                                "securityContext": kx.restricted_security_context(),
                            }],
                            "volumes": [tlsc.client_volume(CLIENT_CERT)],
                        },
                    },
                },
            },
        },
    }


def render_network_policy(p: ClockEndpoints) -> dict:
    """No ingress; egress to NATS and DNS only."""
    return kx.egress_only_policy(NAME, p.namespace, [kx.egress_to(p.data_namespace, kx.selector("nats"), NATS_PORT),
                                                     kx.dns_egress_rule()])


def render_service_account(p: ClockEndpoints) -> dict:
    return kx.service_account(NAME, p.namespace, COMPONENT)


def render_all(p: ClockEndpoints, *, image: str) -> list[dict]:
    return [render_service_account(p), render_network_policy(p), render_cron_job(p, image=image)]


class PlatformClock(pulumi.ComponentResource):
    """The tick CronJob with its ServiceAccount and NetworkPolicy."""

    def __init__(self, name: str, endpoints: ClockEndpoints, *, image: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("lscloud:index:PlatformClock", name, None, opts)
        self.objects = render_all(endpoints, image=image)
        self.resources: dict[str, pulumi.CustomResource] = {}
        for obj in self.objects:
            self.resources[f"{obj['kind']}/{obj['metadata']['name']}"] = kx.create(
                f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, pulumi.ResourceOptions(parent=self))
        self.register_outputs({"schedule": SCHEDULE})
