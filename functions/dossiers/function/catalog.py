"""What other functions own, asked over HTTP: the procedure (``procedures``) and the units and
agencies (``directory``), through the runtime's revalidating peer client (:class:`lscloud.peers.PeerClient`:
every call asks, a ``304`` reuses the cached answer, so a catalogue edit is seen at once). Nothing
here reads another function's objects.

A code the catalogue does not know is the caller's mistake (422 naming the field); a catalogue
that does not answer is nobody's (503, retry).
"""

from __future__ import annotations

import re

from lscloud import errors, peers
from lscloud.peers import PeerClient, PeerError, PeerNotFound

_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_UNIT_RE = re.compile(r"\d{5}")


class UnknownProcedure(errors.Invalid):
    type = "unknown-procedure"


class UnknownUnit(errors.Invalid):
    type = "unknown-unit"


class CatalogueUnavailable(errors.Unavailable):
    type = "catalogue-unavailable"
    title, title_vi = "Catalogue unavailable", "Danh mục tạm thời không truy cập được"

    def __init__(self, detail: str):
        super().__init__(detail, detail_vi="Danh mục thủ tục/đơn vị tạm thời không trả lời; vui lòng thử lại.")


class Catalog:
    """The catalogue as the dossiers see it; one per app, holding one peer client."""

    def __init__(self, client: PeerClient):
        self.client = client

    def _get(self, function: str, path: str) -> dict:
        try:
            return self.client.get_json(function, path)
        except PeerNotFound:
            raise
        except PeerError as exc:
            raise CatalogueUnavailable(str(exc)) from None

    def procedure(self, code: str) -> dict:
        """The catalogue's procedure ``code``."""
        try:
            if not _CODE_RE.fullmatch(code or ""):
                raise PeerNotFound(f"{code!r} is not a procedure code")
            return self._get("procedures", peers.path("/v1/procedures", code))
        except PeerNotFound:
            raise UnknownProcedure.at("/procedure", f"no procedure {code!r} in the catalogue",
                                      f"Danh mục không có thủ tục mã {code!r}.") from None

    def unit(self, code: str) -> dict:
        """The directory's commune-level unit ``code``."""
        try:
            if not _UNIT_RE.fullmatch(code or ""):
                raise PeerNotFound(f"{code!r} is not a commune-level unit code")
            u = self._get("directory", peers.path("/v1/units", code))
        except PeerNotFound:
            u = None
        if u is None or u.get("level") != "commune":
            raise UnknownUnit.at("/unit", f"no commune-level unit {code!r} in Lạng Sơn",
                                 f"Lạng Sơn không có đơn vị hành chính cấp xã mã {code!r}.")
        return u

    def agency_units(self, procedure: dict) -> dict[str, str | None]:
        """The unit of each agency's seat that the procedure's steps go to (None: the agency has
        none, or the directory does not list it). The commune's own steps (``ubnd-xa``) go to the
        dossier's unit instead."""
        out: dict[str, str | None] = {}
        for s in procedure["steps"]:
            if s["agency"] != "ubnd-xa" and s["agency"] not in out:
                try:
                    out[s["agency"]] = self._get("directory", peers.path("/v1/agencies", s["agency"])).get("unit_code")
                except PeerNotFound:
                    out[s["agency"]] = None
        return out
