"""Who may do what on NATS: one user per workload, each known by its TLS client certificate.

NATS runs with ``verify_and_map``: a client must present a certificate signed by the cluster's CA,
and the certificate's e-mail address names its user (``<user>@nats.lscloud``). Every user lives in
the one JetStream account ``LSCLOUD`` and gets only what it needs:

- a **function** publishes its own events only: ``lscloud.<function>.>`` (event types are
  ``vn.langson.<function>.<fact>.v1``), plus the JetStream info calls its readiness makes. It can
  neither create, change nor delete a stream, nor read anyone's events: the Triggers deliver them
  over HTTP;
- the **clock** publishes ``lscloud.platform.>``;
- the **bridges** read the stream through their durable consumers (create, fetch, ack) and publish
  dead letters to ``lscloud-dlq.bridge.>``;
- **eventing** (eventing-natss, the brokers' channels) manages its own channel streams and may
  touch neither ``lscloud.>`` nor the platform's streams;
- **admin** (the stream Job, the backups) may do everything.

The rendered ``accounts`` block is included by ``nats.conf``; it holds no secret (the certificates
are the credentials), so it lives in the ConfigMap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

ACCOUNT = "LSCLOUD"
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

    @property
    def email(self) -> str:
        return f"{self.name}@{EMAIL_DOMAIN}"


def function_user(function: str, stream: str) -> NatsUser:
    return NatsUser(f"fn-{function}", publish=(f"lscloud.{function}.>", "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}"))


def platform_users(stream: str) -> list[NatsUser]:
    dlq = f"{stream}_DLQ"
    ours = (stream, dlq)
    return [
        NatsUser("clock", publish=("lscloud.platform.>", "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}")),
        NatsUser("bridge", publish=(
            "lscloud-dlq.bridge.>", "$JS.API.INFO", f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.INFO.{dlq}",
            f"$JS.API.CONSUMER.CREATE.{stream}.>", f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.INFO.{stream}.>", f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>", f"$JS.ACK.{stream}.>")),
        NatsUser("eventing", publish=(">",), subscribe=(">",),
                 deny_publish=("lscloud.>", "lscloud-dlq.>",
                               *[f"$JS.API.STREAM.*.{s}" for s in ours],
                               *[f"$JS.API.CONSUMER.*.{s}.>" for s in ours],
                               *[f"$JS.API.CONSUMER.*.*.{s}.>" for s in ours]),
                 deny_subscribe=("lscloud.>", "lscloud-dlq.>")),
        NatsUser("admin", all_allowed=True),
    ]


def users(functions: Iterable[str], stream: str) -> list[NatsUser]:
    return [function_user(f, stream) for f in sorted(functions)] + platform_users(stream)


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def render_accounts(all_users: Iterable[NatsUser]) -> str:
    """The ``accounts`` block of nats.conf (users named by their certificates' e-mail addresses)."""
    lines = ["accounts {", f"  {ACCOUNT}: {{", "    jetstream: enabled", "    users: ["]
    for u in all_users:
        if u.all_allowed:
            lines.append(f'      {{user: "{u.email}"}}')
            continue
        pub = f"allow: {_list(u.publish)}" + (f", deny: {_list(u.deny_publish)}" if u.deny_publish else "")
        sub = f"allow: {_list(u.subscribe)}" + (f", deny: {_list(u.deny_subscribe)}" if u.deny_subscribe else "")
        lines.append(f'      {{user: "{u.email}", permissions: {{publish: {{{pub}}}, subscribe: {{{sub}}}}}}}')
    lines += ["    ]", "  }", "}"]
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
