"""An erasure request's part in the market: ``erase(runtime, subject) -> report`` (:mod:`lscloud.erasure`;
run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

A person is in the market as a household's shop owner (a citizen: their CCCD) and as a producer
whose tax code is their CCCD (a household business since 1 July 2025). Both are found through the
owner indexes, keyed by the pseudonym (:class:`.models.ShopByOwner`, :class:`.models.LotByProducer`):
listings, then each shop read once for its payment account.

What this does, the conservative way:

- ERASED: the answers the function kept a day for a client's retry that hold the person's CCCD or
  their shops' account numbers (:func:`lscloud.erasure.forget_answers`): a copy nobody needs;
- KEPT, the shops: a shop is open, public by its owner's choice, and its account number is what
  buyers pay into (its VietQR code). Taking the owner's name and account out of a shop that stays
  listed would leave one nobody can pay or manage, and the function has no way yet to close a shop;
- KEPT, the lots: the traceability record that the stamps on products already sold point to, which
  buyers and inspectors scan.

A phone number or an e-mail address is held by no field of a shop or a lot (one written into a
description would take reading every shop to find).
"""

from __future__ import annotations

from lscloud import erasure
from lscloud.store import DoesNotExist

from .models import LotByProducer, Shop, ShopByOwner

LIMIT = 500
"""Shops and lots listed at most each (one person's: a few); the report says when there were more."""
KEPT_LAW = erasure.TO_CONFIRM
NO_SCAN_VI, NO_SCAN = "không tìm được nếu không đọc toàn bộ cửa hàng", "cannot be found without a full scan"


def _accounts(shop_ids: list[str]) -> list[str]:
    """The payment account numbers of the shops (what their stored answers hold in their VietQR code)."""
    out = []
    for shop_id in shop_ids:
        try:
            account = ((Shop.get(shop_id).data.get("payment") or {}).get("account_number") or "").strip()
        except DoesNotExist:
            continue   # an index entry of an open that never finished
        if account:
            out.append(account)
    return out


def erase(runtime, subject: erasure.Subject) -> dict:
    """Forget the stored answers that hold the subject; count their shops and lots and say why they stay."""
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
    forgot = erasure.forget_answers(runtime, sorted(set(subject.spellings()) | set(_accounts(shops))))
    kept = []
    if shops:
        kept.append({
            "what": f"{len(shops)} cửa hàng số: tên, mô tả, sản phẩm, tên và số tài khoản nhận tiền, mã VietQR / "
                    f"{len(shops)} digital shop(s): name, description, products, the payee's name and account number, "
                    "the VietQR code",
            "why": "cửa hàng đang mở và công khai theo ý chủ cửa hàng; người mua trả tiền vào tài khoản này. Chưa có "
                   "chức năng đóng cửa hàng: khi đóng thì xóa được / the shop is open and public by its owner's "
                   "choice, and buyers pay into this account; a shop cannot be closed yet: once closed, these can go",
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
    return {"found": len(shops) + len(lots), "erased": [
        {"what": "câu trả lời lưu để gửi lại (idempotency) có số định danh hoặc số tài khoản / answers stored for a "
                 "client's retry that hold the ID number or an account number", "count": forgot}], "kept": kept}
