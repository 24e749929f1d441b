"""What other functions own, asked over HTTP: the procedure (``procedures``) and the units and
agencies (``directory``). Each call revalidates its cached answer (ETag), so a catalogue edit is
seen at once; nothing here reads another function's objects."""

from __future__ import annotations

import re
import threading

from lscloud import peers
from lscloud.peers import PeerClient, PeerError, PeerNotFound, PeerUnavailable

__all__ = ["procedure", "unit", "agency_unit", "PeerError", "PeerNotFound", "PeerUnavailable"]

_clients: dict[tuple, PeerClient] = {}
_lock = threading.Lock()
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def client(settings) -> PeerClient:
    k = (settings.peer_url_template, settings.service)
    with _lock:
        c = _clients.get(k)
        if c is None:
            c = _clients[k] = PeerClient(settings)
        return c


def procedure(settings, code: str) -> dict:
    """The catalogue's procedure ``code`` (PeerNotFound if there is none)."""
    if not _CODE_RE.fullmatch(code or ""):
        raise PeerNotFound(f"{code!r} is not a procedure code")
    return client(settings).get_json("procedures", peers.path("/v1/procedures", code))


def unit(settings, code: str) -> dict:
    """The directory's commune-level unit ``code`` (PeerNotFound if none)."""
    if not re.fullmatch(r"\d{5}", code or ""):
        raise PeerNotFound(f"{code!r} is not a commune-level unit code")
    u = client(settings).get_json("directory", peers.path("/v1/units", code))
    if u.get("level") != "commune":
        raise PeerNotFound(f"{code} is not a commune-level unit")
    return u


def agency_unit(settings, code: str) -> str | None:
    """The unit of an agency's seat, which its steps are assigned to (None if it has none)."""
    return client(settings).get_json("directory", peers.path("/v1/agencies", code)).get("unit_code")
