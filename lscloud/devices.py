"""Field devices on the bus: MQTT (nats-server's own listener) and plain NATS, relayed as CloudEvents.

Devices rarely speak CloudEvents. They publish JSON to a topic — ``devices/<domain>/<rest…>`` over
MQTT, ``devices.<domain>.<rest…>`` over NATS (nats-server maps MQTT's ``/`` to ``.``) — and the
``<stream>_DEVICES`` JetStream stream keeps what they send. The :class:`Relay` turns each message
into the CloudEvent ``vn.langson.<domain>.device.message.received.v1`` on the events stream —
``subject`` the topic after the domain (``stations/lsn-1/observations``), ``data`` the payload,
``devicechannel`` ``mqtt`` or ``nats`` — so a function subscribes to it like to any other event and
everything after that (delivery, retries, dead letters, traces) is the platform's usual path.
Locally the supervisor runs the relay; in the cluster ``python -m lscloud.devices`` does.

Credentials: a device authenticates with a username and password that may publish only its own
topics (nats-server ``permissions``, ``allowed_connection_types``). :func:`issue` creates or rotates
one (the store keeps a bcrypt hash, never the password); :func:`nats_users` renders the issued
credentials as nats-server ``users``, which the local cloud writes into the server's configuration
and reloads. The platform's own clients connect as the configuration's ``no_auth_user``, which
admits standard NATS connections only, so an MQTT client without credentials is refused.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import os
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import events, metrics, pulls, strictjson, telemetry
from .bus import Bus, BusError
from .store import ConditionalCheckFailed, DoesNotExist, Model, attributes as A

log = logging.getLogger("lscloud.devices")

PREFIX = "devices"
SUBJECTS = (f"{PREFIX}.>",)
MAX_MESSAGE_BYTES = 256 * 1024
"""The devices stream refuses a larger message (locally and in the cluster): a station's reading is a
few hundred bytes and a batch the environment function takes at most 500 observations, so only a
broken or hostile device sends more, and it must not fill the stream other stations share."""
_PART = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_USER = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")


def stream_name(settings) -> str:
    """The stream that keeps devices' messages, beside the events stream."""
    return f"{settings.stream}_DEVICES"


def topic(domain: str, *parts: str) -> str:
    """The MQTT topic ``devices/<domain>/<parts…>`` (each part lowercase letters, digits, '-')."""
    for p in (domain, *parts):
        if not isinstance(p, str) or not _PART.match(p):
            raise ValueError(f"{p!r} cannot be part of a device topic")
    return "/".join((PREFIX, domain, *parts))


def subject(mqtt_topic: str) -> str:
    """The NATS subject of an MQTT topic (nats-server maps ``/`` to ``.``)."""
    return mqtt_topic.replace("/", ".")


def event_type(domain: str) -> str:
    return f"vn.langson.{domain}.device.message.received.v1"


def domains(manifests) -> list[str]:
    """The device domains the functions of ``manifests`` subscribe to. A domain is the name of the
    function that owns it: that function issues its devices' credentials (:func:`issue`), so they
    live in its bucket, and it receives their messages."""
    manifests = list(manifests)
    names = {m.name for m in manifests}
    found = {sub.type.split(".")[2] for m in manifests for sub in m.subscriptions
             if sub.type == event_type(sub.type.split(".")[2])}
    stray = sorted(found - names)
    if stray:
        raise ValueError(f"device messages of a domain no function owns: {', '.join(stray)}")
    return sorted(found)


# -- credentials ----------------------------------------------------------------------------------

class DeviceCredential(Model):
    """A device's username, the bcrypt hash of its password and the topics it may publish."""

    class Meta:
        table = "device-credentials"

    user = A.UnicodeAttribute(hash_key=True)
    domain = A.UnicodeAttribute()
    topics = A.ListAttribute()
    password_hash = A.UnicodeAttribute()
    issued_at = A.UnicodeAttribute()
    issued_by = A.UnicodeAttribute()
    version = A.VersionAttribute()


@dataclass(frozen=True)
class Issued:
    user: str
    password: str
    topics: tuple[str, ...]


class JustIssued(Exception):
    """:func:`issue` refused: ``user``'s credentials were issued at ``issued_at`` (ISO 8601), less
    than its ``not_within_s`` ago; ``retry_after_s`` is how long until that hold ends (at least 1)."""

    def __init__(self, user: str, issued_at: str, retry_after_s: int):
        super().__init__(f"credentials of {user} were issued at {issued_at}")
        self.user, self.issued_at, self.retry_after_s = user, issued_at, retry_after_s


def _hold_left_s(item: DeviceCredential, not_within_s: int, at: datetime) -> float:
    """Seconds left of ``not_within_s`` since ``item`` was issued (0 or less: none)."""
    try:
        issued = datetime.fromisoformat(item.issued_at)
    except (TypeError, ValueError):
        return 0.0   # an unreadable stamp holds nothing back rather than locking the device out
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=timezone.utc)
    return not_within_s - (at - issued).total_seconds()


def issue(domain: str, user: str, topics: list[str], *, issued_by: str, password: str | None = None,
          not_within_s: int = 0) -> Issued:
    """Create or rotate ``user``'s credentials for ``topics`` (each under ``devices/<domain>/``);
    returns the password (shown once; the store keeps its bcrypt hash).

    ``not_within_s``: refuse (:class:`JustIssued`) when the stored credentials were issued less
    than that many seconds ago, so that a retry or a second click does not make dead the password
    a first answer showed. The save is conditional on the version read, so of two issues at once
    one saves and the other, reading again, finds it and is refused. Revoked credentials are gone:
    an issue right after a revoke is not held back."""
    import bcrypt

    if not _USER.match(user):
        raise ValueError(f"{user!r} is not a device username")
    for t in topics:
        if not t.startswith(f"{PREFIX}/{domain}/"):
            raise ValueError(f"{t!r} is not a topic of {domain}")
    password = password or secrets.token_urlsafe(24)
    hashed = None   # hashed once, and only for an issue that goes ahead (bcrypt costs ~0.1 s of CPU)
    for _ in range(5):
        at = datetime.now(timezone.utc)
        try:
            item = DeviceCredential.get(user)
            if item.domain != domain:
                raise ValueError(f"{user} belongs to {item.domain}")
            left = _hold_left_s(item, not_within_s, at) if not_within_s > 0 else 0.0
            if left > 0:
                # capped: a stamp from a replica whose clock runs ahead must not ask a longer wait
                raise JustIssued(user, item.issued_at, max(1, min(not_within_s, math.ceil(left))))
        except DoesNotExist:
            item = DeviceCredential(user, domain=domain)
        if hashed is None:
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=11)).decode()
        now = at.isoformat(timespec="seconds")
        item.topics, item.password_hash, item.issued_at, item.issued_by = list(topics), hashed, now, issued_by
        try:
            item.save()
            return Issued(user, password, tuple(topics))
        except ConditionalCheckFailed:
            continue   # issued or revoked meanwhile: read again (a fresh issue now holds this one back)
    raise ConditionalCheckFailed(f"credentials of {user} kept changing", key=user)


def revoke(domain: str, user: str) -> bool:
    """Delete ``user``'s credentials (one of ``domain``'s); False when it had none. nats-server's
    users follow (locally within seconds, in the cluster at the sidecar's next read), and its reload
    closes the connections of a user it no longer has."""
    for _ in range(5):
        try:
            item = DeviceCredential.get(user)
        except DoesNotExist:
            return False
        if item.domain != domain:
            raise ValueError(f"{user} belongs to {item.domain}")
        try:
            item.delete()
            return True
        except DoesNotExist:
            return False
        except ConditionalCheckFailed:
            continue   # rotated meanwhile: revoke what is there now
    raise ConditionalCheckFailed(f"credentials of {user} kept changing", key=user)


def credentials(held=None) -> list[DeviceCredential]:
    """Every credential of the configured bucket; with ``held`` (a :class:`lscloud.store.recent.RecentItems`
    of them) one listed with the ETag of the copy held there is not read again."""
    scan = held.scan if held is not None else DeviceCredential.scan
    out, token = [], None
    while True:
        page = scan(limit=500, page_token=token)
        out += list(page)
        token = page.page_token
        if not token:
            return out


LOCAL_CONNECTIONS = ("MQTT", "STANDARD")
"""How a device may connect to the local cloud's nats-server: MQTT, or plain NATS (a gateway)."""
CLUSTER_CONNECTIONS = ("MQTT",)
"""… and to the cluster's: MQTT only (its standard port admits only the platform's certificates)."""


def nats_users(creds: list[DeviceCredential], connection_types: tuple[str, ...]) -> list[dict]:
    """nats-server ``users`` entries: publish only the device's own subjects, subscribe nothing,
    connect as ``connection_types`` (:data:`LOCAL_CONNECTIONS` or :data:`CLUSTER_CONNECTIONS`)."""
    return [{"user": c.user, "password": c.password_hash,
             "permissions": {"publish": {"allow": [subject(t) for t in c.topics]}, "subscribe": {"deny": [">"]}},
             "allowed_connection_types": list(connection_types)} for c in sorted(creds, key=lambda c: c.user)]


# -- the cluster's device users -------------------------------------------------------------------
#
# In the cluster nats-server's users are the platform's, mapped from client certificates, in the
# ``accounts`` block the infrastructure renders. The devices' users join them at run time: a sidecar
# beside each nats-server (``python -m lscloud.devices sync-users``) reads the issued credentials from
# the buckets of the functions that own device domains, writes them into the accounts file where the
# template's marker line stands, and reloads the server when they changed. The file is rendered
# before the server's first start (``--once``), so a store that does not answer yet leaves the
# platform's users in place and devices wait; once rendered, a failed read keeps the last file.

USERS_MARKER = "# lscloud:device-users"
"""The line of the accounts template where the device users go (the platform account's ``users`` list)."""


def render_users(template: str, users: list[dict]) -> str:
    """``template`` with its :data:`USERS_MARKER` line replaced by one entry per device user (nats
    configuration reads JSON), indented as the marker was."""
    lines = template.split("\n")
    at = [i for i, line in enumerate(lines) if line.strip() == USERS_MARKER]
    if len(at) != 1:
        raise ValueError(f"the accounts template must hold the line {USERS_MARKER!r} exactly once")
    indent = lines[at[0]][: len(lines[at[0]]) - len(lines[at[0]].lstrip())]
    entries = [indent + json.dumps(u, sort_keys=True) for u in users]
    return "\n".join(lines[: at[0]] + entries + lines[at[0] + 1:])


class UsersReader:
    """The device users issued in ``buckets`` (one per device domain), read again and again: by the
    sidecar beside each of the cluster's nats-servers every ``deviceUsersEverySeconds``, by the local
    cloud every few seconds.

    Each :meth:`read` lists the credentials; only one issued, rotated or new since the last read is
    fetched, the others are answered from the copy this reader holds while the listing shows its
    ETag (:meth:`lscloud.store.recent.RecentItems.scan`). Reading every credential on every turn
    cost each server one GET per device per turn: at 300 stations, three servers polling every 15 s
    asked the object store 60 GETs a second for credentials that had not changed."""

    def __init__(self, buckets: list[str], store_client, connection_types: tuple[str, ...], *,
                 max_held: int = 20_000):
        from .store.recent import RecentItems   # here: the functions that issue credentials never need it

        self.buckets, self.store_client, self.connection_types = list(buckets), store_client, connection_types
        # one per bucket: the same username in two domains' buckets is two items
        self._held = {b: RecentItems(DeviceCredential, max_items=max_held) for b in self.buckets}

    def read(self) -> list[dict]:
        """nats-server ``users`` entries for every issued device. A username issued in two buckets
        would make nats-server refuse the whole file, so the first bucket's keeps it."""
        from . import store

        kept: dict[str, DeviceCredential] = {}
        for bucket in self.buckets:
            with store.using(self.store_client, bucket):
                found = credentials(self._held[bucket])
            for c in found:
                if c.user in kept:
                    log.warning("device user %s is issued in more than one bucket; the first one keeps it", c.user)
                    continue
                kept[c.user] = c
        return nats_users(list(kept.values()), self.connection_types)


def sync_users(template: Path, out: Path, pid_file: Path | None, users_of: UsersReader) -> bool:
    """Write ``out`` from ``template`` and the issued device users (``users_of``, made with
    :data:`CLUSTER_CONNECTIONS`); signal nats-server (the pid in ``pid_file``) to reload when the
    file changed. True when it changed.

    A failed read raises when ``out`` exists (the last users stay), and writes the template without
    device users when it does not (the server must be able to start)."""
    try:
        users = users_of.read()
    except Exception:
        if out.exists():
            raise
        log.warning("device credentials not read; nats-server starts with the platform's users only")
        users = []
    text = render_users(template.read_text(), users)
    if out.exists() and out.read_text() == text:
        return False
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text)
    os.replace(partial, out)  # nats-server never reads half a file
    log.info("device users: %d written to %s", len(users), out)
    if pid_file is not None and pid_file.exists():
        pid = int(pid_file.read_text().strip() or 0)
        try:
            if pid > 0:
                os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:   # the server is restarting: it reads the file as it starts
            log.info("nats-server (pid %d) is not running; it reads the new users when it starts", pid)
    return True


# -- the relay ------------------------------------------------------------------------------------

def to_event(msg_subject: str, payload: bytes, headers: dict | None, seq: int, stamp: datetime) -> dict | None:
    """The CloudEvent for one device message (None when the subject names no domain)."""
    parts = msg_subject.split(".")
    if len(parts) < 3 or parts[0] != PREFIX or not _PART.match(parts[1]):
        return None
    digest = hashlib.sha256(f"{msg_subject}\n{seq}\n{stamp.isoformat()}".encode()).hexdigest()[:32]
    event = {"specversion": "1.0", "id": f"dev-{digest}", "source": f"/devices/{parts[1]}",
             "type": event_type(parts[1]), "subject": "/".join(parts[2:]), "time": stamp,
             "devicechannel": "mqtt" if "Nmqtt-Pub" in (headers or {}) else "nats"}
    try:
        event["data"] = strictjson.loads(payload)
        event["datacontenttype"] = "application/json"
    except (ValueError, UnicodeDecodeError):
        event["data_base64"] = base64.b64encode(payload).decode()
        event["datacontenttype"] = "application/octet-stream"
    return events.validate(event)


class Relay:
    """Moves device messages from the devices stream onto the events stream, from its own thread."""

    def __init__(self, settings, *, durable: str = "devices-relay", batch: int = 50, create_streams: bool = True,
                 pull_wait_s: float = pulls.WAIT_S, floor_every_s: float = pulls.FLOOR_EVERY_S):
        """``batch``: messages a pull takes at most when they wait (:meth:`lscloud.pulls.Pulls.take`);
        ``pull_wait_s``: how long a pull lingers, which only sets how often an idle relay asks again;
        ``floor_every_s``: how often, at most, it asks its consumer's ack floor."""
        # in the cluster the streams are the setup Job's, with their replicas and limits: the
        # relay's NATS user may not create or change a stream, so it only binds to them
        self.settings, self.durable, self.batch, self.create_streams = settings, durable, batch, create_streams
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pulls = pulls.Pulls(pull_wait_s)
        self._loop: asyncio.AbstractEventLoop | None = None   # while running
        self.relayed = 0
        self.bound = False   # its consumer is bound: it is relaying
        self._floors = pulls.AckFloors(floor_every_s)   # where its consumer starts if made again
        self._turned = 0.0   # when the loop last came round (a pull lingers pull_wait_s at most)
        # a loop that has not come round for this long is stuck: liveness fails, the kubelet restarts it
        self.stalled_s = max(60.0, 2 * pull_wait_s)

    def alive(self) -> tuple[bool, str]:
        if self.bound and time.monotonic() - self._turned > self.stalled_s:
            return False, f"the relay loop has not come round for {self.stalled_s:g} s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if self._stop.is_set():
            return False, "stopping"
        return (True, "ok") if self.bound else (False, "not bound to the devices stream yet")

    async def ensure_streams(self, bus: Bus) -> None:
        await bus.ensure_stream()
        await bus.ensure_stream(stream_name(self.settings), SUBJECTS, max_msg_size=MAX_MESSAGE_BYTES)

    async def run(self) -> None:
        # a stop asked before this line finds no loop to tell, but has set _stop, which the loop
        # checks before its first pull
        self._loop = asyncio.get_running_loop()
        bus = Bus(self.settings, name=self.settings.service, create_stream=False,
                  on_reconnected=self._pulls.reconnected)
        try:
            await bus.connect()
            if self.create_streams:
                await self.ensure_streams(bus)
            await self._ensure_consumer(bus)
            psub = await bus.js.pull_subscribe_bind(durable=self.durable, stream=stream_name(self.settings))
            self.bound = True
            while not self._stop.is_set():
                self._turned = time.monotonic()
                try:
                    msgs = await self._pulls.take(psub, self.batch)
                except Exception as exc:  # noqa: BLE001 - a vanished consumer, a connection down
                    await self._pulls.failed(exc, self.durable, lambda: self._ensure_consumer(bus))
                    continue
                for m in msgs:
                    self._turned = time.monotonic()   # a batch under a slow NATS still shows progress
                    meta = m.metadata
                    event = to_event(m.subject, m.data or b"", m.headers, meta.sequence.stream, meta.timestamp)
                    if event is None:
                        await m.term()
                        continue
                    # the device's message starts the event's trace: a CONSUMER span (the relay's
                    # processing, its lag and duration metrics) around the PRODUCER span of the event.
                    # Named by the domain's subjects, not the device's: one series per domain
                    where = f"{PREFIX}.{m.subject.split('.')[1]}.>"
                    try:
                        with telemetry.process_span(event, destination=where, consumer_group=self.durable,
                                                    tracer_=telemetry.service_tracer(self.settings.service)), \
                                metrics.processing(event, where, self.durable):
                            await bus.publish(event, timeout=10)
                    except BusError as exc:
                        log.warning("device message not relayed (%s); it comes again", exc.__class__.__name__)
                        await m.nak(delay=1)
                        continue
                    await m.ack()
                    self.relayed += 1
                await self._floors.note(psub, stream_name(self.settings), self.durable, got=bool(msgs))
        finally:
            self.bound = False
            self._loop = None
            await bus.close(drain=False)

    async def _ensure_consumer(self, bus: Bus) -> None:
        """The relay's durable consumer, bound as it is when it is there (an earlier start made it, or
        another replica); made when it is not: at the first start from the devices stream's first
        message, and when it was deleted (:meth:`lscloud.pulls.Pulls.failed` comes here) from just
        after its ack floor (:class:`lscloud.pulls.AckFloors`), so that the week of readings the
        stream keeps (``devicesMaxAge``) is not relayed again; those acked since the floor was asked
        are, which costs only work: the events keep their ids and a reading is idempotent on its
        station and time. Replicas that find the consumer gone at once race to make it: one does,
        the others find it made."""
        from nats.js import api as js_api
        from nats.js import errors as js_errors

        stream = stream_name(self.settings)
        # asked before binding too: it notes the stream's creation time, without which floors kept
        # from a stream since made again would be taken for this one's
        after = await self._floors.start(bus.js, stream, self.durable)
        try:
            await bus.js.consumer_info(stream, self.durable)
            return
        except js_errors.NotFoundError:
            pass
        try:
            await bus.js.add_consumer(stream, js_api.ConsumerConfig(
                durable_name=self.durable, ack_policy=js_api.AckPolicy.EXPLICIT, max_deliver=-1, ack_wait=30,
                **after))
        except js_errors.BadRequestError:   # another replica made it first, perhaps from elsewhere
            await bus.js.consumer_info(stream, self.durable)
            return
        if after:
            log.info("consumer %s made again from stream sequence %d (after its ack floor)", self.durable,
                     after["opt_start_seq"])

    def request_stop(self) -> None:
        """Stop relaying, from any thread or a signal handler: the messages in hand are finished, a
        waiting pull ends at once."""
        self._stop.set()
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._pulls.stop)
            except RuntimeError:   # the loop already ended
                pass

    def start(self) -> "Relay":
        def target():
            try:
                asyncio.run(self.run())
            except Exception:  # noqa: BLE001
                log.exception("the device relay stopped")

        self._thread = threading.Thread(target=target, name="lscloud-devices-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def main(argv: list[str] | None = None) -> int:
    """``python -m lscloud.devices``: the relay, until SIGTERM (the cluster's Deployment), with its
    probes on ``PORT`` (:mod:`lscloud.health`).

    ``python -m lscloud.devices sync-users --template T --out F --bucket B … [--pid-file P] [--every S]
    [--health-port N]``:
    the device users into nats-server's accounts file (:func:`sync_users`), once, or every S seconds
    until SIGTERM (the sidecar beside each nats-server); the store from the ``LSCLOUD_S3_*`` settings."""
    import argparse

    from . import config, redaction
    from .health import HealthServer

    redaction.install_log_redaction()
    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser(prog="python -m lscloud.devices")
    sub = parser.add_subparsers(dest="command")
    sync = sub.add_parser("sync-users", help="the issued device users into nats-server's accounts file")
    sync.add_argument("--template", type=Path, required=True)
    sync.add_argument("--out", type=Path, required=True)
    sync.add_argument("--bucket", action="append", default=[], help="a device domain's bucket; repeatable")
    sync.add_argument("--pid-file", type=Path)
    sync.add_argument("--every", type=float, default=0.0, help="seconds between reads (0: once)")
    sync.add_argument("--health-port", type=int, default=0,
                      help="serve /health/liveness (the loop turns) and /health/readiness (the file exists)")
    args = parser.parse_args(argv)
    env = config.environ()
    settings = config.load(env)
    if args.command == "sync-users":
        stop = threading.Event()
        _on_stop_signals(stop.set)
        return _sync_loop(args, settings, stop)
    if not (env.get("OTEL_SERVICE_NAME") or env.get("K_SERVICE")):
        settings = settings.replace(service="devices-relay")
    telemetry.setup(settings)
    relay = Relay(settings, create_streams=False)
    _on_stop_signals(relay.request_stop)
    probes = HealthServer(relay.alive, relay.ready, port=int(env.get("PORT") or 8080), name="relay-health").start()
    try:
        asyncio.run(relay.run())
    except BusError as exc:   # NATS unreachable, the stream or consumer refused: the kubelet starts it again
        log.error("the relay stopped: %s", exc)
        return 1
    finally:
        probes.stop()
        telemetry.force_flush()
    return 0


def _on_stop_signals(stop: Callable[[], None]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: stop())
    signal.signal(signal.SIGINT, lambda *_: stop())


def _sync_loop(args, settings, stop: threading.Event) -> int:
    from .health import HealthServer
    from .store.objects import ObjectStore

    users_of = UsersReader(args.bucket, ObjectStore.from_settings(settings, max_pool=2, timeout_s=10.0),
                           CLUSTER_CONNECTIONS)
    turned = [time.monotonic()]
    stalled_s = max(60.0, 4 * args.every)

    def alive() -> tuple[bool, str]:
        # a store that does not answer keeps the loop turning (each read times out): only a stuck
        # loop is a reason to restart the container
        late = time.monotonic() - turned[0]
        return (True, "ok") if late < stalled_s else (False, f"no read for {late:.0f} s")

    def ready() -> tuple[bool, str]:
        return (True, "ok") if args.out.exists() else (False, "no accounts file yet")

    probes = HealthServer(alive, ready, port=args.health_port, name="device-users-health").start() \
        if args.health_port else None
    try:
        while True:
            turned[0] = time.monotonic()
            try:
                sync_users(args.template, args.out, args.pid_file, users_of)
            except Exception as exc:  # noqa: BLE001 - the last users stay; the next read tries again
                log.warning("device users not read (%s); the last ones stay", exc.__class__.__name__)
            if args.every <= 0 or stop.wait(args.every):
                return 0
    finally:
        if probes is not None:
            probes.stop()


if __name__ == "__main__":
    raise SystemExit(main())
