"""The routing table the supervisor writes and the gateway process reads (``<state dir>/routes.json``).

Apart from :mod:`lscloud.local.gateway` (the ASGI app, aiohttp) so that the supervisor, which
writes the table from its first moment, does not import the gateway's HTTP stack to do it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


@dataclass
class Route:
    """What the gateway knows of one function (kept current by the supervisor)."""

    name: str
    port: int
    state: str = "starting"  # starting | ready | crashed | restarting | stopped


def write_routes(path, routes: dict[str, Route]) -> None:
    """Write the routing table :class:`lscloud.local.gateway.RoutesFile` reads (atomically: a
    reader sees the old or the new)."""
    data = {"functions": {r.name: {"port": r.port, "state": r.state} for r in routes.values()}}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)
