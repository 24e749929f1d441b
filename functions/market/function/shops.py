"""Digital shops (cửa hàng số) of households, cooperatives and firms, with their products and the
VietQR code any Vietnamese banking app pays.

A household's shop is opened by its owner signed in as a citizen; a cooperative's or a firm's by
the business (an ``enterprise`` or ``producer`` token: its tax code). The account number is in the
shop's document and, unavoidably, in its payment QR; the public view masks it everywhere else.

A shop is closed by its owner, or by the market's operators with a reason (one selling counterfeit
goods). A closed shop leaves the listings (its commune's index entry is deleted: listing stays one
read per shop shown), takes no products, and its page shows it closed without its payment code or
account, so no buyer pays into it; its products stay readable. Closing is final (there is no
reopening: the owner opens a new shop), and it is what lets an erasure request take the payment
data out of the shop (:mod:`.erase`). Closing a closed shop is the state machine's 409
``illegal-transition``, as border's cancel and reports' close are; a retry under the same
``Idempotency-Key`` gets the first answer again.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from lscloud import communes, errors, peers
from lscloud.aggregate import Aggregate, NoChange, Outcome, delete_quietly, save_quietly
from lscloud.statemachine import Action, Actor, IllegalTransition, StateMachine, iso, now
from lscloud.store import InvalidKey

from . import actors, vietqr

MACHINE = StateMachine("market", [
    Action("open", {"new"}, "open", "shop.opened", actors={"citizen", "enterprise", "producer"}),
    # the owner's scope (owned) is checked before the machine sees the move
    Action("close", {"open"}, "closed", "shop.closed", actors={"citizen", "enterprise", "producer", "operator"}),
], states=("open", "closed"), terminal={"closed"}, noun=("shop", "cửa hàng"),
    state_names_vi={"open": "đang mở", "closed": "đã đóng"})

KIND_ROLES = {"household": {"citizen"}, "cooperative": {"enterprise", "producer"}, "firm": {"enterprise", "producer"}}
PRODUCTS_PER_SHOP = 500


class ShopClosed(errors.Conflict):
    type = "shop-closed"
    title, title_vi = "Shop closed", "Cửa hàng đã đóng"


class PaymentWithdrawn(errors.Gone):
    """A closed shop's payment code: gone for good (410), so a buyer's app stops showing it."""

    type = "shop-closed"
    title, title_vi = "Shop closed", "Cửa hàng đã đóng"


@lru_cache(maxsize=1)
def catalogue() -> dict:
    return yaml.safe_load((Path(__file__).parent / "data" / "ocop.yaml").read_text(encoding="utf-8"))


def opened_side(doc: dict) -> list:
    """The entry that lists a new shop among its commune's (written with its open's round)."""
    from .models import ShopByCommune

    return [ShopByCommune(doc["commune"], doc["id"])]


def records() -> Aggregate:
    from .models import Shop, ShopAudit

    return Aggregate(Shop, machine=MACHINE, source="/market", audit=ShopAudit, mirror=("commune",), event_ids="shop:",
                     created_side=opened_side,
                     summary=lambda doc: {"shop_id": doc["id"], "kind": doc["kind"], "commune": doc["commune"]})


def open_shop(body: dict, actor: Actor, directory: peers.PeerClient, request: dict | None = None):
    """Open a shop. It is its own idempotency record: ``request`` is what it keeps of the request
    (:func:`lscloud.idempotency.first_request`), so a resend finds it (:func:`resend_open`)."""
    from .models import Shop, ShopByOwner

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
    out = records().create(Shop(doc["id"], data=doc, commune=doc["commune"], request=request), [t])
    save_quietly(ShopByOwner(actor.sub, doc["id"]))
    return out


def resend_open(shop_id: str, actor: Actor, judge) -> Outcome | None:
    """The shop a refused open is the resend of, or None (:meth:`lscloud.aggregate.Aggregate.resend`:
    its audit entry, commune index and event finished should a crash have cut them off; its owner's
    index, keyed by the caller the document keeps only a pseudonym of, is written here)."""
    from .models import ShopByOwner

    out = records().resend(shop_id, judge)
    if out is not None:
        save_quietly(ShopByOwner(actor.sub, shop_id))
    return out


def owned(doc: dict, actor: Actor) -> bool:
    return actor.sub is not None and doc["owner"] == actors.owner_ref(actor.sub) and actor.kind in KIND_ROLES[doc["kind"]]


def closed(doc: dict) -> bool:
    return doc.get("status") == "closed"


def close_shop(shop_id: str, body: dict, actor: Actor) -> Outcome:
    """Close a shop: its owner, or an operator with a reason. Its commune's index entry goes after
    the write; a repeat (409, the shop is closed) deletes it again, should a process have died between."""
    from .models import ShopByCommune

    reason = (body.get("reason") or "").strip() or None
    if actor.kind == "operator" and reason is None:
        # the owner and any later review learn why their shop was taken down
        raise errors.Invalid.at("/reason", "an operator closes a shop with a reason (kept in its audit trail)",
                                "Cán bộ vận hành đóng cửa hàng phải nêu lý do (lưu trong nhật ký).")
    shop = records().visible(shop_id, lambda doc: actor.kind == "operator" or owned(doc, actor))

    def op(doc: dict):
        t = MACHINE.apply(doc, "close", actors.recorded(actor), reason=reason)
        doc["closed_by"] = "operator" if actor.kind == "operator" else "owner"
        return [t]

    try:
        out = records().mutate(shop_id, op, item=shop)
    except IllegalTransition:
        if closed(shop.data):
            delete_quietly(ShopByCommune, shop.data["commune"], shop_id)
        raise
    delete_quietly(ShopByCommune, out.doc["commune"], shop_id)
    return out


def masked(account: str) -> str:
    return "•" * max(0, len(account) - 4) + account[-4:]


def public_view(doc: dict, products: list[dict] | None = None) -> dict:
    out = {k: doc.get(k) for k in ("id", "name", "kind", "commune", "commune_name", "village", "description",
                                   "status", "created_at", "products", "vietqr")}
    if closed(doc):
        # nothing a buyer could pay into, whether or not an erasure has taken the account out yet
        out.update(vietqr=None, payment=None, closed_at=(doc.get("timestamps") or {}).get("closed"),
                   closed_by=doc.get("closed_by"))
    else:
        pay = doc["payment"]
        out["payment"] = {"bank_bin": pay["bank_bin"], "bank": pay["bank"], "account_name": pay["account_name"],
                          "account_number": masked(pay["account_number"])}
    if products is not None:
        out["product_list"] = products
    return out


def payment_code(shop_id: str) -> str:
    """The VietQR string a buyer pays by; 410 once the shop is closed."""
    doc = records().visible(shop_id, lambda doc: True).data
    if closed(doc):
        raise PaymentWithdrawn("This shop is closed: its payment code is withdrawn. Do not pay into it.",
                               detail_vi="Cửa hàng đã đóng: mã thanh toán đã bị thu hồi. Đừng chuyển tiền vào "
                                         "cửa hàng này.")
    return doc["vietqr"]


def add_product(shop_id: str, body: dict, actor: Actor, claim_photo, request: dict | None = None) -> dict:
    """Add a product to the caller's own shop. The product is its own idempotency record:
    ``request`` is what it keeps of the request (:func:`lscloud.idempotency.first_request`), so a
    create that finds its id taken is judged against it (:func:`resend_product`)."""
    from .models import Product

    shop = records().visible(shop_id, lambda doc: owned(doc, actor))
    if closed(shop.data):
        raise ShopClosed("This shop is closed: it takes no new products.",
                         detail_vi="Cửa hàng đã đóng: không thêm sản phẩm được.", current_state="closed")
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
    if not save_quietly(Product(shop_id, body["id"], data=doc, request=request)):
        raise errors.Conflict("a product with this id already exists in this shop",
                              detail_vi="Cửa hàng đã có sản phẩm với mã này.")
    _count(shop_id, shop)
    return doc


def resend_product(shop_id: str, product_id: str, judge) -> dict | None:
    """The product a refused add is the resend of, or None (none there, or ``judge(request)`` —
    :func:`lscloud.idempotency.resent` — says it is not this request's). Its shop's count is
    finished, should the add have been cut off before it."""
    from .models import Product

    try:
        item = Product.get(shop_id, product_id)
    except (Product.DoesNotExist, InvalidKey):
        return None
    if not judge(item.request):
        return None
    _count(shop_id)
    return item.data


def _count(shop_id: str, shop=None) -> None:
    """Set the shop's product count to how many products it holds, counted from their listing (one
    LIST, no item read): an add cut off before its count, or its resend run twice, leaves nothing
    to remember. Counted inside the write, so a concurrent add's count, which its If-Match orders
    before or after this one, never stands on a listing older than the version it replaces
    (products are never deleted). ``shop``: the shop as just read, to save a read."""
    from .models import Product

    def count(d):
        held = Product.count(shop_id)
        if d.get("products") == held and "product_ids" not in d:
            raise NoChange
        d["products"] = held
        d.pop("product_ids", None)   # the counted ids a shop kept before: the listing tells
        return [], True

    records().mutate(shop_id, count, item=shop)


def products(shop_id: str, limit: int = 100) -> list[dict]:
    from .models import Product

    return [p.data for p in Product.query(shop_id, limit=limit)]


def listing(commune: str | None, limit: int, page_token: str | None) -> tuple[list[dict], str | None]:
    """Open shops in id order, all or one commune's (through its index, which a closed shop leaves).
    A page may hold fewer than ``limit``: the closed ones of the page it read are left out."""
    from .models import Shop, ShopByCommune

    if commune is None:
        page = Shop.scan(limit=limit, page_token=page_token)
        return [public_view(s.data) for s in page if not closed(s.data)], page.page_token
    page = ShopByCommune.query(commune, limit=limit, page_token=page_token)
    out = []
    for row in page:
        try:
            doc = Shop.get(row.shop_id).data
        except Shop.DoesNotExist:
            continue     # the index is written after the shop: never ahead of it, except a crash between
        if not closed(doc):     # an entry a close cut off before deleting it
            out.append(public_view(doc))
    return out, page.page_token
