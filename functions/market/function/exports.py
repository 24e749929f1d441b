"""An export lot linked to its border declaration, read from the border function's HTTP API.

Whose token asks border: **the caller's own**. The link is made by the exporter (an ``enterprise``
token whose tax code is the lot's producer's); market forwards that token, so border applies its
own rule — an enterprise sees only its own declarations — and market learns nothing the exporter
could not read. Market holds no credential of its own that could read any declaration (it would
then have to re-implement border's ownership rule, and any producer could probe other firms'
declarations through it: a confused deputy). What is kept is a snapshot without personal data:
gate, direction, status and the day the truck crossed — the driver, plates and goods stay in border.
A link made before the crossing is completed by border's own event: when the truck exits
(``vn.langson.border.truck.exited.v1``, delivered by the platform to ``/events``), each lot linked to
that declaration — by the same exporter — records the day it crossed. Linking again also refreshes it.
"""

from __future__ import annotations

from datetime import datetime

from lscloud import errors, peers
from lscloud.aggregate import NoChange, save_quietly
from lscloud.statemachine import Actor, iso, now
from lscloud.timestamps import parse_instant
from lscloud.workdays import local_day

from . import actors, lots

# a declaration in one of these states crosses no more: its Vietnamese name as border's lifecycle gives it
DEAD = {"cancelled": "đã hủy", "refused": "bị từ chối", "expired": "đã hết hiệu lực"}


def _local_day(stamp: str | None) -> str | None:
    return local_day(stamp) if stamp else None


def snapshot(decl: dict, gate_name: str, at: datetime) -> dict:
    """What the lot keeps of a declaration (and a scan shows)."""
    stamps = decl.get("timestamps") or {}
    return {"declaration": decl["id"], "gate": decl["gate"], "gate_name": gate_name, "status": decl["status"],
            "declared_on": _local_day(stamps.get("submitted") or stamps.get("draft")),
            "crossed_on": _local_day(stamps.get("exited")), "checked_at": iso(at)}


def _declaration(border: peers.PeerClient, declaration_id: str, authorization: str) -> dict:
    where = "/declaration"
    try:
        return border.get_json("border", peers.path("/v1/declarations", declaration_id), authorization=authorization)
    except peers.PeerNotFound:
        raise errors.Invalid.at(where, "border knows no declaration of yours with this id",
                                "Cửa khẩu số không có tờ khai nào của doanh nghiệp với mã này.") from None
    except peers.PeerForbidden:
        raise errors.Forbidden("The border function refused your token for this declaration.",
                               detail_vi="Cửa khẩu số từ chối quyền xem tờ khai này.") from None
    except peers.PeerUnavailable:
        raise errors.Unavailable("The border function does not answer; try again shortly.",
                                 detail_vi="Cửa khẩu số tạm thời không phản hồi.") from None


def _gate_name(directory: peers.PeerClient, code: str) -> str:
    try:
        return directory.get_json("directory", peers.path("/v1/border-gates", code)).get("name") or code
    except peers.PeerError:
        return code      # the name is for people; the code is what was declared


def link(lot_id: str, declaration_id: str, actor: Actor, authorization: str, border: peers.PeerClient,
         directory: peers.PeerClient):
    """Link the caller's lot to the caller's export declaration (its state as border tells it now)."""
    lots.records().visible(lot_id, lambda doc: lots.owned_by(doc, actor))
    decl = _declaration(border, declaration_id, authorization)
    if decl.get("direction") != "export":
        raise errors.Invalid.at("/declaration", "this declaration is not an export", "Tờ khai không phải tờ khai xuất khẩu.")
    if decl.get("status") in DEAD:
        raise errors.Invalid.at("/declaration", f"the declaration is {decl['status']}",
                                f"Tờ khai {DEAD[decl['status']]}, không liên kết được với lô hàng.")
    link_doc = snapshot(decl, _gate_name(directory, decl["gate"]), now())

    def op(doc):
        doc["export"] = link_doc
        return [lots.MACHINE.apply(doc, "export", actors.recorded(actor), details={"gate": link_doc["gate"], "status": link_doc["status"],
                                                                  "crossed_on": link_doc["crossed_on"]})]

    out = lots.records().mutate(lot_id, op)
    from .models import ExportLink

    save_quietly(ExportLink(link_doc["declaration"], lot_id))
    return out


EXITED = "vn.langson.border.truck.exited.v1"


def on_exited(event: dict) -> None:
    """Border says the truck of a declaration exited: every lot linked to it records the crossing."""
    from .models import ExportLink

    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    declaration = data.get("declaration_id")
    # an instant without its offset, or not a string, has no day here: the event's own time then.
    # ``time`` is OPTIONAL in CloudEvents: with neither, the lot is left as it is, never given the
    # day the event arrived (a redelivery days later would move it); linking again reads the day
    # the truck crossed from border itself
    at = parse_instant(data.get("at")) or parse_instant(event.get("time"))
    if not isinstance(declaration, str) or not declaration or at is None or data.get("direction") != "export":
        return   # (it raised: five deliveries, then a dead letter, and the lot never recorded the crossing)
    crossed_on = local_day(at)

    def op(doc):
        export = doc.get("export") or {}
        # the same declaration, exported by the lot's own producer: an event never links a lot
        if export.get("declaration") != declaration or data.get("enterprise_tax_code") != doc["producer"]:
            raise NoChange
        if export.get("crossed_on") == crossed_on and export.get("status") == "exited":
            raise NoChange
        doc["export"] = {**export, "status": "exited", "crossed_on": crossed_on, "checked_at": iso(now())}
        return [lots.MACHINE.apply(doc, "export", lots.MACHINE.system, details={"gate": export.get("gate"),
                                                                               "status": "exited",
                                                                               "crossed_on": crossed_on})]

    for link in ExportLink.query(declaration, limit=1000):
        lots.records().mutate(link.lot_id, op)
