"""A boto3 client for the store's endpoint, for the benchmarks' raw-S3 baselines (the issue's
"raw boto3" floor): :attr:`ObjectStore.client` builds it on first use. The
store's own calls do not use it (see :mod:`lscloud.store.s3http`), so a function never imports
botocore unless something asks for this."""

from __future__ import annotations

import datetime
import email.utils
import threading

import boto3
import botocore.session
import botocore.utils
from botocore.config import Config
from dateutil.tz import tzutc

# A fixed User-Agent: botocore otherwise rebuilds its structured one (about 90 string
# sanitisations) twice per call, a tenth of a GetObject's client CPU.
USER_AGENT = "lscloud"  # botocore appends its own name and version
_UTC = tzutc()


def _rules_refer_to(rules, name: str) -> bool:
    """Whether an endpoint ruleset (its JSON) reads the parameter ``name`` anywhere."""
    stack = [rules]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("ref") == name:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _resolve_endpoints_once(core, client) -> None:
    """Let botocore's endpoint cache serve every call to the same bucket.

    botocore resolves each request's endpoint by evaluating the S3 ruleset, behind a cache keyed
    by all the ruleset's parameters; those include the object's ``Key`` (and a listing's
    ``Prefix``), so a new key always misses and pays a full evaluation (about a tenth of a PUT's
    client CPU). Where the ruleset never reads a parameter its value cannot change the endpoint:
    it is left out of the lookup, and the cache answers. A ruleset that does read it is left alone.
    """
    provider = getattr(getattr(client, "_ruleset_resolver", None), "_provider", None)
    if provider is None:
        return
    try:
        rules = core.get_component("data_loader").load_service_model("s3", "endpoint-rule-set-1")
    except Exception:  # noqa: BLE001 - an optimisation only: without the ruleset, change nothing
        return
    unused = tuple(n for n in ("Key", "Prefix") if not _rules_refer_to(rules, n))
    if not unused:
        return
    resolve = provider.resolve_endpoint

    def resolve_endpoint(**params):
        for name in unused:
            params.pop(name, None)
        return resolve(**params)

    provider.resolve_endpoint = resolve_endpoint


def _parse_timestamp(value):
    """botocore's timestamp parser, without dateutil's generic parser for the two formats S3
    sends (RFC 7231 ``Last-Modified`` headers, ISO 8601 in listings): the same aware datetimes,
    for a fraction of the cost; anything else goes to botocore's parser."""
    if isinstance(value, str):
        try:
            if value.endswith(" GMT"):
                return email.utils.parsedate_to_datetime(value).replace(tzinfo=_UTC)
            if value.endswith("Z") and "T" in value:
                return datetime.datetime.fromisoformat(value).replace(tzinfo=_UTC)
        except (TypeError, ValueError):
            pass
    return botocore.utils.parse_timestamp(value)


_SESSION_LOCK = threading.Lock()
_SESSION: "boto3.session.Session | None" = None


def _session() -> "boto3.session.Session":
    """The process's one boto3 session, created on first use; call with ``_SESSION_LOCK`` held.

    Every client the process makes comes from it, so botocore reads and parses the S3 service
    model and endpoint rules (a few MB of JSON, most of a client's creation) once per process
    instead of once per client. Endpoint, credentials and timeouts stay per client."""
    global _SESSION
    if _SESSION is None:
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_parse_timestamp)
        _SESSION = boto3.session.Session(botocore_session=core)
    return _SESSION


def client(endpoint: str, access_key: str, secret_key: str, region: str, *, max_pool: int, timeout_s: float,
           ca_file: str):
    """A thread-safe boto3 S3 client configured as the store's own calls are (path-style, SigV4,
    standard retries, the same pool size, timeouts and CA)."""
    with _SESSION_LOCK:  # a botocore session is not meant to create clients from several threads at once
        made = _session().client(
            "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            region_name=region, verify=ca_file or None,  # the cluster's own CA signs the store's certificate
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                          retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=max_pool,
                          connect_timeout=timeout_s, read_timeout=timeout_s,
                          # newer botocore adds CRC checksums some S3 servers do not know
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required",
                          user_agent=USER_AGENT))
        _resolve_endpoints_once(_SESSION._session, made)
    return made
