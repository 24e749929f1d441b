"""Communes, asked from the directory over HTTP (its answers revalidated by ETag, never its objects)."""

from __future__ import annotations

import re

from lscloud import errors, peers

_CODE = re.compile(r"\d{5}")


def commune(client: peers.PeerClient, code: str, pointer: str) -> dict:
    """``{"code", "name"}`` of the commune-level unit ``code``; 422 at ``pointer`` if there is none."""
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
