"""The JetStream → Knative broker bridge: the cluster's event source (``python -m lscloud.bridge``).

Functions publish their CloudEvents to the JetStream stream (``lscloud.>``); Knative Triggers
deliver from a Broker. This process moves the events between the two. It is the local cloud's
dispatcher (:class:`lscloud.delivery.Dispatcher`) with one subscription whose URL is the
broker's ingress, so it keeps the same rules:

* one durable pull consumer (``bridge-<broker>``) filtered on the subjects of the forwarded
  types; every replica pulls from it, so two replicas share the work and never duplicate it;
* each event is POSTed in binary mode (``ce-*`` headers, ``traceparent``): the trace of the
  request that published it continues through the broker into every function it reaches;
* the broker's answers: 2xx (202 Accepted) acks; 5xx, 429, timeouts and refused connections are
  retried with backoff; any other 4xx (a malformed event, 400) goes at once, and a retryable
  failure after the last attempt, to the dead-letter stream ``<stream>_DLQ``.

Settings: :func:`lscloud.config.load` (``LSCLOUD_NATS_URL``, ``LSCLOUD_STREAM``, ``OTEL_*`` …) and

* ``K_SINK`` — the broker's ingress URL, injected by a Knative SinkBinding (required);
* ``LSCLOUD_BRIDGE_TYPES`` — comma-separated CloudEvent types to forward (the union of the
  func.yaml subscriptions on this broker; empty: connect, forward nothing, stay ready);
* ``LSCLOUD_BRIDGE_BROKER`` — the broker's name, used in the consumer name (default ``default``);
* ``LSCLOUD_BRIDGE_MAX_DELIVERIES`` (5), ``LSCLOUD_BRIDGE_TIMEOUT_S`` (10);
* ``PORT`` (8080) — ``GET /health/liveness`` and ``GET /health/readiness`` (ready = NATS
  connected and the consumer exists); ``OTEL_SERVICE_NAME`` (default ``bridge``);
* ``LSCLOUD_BRIDGE_TOKEN_FILE`` (``/oidc/token``) — the sender identity it presents, see below.

What it presents to the broker: with Knative Eventing's ``authentication-oidc`` feature enabled,
the broker ingress accepts only requests carrying an OIDC token whose audience is the broker
(``eventing.knative.dev/broker/<namespace>/<broker>``), and Knative mounts such a token into
every SinkBinding subject at ``/oidc/token`` (a service-account token of the SinkBinding's own
OIDC identity, refreshed before it expires). The bridge reads that file for every POST and sends
``Authorization: Bearer <token>``; while the file does not exist (the feature is off) it sends no
Authorization header. It never mints a token itself. Downstream, the broker's filter presents
the Trigger's own token to the function, which verifies it (:func:`lscloud.auth.verify_event_sender`).

The platform owns the streams (replicas, limits): the bridge never creates or changes them and
waits, not ready, until they exist. SIGTERM/SIGINT: readiness turns false, fetching stops, the
deliveries in flight finish and are acked, then the process exits 0.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import urlparse

from . import config, events, health, telemetry
from .bus import BusError
from .delivery import Dispatcher, Subscription
from .health import HealthServer

log = logging.getLogger("lscloud.bridge")

SERVICE = "bridge"
LIVENESS_PATH, READINESS_PATH = health.LIVENESS_PATH, health.READINESS_PATH
_BROKER_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class BridgeConfig:
    """What the bridge forwards, where to, and how it answers probes."""

    sink: str
    types: tuple[str, ...] = ()
    broker: str = "default"
    port: int = 8080
    max_deliveries: int = 5
    timeout_s: float = 10.0
    token_file: str = "/oidc/token"

    def subscription(self) -> Subscription | None:
        """The dispatcher's subscription (consumer ``bridge-<broker>``); None when nothing is forwarded."""
        if not self.types:
            return None
        return Subscription(function=SERVICE, name=self.broker, types=self.types, url=self.sink)


def load_bridge_config(environ: Mapping[str, str] | None = None) -> BridgeConfig:
    """Read ``K_SINK``, ``LSCLOUD_BRIDGE_*`` and ``PORT``; ConfigError names the bad variable."""
    env = config.environ() if environ is None else environ

    def get(name: str, default: str = "") -> str:
        return env.get(name, "").strip() or default

    sink = get("K_SINK")
    parsed = urlparse(sink)
    if not sink:
        raise config.ConfigError("K_SINK is required: the broker ingress URL (a Knative SinkBinding injects it)")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise config.ConfigError(f"K_SINK must be an http(s):// URL, got {sink!r}")
    types: list[str] = []
    for t in (t.strip() for t in get("LSCLOUD_BRIDGE_TYPES").split(",")):
        if not t:
            continue
        try:
            events.check_type(t)
        except ValueError as exc:
            raise config.ConfigError(f"LSCLOUD_BRIDGE_TYPES: {exc}") from None
        if t not in types:
            types.append(t)
    broker = get("LSCLOUD_BRIDGE_BROKER", "default")
    if not _BROKER_RE.match(broker):
        raise config.ConfigError(f"LSCLOUD_BRIDGE_BROKER must be a Kubernetes name, got {broker!r}")

    def number(name: str, default: str, cast, minimum) -> float:
        raw = get(name, default)
        try:
            value = cast(raw)
        except ValueError:
            raise config.ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < minimum:
            raise config.ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
        return value

    token_file = get("LSCLOUD_BRIDGE_TOKEN_FILE", "/oidc/token")
    if not token_file.startswith("/"):
        raise config.ConfigError(f"LSCLOUD_BRIDGE_TOKEN_FILE must be an absolute path, got {token_file!r}")
    return BridgeConfig(sink=sink, types=tuple(sorted(types)), broker=broker,
                        port=int(number("PORT", "8080", int, 1)),
                        max_deliveries=int(number("LSCLOUD_BRIDGE_MAX_DELIVERIES", "5", int, 1)),
                        timeout_s=float(number("LSCLOUD_BRIDGE_TIMEOUT_S", "10", float, 0.1)),
                        token_file=token_file)


class MountedToken:
    """The bridge's credentials: the OIDC token Knative mounts at ``path`` (None while there is none)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, _subscription) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None


class Bridge:
    """The dispatcher towards one broker plus the health endpoints; ``start`` returns at once.

    The dispatcher is (re)started in the background until it succeeds, so a bridge started
    before NATS or its streams exist becomes ready by itself; until then readiness says why not.
    """

    def __init__(self, settings: config.Settings, cfg: BridgeConfig, *, host: str = "0.0.0.0",
                 retry_delays: Sequence[float] = (0.5, 1, 2, 5, 10), **dispatcher_options):
        self.settings = settings
        self.config = cfg
        sub = cfg.subscription()
        options = {"max_deliveries": cfg.max_deliveries, "timeout_s": cfg.timeout_s, **dispatcher_options}
        options.setdefault("credentials", MountedToken(cfg.token_file))
        self.dispatcher = Dispatcher(settings, [sub] if sub else [], manage_streams=False, service=settings.service,
                                     **options)
        self.retry_delays = tuple(retry_delays)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started = False  # the dispatcher's set-up succeeded at least once
        self._last_error = "starting"
        self._starter: threading.Thread | None = None
        self._health = HealthServer(self.alive, self.ready, host=host, port=cfg.port, name="bridge-health")

    @property
    def port(self) -> int:
        return self._health.port

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "Bridge":
        self._health.start()
        self._starter = threading.Thread(target=self._start_dispatcher, name="bridge-start", daemon=True)
        self._starter.start()
        return self

    def _start_dispatcher(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self.dispatcher.start()
                    self._started = True
                log.info("forwarding %s from stream %s to %s",
                         ", ".join(self.config.types) or "nothing (LSCLOUD_BRIDGE_TYPES is empty)",
                         self.settings.stream, self.config.sink)
                return
            except Exception as exc:  # NATS not there yet, streams not created yet, ...
                self._last_error = str(exc) or type(exc).__name__
                delay = self.retry_delays[min(attempt, len(self.retry_delays) - 1)]
                attempt += 1
                log.warning("cannot start yet (%s); retrying in %gs", self._last_error, delay)
                self._stop.wait(delay)

    def stop(self, timeout: float = 30.0) -> None:
        """Not ready any more; stop fetching, let deliveries in flight finish and ack; close."""
        self._stop.set()
        with self._lock:  # a start in progress finishes first, so it is stopped too
            self.dispatcher.stop(timeout)
        if self._starter is not None:
            self._starter.join(timeout)
        self._health.stop()
        telemetry.force_flush()

    def request_stop(self) -> None:
        """Signal-safe: mark the bridge as stopping (readiness fails); :meth:`stop` does the rest."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`request_stop` (or ``timeout``); True once stopping."""
        return self._stop.wait(timeout)

    # --- health ---------------------------------------------------------------------------------

    def alive(self) -> tuple[bool, str]:
        """Dead only when the dispatcher thread ended on its own (the kubelet restarts us)."""
        if self._started and not self._stop.is_set() and not self.dispatcher.running:
            return False, "the dispatcher stopped"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if self._stop.is_set():
            return False, "stopping"
        if not self._started:
            return False, self._last_error
        try:
            self.dispatcher.check(timeout=2.0)
        except BusError as exc:
            return False, str(exc)
        return True, "ok"


def main(environ: Mapping[str, str] | None = None) -> int:
    env = config.environ() if environ is None else environ
    logging.basicConfig(level=env.get("LSCLOUD_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = config.load(env).replace(service=env.get("OTEL_SERVICE_NAME", "").strip() or SERVICE)
        cfg = load_bridge_config(env)
    except config.ConfigError as exc:
        log.error("%s", exc)
        return 2
    telemetry.setup(settings)
    bridge = Bridge(settings, cfg)

    def on_signal(signum, _frame):
        log.info("%s: stopping", signal.Signals(signum).name)
        bridge.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bridge.start()
    log.info("health on :%d%s and %s", bridge.port, LIVENESS_PATH, READINESS_PATH)
    while not bridge.wait(1.0):
        pass
    bridge.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
