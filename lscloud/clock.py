"""The platform clock: one ``vn.langson.platform.clock.ticked.v1`` CloudEvent per period on JetStream.

Functions that have periodic work subscribe to the tick in their func.yaml
(``deploy.subscriptions``, ``filters: type: vn.langson.platform.clock.ticked.v1``) and handle it in
``events={...}``: the same trigger path as any domain event, locally (the dispatcher) and in the
cluster (the event bridge -> the broker -> Triggers). The tick says nothing but "it is now";
handlers must be idempotent and quick.

The event id is derived from the period and the start of the period it falls in
(``clock-PT1M-2026-11-22T05:18:00Z``), so two publishers in the same period (a CronJob retried, a
local supervisor next to a cluster clock) store one tick: ``Nats-Msg-Id`` is the event id and the
stream drops duplicates within its two-minute window.

- ``python -m lscloud.clock`` ticks until SIGTERM/SIGINT (a small Deployment);
  ``python -m lscloud.clock --once`` publishes the current period's tick and exits (the CronJob).
- :class:`Clock` is the thread the local supervisor starts (``LSCLOUD_CLOCK_PERIOD_S``, default 60).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Mapping

from . import config, events
from .timestamps import parse_instant

if TYPE_CHECKING:  # pragma: no cover
    from .bus import SyncBus

# The bus (nats-py, which imports aiohttp) is imported where a tick is published, not here: every
# function that keeps run-once records imports this module at start for TICKED alone.

log = logging.getLogger("lscloud.clock")

TICKED = "vn.langson.platform.clock.ticked.v1"
SOURCE = "/lscloud/platform/clock"
DATASCHEMA = "https://schemas.langson.gov.vn/events/platform/clock.ticked.json"
PERIOD_ENV = "LSCLOUD_CLOCK_PERIOD_S"
DEFAULT_PERIOD_S = 60.0


def period_env(environ: Mapping[str, str] | None = None) -> float:
    """The tick period in seconds from ``LSCLOUD_CLOCK_PERIOD_S`` (default 60)."""
    raw = (config.environ() if environ is None else environ).get(PERIOD_ENV, "").strip()
    if not raw:
        return DEFAULT_PERIOD_S
    try:
        value = float(raw)
    except ValueError:
        raise config.ConfigError(f"{PERIOD_ENV} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise config.ConfigError(f"{PERIOD_ENV} must be more than 0, got {raw!r}")
    return value


def iso_period(seconds: float) -> str:
    """ISO 8601 duration of a period: 60 -> ``PT1M``, 300 -> ``PT5M``, 0.5 -> ``PT0.5S``."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"PT{int(seconds // 60)}M"
    return f"PT{int(seconds)}S" if float(seconds).is_integer() else f"PT{seconds:g}S"


def period_start(at: datetime, seconds: float) -> datetime:
    """The start of the period ``at`` falls in (periods aligned on the Unix epoch)."""
    ts = at.timestamp()
    start = ts - (ts % seconds)
    return datetime.fromtimestamp(start, timezone.utc)


def _iso(at: datetime) -> str:
    text = at.astimezone(timezone.utc).isoformat(timespec="milliseconds" if at.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def tick_event(at: datetime | None = None, period_s: float = DEFAULT_PERIOD_S) -> dict:
    """The tick of the period holding ``at`` (now by default). Same period -> same id."""
    at = at or datetime.now(timezone.utc)
    start = period_start(at, period_s)
    period = iso_period(period_s)
    return events.new_event(TICKED, SOURCE, {"period": period, "at": _iso(start)}, id=f"clock-{period}-{_iso(start)}",
                            time=start, dataschema=DATASCHEMA)


def tick_at(event: Mapping) -> datetime | None:
    """The minute a tick stands for (its ``data.at``), or None when it carries none that reads."""
    data = event.get("data")
    return parse_instant(data.get("at")) if isinstance(data, Mapping) else None


def publish_tick(bus: SyncBus, at: datetime | None = None, period_s: float = DEFAULT_PERIOD_S,
                 timeout: float | None = None) -> tuple[dict, int]:
    """Publish the tick of the current period; returns the event and its stream sequence
    (the first copy's when the period's tick is already stored)."""
    event = tick_event(at, period_s)
    return event, bus.publish(event, timeout=timeout)


class Clock:
    """Publishes one tick per period from a background thread until :meth:`stop`.

    The first tick goes out at start, then one at each period boundary. A tick NATS does not
    confirm is logged and skipped: the next period's tick carries the work (handlers do all that
    is due, not just what is new), so nothing piles up behind an outage.
    """

    def __init__(self, settings, period_s: float = DEFAULT_PERIOD_S, *, bus: SyncBus | None = None,
                 now: Callable[[], datetime] | None = None, on_tick: Callable[[dict, int], None] | None = None):
        if not period_s > 0:
            raise ValueError("period_s must be more than 0")
        self.settings = settings
        self.period_s = float(period_s)
        from .bus import SyncBus

        self._own_bus = bus is None
        self.bus = bus or SyncBus(settings, publish_timeout=min(10.0, max(1.0, self.period_s)))
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.failed = 0
        self.last_error: str | None = None

    def tick(self) -> tuple[dict, int] | None:
        """Publish the current period's tick now (None, logged, when NATS does not confirm)."""
        from .bus import BusError

        try:
            event, seq = publish_tick(self.bus, self._now(), self.period_s)
        except BusError as exc:
            self.failed += 1
            self.last_error = str(exc)
            log.warning("clock tick not published: %s", exc)
            return None
        self.published += 1
        if self._on_tick is not None:
            self._on_tick(event, seq)
        return event, seq

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            now = self._now().timestamp()
            wait = self.period_s - (now % self.period_s)
            if self._stop.wait(wait if wait > 0.001 else self.period_s):
                break

    def start(self) -> "Clock":
        if self._thread is not None:
            return self
        if self._own_bus:
            self.bus.start()
        self._thread = threading.Thread(target=self._run, name="lscloud-clock", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop ticking (a publish in flight finishes first) and close our bus."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._own_bus:
            self.bus.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = config.environ() if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m lscloud.clock",
                                     description="Publish the platform clock's tick CloudEvents to JetStream.")
    parser.add_argument("--once", action="store_true", help="publish the current period's tick and exit (a CronJob)")
    parser.add_argument("--period", type=float, default=None,
                        help=f"seconds between ticks (default ${PERIOD_ENV} or {DEFAULT_PERIOD_S:g})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=env.get("LSCLOUD_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = config.load(env).replace(service=env.get("OTEL_SERVICE_NAME", "").strip() or "clock")
        period = args.period if args.period is not None else period_env(env)
        if not period > 0:
            raise config.ConfigError(f"--period must be more than 0, got {period:g}")
    except config.ConfigError as exc:
        log.error("%s", exc)
        return 2
    if args.once:
        from .bus import BusError, SyncBus

        bus = SyncBus(settings)
        bus.start()
        try:
            event, seq = publish_tick(bus, period_s=period)
        except BusError as exc:
            log.error("tick not published: %s", exc)
            return 1
        finally:
            bus.close()
        log.info("published %s (stream sequence %d)", event["id"], seq)
        return 0

    clock = Clock(settings, period, on_tick=lambda e, s: log.info("published %s (stream sequence %d)", e["id"], s))

    def on_signal(signum, _frame):
        log.info("%s: stopping", signal.Signals(signum).name)
        clock._stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    clock.start()
    while not clock._stop.wait(1.0):
        pass
    clock.stop()
    log.info("stopped after %d tick(s)", clock.published)
    return 0


if __name__ == "__main__":
    sys.exit(main())
