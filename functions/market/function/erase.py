"""An erasure request's part in the market: ``erase(runtime, subject) -> report`` (:mod:`lscloud.erasure`;
run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

A person is in the market as a household's shop owner (a citizen: their CCCD) and as a producer
whose tax code is their CCCD (a household business since 1 July 2025). Both are found through the
owner indexes, keyed by the pseudonym (:class:`.models.ShopByOwner`, :class:`.models.LotByProducer`):
listings, then each shop read once (a closed one written once).

What this does:

- ERASED, from each of the person's CLOSED shops: the payee's account number and name (a household
  shop's payee is its owner: the only name of the owner a shop holds; the owner itself is a
  pseudonym) and the VietQR string that carries the account. A closed shop is paid by no one and
  shows none of them (:func:`.shops.public_view`), so nobody needs them any more. One conditional
  write through the shop's aggregate, and an audit entry naming the fields, never their values,
  keyed by that write's time: a second request finds the shop erased, writes nothing and adds no
  entry;
- ERASED: the answers the function kept a day for a client's retry that hold the person's CCCD or
  their shops' account numbers (:func:`lscloud.erasure.forget_answers`): a copy nobody needs;
- KEPT, a closed shop's page (name, commune, description, products) under the owner's pseudonym, and
  the bank's name: no payment data is left in it, and the index that found it lets a request
  made again find it;
- KEPT, an OPEN shop, whole: public by its owner's choice, its account number is what buyers pay into
  (its VietQR code). The report tells the person that closing it (``POST /v1/shops/{id}/close``) lets
  the request made again erase those;
- KEPT, the lots: the traceability record that the stamps on products already sold point to, which
  buyers and inspectors scan.

A phone number or an e-mail address is held by no field of a shop or a lot (one written into a
description would take reading every shop to find).
"""

from __future__ import annotations

from lscloud import erasure
from lscloud.aggregate import NoChange
from lscloud.statemachine import Actor, iso, now, parse_iso
from lscloud.store import DoesNotExist, InvalidKey

from . import actors, shops as shop_records
from .models import LotByProducer, Shop, ShopByOwner

LIMIT = 500
"""Shops and lots listed at most each (one person's: a few); the report says when there were more."""
KEPT_LAW = erasure.TO_CONFIRM
NO_SCAN_VI, NO_SCAN = "không tìm được nếu không đọc toàn bộ cửa hàng", "cannot be found without a full scan"
PAYMENT_FIELDS = ("account_number", "account_name")
"""What of a closed shop's ``payment`` goes (its bank stays: it names no one)."""
ACTION = "erase_personal_data"


def _held(doc: dict) -> list[str]:
    """The personal fields a shop's document still holds (names, never values)."""
    pay = doc.get("payment") or {}
    return [f"payment.{k}" for k in PAYMENT_FIELDS if pay.get(k)] + (["vietqr"] if doc.get("vietqr") else [])


def _erase_closed(item: Shop, actor: Actor, request: str) -> str:
    """Erase a closed shop's payment data: ``erased`` by this call, or ``already`` (by an earlier request)."""
    agg = shop_records.records()
    at = iso(now())

    def op(doc: dict):
        held = _held(doc)
        if not held:
            raise NoChange()
        doc["payment"] = {k: v for k, v in (doc.get("payment") or {}).items() if k not in PAYMENT_FIELDS}
        doc["vietqr"] = None
        doc["erased"] = {"at": at, "fields": held}
        return [], "erased"

    # closing is final, so the copy just read decides (its ETag still guards the write)
    out = agg.mutate(item.id, op, item=item) if _held(item.data) else None
    done = out.item if out is not None else item
    erased = done.data.get("erased")
    if erased:
        # keyed by the erasing write's time and version: a request made again (or one finishing an
        # entry a failure cut off) writes the same entry, never a second one
        agg.audit_only(done, ACTION, actor, at=parse_iso(erased["at"]), details={
            "fields": erased["fields"], "request": request or None},
            reason="yêu cầu xóa dữ liệu cá nhân / a personal data erasure request")
    return "erased" if out is not None and out.result == "erased" else "already"


def erase(runtime, subject: erasure.Subject) -> dict:
    """Erase the payment data of the subject's closed shops and the stored answers that hold the
    subject; count their open shops and lots and say why they stay."""
    if subject.kind != "cccd":
        return {"found": 0, "erased": [], "kept": [{
            "what": "số điện thoại, thư điện tử ghi trong mô tả cửa hàng, sản phẩm / a phone number or e-mail address "
                    "written in a shop's or a product's description",
            "why": f"cửa hàng, lô hàng chỉ được tìm theo số định danh, mã số thuế của chủ: {NO_SCAN_VI} / shops and "
                   f"lots are found by their owner's ID number or tax code only: these {NO_SCAN}",
            "law": KEPT_LAW}]}
    shops = ShopByOwner.query_keys(subject.pseudonym(ShopByOwner.Meta.table, "{value}"), limit=LIMIT + 1)
    lots = LotByProducer.query_keys(subject.pseudonym(LotByProducer.Meta.table, "{value}"), limit=LIMIT + 1)
    more = len(shops) > LIMIT or len(lots) > LIMIT
    shops, lots = shops[:LIMIT], lots[:LIMIT]
    actor = actors.recorded(Actor("operator", subject.operator or None))
    counts = {"erased": 0, "already": 0, "open": 0}
    accounts: set[str] = set()
    for shop_id in shops:
        try:
            item = Shop.get(shop_id)
        except (DoesNotExist, InvalidKey):
            continue   # an index entry of an open that never finished
        # read before a closed shop's goes: the answers stored for a retry hold it in their VietQR code
        accounts.add(((item.data.get("payment") or {}).get("account_number") or "").strip())
        if shop_records.closed(item.data):
            counts[_erase_closed(item, actor, subject.request)] += 1
        else:
            counts["open"] += 1
    forgot = erasure.forget_answers(runtime, sorted((set(subject.spellings()) | accounts) - {""}))
    closed = counts["erased"] + counts["already"]
    kept = []
    if counts["open"]:
        kept.append({
            "what": f"{counts['open']} cửa hàng số đang mở: tên, mô tả, sản phẩm, tên và số tài khoản nhận tiền, mã "
                    f"VietQR / {counts['open']} open digital shop(s): name, description, products, the payee's name "
                    "and account number, the VietQR code",
            "why": "cửa hàng đang mở và công khai theo ý chủ cửa hàng; người mua trả tiền vào tài khoản này. Chủ cửa "
                   "hàng đóng cửa hàng (POST /v1/shops/{id}/close) rồi gửi lại yêu cầu thì tên và số tài khoản, mã "
                   "VietQR được xóa / the shop is open and public by its owner's choice, and buyers pay into this "
                   "account. Once the owner closes the shop (POST /v1/shops/{id}/close), this request made again "
                   "erases the payee's name and account number and the VietQR code",
            "law": KEPT_LAW})
    if closed:
        kept.append({
            "what": f"{closed} cửa hàng đã đóng: tên, xã, mô tả, sản phẩm, ngân hàng (không còn tài khoản) / {closed} "
                    "closed shop(s): name, commune, description, products, the bank (no account any more)",
            "why": "trang cửa hàng cho người mua biết cửa hàng đã đóng; chủ cửa hàng chỉ được ghi bằng bí danh / the "
                   "shop's page tells buyers it has closed; its owner is held only by a pseudonym",
            "law": KEPT_LAW})
    if lots:
        kept.append({
            "what": f"{len(lots)} lô hàng truy xuất nguồn gốc: mã số thuế và tên nhà sản xuất, nơi sản xuất, ngày thu "
                    f"hoạch, chứng nhận / {len(lots)} traceable lot(s): the producer's tax code and name, origin, "
                    "harvest date, certificates",
            "why": "tem truy xuất trên sản phẩm đã bán dẫn về lô hàng; người mua và cơ quan kiểm tra quét tem / the "
                   "traceability stamps on products already sold point to the lot, which buyers and inspectors scan",
            "law": KEPT_LAW})
    if more:
        kept.append(erasure.beyond(LIMIT, "cửa hàng, lô hàng", "shops and lots"))
    erased = [
        {"what": "cửa hàng đã đóng: tên và số tài khoản nhận tiền, mã VietQR / closed shops: the payee's name and "
                 "account number, the VietQR code", "count": counts["erased"]},
        {"what": "câu trả lời lưu để gửi lại (idempotency) có số định danh hoặc số tài khoản / answers stored for a "
                 "client's retry that hold the ID number or an account number", "count": forgot}]
    if counts["already"]:
        erased.append({"what": "cửa hàng đã đóng, đã được xóa trước đó / closed shops already erased before",
                       "count": counts["already"]})
    return {"found": counts["open"] + closed + len(lots), "erased": erased, "kept": kept}
