"""A real nats-server running the cluster's nats.conf as the program renders it (TLS, users mapped
from client certificates, the included accounts, the MQTT listener with device domains), on free
loopback ports, with a throwaway CA for its certificates."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path

from lscloud import config, devices
from lscloud.local.servers import find_binary, free_port

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "infra") not in sys.path:
    sys.path.insert(0, str(REPO / "infra"))

from components import bus as infra_bus  # noqa: E402
from components import natsauth  # noqa: E402
from components.settings import NatsSettings  # noqa: E402

from tls_support import ThrowawayCA  # noqa: E402


FUNCTIONS = ("environment", "ioc")
"""The functions the rendered configs have users for."""
DOMAINS = ("environment",)
"""The device domain: its stations log in over MQTT."""


def small_settings(replicas: int) -> NatsSettings:
    """The cluster's NATS settings at ``replicas`` servers (and stream replicas), with stores sized
    for a test."""
    return NatsSettings(replicas=replicas, streamReplicas=replicas, storageSize="64Mi", streamMaxBytes="20MB",
                        dlqMaxBytes="5MB", devicesMaxBytes="5MB", noncesMaxBytes="2MB", channelMaxBytes="5MB",
                        deadLetterChannelMaxBytes="5MB")


class Server:
    """One nats-server. ``cluster=(port, route_ports)``: a member of a cluster (``settings.replicas``
    > 1) on loopback, its routes to ``route_ports`` instead of the StatefulSet's DNS names; its
    members share ``ca`` and each has its own ``name`` (the pod name the StatefulSet gives)."""

    def __init__(self, root: Path, settings: NatsSettings, functions, device_domains=(), *,
                 ca: ThrowawayCA | None = None, name: str = "census",
                 cluster: tuple[int, list[int]] | None = None, wait: bool = True):
        self.root = root
        self.name = name
        self.ca = ca or ThrowawayCA(root / "certs")
        server = self.ca.issue(f"server-{name}", dns=("localhost",), ips=("127.0.0.1",), server=True)
        self.port, self.monitor = free_port(), free_port()
        self.mqtt_port = free_port() if device_domains else 0
        # the ConfigMap's template, and (with device domains) the device-users file rendered from it
        self.template, self.accounts = root / "accounts.conf", root / "auth" / "accounts.conf"
        self.template.write_text(infra_bus.render_accounts(settings, functions, device_domains))
        self.pid_file = root / "nats.pid"
        self._users_of: tuple = (None, None, None)   # the sidecar's reader: one for its life, as the sidecar keeps
        conf = infra_bus.render_config(settings, "test", functions, device_domains=device_domains,
                                       store_dir=str(root / "js"),
                                       tls=natsauth.TlsPaths(str(server.cert), str(server.key), str(server.ca)),
                                       pid_file=str(self.pid_file),
                                       accounts_file=str(self.accounts if device_domains else self.template),
                                       config_dir=str(root))
        conf = conf.replace(f"port: {infra_bus.CLIENT_PORT}\n", f"port: {self.port}\n", 1)
        conf = conf.replace(f"http_port: {infra_bus.MONITOR_PORT}\n", f"http_port: {self.monitor}\n", 1)
        if cluster is not None:
            own, peers = cluster
            rendered = conf[conf.index("cluster {"):]
            routes = rendered[rendered.index("  routes: ["):].split("\n", 1)[0]
            local = ", ".join(f"nats://127.0.0.1:{p}" for p in peers)
            conf = conf.replace(rendered, rendered.replace(f"  port: {infra_bus.CLUSTER_PORT}\n", f"  port: {own}\n", 1)
                                .replace(routes, f"  routes: [{local}]", 1))
        if device_domains:
            conf = conf.replace(f"  port: {settings.mqttPort}\n", f"  port: {self.mqtt_port}\n", 1)
            self.accounts.parent.mkdir()
            self.accounts.write_text(devices.render_users(self.template.read_text(), []))  # as the init container
        (root / "nats.conf").write_text(conf)
        self.log = open(root / "nats.log", "wb")
        self._launch()
        if wait:
            self.wait_healthy()

    def _launch(self):
        self.proc = subprocess.Popen([find_binary("nats-server"), "-c", str(self.root / "nats.conf"), "-a", "127.0.0.1"],
                                     env={**os.environ, "SERVER_NAME": self.name}, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def restart(self):
        """Start the server again after it stopped, on the same ports, files and JetStream store."""
        assert self.proc.poll() is not None, "still running"
        self._launch()
        self.wait_healthy()

    def wait_healthy(self):
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "nats.log").read_text())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nats-server did not start: " + (self.root / "nats.log").read_text())

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    def client(self, user: str, ca=None):
        """A client certificate mapped to ``user`` (``ca``: another CA than the server's)."""
        return (ca or self.ca).issue(f"client-{user}", email=f"{user}@{natsauth.EMAIL_DOMAIN}")

    def settings(self, user: str, **extra) -> config.Settings:
        c = self.client(user)
        return config.load({"LSCLOUD_NATS_URL": self.url, "LSCLOUD_NATS_CA_FILE": str(c.ca),
                            "LSCLOUD_NATS_CERT_FILE": str(c.cert), "LSCLOUD_NATS_KEY_FILE": str(c.key), **extra})

    def sync_users(self, bucket: str, client) -> bool:
        """What the server's device-users sidecar does once: the accounts file from the template and
        the credentials issued in ``bucket``, and a reload when it changed (True then)."""
        if (bucket, client) != self._users_of[:2]:
            self._users_of = (bucket, client, devices.UsersReader([bucket], client, devices.CLUSTER_CONNECTIONS))
        return devices.sync_users(self.template, self.accounts, self.pid_file, self._users_of[2])

    def load_users(self, bucket: str, client) -> None:
        """:meth:`sync_users` (the users changed) and wait for the reload: nats-server logs each one
        (an observable fact, not a sleep)."""
        from waiting import wait_for  # tests/integration helper module

        def reloads() -> int:
            return (self.root / "nats.log").read_text().count("Reloaded server configuration")

        before = reloads()
        assert self.sync_users(bucket, client)
        wait_for(lambda: reloads() > before, f"{self.name} to reload its users", 15, every_s=0.2)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()




def mqtt_client(server: Server, user: str | None, password: str | None):
    """(paho client, accepted?) once ``server``'s MQTT listener answered the CONNECT, over TLS with the
    internal CA; the client's network loop runs until the caller stops it."""
    import paho.mqtt.client as mqtt

    answered, accepted = threading.Event(), {}

    def on_connect(c, userdata, flags, reason, props):
        accepted["ok"] = not reason.is_failure
        answered.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}")
    c.tls_set(ca_certs=str(server.ca.path))
    if user:
        c.username_pw_set(user, password)
    c.on_connect = on_connect
    c.connect("localhost", server.mqtt_port, keepalive=30)
    c.loop_start()
    answered.wait(15)
    return c, accepted.get("ok", False)
