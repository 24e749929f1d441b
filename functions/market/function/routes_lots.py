"""Lots, their stamp batches (codes and printable sheets) and their link to a border declaration."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from lscloud import idempotency, resends
from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor
from lscloud.web import public_path, query_params, responds, validate_body

from . import exports, lots, stamps

bp = Blueprint("market_lots", __name__)
LOT_ID = 'schema("market/lot-create.json#/properties/id"):lot_id'
"""A lot's id, as its create names it (or as it was given one: ``lot-`` and 20 hex digits) (:mod:`lscloud.web.pathparams`)."""
BATCH_ID = 'schema("market/batch-id.json"):batch_id'
"""A stamp batch's id, as the function issues it (:func:`.stampcode.batch_id`); another shape is no batch."""


def _cfg():
    return current_app.config["MARKET"]


def _batch_view(batch, lot_id: str, codes: list[str] | None) -> dict:
    base = public_path(f"/v1/lots/{lot_id}/stamps/{batch.batch}")   # as the caller addresses this function
    out = {"batch": batch.batch, "lot": lot_id, "count": int(batch.stamps), "first_serial": 0,
           "last_serial": int(batch.stamps) - 1, "key_index": int(batch.key_index), "issued_at": batch.issued_at,
           "scan_url": _cfg().scan_url, "codes_url": base + "/codes", "sheet_url": base + "/sheet"}
    if codes is not None:
        out["codes"] = codes
    return out


@bp.post("/v1/lots")
@allow("producer")
@validate_body("market/lot-create.json")
# the lot is its own idempotency record: its create-only write runs the register once; without an id
# in the body the Idempotency-Key names it (its id derives from the request's stamp: lots.lot_id)
@idempotent(key_from=lambda body: body.get("id"), in_record=True, header_too=True)
@responds("market/lot.json", status=201)
def register_lot():
    """Register a lot: product, unit, harvest or production date, origin commune and plot,
    certificates, packing (an optional client-chosen ``id``, else an Idempotency-Key). The same
    request again (same caller, same id or key, same body) is answered with the lot it registered."""
    who, peers = Actor.of(principal()), current_app.config["MARKET_PEERS"]
    stamp = idempotency.first_request()
    # refused (the lot there already): a resend still gets the first answer (its audit entry,
    # producer's index and event finished if a crash cut them off), another body under a stored
    # id or key the 409 naming its fields
    out, replayed = idempotency.created_or_resent(
        lambda: lots.register(g.body, who, peers, request=stamp),
        lambda judge: lots.records().resend(lots.lot_id(g.body, stamp), judge))
    resp = jsonify(out.doc)
    resp.status_code = 201
    return idempotency.mark_replayed(resp) if replayed else resp


@bp.get("/v1/lots")
@allow("producer")
@responds("market/lot.json", page=True)
@query_params(("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
              ("page_token", "the next page"))
def my_lots():
    """The calling producer's lots."""
    ids, token = lots.mine(Actor.of(principal()), g.query["limit"], g.query["page_token"])
    agg = lots.records()
    items = [agg.get(i).data for i in ids]
    return jsonify({"items": items, "total": len(items), "next_page_token": token})


@bp.get(f"/v1/lots/<{LOT_ID}>")
@allow("producer", "enterprise", "operator", "auditor")
@responds("market/lot.json")
def read_lot(lot_id: str):
    """A lot with its batches and export link (producers and exporters their own)."""
    actor = Actor.of(principal())
    return jsonify(lots.records().visible(lot_id, lambda doc: lots.visible(doc, actor)).data)


@bp.post(f"/v1/lots/<{LOT_ID}>/stamps")
@allow("producer")
@validate_body("market/stamps-issue.json")
@idempotent()
@responds("market/stamp-batch.json", status=201)
def issue_stamps(lot_id: str):
    """Issue a batch of signed QR stamps: the codes (inline up to ``MARKET_INLINE_CODES``), their
    file and the printable sheet."""
    cfg, keys = _cfg(), current_app.config["MARKET_KEYS"]
    # the request's idempotency identity (where @idempotent keeps its record): the batch's id
    # derives from it, so a retry after a first run cut off part-way finds that batch
    key = request.headers[idempotency.HEADER].strip()
    identity = idempotency.first_request()["scope"]
    try:
        batch, _, inline = stamps.issue(lot_id, g.body["count"], Actor.of(principal()), keys, cfg.max_batch, identity,
                                        inline=cfg.inline_codes)
    except resends.IdReused as exc:     # another count under the key of a cut-off first run
        raise resends.IdReused(exc.fields, key=key).problem(header=idempotency.HEADER) from None
    return jsonify(_batch_view(batch, lot_id, inline)), 201


@bp.get(f"/v1/lots/<{LOT_ID}>/stamps/<{BATCH_ID}>/codes")
@allow("producer")
@responds(None, binary=("text/plain",), headers={"Content-Disposition": 'attachment; filename="stamps-<batch>.txt"'})
def batch_codes(lot_id: str, batch_id: str):
    """Every code of a batch, one per line (text/plain), for a printer's own layout: the codes kept
    when the batch was issued, the same bytes at every download."""
    batch = stamps.batch_of(lot_id, batch_id, Actor.of(principal()))
    length, body = stamps.code_file(batch, current_app.config["MARKET_KEYS"])
    # streamed part by part; the length is known, so a body cut short is one its client can tell
    return Response(body, mimetype="text/plain", headers={
        "Content-Length": str(length), "Content-Disposition": f'attachment; filename="stamps-{batch.batch}.txt"'})


@bp.get(f"/v1/lots/<{LOT_ID}>/stamps/<{BATCH_ID}>/sheet")
@allow("producer")
@responds(None, binary=("application/pdf",),
          headers={"Content-Disposition": 'attachment; filename="stamps-<batch>-<from>.pdf"'})
@query_params(("from", "the first serial on the sheet", {"type": "integer", "minimum": 0, "default": 0}),
              ("count", "stamps on the sheet (at most MARKET_SHEET_MAX)", {"type": "integer", "minimum": 1}))
def batch_sheet(lot_id: str, batch_id: str):
    """A printable PDF of the batch's stamps (24 per A4 page), ``?from=&count=`` for large batches."""
    from lscloud import errors

    # here, not at the top: only a producer printing stamps needs reportlab, which every replica's
    # start paid for (about 25 ms of the market's cold start, 2 MB of its memory)
    from . import sheet

    cfg, keys = _cfg(), current_app.config["MARKET_KEYS"]
    batch = stamps.batch_of(lot_id, batch_id, Actor.of(principal()))
    first = g.query["from"]
    if first >= int(batch.stamps):
        raise errors.Invalid.at("from", f"the batch has serials 0-{int(batch.stamps) - 1}",
                                f"Lô tem này chỉ có số sê-ri từ 0 đến {int(batch.stamps) - 1}.")
    count = min(g.query["count"] or cfg.sheet_max, cfg.sheet_max)
    lot = lots.records().get(lot_id).data
    pdf = sheet.render(codes=stamps.codes(batch, keys, first, count), first_serial=first, scan_url=cfg.scan_url,
                       product=lot["product"], lot_id=lot_id, batch=batch.batch, font_path=cfg.pdf_font)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="stamps-{batch.batch}-{first:06d}.pdf"'})


@bp.post(f"/v1/lots/<{LOT_ID}>/export")
@allow("enterprise")
@validate_body("market/export-link.json")
@idempotent(required=False)
@responds("market/lot.json")
def link_export(lot_id: str):
    """Link the lot to the exporter's border declaration, read from border with the caller's own token."""
    peers = current_app.config["MARKET_PEERS"]
    out = exports.link(lot_id, g.body["declaration"], Actor.of(principal()), request.headers.get("Authorization", ""),
                       peers, peers)
    return jsonify(out.doc)
