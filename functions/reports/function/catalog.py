"""The service types (Open311 services) from ``data/services.yaml``: what a report may be about,
the category the IOC counts it under, the agency that handles it and its deadline — and whether
that deadline was checked against a published text (``deadline_verified``): the file's are
placeholders, and every answer that gives one says so."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from lscloud import errors

from . import communes

DATA = Path(__file__).resolve().parent / "data" / "services.yaml"
CATEGORIES = ("urban-order", "environment", "security", "roads", "electricity", "water")
COMMUNE_ATTRIBUTE = "commune"


class UnknownService(errors.NotFound):
    type = "unknown-service"


@lru_cache(maxsize=1)
def services() -> dict[str, dict]:
    """Every service by code, in the file's order; a malformed file stops the start."""
    doc = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    out: dict[str, dict] = {}
    for s in doc["services"]:
        if s["category"] not in CATEGORIES or s["code"] in out or int(s["deadline_days"]) < 1:
            raise ValueError(f"{DATA.name}: bad service {s.get('code')!r}")
        if not isinstance(s.get("deadline_verified"), bool) or not str(s.get("deadline_source") or "").strip():
            raise ValueError(f"{DATA.name}: service {s['code']!r} must say whether its deadline was verified "
                             "(deadline_verified) and on what (deadline_source)")
        out[s["code"]] = {**s, "attributes": list(s.get("attributes") or [])}
    return out


def get(code: str) -> dict:
    try:
        return services()[code]
    except KeyError:
        raise UnknownService(f"no service with code {code!r}", detail_vi="Không có loại phản ánh này.") from None


def deadline_verified(code: str | None) -> bool:
    """Whether the deadline of service ``code`` rests on a checked text (False for an unknown code)."""
    return bool(services().get(code or "", {}).get("deadline_verified"))


def agency_for(service: dict, commune: str | None) -> str | None:
    """The directory code of the agency that handles ``service`` in ``commune`` (FixMyStreet's
    "body" by area and category): a commune's own People's Committee, or a provincial agency."""
    if service["agency"] == "commune":
        return f"ubnd-{commune}" if commune else "ubnd-tinh"
    return service["agency"]


def attributes(service: dict) -> list[dict]:
    """The Open311 attributes of a service: its own, then the commune (a list of Lạng Sơn's units)."""
    out = []
    for i, a in enumerate(service["attributes"], start=1):
        out.append({"variable": True, "code": a["code"], "datatype": a["datatype"], "required": bool(a["required"]),
                    "datatype_description": a.get("datatype_description"), "order": i,
                    "description": a["description"], "values": [dict(v) for v in a.get("values", [])]})
    out.append({"variable": True, "code": COMMUNE_ATTRIBUTE, "datatype": "singlevaluelist", "required": False,
                "datatype_description": "Không bắt buộc: nếu thiếu, lấy từ address_string ghi rõ xã, phường, hoặc "
                                        "từ vị trí lat/long (optional: otherwise taken from an address_string "
                                        "naming the commune or ward, or from lat/long)",
                "order": len(out) + 1, "description": "Xã, phường nơi xảy ra sự việc (Commune or ward)",
                "values": [{"key": c["code"], "name": c["name"]} for c in communes.all_communes()]})
    return out


def check_attributes(service: dict, given: dict[str, list[str]], pointer=lambda code: f"attribute[{code}]") -> dict:
    """The service's own attribute values (``commune`` is not one of them), checked against the
    definition: required ones present, list values among the keys. Unknown codes are refused."""
    defs = {a["code"]: a for a in service["attributes"]}
    out: dict = {}
    for code, values in given.items():
        if code == COMMUNE_ATTRIBUTE:
            continue
        a = defs.get(code)
        if a is None:
            raise errors.Invalid.at(pointer(code), f"service {service['code']} has no attribute {code!r}",
                                    f"Loại phản ánh này không có thông tin {code!r}.")
        keys = {str(v["key"]) for v in a.get("values", [])}
        if a["datatype"] in ("singlevaluelist", "multivaluelist") and any(v not in keys for v in values):
            raise errors.Invalid.at(pointer(code), f"one of {', '.join(sorted(keys))}", "Giá trị không hợp lệ.")
        if a["datatype"] != "multivaluelist" and len(values) != 1:
            raise errors.Invalid.at(pointer(code), "one value", "Chỉ một giá trị.")
        out[code] = values if a["datatype"] == "multivaluelist" else values[0]
    for code, a in defs.items():
        if a["required"] and code not in out:
            raise errors.Invalid.at(pointer(code), f"attribute {code!r} is required for service {service['code']}",
                                    f"Thiếu thông tin bắt buộc {code!r}.")
    return out
