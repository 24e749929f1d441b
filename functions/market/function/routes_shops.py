"""Shops, their products and photos."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from lscloud import errors, idempotency, images, store
from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor
from lscloud.web import blob_response, body_limit, query_params, raw_body, responds, validate_body
from lscloud.web.caching import cached_json

from . import shops, vietqr

bp = Blueprint("market_shops", __name__)
SHOP_ID = 'schema("market/shop-create.json#/properties/id"):shop_id'
"""A shop's id, as its create names it (:mod:`lscloud.web.pathparams`)."""
PHOTO_MAX_BYTES = 8 * 1024 * 1024
# shops and their products change while shoppers browse: a minute old at most, then revalidated (304)
SHOP_CACHE = "public, max-age=60"


PHOTOS = "market-photos"
# a photo nothing names within two days is deleted (kept for good before)
store.claimed_only(PHOTOS, __name__, renditions=images.RENDITIONS)


def _photos():
    return store.blobs(PHOTOS, max_bytes=PHOTO_MAX_BYTES, allowed_types=images.MEDIA_TYPES)


def _peers():
    return current_app.config["MARKET_PEERS"]


@bp.post("/v1/photos")
@allow("citizen", "enterprise", "producer")
@raw_body(*images.MEDIA_TYPES)
@body_limit(PHOTO_MAX_BYTES)
@responds("market/photo.json", status=201)
@idempotent(required=False)
def upload_photo():
    """A product photo (JPEG or PNG), stored without its metadata (no GPS position)."""
    ref, clean = images.keep(_photos(), request.get_data(cache=True), request.mimetype)
    return jsonify({"sha256": ref.sha256, "size": ref.size, "media_type": ref.media_type,
                    "width": clean.width, "height": clean.height}), 201


@bp.get('/v1/photos/<schema("market/product-create.json#/properties/photos/items"):sha256>')
@allow("public")
@responds(None, binary=images.MEDIA_TYPES, headers={"ETag": "The bytes' sha256 (If-None-Match answers 304)"},
          also={304: "Not modified"})
@query_params(images.SIZE_PARAM)
def photo(sha256: str):
    """A product photo (public, addressed by its content: cached for good). ``?size=display``: its
    rendition for a page on a phone (some 300 KB where a 12 MP original is 2 MB or more)."""
    try:
        return blob_response(*images.sized(_photos(), sha256, g.query["size"]))
    except (store.DoesNotExist, store.InvalidKey):
        raise errors.NotFound("No such photo.", detail_vi="Không có ảnh này.") from None


@bp.post("/v1/shops")
@allow("citizen", "enterprise", "producer")
@validate_body("market/shop-create.json")
# the shop is its own idempotency record: its create-only write opens it once
@idempotent(key_from=lambda body: body.get("id"), in_record=True)
@responds("market/shop.json", status=201)
def open_shop():
    """Open a digital shop; its VietQR code is built from the bank BIN and account number. The same
    request again (same caller, id and body) is answered with the shop it opened; another body
    under that id is a 409 naming the fields that differ (never their values)."""
    who, stamp = Actor.of(principal()), idempotency.first_request()
    out, replayed = idempotency.created_or_resent(
        lambda: shops.open_shop(g.body, who, _peers(), request=stamp),
        lambda judge: shops.resend_open(g.body["id"], who, judge))
    resp = jsonify(shops.public_view(out.doc))
    resp.status_code = 201
    return idempotency.mark_replayed(resp) if replayed else resp


@bp.get("/v1/shops")
@allow("public")
@responds("market/shop-page.json")
@query_params(("commune", "a commune or ward code", {"type": "string", "pattern": "^[0-9]{5}$"}),
              ("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
              ("page_token", "the next page"))
def list_shops():
    """Shops, in id order (``?commune=`` those of one commune)."""
    items, token = shops.listing(g.query["commune"], g.query["limit"], g.query["page_token"])
    return cached_json({"items": items, "total": len(items), "next_page_token": token}, cache_control=SHOP_CACHE)


@bp.get(f"/v1/shops/<{SHOP_ID}>")
@allow("public")
@responds("market/shop.json")
def read_shop(shop_id: str):
    """A shop with its products (the account number masked; the VietQR string is the payable code)."""
    doc = shops.records().visible(shop_id, lambda doc: True).data
    return cached_json(shops.public_view(doc, shops.products(shop_id)), cache_control=SHOP_CACHE)


@bp.get(f"/v1/shops/<{SHOP_ID}>/qr")
@allow("public")
@responds(None, binary=("image/png",))
def shop_qr(shop_id: str):
    """The shop's VietQR payment code as a PNG image (410 once the shop is closed)."""
    return Response(vietqr.png(shops.payment_code(shop_id)), mimetype="image/png",
                    headers={"Cache-Control": "public, max-age=300"})


@bp.post(f"/v1/shops/<{SHOP_ID}>/close")
@allow("citizen", "enterprise", "producer", "operator")
@validate_body("market/shop-close.json", optional=True)
@responds("market/shop.json")
@idempotent()
def close_shop(shop_id: str):
    """Close a shop: its owner, or the market's operators with a reason. It leaves the listings and
    its payment code is withdrawn; its products and the lots' stamps stay."""
    out = shops.close_shop(shop_id, g.body, Actor.of(principal()))
    return jsonify(shops.public_view(out.doc, shops.products(shop_id)))


@bp.post(f"/v1/shops/<{SHOP_ID}>/products")
@allow("citizen", "enterprise", "producer")
@validate_body("market/product-create.json")
@responds("market/product.json", status=201)
# the product is its own idempotency record: its create-only write adds it once
@idempotent(key_from=lambda body: body.get("id"), in_record=True)
def add_product(shop_id: str):
    """A product of the caller's own shop (category, OCOP stars, price, photos). The same request
    again (same caller, id and body) is answered with the product it added; another body under that
    id is a 409 naming the fields that differ (never their values)."""
    who, stamp, photos = Actor.of(principal()), idempotency.first_request(), _photos()
    doc, replayed = idempotency.created_or_resent(
        lambda: shops.add_product(shop_id, g.body, who, photos.claim, request=stamp),
        lambda judge: shops.resend_product(shop_id, g.body["id"], judge))
    resp = jsonify(doc)
    resp.status_code = 201
    return idempotency.mark_replayed(resp) if replayed else resp
