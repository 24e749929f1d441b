"""Digital shops (cửa hàng số) of households, cooperatives and firms, with their products and the
VietQR code any Vietnamese banking app pays.

A household's shop is opened by its owner signed in as a citizen; a cooperative's or a firm's by
the business (an ``enterprise`` or ``producer`` token: its tax code). The account number is in the
shop's document and, unavoidably, in its payment QR; the public view masks it everywhere else.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from lscloud import communes, errors, peers
from lscloud.aggregate import Aggregate, save_quietly
from lscloud.statemachine import Action, Actor, StateMachine, iso, now

from . import actors, vietqr

MACHINE = StateMachine("market", [
    Action("open", {"new"}, "open", "shop.opened", actors={"citizen", "enterprise", "producer"}),
], states=("open",), noun=("shop", "cửa hàng"), state_names_vi={"open": "đang mở"})

KIND_ROLES = {"household": {"citizen"}, "cooperative": {"enterprise", "producer"}, "firm": {"enterprise", "producer"}}
PRODUCTS_PER_SHOP = 500


@lru_cache(maxsize=1)
def catalogue() -> dict:
    return yaml.safe_load((Path(__file__).parent / "data" / "ocop.yaml").read_text(encoding="utf-8"))


def records() -> Aggregate:
    from .models import Shop, ShopAudit

    return Aggregate(Shop, machine=MACHINE, source="/market", audit=ShopAudit, mirror=("commune",), event_ids="shop:",
                     summary=lambda doc: {"shop_id": doc["id"], "kind": doc["kind"], "commune": doc["commune"]})


def open_shop(body: dict, actor: Actor, directory: peers.PeerClient):
    from .models import Shop, ShopByCommune, ShopByOwner

    if actor.kind not in KIND_ROLES[body["kind"]]:
        raise errors.Invalid.at("/kind", f"a {actor.kind} cannot open a {body['kind']} shop "
                                f"(households sign in as citizens; cooperatives and firms with their tax code)",
                                "Loại cửa hàng không phù hợp với tài khoản.")
    pay = body["payment"]
    qr = vietqr.payload(pay["bank_bin"], pay["account_number"], body["name"])
    bank = vietqr.bank(pay["bank_bin"], "/payment/bank_bin")
    commune = communes.commune(directory, body["commune"], "/commune")
    doc = {"id": body["id"], "name": body["name"], "kind": body["kind"], "owner": actors.owner_ref(actor.sub),
           "commune": commune["code"], "commune_name": commune["name"], "village": body.get("village"),
           "description": body.get("description"),
           "payment": {"bank_bin": bank["bin"], "bank": bank["short_name"], "account_number": pay["account_number"],
                       "account_name": pay["account_name"]},
           "vietqr": qr, "products": 0, "status": "new", "created_at": iso(now())}
    t = MACHINE.apply(doc, "open", actors.recorded(actor))
    out = records().create(Shop(doc["id"], data=doc, commune=doc["commune"]), [t])
    save_quietly(ShopByOwner(actor.sub, doc["id"]))
    save_quietly(ShopByCommune(doc["commune"], doc["id"]))
    return out


def owned(doc: dict, actor: Actor) -> bool:
    return actor.sub is not None and doc["owner"] == actors.owner_ref(actor.sub) and actor.kind in KIND_ROLES[doc["kind"]]


def masked(account: str) -> str:
    return "•" * max(0, len(account) - 4) + account[-4:]


def public_view(doc: dict, products: list[dict] | None = None) -> dict:
    out = {k: doc.get(k) for k in ("id", "name", "kind", "commune", "commune_name", "village", "description",
                                   "status", "created_at", "products", "vietqr")}
    pay = doc["payment"]
    out["payment"] = {"bank_bin": pay["bank_bin"], "bank": pay["bank"], "account_name": pay["account_name"],
                      "account_number": masked(pay["account_number"])}
    if products is not None:
        out["product_list"] = products
    return out


def add_product(shop_id: str, body: dict, actor: Actor, claim_photo) -> dict:
    from .models import Product

    shop = records().visible(shop_id, lambda doc: owned(doc, actor))
    if shop.data.get("products", 0) >= PRODUCTS_PER_SHOP:
        raise errors.Conflict(f"a shop holds at most {PRODUCTS_PER_SHOP} products",
                              detail_vi=f"Mỗi cửa hàng có tối đa {PRODUCTS_PER_SHOP} sản phẩm.")
    cat = catalogue()
    if body["category"] not in cat["categories"]:
        raise errors.Invalid.at("/category", f"one of {', '.join(cat['categories'])}", "Nhóm sản phẩm không hợp lệ.")
    stars = body.get("ocop_stars")
    if stars is not None and (stars not in cat["ocop_stars"] or body["category"] == "khac"):
        raise errors.Invalid.at("/ocop_stars", "OCOP stars are 3, 4 or 5, for a product of an OCOP group",
                                "Sản phẩm OCOP được công nhận 3, 4 hoặc 5 sao.")
    for i, sha in enumerate(body.get("photos", [])):
        if not claim_photo(sha):
            raise errors.Invalid.at(f"/photos/{i}", "no photo with this sha256 was uploaded", "Chưa tải ảnh này lên.")
    doc = {**body, "shop_id": shop_id, "commune": shop.data["commune"], "created_at": iso(now())}
    if not save_quietly(Product(shop_id, body["id"], data=doc)):
        existing = Product.get(shop_id, body["id"]).data
        if {k: existing.get(k) for k in body} != body:
            raise errors.Conflict("A product with this id already exists with other details.",
                                  detail_vi="Đã có sản phẩm với mã này.", errors=[errors.field("/id", "already used")])
        return existing

    def count(d):
        d["products"] = d.get("products", 0) + 1
        return [], True

    records().mutate(shop_id, count)
    return doc


def products(shop_id: str, limit: int = 100) -> list[dict]:
    from .models import Product

    return [p.data for p in Product.query(shop_id, limit=limit)]


def listing(commune: str | None, limit: int, page_token: str | None) -> tuple[list[dict], str | None]:
    """Shops in id order, all or one commune's (through its index)."""
    from .models import Shop, ShopByCommune

    if commune is None:
        page = Shop.scan(limit=limit, page_token=page_token)
        return [public_view(s.data) for s in page], page.page_token
    page = ShopByCommune.query(commune, limit=limit, page_token=page_token)
    out = []
    for row in page:
        try:
            out.append(public_view(Shop.get(row.shop_id).data))
        except Shop.DoesNotExist:
            continue     # the index is written after the shop: never ahead of it, except a crash between
    return out, page.page_token
