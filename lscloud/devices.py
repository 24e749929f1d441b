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
import logging
import re
import secrets
import signal
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from . import events, strictjson
from .bus import Bus, BusError, prepare
from .store import ConditionalCheckFailed, DoesNotExist, Model, attributes as A

log = logging.getLogger("lscloud.devices")

PREFIX = "devices"
SUBJECTS = (f"{PREFIX}.>",)
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


def issue(domain: str, user: str, topics: list[str], *, issued_by: str, password: str | None = None) -> Issued:
    """Create or rotate ``user``'s credentials for ``topics`` (each under ``devices/<domain>/``);
    returns the password (shown once; the store keeps its bcrypt hash)."""
    import bcrypt

    if not _USER.match(user):
        raise ValueError(f"{user!r} is not a device username")
    for t in topics:
        if not t.startswith(f"{PREFIX}/{domain}/"):
            raise ValueError(f"{t!r} is not a topic of {domain}")
    password = password or secrets.token_urlsafe(24)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=11)).decode()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for _ in range(5):
        try:
            item = DeviceCredential.get(user)
            if item.domain != domain:
                raise ValueError(f"{user} belongs to {item.domain}")
        except DoesNotExist:
            item = DeviceCredential(user, domain=domain)
        item.topics, item.password_hash, item.issued_at, item.issued_by = list(topics), hashed, now, issued_by
        try:
            item.save()
            return Issued(user, password, tuple(topics))
        except ConditionalCheckFailed:
            continue
    raise ConditionalCheckFailed(f"credentials of {user} kept changing", key=user)


def credentials() -> list[DeviceCredential]:
    out, token = [], None
    while True:
        page = DeviceCredential.scan(limit=500, page_token=token)
        out += list(page)
        token = page.page_token
        if not token:
            return out


def nats_users(creds: list[DeviceCredential]) -> list[dict]:
    """nats-server ``users`` entries: publish only the device's own subjects, subscribe nothing."""
    return [{"user": c.user, "password": c.password_hash,
             "permissions": {"publish": {"allow": [subject(t) for t in c.topics]}, "subscribe": {"deny": [">"]}},
             "allowed_connection_types": ["MQTT", "STANDARD"]} for c in sorted(creds, key=lambda c: c.user)]


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

    def __init__(self, settings, *, durable: str = "devices-relay", batch: int = 50):
        self.settings, self.durable, self.batch = settings, durable, batch
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.relayed = 0

    async def ensure_streams(self, bus: Bus) -> None:
        await bus.ensure_stream()
        await bus.ensure_stream(stream_name(self.settings), SUBJECTS)

    async def run(self) -> None:
        from nats.js import api as js_api

        bus = Bus(self.settings, name=f"{self.settings.service}-devices-relay", create_stream=False)
        await bus.connect()
        try:
            await self.ensure_streams(bus)
            await bus.js.add_consumer(stream_name(self.settings), js_api.ConsumerConfig(
                durable_name=self.durable, ack_policy=js_api.AckPolicy.EXPLICIT, max_deliver=-1, ack_wait=30))
            psub = await bus.js.pull_subscribe_bind(durable=self.durable, stream=stream_name(self.settings))
            while not self._stop.is_set():
                try:
                    msgs = await psub.fetch(self.batch, timeout=1.0)
                except Exception:  # noqa: BLE001 - timeouts and reconnects: fetch again
                    continue
                for m in msgs:
                    meta = m.metadata
                    event = to_event(m.subject, m.data or b"", m.headers, meta.sequence.stream, meta.timestamp)
                    if event is None:
                        await m.term()
                        continue
                    subject_, body, headers = prepare(event)
                    try:
                        await bus.publish_message(subject_, body, headers, timeout=10)
                    except BusError as exc:
                        log.warning("device message not relayed (%s); it comes again", exc.__class__.__name__)
                        await m.nak(delay=1)
                        continue
                    await m.ack()
                    self.relayed += 1
        finally:
            await bus.close(drain=False)

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
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def main() -> int:
    """``python -m lscloud.devices``: the relay, until SIGTERM (the cluster's Deployment)."""
    from . import config, redaction

    redaction.install_log_redaction()
    logging.basicConfig(level=logging.INFO)
    relay = Relay(config.load())
    signal.signal(signal.SIGTERM, lambda *_: relay._stop.set())
    signal.signal(signal.SIGINT, lambda *_: relay._stop.set())
    asyncio.run(relay.run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
