"""Partner request nonces: each remembered once, in a JetStream key-value bucket, for as long as it
could verify again.

A signed partner request carries a nonce (:mod:`lscloud.auth`); the same nonce again is a replay.
A nonce is remembered as the key ``<function>.<partner>.<nonce>`` of the bucket
``<stream>_NONCES`` (its stream is ``KV_<stream>_NONCES``, so ``nats kv get`` reads it), written
only if the key holds nothing yet (``Nats-Expected-Last-Subject-Sequence: 0``), which makes one
winner among racing replicas.

How long: a signature verifies while its timestamp is within ``signature_window_s`` of the clock, so
a nonce matters until timestamp + window; its timestamp may lie up to a window ahead of the write.
The bucket keeps every key :func:`lifetime_s` (2 × window + 60 s) after it was written and then the
server drops it: no sweep, no lifecycle rule. It is bounded in bytes too and refuses new keys when
full (``discard: new``): a full bucket fails closed, never forgets a nonce early. So that one
partner cannot fill it for every other, a partner's verified calls are limited before their nonce
is written (``LSCLOUD_PARTNER_RATE``, :func:`lscloud.auth.verify_partner_request`).

Why not the object store, where nonces were before: one S3 PUT per signed call and a LIST, GET and
DELETE later by the sweep, about a millisecond of the store's CPU each, against one publish here.

In the cluster the bucket is created by the streams Job (``infra/components/bus.py``) and each
function may write only its own keys (``infra/components/natsauth.py``); in the local cloud and in
tests the first write creates it.
"""

from __future__ import annotations

import functools
import json

from . import nats_import  # noqa: F401 - first: nats-py without aiohttp (see there)

from nats.js import api as js_api

from .bus import DUPLICATE_WINDOW_S, BusError, BusUnavailable

SUFFIX = "_NONCES"
MARGIN_S = 60
"""Added to the longest a nonce can matter: clocks of replicas are not one clock."""


def bucket(stream: str) -> str:
    """The bucket of the events stream ``stream`` (``settings.stream``)."""
    return f"{stream}{SUFFIX}"


def lifetime_s(window_s: float) -> float:
    """How long after its write a nonce is kept, for a signature window of ``window_s`` seconds."""
    return 2 * float(window_s) + MARGIN_S


def key_prefix(function: str) -> str:
    """The keys one function writes (``<function>.``; NATS grants it ``$KV.<bucket>.<function>.>``)."""
    return f"{function}."


def bucket_config(stream: str, max_age_s: float, *, max_bytes: int = -1, replicas: int = 1) -> js_api.StreamConfig:
    """The bucket's stream as ``nats kv add`` makes one (one value per key, rollups allowed, deletes
    denied), keeping keys ``max_age_s`` (at least :func:`lifetime_s` of every signature window that
    writes to it) and refusing new ones when ``max_bytes`` is reached."""
    name = bucket(stream)
    return js_api.StreamConfig(
        name=f"KV_{name}", subjects=[f"$KV.{name}.>"], storage=js_api.StorageType.FILE,
        retention=js_api.RetentionPolicy.LIMITS, discard=js_api.DiscardPolicy.NEW, max_msgs_per_subject=1,
        max_age=max_age_s, max_bytes=max_bytes, num_replicas=replicas, allow_rollup_hdrs=True, deny_delete=True,
        deny_purge=False, allow_direct=True, duplicate_window=min(DUPLICATE_WINDOW_S, max_age_s))


@functools.lru_cache(maxsize=8)
def local_bucket_config(stream: str, window_s: float) -> js_api.StreamConfig:
    """The bucket as the local cloud (its supervisor, or the first write of a runtime that may create
    streams) makes it: unbounded in bytes, one R1 copy. Built once, not on every signed request;
    nobody changes it (:meth:`~lscloud.bus.Bus.ensure_key_value` changes the server's copy)."""
    return bucket_config(stream, lifetime_s(window_s))


def remember(bus, settings, function: str, partner: str, nonce: str, timestamp: int) -> bool:
    """Remember ``nonce`` of ``partner`` for ``function`` (the app's name) on ``bus`` (a
    :class:`~lscloud.bus.SyncBus`): True the first time, False when it was remembered already (a
    replay). :class:`~lscloud.bus.BusUnavailable` when NATS cannot say either way (unreachable, or
    the bucket refused the write): the request is refused, a web app answers it 503."""
    record = json.dumps({"timestamp": timestamp}).encode()
    try:
        return bus.create_key(bucket(settings.stream), f"{key_prefix(function)}{partner}.{nonce}", record,
                              create=local_bucket_config(settings.stream, settings.signature_window_s))
    except BusUnavailable:
        raise
    except BusError as exc:
        # refused (the bucket full, no stream and no right to make one): not knowing is not accepting
        raise BusUnavailable(f"partner nonce not remembered: {exc}") from None
