"""Border gates as the ``directory`` function describes them (hours, capacity), asked over HTTP.

The directory owns that data; the border function never reads its objects. Each call
revalidates the answer (``If-None-Match``) through the process's peer client
(:func:`lscloud.peers.client`), so an edit in the directory is seen at once.
"""

from __future__ import annotations

import re

from lscloud import errors, peers

CODE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")  # the directory's gate codes

__all__ = ["gate", "names", "UnknownGate", "DirectoryUnavailable", "CODE_RE"]


class UnknownGate(errors.Invalid):
    """No road border gate with this code (422, naming ``/gate``)."""

    type = "unknown-gate"
    title, title_vi = "Unknown gate", "Cửa khẩu không tồn tại"

    def __init__(self, detail: str):
        super().__init__(detail, detail_vi="Không có cửa khẩu đường bộ với mã này.",
                         errors=[errors.field("/gate", "no road border gate with this code")])


class DirectoryUnavailable(errors.Unavailable):
    """The directory does not answer: retry later (503, Retry-After)."""

    type = "directory-unavailable"
    title, title_vi = "Gate directory unavailable", "Không truy cập được danh mục cửa khẩu"

    def __init__(self, detail: str):
        super().__init__(detail, detail_vi="Danh mục cửa khẩu tạm thời không trả lời; vui lòng thử lại.")


def gate(settings, code: str) -> dict:
    """The directory's road border gate ``code``: UnknownGate if there is none (or if ``code`` is
    not even shaped like a gate code: that is not worth a call), DirectoryUnavailable if the
    directory does not answer."""
    if not isinstance(code, str) or not CODE_RE.fullmatch(code):
        raise UnknownGate(f"{str(code)[:40]!r} is not a gate code")
    try:
        g = peers.client(settings).get_json("directory", peers.path("/v1/border-gates", code))
    except peers.PeerNotFound as exc:
        raise UnknownGate(str(exc)) from None
    except peers.PeerError as exc:
        raise DirectoryUnavailable(str(exc)) from None
    if g.get("mode") != "road":
        raise UnknownGate(f"{code} is not a road gate: trucks do not cross there")
    return g


def names(g: dict) -> dict[str, str | None]:
    """The gate's name in each language a driver reads (vi, zh, en), only as the directory has it.
    The directory holds no Chinese name of a Vietnamese gate, only its Chinese counterpart's
    (``counterpart.name_zh``, 友谊关 across from Hữu Nghị): a Chinese driver knows the crossing by
    that, so zh is the Vietnamese name with it beside, never a translation made up here. A name the
    directory does not have falls back to the Vietnamese one."""
    vi = g.get("name")
    counterpart = (g.get("counterpart") or {}).get("name_zh")
    return {"vi": vi, "zh": g.get("name_zh") or (f"{vi} ({counterpart})" if vi and counterpart else vi),
            "en": g.get("name_en") or vi}
