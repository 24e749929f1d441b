"""Post-office points, as the directory knows them: which offer the soft ATM, and their limits."""

from __future__ import annotations

import re

from lscloud import config
from lscloud import peers
from lscloud.peers import PeerError, PeerNotFound, path

from .refusals import DirectoryUnavailable, NoPoint, NotASoftAtm, UnknownPoint

POINT_RE = re.compile(r"^bd-(?:\d{2}|\d{5})$")


class Offices:
    """The directory's post offices (a revalidating peer cache, one per app)."""

    def __init__(self, platform: config.Settings):
        self.peers = peers.client(platform)

    def soft_atm_point(self, code: str | None) -> dict:
        """The post office ``code`` if it offers the soft ATM; a teller's token without a point is 403."""
        if not code or not POINT_RE.match(code):
            raise NoPoint()
        try:
            office = self.peers.get_json("directory", path("/v1/post-offices", code))
        except PeerNotFound:
            raise UnknownPoint(f"No post office {code}.", detail_vi=f"Không có bưu điện {code}.") from None
        except PeerError as exc:
            raise DirectoryUnavailable(str(exc), detail_vi="Danh mục bưu điện tạm thời không trả lời.") from None
        if not office.get("soft_atm"):
            raise NotASoftAtm(code)
        return office


def check_code(code: str) -> None:
    """A point code in a path that could name a point (anything else names nothing)."""
    if not POINT_RE.match(code):
        raise UnknownPoint(f"No point {code!r}.", detail_vi="Không có điểm giao dịch này.")
