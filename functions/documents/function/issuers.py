"""The agency an outgoing document is issued by, as the platform records it: its name on the seal
certificate from the directory's record of the caller's token ``agency``, and the abbreviation
in the document's symbol (``Số: 01/QĐ-UBND``) from ``data/agencies.json``.

Neither comes from a request body: a clerk who could type them registered a document under
another agency's symbol and had the seal certificate issued in its name (the verification
answered valid, trusted, with no trace of the clerk's own agency).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lscloud import errors, peers

DATA = Path(__file__).with_name("data") / "agencies.json"


@dataclass(frozen=True)
class Issuer:
    code: str
    name: str
    abbr: str


class NotInDirectory(errors.Forbidden):
    type = "agency-not-in-directory"
    title, title_vi = "Agency not in the directory", "Cơ quan không có trong danh mục"


class NoAbbreviation(errors.Conflict):
    type = "agency-abbreviation-missing"
    title, title_vi = "No abbreviation on record for the agency", "Chưa có chữ viết tắt tên cơ quan"


@lru_cache(maxsize=1)
def table() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def abbreviation(code: str, kind: str | None) -> str | None:
    t = table()
    return t["agencies"].get(code) or t["kinds"].get(kind or "")


def of(client: peers.PeerClient, code: str | None) -> Issuer:
    """The issuer ``code`` (the caller's token ``agency``) is: refused when the directory does not
    know it or no abbreviation is on record, never made up from the code."""
    if not code:
        raise errors.Forbidden("an officer's token names their agency", detail_vi="Token không có cơ quan.")
    try:
        record = client.get_json("directory", peers.path("/v1/agencies", code))
    except peers.PeerNotFound:
        raise NotInDirectory(f"agency {code!r} (your token's agency) is not in the directory: no seal is made for it",
                             detail_vi=f"Cơ quan {code!r} (trong token) không có trong danh mục cơ quan: "
                                       "không cấp được chữ ký số của cơ quan.") from None
    except peers.PeerError:
        raise errors.Unavailable("the directory did not answer", detail_vi="Dịch vụ danh mục không phản hồi.") from None
    abbr = abbreviation(code, record.get("kind"))
    if not abbr:
        raise NoAbbreviation(f"no abbreviation of agency {code!r} is on record (data/agencies.json): the operator adds it",
                             detail_vi=f"Chưa có chữ viết tắt tên cơ quan {code!r} (data/agencies.json): "
                                       "đề nghị quản trị bổ sung.")
    return Issuer(code=code, name=record["name"], abbr=abbr)
