"""An export lot linked to its border declaration, read from the border function's HTTP API.

Whose token asks border: **the caller's own**. The link is made by the exporter (an ``enterprise``
token whose tax code is the lot's producer's); market forwards that token, so border applies its
own rule — an enterprise sees only its own declarations — and market learns nothing the exporter
could not read. Market holds no credential of its own that could read any declaration (it would
then have to re-implement border's ownership rule, and any producer could probe other firms'
declarations through it: a confused deputy). What is kept is a snapshot without personal data:
gate, direction, status and the day the truck crossed — the driver, plates and goods stay in border.
A link made before the crossing leaves the lot ``export_pending`` (the declaration may still be
cancelled, refused or lapse) and is completed by border's own events, delivered by the platform to
``/events``: when the truck exits (``vn.langson.border.truck.exited.v1``) each lot linked to that
declaration — by the same exporter — becomes ``exported`` with the day it crossed; when the
declaration ends without crossing (``declaration.cancelled``, ``.refused``, ``.expired``) each goes
back to ``registered``, its link kept in ``export_history``. Each event is applied once (the
runtime's events-seen record), and one for a lot no longer linked to that declaration changes
nothing. Linking again also refreshes the link.
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
    # a lot is exported once its truck has left, not when it is declared: until then it says so
    action = "export" if lots.crossed(link_doc) else "declare_export"

    def op(doc):
        # (an exported lot is not declared again for a crossing still to come: 409)
        t = lots.MACHINE.apply(doc, action, actors.recorded(actor), details={
            "gate": link_doc["gate"], "status": link_doc["status"], "crossed_on": link_doc["crossed_on"]})
        _keep_history(doc, link_doc["declaration"], None, None)
        doc["export"] = link_doc
        return [t]

    from .models import ExportLink

    # the index before the link: border's event for the declaration, however soon it comes, finds
    # the lot (one whose link is refused, or replaced since, is left as it is by the handlers)
    save_quietly(ExportLink(link_doc["declaration"], lot_id))
    return lots.records().mutate(lot_id, op)


def _keep_history(doc: dict, declaration: str, ended: str | None, at: str | None) -> None:
    """The lot's current link into ``export_history`` when it is replaced by another declaration's, or
    ends (``ended``: border's status, ``at``: when): what the lot was declared for stays readable."""
    export = doc.get("export")
    if export and (ended or export.get("declaration") != declaration):
        entry = {**export, "status": ended or export.get("status"), "ended": ended, "ended_at": at}
        doc["export_history"] = [*(doc.get("export_history") or []), entry]


EXITED = "vn.langson.border.truck.exited.v1"
ENDED = {"vn.langson.border.declaration.cancelled.v1": "cancelled",
         "vn.langson.border.declaration.refused.v1": "refused",
         "vn.langson.border.declaration.expired.v1": "expired"}
"""Border's events of a declaration that will not cross: its lots go back to ``registered``."""


def _export_data(event: dict) -> tuple[dict, str | None]:
    """The event's data and its export declaration's id (``None``: not an export's, or no id)."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    declaration = data.get("declaration_id")
    if not isinstance(declaration, str) or not declaration or data.get("direction") != "export":
        return data, None
    return data, declaration


def _linked(doc: dict, declaration: str, data: dict) -> dict:
    """The lot's link to ``declaration`` made by the lot's own producer, else :class:`NoChange`: an
    event never links a lot, nor touches one linked to another declaration since."""
    export = doc.get("export") or {}
    if export.get("declaration") != declaration or data.get("enterprise_tax_code") != doc["producer"]:
        raise NoChange
    return export


def _each_linked_lot(declaration: str, op) -> None:
    from .models import ExportLink

    for link in ExportLink.query(declaration, limit=1000):
        lots.records().mutate(link.lot_id, op)


def on_exited(event: dict) -> None:
    """Border says the truck of a declaration exited: every lot linked to it is exported, with the day."""
    data, declaration = _export_data(event)
    # an instant without its offset, or not a string, has no day here: the event's own time then.
    # ``time`` is OPTIONAL in CloudEvents: with neither, the lot is left as it is, never given the
    # day the event arrived (a redelivery days later would move it); linking again reads the day
    # the truck crossed from border itself
    at = parse_instant(data.get("at")) or parse_instant(event.get("time"))
    if declaration is None or at is None:
        return   # (it raised: five deliveries, then a dead letter, and the lot never recorded the crossing)
    crossed_on = local_day(at)

    def op(doc):
        export = _linked(doc, declaration, data)
        if doc["status"] == "exported" and export.get("crossed_on") == crossed_on and export.get("status") == "exited":
            raise NoChange
        doc["export"] = {**export, "status": "exited", "crossed_on": crossed_on, "checked_at": iso(now())}
        return [lots.MACHINE.apply(doc, "export", lots.MACHINE.system, details={"gate": export.get("gate"),
                                                                               "status": "exited",
                                                                               "crossed_on": crossed_on})]

    _each_linked_lot(declaration, op)


def on_ended(event: dict) -> None:
    """Border says a declaration was cancelled, refused or expired: every lot still waiting on it
    goes back to ``registered`` (the link in its history); a lot whose truck already left keeps its
    crossing (a fact), and one linked elsewhere since is left as it is."""
    data, declaration = _export_data(event)
    if declaration is None:
        return
    ended = ENDED[event["type"]]
    at = parse_instant(data.get("at")) or parse_instant(event.get("time"))

    def op(doc):
        export = _linked(doc, declaration, data)
        if doc["status"] != "export_pending" or lots.crossed(export):
            raise NoChange
        _keep_history(doc, declaration, ended, iso(at) if at else None)
        doc["export"] = None
        # (not border's free-text reason: the exporter wrote it for border, not for the lot's readers)
        return [lots.MACHINE.apply(doc, "withdraw_export", lots.MACHINE.system,
                                   details={"gate": export.get("gate"), "status": ended})]

    _each_linked_lot(declaration, op)
