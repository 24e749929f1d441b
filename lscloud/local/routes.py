"""The routing table the supervisor writes and the gateway process reads (``<state dir>/routes.json``).

Apart from :mod:`lscloud.local.gateway` (the ASGI app, aiohttp) so that the supervisor, which
writes the table from its first moment, does not import the gateway's HTTP stack to do it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..manifest import PLATFORM_CONTAINER_CONCURRENCY, PLATFORM_TIMEOUT_S, Manifest, container_concurrency


@dataclass
class Route:
    """What the gateway knows of one function (kept current by the supervisor).

    ``concurrency`` and ``timeout_s`` are what Knative's queue-proxy holds each replica to in the
    cluster (``containerConcurrency``, 0 for no limit, and ``timeoutSeconds``): the gateway lets
    that many requests through at once and keeps a bounded line behind them
    (:class:`lscloud.local.gateway.Gateway`)."""

    name: str
    port: int
    state: str = "starting"  # starting | ready | crashed | restarting | stopped
    concurrency: int = PLATFORM_CONTAINER_CONCURRENCY
    timeout_s: float = PLATFORM_TIMEOUT_S

    @classmethod
    def of(cls, m: Manifest, port: int, state: str = "starting") -> "Route":
        """The route of the function ``m`` listening on ``port``, bounded as its Service is in the cluster."""
        return cls(m.name, port, state, concurrency=container_concurrency(m))


def write_routes(path, routes: dict[str, Route]) -> None:
    """Write the routing table :class:`lscloud.local.gateway.RoutesFile` reads (atomically: a
    reader sees the old or the new)."""
    data = {"functions": {r.name: {"port": r.port, "state": r.state, "concurrency": r.concurrency,
                                   "timeout_s": r.timeout_s} for r in routes.values()}}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)
