"""Border gates as the ``directory`` function describes them (hours, capacity), asked over HTTP.

The directory owns that data; the border function never reads its objects. Each call
revalidates the answer (``If-None-Match``), so an edit in the directory is seen at once.
"""

from __future__ import annotations

import re
import threading

from lscloud import peers
from lscloud.peers import PeerClient, PeerError, PeerNotFound, PeerUnavailable

CODE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")  # the directory's gate codes
_clients: dict[tuple, PeerClient] = {}
_lock = threading.Lock()

__all__ = ["gate", "PeerError", "PeerNotFound", "PeerUnavailable", "client"]


def client(settings) -> PeerClient:
    k = (settings.peer_url_template, settings.service)
    with _lock:
        c = _clients.get(k)
        if c is None:
            c = _clients[k] = PeerClient(settings)
        return c


def gate(settings, code: str) -> dict:
    """The directory's border gate ``code`` (PeerNotFound if there is none, or if ``code`` is not even
    shaped like a gate code: those are not worth a call)."""
    if not isinstance(code, str) or not CODE_RE.fullmatch(code):
        raise PeerNotFound(f"{str(code)[:40]!r} is not a gate code")
    g = client(settings).get_json("directory", peers.path("/v1/border-gates", code))
    if g.get("mode") != "road":
        raise PeerNotFound(f"{code} is not a road gate: trucks do not cross there")
    return g
