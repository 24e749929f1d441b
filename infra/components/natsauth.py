"""Who may do what on NATS: one user per workload, each known by its TLS client certificate.

NATS runs with ``verify_and_map``: a client must present a certificate signed by the cluster's CA,
and the certificate's e-mail address names its user (``<user>@nats.lscloud``). Every user but one
lives in the JetStream account ``LSCLOUD`` and gets only what it needs:

- a **function** publishes its own events only: ``lscloud.<function>.>`` (event types are
  ``vn.langson.<function>.<fact>.v1``), plus the JetStream info calls its readiness makes, and writes
  its own keys of the partner nonces' bucket (``$KV.<stream>_NONCES.<function>.>``, :mod:`lscloud.nonces`). It can
  neither create, change nor delete a stream, nor read anyone's events: the Triggers deliver them
  over HTTP. A function in :data:`STREAM_READERS` (the operations centre's replay) may also read
  the stream through an ephemeral consumer of its own;
- the **clock** publishes ``lscloud.platform.>``;
- the **bridges** read the stream through their durable consumers (create, fetch, ack) and publish
  dead letters to ``lscloud-dlq.bridge.>``;
- **eventing** (eventing-natss, the brokers' channels) lives in an account of its own,
  ``KNATIVE``, where it manages its channel streams; the platform's streams are not in it. Its
  channels publish on ``<namespace>.<channel>._knative``: in the functions' namespace ``lscloud``
  those subjects are inside the platform stream's ``lscloud.>``, and JetStream refuses a stream
  whose subjects overlap another stream's of the same account, so in one account no channel (and
  no broker) could ever become ready. Accounts do not share subjects, so the overlap is gone;
- the **devices relay** reads ``<stream>_DEVICES`` (what field devices publish over MQTT) through
  its durable consumer and publishes the device domains' ``device`` events, nothing else;
- **backup** (the streams' daily snapshot, :mod:`.backup`) may snapshot the functions' stream and
  its dead-letter stream, nothing else: no publishing events, no consumer, no restore;
- **admin** (the stream Job) may do everything;
- **field devices** authenticate over MQTT only, with a username and password, and may publish
  their own topics only (:func:`lscloud.devices.nats_users`). They are issued at run time, so
  they are not rendered here: the rendered block holds the marker line
  :data:`lscloud.devices.USERS_MARKER` in the platform account's users, and a sidecar beside each
  server puts the issued users there (:mod:`.bus`).

The rendered ``accounts`` block (the template of the file ``nats.conf`` includes) holds no secret
(the certificates are the credentials; devices' passwords are bcrypt hashes, and only in the
sidecar's file), so it lives in the ConfigMap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from lscloud import devices, events, nonces

ACCOUNT = "LSCLOUD"
EVENTING_ACCOUNT = "KNATIVE"
EMAIL_DOMAIN = "nats.lscloud"
INBOX = "_INBOX.>"


@dataclass(frozen=True)
class NatsUser:
    name: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = (INBOX,)
    deny_publish: tuple[str, ...] = ()
    deny_subscribe: tuple[str, ...] = ()
    all_allowed: bool = False  # admin: no permissions block at all
    account: str = ACCOUNT

    @property
    def email(self) -> str:
        return f"{self.name}@{EMAIL_DOMAIN}"


STREAM_READERS = {
    "ioc": "POST /v1/replay rebuilds the operations centre's figures from the stream's beginning and "
           "compares them with the live ones (lscloud.bus.Bus.replay)",
}
"""Functions that read the stream themselves, and why: an ephemeral consumer each time (create it
under any name, with or without a filter; pull from it; delete it). Every other function only
publishes: the Triggers bring it its events over HTTP."""


def function_user(function: str, stream: str) -> NatsUser:
    # its partners' nonces: create its own keys of the nonces' bucket, and read one back (a direct
    # get) when a create's answer was lost, nobody else's (lscloud.nonces, lscloud.bus.Bus.create_key)
    own_keys = f"$KV.{nonces.bucket(stream)}.{nonces.key_prefix(function)}>"
    publish = (f"lscloud.{function}.>", "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}", own_keys,
               f"$JS.API.DIRECT.GET.KV_{nonces.bucket(stream)}.{own_keys}")
    if function in STREAM_READERS:
        # the subjects nats-py's add_consumer, fetch and delete_consumer request (a name is one token)
        publish += (f"$JS.API.CONSUMER.CREATE.{stream}.*", f"$JS.API.CONSUMER.CREATE.{stream}.*.>",
                    f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*", f"$JS.API.CONSUMER.DELETE.{stream}.*")
    return NatsUser(f"fn-{function}", publish=publish)


def platform_users(stream: str) -> list[NatsUser]:
    dlq = f"{stream}_DLQ"
    return [
        NatsUser("clock", publish=("lscloud.platform.>", "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}")),
        NatsUser("bridge", publish=(
            "lscloud-dlq.bridge.>", "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.INFO.{dlq}",
            f"$JS.API.CONSUMER.CREATE.{stream}.>", f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.INFO.{stream}.>", f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>", f"$JS.ACK.{stream}.>")),
        # alone in its account: everything there is its own (its channel streams and their consumers)
        NatsUser("eventing", all_allowed=True, account=EVENTING_ACCOUNT),
        backup_user(stream),
        NatsUser("admin", all_allowed=True),
    ]


def backup_user(stream: str) -> NatsUser:
    """``nats stream backup`` of the stream and its dead letters: a JetStream snapshot is a request
    to ``$JS.API.STREAM.SNAPSHOT.<stream>`` naming a ``deliver_subject`` (the CLI's own ``_INBOX``,
    which every user may subscribe to), where the server sends the chunks; each chunk's reply
    subject is ``$JS.SNAPSHOT.ACK.<stream>.<id>.<size>.<index>`` and the client's reply to it is the
    flow control (docs.nats.io, reference/jetstream/api/stream/snapshot; nats-server
    ``jsSnapshotAckT``, answered under ``ackSubj + ".>"``). The CLI first reads the stream's info
    (``$JS.API.STREAM.INFO.<stream>``) and the account's (``$JS.API.INFO``). Not admin: the pod
    reaches outside the cluster, and admin could delete the streams or publish as any function."""
    streams = (stream, f"{stream}_DLQ")   # the two .backup snapshots (bus.dlq_stream_name)
    return NatsUser("backup", publish=(
        "$JS.API.INFO",
        *(f"$JS.API.STREAM.INFO.{s}" for s in streams),
        *(f"$JS.API.STREAM.SNAPSHOT.{s}" for s in streams),
        *(f"$JS.SNAPSHOT.ACK.{s}.>" for s in streams)))


def relay_user(stream: str, domains: Iterable[str]) -> NatsUser:
    """``python -m lscloud.devices``: its durable consumer on the devices stream (the subjects
    nats-py's add_consumer, fetch and ack use), and the device events of ``domains``."""
    s = f"{stream}_DEVICES"  # lscloud.devices.stream_name
    return NatsUser("devices-relay", publish=(
        *(events.subject_for(devices.event_type(d)) for d in sorted(domains)),
        "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.INFO.{s}",
        f"$JS.API.CONSUMER.CREATE.{s}.>", f"$JS.API.CONSUMER.DURABLE.CREATE.{s}.>",
        f"$JS.API.CONSUMER.INFO.{s}.>", f"$JS.API.CONSUMER.MSG.NEXT.{s}.>", f"$JS.ACK.{s}.>"))


def users(functions: Iterable[str], stream: str, device_domains: Iterable[str] = ()) -> list[NatsUser]:
    device_domains = list(device_domains)   # no domain, no relay (its Deployment and certificate neither)
    return ([function_user(f, stream) for f in sorted(functions)] + platform_users(stream)
            + ([relay_user(stream, device_domains)] if device_domains else []))


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def render_accounts(all_users: Iterable[NatsUser]) -> str:
    """The ``accounts`` block of nats.conf (users named by their certificates' e-mail addresses),
    one JetStream-enabled account per :attr:`NatsUser.account`, with the device users' marker in
    the platform account (replaced by :func:`lscloud.devices.render_users`)."""
    by_account: dict[str, list[NatsUser]] = {}
    for u in all_users:
        by_account.setdefault(u.account, []).append(u)
    lines = ["accounts {"]
    for account in sorted(by_account):
        lines += [f"  {account}: {{", "    jetstream: enabled", "    users: ["]
        for u in by_account[account]:
            if u.all_allowed:
                lines.append(f'      {{user: "{u.email}"}}')
                continue
            pub = f"allow: {_list(u.publish)}" + (f", deny: {_list(u.deny_publish)}" if u.deny_publish else "")
            sub = f"allow: {_list(u.subscribe)}" + (f", deny: {_list(u.deny_subscribe)}" if u.deny_subscribe else "")
            lines.append(f'      {{user: "{u.email}", permissions: {{publish: {{{pub}}}, subscribe: {{{sub}}}}}}}')
        if account == ACCOUNT:
            lines.append(f"      {devices.USERS_MARKER}")
        lines += ["    ]", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TlsPaths:
    """Where nats-server finds its certificate, key and the CA (mounted from ``nats-server-tls``)."""

    cert: str = "/etc/nats-tls/tls.crt"
    key: str = "/etc/nats-tls/tls.key"
    ca: str = "/etc/nats-tls/ca.crt"


def render_tls(paths: TlsPaths | None = None, *, block: str = "tls", verify: str = "verify_and_map") -> str:
    paths = paths or TlsPaths()
    return (f"{block} {{\n  cert_file: \"{paths.cert}\"\n  key_file: \"{paths.key}\"\n  ca_file: \"{paths.ca}\"\n"
            f"  {verify}: true\n  timeout: 5\n}}\n")
