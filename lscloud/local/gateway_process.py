"""The local cloud's gateway as a process of its own, spawned and watched by the supervisor.

    python -m lscloud.local.gateway_process --routes STATE/routes.json --host H --port P

The gateway proxies every request the cloud gets, so it runs apart from the supervisor, whose
event dispatcher, device relay and clock would otherwise share its GIL (the in-thread gateway
kept about a third of a function's direct throughput). It knows the functions through the
routing table the supervisor writes on every change of a port or state
(:class:`lscloud.local.gateway.RoutesFile`): a function that is starting or restarting is still
answered 503, a crashed gateway is restarted like a function (:class:`GatewayProcess`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import config, loops
from .processes import (HEALTHY_RESETS_BACKOFF_S, SIGNING_KEY_ENV, process_create_time, exit_description,
                        kill_group, package_pythonpath)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
READY_TIMEOUT_S = 60.0


def gateway_env(settings: config.Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the gateway process: the cloud's settings, named ``gateway`` in traces."""
    base = dict(config.environ() if base is None else base)
    env = {**base, **settings.env_vars(), "K_SERVICE": "gateway", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": package_pythonpath(base)}
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop(SIGNING_KEY_ENV, None)  # the dev-token getter reads the dev key from the state dir itself
    return env


class GatewayProcess:
    """One gateway child: spawned in its own session, restarted with backoff when it dies."""

    def __init__(self, host: str, port: int, routes_path: Path, env: dict[str, str], log_path: Path,
                 max_body_bytes: int):
        self.host, self.port, self.routes_path = host, port, Path(routes_path)
        self.env, self.log_path, self.max_body_bytes = env, Path(log_path), max_body_bytes
        self.proc: subprocess.Popen | None = None
        self.create_time: float | None = None
        self.state = "stopped"  # starting | ready | restarting | stopped
        self.restarts = 0
        self.crashes_in_row = 0
        self.last_exit_code: int | None = None
        self.restart_at = 0.0
        self.ready_at: float | None = None

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "lscloud.local.gateway_process", "--routes", str(self.routes_path),
                "--host", self.host, "--port", str(self.port), "--max-body-bytes", str(self.max_body_bytes)]

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- lscloud: starting the gateway on {self.host}:{self.port} at "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.create_time = process_create_time(self.proc.pid)
        self.state = "starting"
        self.ready_at = None

    def poll_ready(self) -> bool:
        """Whether the gateway listens now (``starting`` becomes ``ready``)."""
        from .servers import port_open

        if self.state == "starting" and self.proc is not None and self.proc.poll() is None \
                and port_open(self.host, self.port):
            self.state = "ready"
            self.ready_at = time.monotonic()
        return self.state == "ready"

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S, stop=None) -> None:
        """Block until the gateway listens; RuntimeError (with its log's tail) if it exits or is late."""
        deadline = time.monotonic() + timeout_s
        while not self.poll_ready():
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited while starting:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not listen on {self.host}:{self.port} "
                                   f"within {timeout_s:.0f}s:\n{self.log_tail()}")
            if stop is not None and stop.wait(0.05):
                return
            elif stop is None:
                time.sleep(0.05)

    def check(self, stopping: bool = False) -> str | None:
        """Watch step: a dead gateway is scheduled for a restart, a due restart spawned.
        Returns a line to report, if something happened."""
        now = time.monotonic()
        if self.state in ("starting", "ready") and self.proc is not None:
            code = self.proc.poll()
            if code is not None:
                kill_group(self.proc.pid, signal.SIGKILL)
                self.last_exit_code = code
                self.crashes_in_row += 1
                delay = min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (self.crashes_in_row - 1))
                self.state, self.restart_at = "restarting", now + delay
                return (f"✗ gateway (pid {self.proc.pid}) exited with {exit_description(code)}; restarting in "
                        f"{delay:.1f}s (restart #{self.restarts + 1})")
            if self.state == "starting" and self.poll_ready():
                return f"✓ gateway      listening on {self.host}:{self.port} again (pid {self.proc.pid})"
            if self.state == "ready" and self.crashes_in_row and self.ready_at \
                    and now - self.ready_at > HEALTHY_RESETS_BACKOFF_S:
                self.crashes_in_row = 0
        elif self.state == "restarting" and now >= self.restart_at and not stopping:
            self.restarts += 1
            self.spawn()
            return None
        return None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                kill_group(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    pass
            kill_group(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.state = "stopped"

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def serve(routes_path: Path, host: str, port: int, max_body_bytes: int | None = None) -> None:
    """Serve the gateway until SIGTERM or SIGINT (then finish open requests, up to a grace period)."""
    from .. import telemetry
    from . import asgi_host
    from .apidocs import dev_tokens_for
    from .gateway import Gateway, RoutesFile

    settings = config.load()
    try:
        telemetry.setup(settings.replace(service="gateway"))
    except Exception as exc:  # noqa: BLE001 - the cloud runs without gateway spans
        print(f"! gateway tracing off: {exc}", flush=True)
    app = Gateway(RoutesFile(routes_path), max_body_bytes=max_body_bytes, dev_tokens=dev_tokens_for(settings))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await asgi_host.serve(app, host, port, stop)

    try:
        _run(main())
    finally:
        telemetry.force_flush()


def _run(coro) -> None:
    # a proxy is all socket reads and writes: asyncio's pure-Python selector transports were a
    # fifth of the gateway's time, uvloop's (when installed) are C
    with asyncio.Runner(loop_factory=loops.loop_factory()) as runner:
        runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    from .. import redaction

    redaction.install_log_redaction()  # a traceback in its log must not name a citizen
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m lscloud.local.gateway_process",
                                     description="The local cloud's gateway (started by `lscloud up`).")
    parser.add_argument("--routes", type=Path, required=True, help="the routing table the supervisor keeps")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-body-bytes", type=int, default=None, help="the largest body forwarded")
    args = parser.parse_args(argv)
    serve(args.routes, args.host, args.port, args.max_body_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
