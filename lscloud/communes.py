"""The province's communes and wards, as other functions ask the directory for them.

A function that files something under a commune (a team, a shop, a station, a lot's origin) checks
the code against the directory over HTTP — its answers revalidated by ETag and held briefly in
memory by :mod:`lscloud.peers`, never its objects — with the same answers everywhere: a code that
is not a commune-level unit is a 422 at the caller's field, a directory that does not answer a 503.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from . import errors, peers

__all__ = ["commune", "names"]

_CODE = re.compile(r"\d{5}")     # the national 5-digit ward code; "20" (the province) is not a commune
_PAGE = 100    # the directory's largest page (lscloud.listing.MAX_LIMIT; not imported: 2 ms of four starts)
_PAGES = 20    # the province has 65 communes and wards


def commune(client: peers.PeerClient, code: object, pointer: str) -> dict:
    """``{"code", "name"}`` of the commune-level unit ``code``; :class:`errors.Invalid` at ``pointer``
    if there is none, :class:`errors.Unavailable` if the directory does not answer."""
    unknown = errors.Invalid.at(pointer, f"{code!r} is not a commune or ward of Lạng Sơn",
                                f"{code!r} không phải mã xã, phường của tỉnh Lạng Sơn")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise unknown
    try:
        unit = client.get_json("directory", peers.path("/v1/units", code))
    except peers.PeerUnavailable:
        raise errors.Unavailable("The directory does not answer; try again shortly.",
                                 detail_vi="Danh mục đơn vị hành chính tạm thời không phản hồi.") from None
    except peers.PeerError:
        raise unknown from None
    if unit.get("level") != "commune":
        raise unknown
    return {"code": unit["code"], "name": unit["name"]}


def names(client: peers.PeerClient) -> dict[str, str]:
    """Every commune-level unit's name by its code, as the directory lists them
    (``GET /v1/units?level=commune``, page after page, each answer revalidated by ETag as
    :mod:`lscloud.peers` does). Raises :class:`peers.PeerError` when the directory does not answer."""
    out: dict[str, str] = {}
    query: dict[str, object] = {"level": "commune", "limit": _PAGE}
    for _ in range(_PAGES):
        page = client.get_json("directory", "/v1/units?" + urlencode(query))
        out.update({u["code"]: u["name"] for u in page["items"]})
        query["page_token"] = page.get("next_page_token")
        if not query["page_token"]:
            break
    return out
