"""Agencies, asked from the directory over HTTP: a transfer names an agency that exists there and
handles citizen reports (its ``report_handling`` role, or a commune's People's Committee)."""

from __future__ import annotations

import re

from lscloud import errors, peers

_CODE = re.compile(r"[a-z0-9-]{2,64}")


def check(client: peers.PeerClient, code: str, pointer: str = "/agency") -> dict:
    """``{"code", "name"}`` of the directory agency ``code``; 422 at ``pointer`` if it is none or
    does not handle reports; 503 if the directory does not answer."""
    refused = errors.Invalid.at(pointer, f"{code!r} is not an agency of the directory that handles citizen reports",
                                f"{code!r} không phải cơ quan xử lý phản ánh trong danh mục.")
    if not _CODE.fullmatch(code or ""):
        raise refused
    try:
        agency = client.get_json("directory", peers.path("/v1/agencies", code))
    except peers.PeerUnavailable:
        raise errors.Unavailable("The directory does not answer; try again shortly.",
                                 detail_vi="Danh mục cơ quan tạm thời không phản hồi.") from None
    except peers.PeerError:
        raise refused from None
    handles = (agency.get("roles") or {}).get("report_handling") or agency.get("kind") == "commune-committee"
    if not handles:
        raise refused
    return {"code": agency["code"], "name": agency.get("name")}
