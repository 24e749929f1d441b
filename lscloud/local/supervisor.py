"""`lscloud up`: the whole cloud on one machine, started and stopped in order.

Order of start: the fork server (:mod:`lscloud.local.forkserver`: it imports the runtime once,
and the function processes are forked from it), nats-server and weed mini side by side (or external
endpoints); once NATS answers and the dev signing keys and the pseudonym key are there, one process
per function (as Knative starts it), all at once: each imports its package while the bucket and
the stream are made, and waits for them (``python -m lscloud.serve --wait-for``); a function with
data migrations or reference data then runs those hooks (once per version) in its own process
before it serves (``--run-hooks``); when every function is ready, the event dispatcher, the device
relay, the platform clock (a tick event per ``LSCLOUD_CLOCK_PERIOD_S``, default 60) and the
gateway. Stop: the clock first, then the reverse of the start.

Everything lives under the state dir: server data, ports (reused across runs so data and
URLs stay put), logs, traces, dev keys, ``cloud.json`` (what runs where, for ``lscloud
status``, the benchmark and tests) and ``up.pid``, locked while a supervisor owns the dir.

Every child runs in its own process group and is stopped by its own pid: SIGTERM, then
SIGKILL after a timeout. A function that dies is restarted with exponential backoff and
the crash (exit code or signal) is reported. If a supervisor is killed outright (kill -9), its
children go with it rather than serve on with no dispatcher, clock or restarts: each child it
starts from its main thread asks the kernel for a SIGTERM when it dies (Linux), and a guard
process started first stops whatever ``cloud.json`` still records (:mod:`lscloud.local.processes`).
Should any survive both, the next ``up`` on the state dir finds them in ``cloud.json`` and stops them.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .. import config
from .. import manifest as manifests
from .bytecode import compile_tree
from .forkserver import ForkServer, become_subreaper
from .gateway_process import GatewayProcess, gateway_env
from .processes import (HEALTHY_RESETS_BACKOFF_S, SIGNING_KEY_ENV, PACKAGE_ROOT, Guard, process_create_time,
                        exit_description, kill_group, package_pythonpath, parent_death_preexec, stop_recorded)
from .processes import process_alive  # noqa: F401 - the benchmark imports it from here
from .routes import Route, write_routes
from .servers import NatsServer, ServerError, WeedMini, free_port

READY_TIMEOUT_S = 90.0
SERVERS_READY = "servers.ready"  # in the state dir once the store has the bucket and NATS the stream (functions wait)
STOP_TIMEOUT_S = 10.0
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
_WEED_PORT_NAMES = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_grpc",
                    "admin", "admin_grpc", "debug", "webdav"]
# The one function that signs tokens in the local cloud (citizens' and officers' dev sign-in): it
# alone is given the dev private key's path; every other function only verifies with the public
# key. In the cluster nothing gets a signing key: the province's identity provider issues tokens.
DEV_TOKEN_ISSUER = "identity"


class UpError(RuntimeError):
    """`lscloud up` cannot start; the message says why and what to do."""


class StateDirBusy(UpError):
    """Another live `lscloud up` owns the state dir."""


class _Stop(BaseException):
    """Raised by the signal handler to abort a blocking start step."""


@dataclass
class UpOptions:
    state_dir: Path = Path(".lscloud")
    functions_dirs: list[Path] = field(default_factory=lambda: [Path("functions")])
    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    nats_url: str | None = None
    only: list[str] | None = None  # start just these functions
    ready_timeout_s: float = READY_TIMEOUT_S
    # fork function processes from one interpreter with the runtime imported (lscloud.local.forkserver);
    # LSCLOUD_UP_FORK=0 spawns each from scratch
    fork: bool = field(default_factory=lambda: config.environ().get("LSCLOUD_UP_FORK", "1") != "0")


# -- small helpers used by the CLI and the benchmark too ------------------------------------------

def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if ``port`` can be bound on ``host`` (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    os.replace(tmp, path)


def function_env(m: manifests.Manifest, settings: config.Settings, port: int,
                 base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a function process gets, as the Knative Service would set it."""
    base = dict(config.environ() if base is None else base)
    env = dict(base)
    env.update(settings.env_vars())
    env.update(m.resolved_env(base))
    # the platform's own variables always win over func.yaml
    env.update({
        "PORT": str(port),
        "LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "K_SERVICE": m.name,
        "LSCLOUD_STATE_DIR": settings.state_dir,
        "LSCLOUD_TRACE_FILE": settings.trace_file,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": package_pythonpath(base),
    })
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop(SIGNING_KEY_ENV, None)  # never inherited from the shell or a func.yaml
    if m.name == DEV_TOKEN_ISSUER and settings.env == "local":
        from ..auth import dev_key_file

        env[SIGNING_KEY_ENV] = str(dev_key_file(Path(settings.state_dir).resolve()))
    return env


def run_function_argv(*args: str | Path) -> list[str]:
    """``python -m lscloud.serve *args`` (the function's folder last)."""
    return [sys.executable, "-m", "lscloud.serve", *map(str, args)]


# -- one function process -------------------------------------------------------------------------

@dataclass
class FunctionProcess:
    manifest: manifests.Manifest
    port: int
    env: dict[str, str] = field(repr=False)
    log_path: Path
    route: Route = None  # type: ignore[assignment]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    crashes_in_row: int = 0
    last_exit_code: int | None = None
    spawned_at: float = 0.0
    ready_at: float | None = None
    restart_at: float = 0.0
    warned_slow: bool = False
    create_time: float | None = None
    hooks_report: Path | None = None  # where its migration/seed reports land (None: it has no hooks)
    hooks_reported: bool = False
    forks: ForkServer | None = field(default=None, repr=False)  # forks it when running (lscloud.local.forkserver)
    wait_for: Path | None = None  # it runs its hooks and serves once this file exists: the servers are ready

    def __post_init__(self):
        self.route = Route.of(self.manifest, self.port)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def state(self) -> str:
        return self.route.state

    @state.setter
    def state(self, value: str) -> None:
        self.route.state = value

    def serve_args(self) -> list[str]:
        """What it runs, as :func:`lscloud.serve.main`'s arguments: with ``--run-hooks`` when it has
        migration or seed hooks, so they run in the process that then serves, before it binds its
        port (:func:`lscloud.serve.run_hooks`)."""
        extra = ["--wait-for", str(self.wait_for)] if self.wait_for is not None else []
        if self.hooks_report is not None:
            extra += ["--run-hooks", str(self.hooks_report)]
        return [*extra, str(self.manifest.root)]

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.hooks_report is not None:
            self.hooks_report.parent.mkdir(parents=True, exist_ok=True)
            self.hooks_report.unlink(missing_ok=True)
            self.hooks_reported = False
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- lscloud: starting {self.name} on 127.0.0.1:{self.port} at "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
            log.flush()
            self.proc = None
            if self.forks is not None:
                try:
                    # the same `python -m lscloud.serve ...`, forked from an interpreter that has the
                    # runtime imported already
                    self.proc = self.forks.spawn(self.serve_args(), self.env, self.manifest.root, self.log_path)
                except OSError as exc:
                    log.write(f"--- lscloud: fork server unavailable ({exc}); spawning ---\n".encode())
                    log.flush()
            if self.proc is None:
                self.proc = subprocess.Popen(run_function_argv(*self.serve_args()), env=self.env, stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True, cwd=str(self.manifest.root),
                                             preexec_fn=parent_death_preexec())
        self.create_time = process_create_time(self.proc.pid)
        self.spawned_at = time.monotonic()
        self.ready_at = None
        self.warned_slow = False
        self.state = "starting"

    def ready(self) -> bool:
        """Its readiness answers 200 (plain http.client: a probe needs no client library)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
        try:
            conn.request("GET", "/health/readiness")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def hook_results(self) -> dict | None:
        """The reports its hooks wrote this run (``{"migrate": ..., "seed": ...}``), once: None
        before they are written and after they were taken."""
        if self.hooks_report is None or self.hooks_reported:
            return None
        found = read_json(self.hooks_report)
        if found is None:
            return None
        self.hooks_reported = True
        return found

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- the supervisor -------------------------------------------------------------------------------

class Supervisor:
    """Starts, watches and stops one local cloud. ``run()`` blocks until SIGINT/SIGTERM."""

    def __init__(self, options: UpOptions, out: TextIO | None = None):
        self.o = options
        self.out = out or sys.stdout
        self.state_dir = options.state_dir.resolve()
        self.settings: config.Settings | None = None
        self.nats: NatsServer | None = None
        self.weed: WeedMini | None = None
        self.functions: dict[str, FunctionProcess] = {}
        self.dispatcher = None
        self.clock = None
        self.relay = None
        self._users_checked = 0.0
        self._device_store = None
        self._device_users = None
        self.gateway: GatewayProcess | None = None
        self.gateway_port: int | None = None
        self.forks: ForkServer | None = None
        self.guard: Guard | None = None
        self._lock_file = None
        self._stop = threading.Event()
        self._raise_on_signal = True
        self._stopping = False
        self._state = "starting"

    # -- output --

    def say(self, line: str) -> None:
        from ..redaction import redact

        # it repeats the tails of function and seed logs: no identifier in what it prints either
        print(redact(line), file=self.out, flush=True)

    # -- signals --

    def _on_signal(self, signum, frame) -> None:
        if self._stopping or self._stop.is_set():
            return
        self._stop.set()
        self.say(f"… {signal.Signals(signum).name} received: stopping")
        if self._raise_on_signal:
            raise _Stop()

    # -- state dir --

    def _lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        f = open(self.state_dir / "up.pid", "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = (read_json(self.state_dir / "up.pid") or {}).get("pid", "?")
            f.close()
            raise StateDirBusy(f"another `lscloud up` (pid {owner}) is running with state dir {self.state_dir}; "
                               "stop it (Ctrl-C) or choose another --state-dir") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "create_time": process_create_time(os.getpid())}))
        f.flush()
        self._lock_file = f

    def _unlock(self) -> None:
        if self._lock_file is not None:
            try:
                self._lock_file.truncate(0)
            except OSError:
                pass
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _reap_leftovers(self) -> None:
        """Stop children a previous supervisor left behind when it was killed outright."""
        previous = read_json(self.state_dir / "cloud.json")
        if not previous:
            return
        found = stop_recorded(previous.get("processes", []), grace_s=0)
        if found:
            self.say(f"… stopped {len(found)} process(es) left running by a previous `lscloud up`")

    def _ports(self, names: list[str], reserved: tuple[int, ...] = ()) -> dict:
        """Ports from ports.json when still free, else fresh ones (then recorded); never one of
        ``reserved`` (the gateway's: chosen first but bound last, it is free while the others are
        picked, and a function given it left the gateway "address already in use", CI at e086ada)."""
        path = self.state_dir / "ports.json"
        saved = read_json(path) or {}
        taken: set[int] = set(reserved)

        def pick(value) -> int:
            if isinstance(value, int) and value not in taken and port_free(value):
                taken.add(value)
                return value
            while True:
                p = free_port()
                if p not in taken:
                    taken.add(p)
                    return p

        ports = {
            "nats": pick(saved.get("nats")), "nats_monitor": pick(saved.get("nats_monitor")),
            "mqtt": pick(saved.get("mqtt")),
            "s3": pick(saved.get("s3")),
            "weed": {k: pick((saved.get("weed") or {}).get(k)) for k in _WEED_PORT_NAMES},
        }
        old_functions = dict(saved.get("functions") or {})
        ports["functions"] = {**old_functions, **{n: pick(old_functions.get(n)) for n in names}}
        write_json(path, ports)
        return ports

    def write_state(self) -> None:
        s = self.settings
        gw = f"http://{self.o.host}:{self.gateway_port}" if self.gateway_port else None
        processes = []
        if self.nats and self.nats.pid:
            processes.append({"role": "nats", "pid": self.nats.pid, "create_time": getattr(self.nats, "_ct", None)})
        if self.weed and self.weed.pid:
            processes.append({"role": "weed", "pid": self.weed.pid, "create_time": getattr(self.weed, "_ct", None)})
        for fp in self.functions.values():
            if fp.proc is not None:
                processes.append({"role": f"function:{fp.name}", "pid": fp.proc.pid, "create_time": fp.create_time})
        if self.gateway is not None and self.gateway.proc is not None:
            processes.append({"role": "gateway", "pid": self.gateway.proc.pid, "create_time": self.gateway.create_time})
        if self.forks is not None and self.forks.pid:
            processes.append({"role": "forkserver", "pid": self.forks.pid, "create_time": self.forks.create_time})
        # not among the processes: it serves nothing, and is there to outlive this one
        guard = {"pid": self.guard.pid, "create_time": self.guard.create_time} if self.guard is not None else None
        data = {
            "state": self._state,
            "pid": os.getpid(), "create_time": process_create_time(os.getpid()),
            "state_dir": str(self.state_dir),
            "gateway": {"url": gw, "host": self.o.host, "port": self.gateway_port},
            "nats": {"url": s.nats_url if s else None, "external": bool(self.o.nats_url)},
            "mqtt": {"url": (s.mqtt_url or None) if s else None},
            "s3": {"endpoint": s.s3_endpoint if s else None, "access_key": s.s3_access_key if s else None,
                   "bucket": s.bucket if s else None, "external": bool(self.o.s3_endpoint)},
            "stream": s.stream if s else None,
            "trace_file": s.trace_file if s else None,
            "functions": {
                fp.name: {"port": fp.port, "pid": fp.proc.pid if fp.proc else None, "state": fp.state,
                          "url": f"{gw}/{fp.name}/" if gw else None, "direct_url": f"http://127.0.0.1:{fp.port}",
                          "dir": str(fp.manifest.root), "log": str(fp.log_path), "restarts": fp.restarts,
                          "last_exit_code": fp.last_exit_code,
                          "subscriptions": [sub.type for sub in fp.manifest.subscriptions]}
                for fp in self.functions.values()},
            "processes": processes,
            "guard": guard,
        }
        write_json(self.state_dir / "cloud.json", data)
        # the gateway process's view of the functions (it re-reads the file when it changes)
        write_routes(self.routes_path, self.routes())

    # -- start --

    def run(self) -> int:
        """Start everything, watch until asked to stop, stop everything. Returns an exit code."""
        old_int = signal.signal(signal.SIGINT, self._on_signal)
        old_term = signal.signal(signal.SIGTERM, self._on_signal)
        try:
            self._lock()
            self._start_guard()
            try:
                self._start()
                self._raise_on_signal = False
                if not self._stop.is_set():
                    self._watch()
            except _Stop:
                pass
            finally:
                self._raise_on_signal = False
                self._stopping = True
                self._shutdown()
                if self.guard is not None:
                    self.guard.release()  # only now: a stop that fails half-way leaves it the rest to stop
            return 0
        finally:
            self._unlock()
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

    def _start(self) -> None:
        o = self.o
        started = time.monotonic()
        self.say(f"Lạng Sơn Cloud — local, state in {self.state_dir}")
        # first: every function process waits for its imports, and nothing else needs to be first
        self._start_fork_server()
        try:
            found = manifests.discover(o.functions_dirs)
        except manifests.ManifestError as exc:
            raise UpError(str(exc)) from None
        if o.only:
            missing = sorted(set(o.only) - {m.name for m in found})
            if missing:
                raise UpError(f"no function named {', '.join(missing)} in {', '.join(map(str, o.functions_dirs))}")
            found = [m for m in found if m.name in o.only]
        if not found:
            self.say(f"! no functions found in {', '.join(map(str, o.functions_dirs))} (folders with func.yaml)")
        self._reap_leftovers()
        gateway_port = o.port or free_port(o.host)
        if not port_free(gateway_port, o.host):
            raise UpError(f"port {gateway_port} on {o.host} is in use; choose another with --port")
        ports = self._ports([m.name for m in found], reserved=(gateway_port,))

        # servers: weed mini (the slower) comes up in a thread, then gets the bucket; nats-server starts
        # here, then gets the stream in another thread. Every address is known in advance, so the
        # functions are started as soon as NATS answers and the keys are there: they import while the
        # store and the stream come up, and wait for both (the file servers.ready) before their hooks
        # run and they serve.
        if o.s3_endpoint and not (o.s3_access_key and o.s3_secret_key):
            raise UpError("--s3-endpoint needs --s3-access-key and --s3-secret-key")
        sources = [PACKAGE_ROOT / "lscloud", *(p for m in found for p in (m.root, m.root.parent / "__init__.py")
                                                 if p.exists())]
        compiled = threading.Event()
        threading.Thread(target=_prepare_python, args=(sources, compiled), name="lscloud-up-prepare",
                         daemon=True).start()
        if o.s3_endpoint:
            s3 = (o.s3_endpoint, o.s3_access_key or "", o.s3_secret_key or "")
        else:
            self.weed = WeedMini(data_dir=self.state_dir / "weed", s3_port=ports["s3"], ports=ports["weed"])
            s3 = (self.weed.endpoint, self.weed.access_key, self.weed.secret_key)
        if not o.nats_url:
            self.nats = NatsServer(data_dir=self.state_dir / "nats", port=ports["nats"],
                                   monitor_port=ports["nats_monitor"], mqtt_port=ports["mqtt"])
        nats_url = o.nats_url or self.nats.url
        try:
            base = config.load()
        except config.ConfigError as exc:
            raise UpError(str(exc)) from None
        self.settings = base.replace(s3_endpoint=s3[0].rstrip("/"), s3_access_key=s3[1], s3_secret_key=s3[2],
                                     nats_url=nats_url, env="local", state_dir=str(self.state_dir),
                                     mqtt_url=self.nats.mqtt_url if self.nats else "",
                                     # functions call each other through the gateway, as through Services
                                     peer_url_template=f"http://127.0.0.1:{gateway_port}/{{name}}",
                                     # and callers reach them there
                                     public_url_template=f"http://127.0.0.1:{gateway_port}/{{name}}",
                                     trace_file=str(self.state_dir / "traces.jsonl"))
        servers_ready = self.state_dir / SERVERS_READY
        servers_ready.unlink(missing_ok=True)
        failed: list[BaseException] = []

        def in_background(step, name: str) -> threading.Thread:
            def run() -> None:
                try:
                    step()
                except BaseException as exc:  # noqa: BLE001 - raised in the main thread below
                    failed.append(exc)

            thread = threading.Thread(target=run, name=name, daemon=True)
            thread.start()
            return thread

        def prepare_store() -> None:
            if self.weed is not None:
                self.weed.start()
                self.weed._ct = process_create_time(self.weed.pid)
            from ..store.objects import ObjectStore

            # the client the supervisor keeps (device credentials): one S3 client for its whole life
            self._device_store = ObjectStore.from_settings(self.settings)
            self._device_store.ensure_bucket(self.settings.bucket)

        # what the two steps below import, imported here first, in this thread: two threads importing
        # lscloud.store at once can deadlock (its __init__ imports the submodules, which import the
        # package again with `from . import`: importlib raises _DeadlockError, which CI met once
        # nats-py's import got shorter and the stream step reached lscloud.store sooner)
        from .. import devices, nonces  # noqa: F401
        from ..store import objects  # noqa: F401

        waits = [in_background(prepare_store, "lscloud-up-store")]
        if o.nats_url:
            self.say(f"✓ NATS         {nats_url} (external)")
        else:
            self.nats.start()
            self.nats._ct = process_create_time(self.nats.pid)
            self.say(f"✓ nats-server  {nats_url} (JetStream, data in {self.nats.data_dir})")
            self.say(f"✓ mqtt         {self.nats.mqtt_url} (nats-server's MQTT listener; devices/<domain>/… topics, "
                     "per-device credentials)")
        waits.append(in_background(self._ensure_stream, "lscloud-up-stream"))
        self.write_state()
        self._dev_keys()
        self._pseudonym_key()
        compiled.wait()  # the bytecode the function processes read

        # functions: one process each; one with hooks first moves what an older version wrote to
        # today's layout, then loads its reference data (each once per version), in that process
        # before it serves: the cloud is ready when every function is, hooks included
        for m in found:
            self.functions[m.name] = FunctionProcess(
                manifest=m, port=ports["functions"][m.name], env=function_env(m, self.settings, ports["functions"][m.name]),
                log_path=self.state_dir / "logs" / f"{m.name}.log",
                hooks_report=(self.state_dir / "hooks" / f"{m.name}.json"
                              if m.migrate_module or m.seed_module else None),
                forks=self.forks, wait_for=servers_ready)
        for fp in self.functions.values():
            fp.spawn()
        self.write_state()
        self.say(f"… starting {len(self.functions)} function(s)")
        # the gateway starts beside them: it answers 503 for a function still starting
        self._spawn_gateway(gateway_port)
        self._setup_telemetry()  # the supervisor's own spans (dispatcher, relay, clock) start after this
        for thread in waits:
            thread.join()
        if failed:
            raise failed[0]
        servers_ready.touch()
        if o.s3_endpoint:
            self.say(f"✓ S3           {o.s3_endpoint} (external)")
        else:
            self.say(f"✓ weed mini    {self.weed.endpoint} (S3, data in {self.weed.data_dir})")
        self.say(f"✓ bucket       {self.settings.bucket}")
        self.write_state()
        self._raise_on_signal = False  # from here on every wait is our own loop, which checks the flag
        deadline = time.monotonic() + o.ready_timeout_s
        while not self._stop.is_set():
            self._check_functions()
            # settled: every function is ready or has crashed once (it keeps restarting in the background)
            if all(fp.state == "ready" or fp.crashes_in_row for fp in self.functions.values()):
                break
            if time.monotonic() > deadline:
                late = [fp.name for fp in self.functions.values() if fp.state != "ready"]
                self.say(f"! not ready after {o.ready_timeout_s:.0f}s: {', '.join(late)} (still watching; see logs)")
                break
            self._stop.wait(0.05)
        if self._stop.is_set():
            return
        self._sync_device_users(force=True)   # seeds may have issued device credentials

        self._start_dispatcher()
        self._start_relay()
        # after the dispatcher: its new consumers start at new messages, so the first tick counts
        self._start_clock()
        try:
            self.gateway.wait_ready(stop=self._stop)
        except RuntimeError as exc:
            raise UpError(str(exc)) from None
        if self._stop.is_set():
            return
        self.say(f"✓ gateway      {o.host}:{gateway_port} (pid {self.gateway.proc.pid})")
        self.gateway_port = gateway_port
        self._state = "ready"
        self.write_state()
        self._summary(time.monotonic() - started)

    def _start_guard(self) -> None:
        """Before any child: the process that stops them all should this one be killed outright."""
        env = config.environ()
        env["PYTHONPATH"] = package_pythonpath(env)
        env.pop(SIGNING_KEY_ENV, None)
        try:
            self.guard = Guard(self.state_dir, env, self.state_dir / "logs" / "guard.log").start()
        except OSError as exc:
            self.say(f"! guard not started ({exc}): if this process is killed, `lscloud up` again stops "
                     "what it left")

    def _start_fork_server(self) -> None:
        """The interpreter the function processes are forked from: it imports the runtime while the
        servers start (:mod:`lscloud.local.forkserver`). Without it (not Linux, LSCLOUD_UP_FORK=0,
        it failed) each function is spawned from scratch."""
        if not self.o.fork or not become_subreaper():
            return
        env = config.environ()
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": package_pythonpath(env)})
        env.pop(SIGNING_KEY_ENV, None)
        try:
            self.forks = ForkServer(env, self.state_dir / "logs" / "forkserver.log", PACKAGE_ROOT).start()
        except OSError as exc:
            self.say(f"! fork server not started ({exc}): spawning each function")
            self.forks = None

    def routes(self) -> dict[str, Route]:
        return {name: fp.route for name, fp in self.functions.items()}

    @property
    def routes_path(self) -> Path:
        return self.state_dir / "routes.json"

    def _spawn_gateway(self, port: int) -> None:
        # the gateway's cap: the largest body any route takes (uploads); functions apply their own limits
        cap = max(self.settings.max_body_bytes, self.settings.blob_max_bytes)
        self.gateway = GatewayProcess(self.o.host, port, self.routes_path, gateway_env(self.settings),
                                      self.state_dir / "logs" / "gateway.log", cap)
        self.gateway.spawn()
        self.write_state()

    def _check_gateway(self) -> None:
        if self.gateway is None:
            return
        pid = self.gateway.proc.pid if self.gateway.proc else None
        line = self.gateway.check(stopping=self._stop.is_set())
        if line:
            self.say(line)
            if self.gateway.state == "restarting" and self.gateway.last_exit_code and self.gateway.last_exit_code > 0:
                self.say("    " + self.gateway.log_tail(8).replace("\n", "\n    "))
        if line or (self.gateway.proc and self.gateway.proc.pid != pid):
            self.write_state()

    def _ensure_stream(self) -> None:
        from .. import devices, nonces
        from ..bus import SyncBus

        bus = SyncBus(self.settings)
        bus.start()
        try:
            bus.ensure_stream()
            bus.ensure_stream(devices.stream_name(self.settings), devices.SUBJECTS, max_msg_size=devices.MAX_MESSAGE_BYTES)
            bus.ensure_key_value(nonces.local_bucket_config(self.settings.stream, self.settings.signature_window_s))
        finally:
            bus.close()
        self.say(f"✓ stream       {self.settings.stream} (lscloud.>), {devices.stream_name(self.settings)} (devices.>), "
                 f"kv {nonces.bucket(self.settings.stream)}")

    def _start_relay(self) -> None:
        """Device messages (MQTT, NATS) onto the events stream, as the cluster's relay Deployment does."""
        from .. import devices

        self.relay = devices.Relay(self.settings.replace(service="devices-relay")).start()
        self.say(f"✓ relay        {devices.PREFIX}.> → vn.langson.<domain>.device.message.received.v1")

    def _sync_device_users(self, force: bool = False) -> None:
        """Issued device credentials into nats-server's users (reloaded when they change)."""
        if self.nats is None or not self.nats.mqtt_port or self.settings is None:
            return
        now = time.monotonic()
        if not force and now - self._users_checked < 5:
            return
        self._users_checked = now
        from .. import devices
        from ..store.objects import ObjectStore

        try:
            # one client for the life of the cloud: building a boto3 client every 5 s was a tenth of
            # the supervisor's CPU, taken from the functions on a small machine
            if self._device_store is None:
                self._device_store = ObjectStore.from_settings(self.settings)
            # as the cluster's sidecar reads them (devices.sync_users), from the one local bucket; one
            # reader for the cloud's life, holding what it read: a turn lists, and GETs what changed
            if self._device_users is None:
                self._device_users = devices.UsersReader([self.settings.bucket], self._device_store,
                                                         devices.LOCAL_CONNECTIONS)
            users = self._device_users.read()
        except Exception as exc:  # noqa: BLE001 - the next check tries again
            self.say(f"! device credentials not read: {exc.__class__.__name__}")
            return
        if self.nats.set_device_users(users):
            self.say(f"✓ mqtt users   {len(users)} device credential(s) loaded into nats-server")

    def _start_clock(self) -> None:
        """Tick from a thread, as the CronJob does in the cluster: the ticks wait in the stream
        until the dispatcher delivers them to the functions that subscribe."""
        from .. import clock

        try:
            period = clock.period_env()
        except config.ConfigError as exc:
            raise UpError(str(exc)) from None
        self.clock = clock.Clock(self.settings.replace(service="clock"), period).start()
        self.say(f"✓ clock        {clock.TICKED} every {period:g}s")

    def _dev_keys(self) -> None:
        from ..auth import dev_keys, eventing_keys

        _, public_pem = dev_keys(self.state_dir)
        if isinstance(public_pem, bytes):
            public_pem = public_pem.decode()
        # the dispatcher's own pair: functions get the public half, only the dispatcher signs
        _, events_pem = eventing_keys(self.state_dir)
        self.settings = self.settings.replace(jwt_public_key=public_pem, events_public_key=events_pem)
        self.say(f"✓ dev keys     {self.state_dir} (tokens: lscloud token --role ROLE)")

    def _pseudonym_key(self) -> None:
        from .pseudonym_key import for_cloud

        # before any function, seed or migration runs: every one of them must key indexes alike
        self.settings = self.settings.replace(pseudonym_key=for_cloud(self.state_dir, self.settings))

    def _setup_telemetry(self) -> None:
        from .. import telemetry

        try:
            telemetry.setup(self.settings.replace(service="gateway"))
        except Exception as exc:  # noqa: BLE001 - the cloud runs without gateway spans
            self.say(f"! gateway tracing off: {exc}")

    def _say_hooks(self, fp: FunctionProcess, results: dict) -> None:
        """What a function's hooks did, as when they ran in their own processes."""
        if isinstance(results.get("migrate"), dict):
            self._say_migrated(fp, results["migrate"])
        if isinstance(results.get("seed"), dict):
            self._say_seeded(fp, results["seed"])

    def _say_seeded(self, fp: FunctionProcess, result: dict) -> dict:
        if "error" in result:
            self.say(f"✗ seed {fp.name}: {result['error']}")
        elif result.get("seeded"):
            self.say(f"✓ seeded       {fp.name} ({result.get('took_ms')} ms: {_short(result.get('result'))})")
        else:
            self.say(f"✓ seed         {fp.name}: data already loaded")
        return result

    def _say_migrated(self, fp: FunctionProcess, result: dict) -> dict:
        if "error" in result:
            # the function still starts: what was not moved is missing from its listings, not wrong
            self.say(f"✗ migrate {fp.name}: {result['error']}")
        elif result.get("migrated"):
            self.say(f"✓ migrated     {fp.name} ({result.get('took_ms')} ms: {_short(result.get('result'))})")
        return result

    def _start_dispatcher(self) -> None:
        subs = [(fp, s) for fp in self.functions.values() for s in fp.manifest.subscriptions]
        if not subs:
            return
        from ..delivery import Dispatcher, Subscription

        self.dispatcher = Dispatcher(self.settings, [
            Subscription(function=fp.name, name=s.name, types=[s.type], url=f"http://127.0.0.1:{fp.port}/events",
                         audience=fp.name)
            for fp, s in subs])
        self.dispatcher.start()
        self.say(f"✓ dispatcher   {len(subs)} subscription(s): " + ", ".join(f"{s.type} → {fp.name}" for fp, s in subs))

    def _summary(self, took: float) -> None:
        gw = f"http://{self.o.host}:{self.gateway_port}"
        width = max([len(n) for n in self.functions] + [8])
        self.say(f"\nReady in {took:.1f}s — gateway {gw}/  (docs {gw}/docs)")
        self.say(f"  {'function'.ljust(width)}  {'url'.ljust(len(gw) + width + 3)}  direct")
        for fp in self.functions.values():
            self.say(f"  {fp.name.ljust(width)}  {(gw + '/' + fp.name + '/').ljust(len(gw) + width + 3)}  "
                     f"http://127.0.0.1:{fp.port}  [{fp.state}]")
        self.say(f"  NATS {self.settings.nats_url}   S3 {self.settings.s3_endpoint} (bucket {self.settings.bucket})")
        if self.settings.mqtt_url:
            self.say(f"  MQTT {self.settings.mqtt_url}   (devices publish to devices/<domain>/…; credentials per device)")
        self.say("Ctrl-C stops everything.\n")

    # -- watch --

    def _check_functions(self) -> None:
        now = time.monotonic()
        changed = False
        for fp in self.functions.values():
            results = fp.hook_results()
            if results is not None:
                self._say_hooks(fp, results)
            if fp.state in ("starting", "ready") and fp.proc is not None:
                code = fp.proc.poll()
                if code is not None:
                    kill_group(fp.proc.pid, signal.SIGKILL)  # anything it left in its group
                    fp.last_exit_code = code
                    fp.crashes_in_row += 1
                    delay = min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (fp.crashes_in_row - 1))
                    fp.state = "restarting"
                    fp.restart_at = now + delay
                    self.say(f"✗ {fp.name} (pid {fp.proc.pid}) exited with {exit_description(code)}; "
                             f"restarting in {delay:.1f}s (restart #{fp.restarts + 1})")
                    tail = fp.log_tail(8)
                    if tail and code > 0:
                        self.say("    " + tail.replace("\n", "\n    "))
                    changed = True
                    continue
            if fp.state == "starting":
                if fp.ready():
                    fp.state = "ready"
                    fp.ready_at = now
                    self.say(f"✓ {fp.name.ljust(12)} ready on 127.0.0.1:{fp.port} (pid {fp.proc.pid}, "
                             f"{(now - fp.spawned_at) * 1000:.0f} ms)")
                    changed = True
                elif not fp.warned_slow and now - fp.spawned_at > 30:
                    fp.warned_slow = True
                    self.say(f"! {fp.name} not ready after 30s; log: {fp.log_path}")
            elif fp.state == "ready":
                if fp.crashes_in_row and fp.ready_at and now - fp.ready_at > HEALTHY_RESETS_BACKOFF_S:
                    fp.crashes_in_row = 0
            elif fp.state == "restarting" and now >= fp.restart_at and not self._stop.is_set():
                fp.restarts += 1
                fp.spawn()
                changed = True
        if changed:
            self.write_state()

    def _check_servers(self) -> None:
        for server, label in ((self.nats, "nats-server"), (self.weed, "weed mini")):
            if server is not None and server.proc is not None and server.proc.poll() is not None:
                code = server.proc.returncode
                self.say(f"✗ {label} exited with {exit_description(code)}; restarting")
                server.stop()
                try:
                    server.start()
                    server._ct = process_create_time(server.pid)
                    self.say(f"✓ {label} restarted (pid {server.pid})")
                except ServerError as exc:
                    self.say(f"✗ {label} could not restart: {exc}")
                self.write_state()

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            self._check_functions()
            self._check_gateway()
            self._check_servers()
            self._sync_device_users()

    # -- stop --

    def _shutdown(self) -> None:
        self._state = "stopping"
        if self.settings is not None:
            self.write_state()
        if self.clock is not None:
            try:
                self.clock.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                self.say(f"! clock stop: {exc}")
            self.clock = None
            self.say("✓ clock stopped")
        if self.gateway is not None:
            self.gateway.stop()
            self.say("✓ gateway stopped")
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
            self.say("✓ relay stopped")
        if self.dispatcher is not None:
            try:
                self.dispatcher.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                self.say(f"! dispatcher stop: {exc}")
            self.say("✓ dispatcher stopped")
        running = [fp for fp in self.functions.values() if fp.proc is not None and fp.proc.poll() is None]
        for fp in running:
            kill_group(fp.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for fp in running:
            try:
                fp.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"! {fp.name} did not stop in {STOP_TIMEOUT_S:.0f}s: killing it")
        for fp in self.functions.values():
            if fp.proc is not None:
                kill_group(fp.proc.pid, signal.SIGKILL)  # the group: a function's own children too
                try:
                    fp.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            fp.state = "stopped"
        if running:
            self.say(f"✓ {len(running)} function(s) stopped")
        if self.forks is not None:
            self.forks.stop()
        for server, label in ((self.weed, "weed mini"), (self.nats, "nats-server")):
            if server is not None:
                server.stop()
                self.say(f"✓ {label} stopped")
        self._state = "stopped"
        if self.settings is not None:
            self.write_state()
        self.say("Stopped.")


def _prepare_python(sources: list[Path], compiled: threading.Event) -> None:
    """While the servers come up: compile the runtime's and the functions' bytecode once
    (:mod:`lscloud.local.bytecode`: every function process reads it instead of compiling the same
    files again; ``compiled`` is set then), and import what the supervisor needs next (the S3 and
    NATS clients for the bucket and the stream) and once the functions are ready (the dispatcher,
    the relay, the clock), off the main thread's way."""
    import importlib

    try:
        compile_tree(sources)
    except Exception:  # noqa: BLE001 - without the cache each process compiles for itself
        pass
    finally:
        compiled.set()
    try:
        for name in ("lscloud.store.objects", "lscloud.bus", "lscloud.delivery", "lscloud.devices", "lscloud.clock"):
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - the real import later says what is wrong
        pass


def _short(value, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_seed(m: manifests.Manifest, env: dict[str, str], *, force: bool = False, timeout_s: float = 600) -> dict:
    """Run ``m``'s seed hook in a child (own session, killed on timeout); returns its report."""
    return _run_hook(m, env, "seed", force=force, timeout_s=timeout_s)


def run_migration(m: manifests.Manifest, env: dict[str, str], *, force: bool = False,
                  timeout_s: float = 600) -> dict:
    """Run ``m``'s migration hook in a child (own session, killed on timeout); returns its report."""
    return _run_hook(m, env, "migrate", force=force, timeout_s=timeout_s)


def _run_hook(m: manifests.Manifest, env: dict[str, str], kind: str, *, force: bool, timeout_s: float) -> dict:
    argv = run_function_argv(f"--{kind}", *(["--force"] if force else []), m.root)
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s,
                              start_new_session=True, cwd=str(m.root), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"function": m.name, "error": f"{kind} did not finish within {timeout_s:.0f}s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        return {"function": m.name, "error": f"exited with {exit_description(done.returncode)}\n{tail}"}
    return json.loads(lines[-1])


def up(options: UpOptions, out: TextIO | None = None) -> int:
    """Run the local cloud until SIGINT/SIGTERM (the `lscloud up` command)."""
    return Supervisor(options, out).run()
