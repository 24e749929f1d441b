"""An erasure request's part in border crossings: ``erase(runtime, subject) -> report``
(:mod:`lscloud.erasure`; run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

The subject's declarations are those they drove (``drv:`` + their CCCD) or declared as a household
business, whose tax code is the owner's CCCD (``ent:`` + it): the "my declarations" index
(:class:`.models.OwnerRecent`, keyed by the pseudonym), listed, then each declaration read once.

- A declaration that has ENDED (exited, refused, cancelled, expired) loses now what the clock would
  take from it ``BORDER_HEALTH_KEEP_DAYS`` later: the health answers (the gate's verdict stays) and
  the driver's phone, by :func:`.minimise.minimise_one` itself with no keep period left, so it is
  the same conditional write, audit entry and health entry's removal as the tick's, and a second
  request (or the tick after this) finds it minimised and changes nothing. The answers kept a day
  for a client's retry that still hold that phone go too (:func:`lscloud.erasure.forget_answers`).
- A declaration still LIVE keeps both: the gate checks the answers and calls the driver until the
  crossing ends; the request made again after that minimises it.
- Every declaration keeps the crossing itself (vehicle, goods, driver's name and ID, enterprise,
  agencies' decisions): the customs and border record of the goods that passed.

Not found this way: a phone number (the driver's phone is not indexed), and a driver named by a
passport (not a kind an erasure request names): both would take reading every declaration.
"""

from __future__ import annotations

from datetime import timedelta

from lscloud import erasure
from lscloud.statemachine import now
from lscloud.store import DoesNotExist, InvalidKey

from . import declarations, indexes, minimise
from .models import Declaration, OwnerRecent

LIMIT = 500
"""Declarations handled at most by one run (each read once, an ended one written once); the report
says when there were more, and the request made again goes on with them."""
KEPT_LAW = erasure.TO_CONFIRM
NO_SCAN_VI, NO_SCAN = "không tìm được nếu không đọc toàn bộ tờ khai", "cannot be found without a full scan"
ROLES = ("drv:{value}", "ent:{value}")
"""The owner-index keys a CCCD is listed under (:func:`.indexes.owner_keys`): as a driver, and as a
household business's tax code."""


def declaration_ids(subject: erasure.Subject) -> list[str]:
    """The subject's declarations, as driver or as declarant, each once (at most ``LIMIT + 1``)."""
    found: dict[str, None] = {}
    for role in ROLES:
        for row in OwnerRecent.query(subject.pseudonym(OwnerRecent.Meta.table, role), limit=LIMIT + 1):
            found[row.declaration_id] = None
    return list(found)[:LIMIT + 1]


def _minimise_now(doc: dict) -> str:
    """``minimised`` by this call, ``already`` (by the tick or an earlier request), ``live`` (not
    ended), or ``gone``."""
    ended = declarations.ended_at(doc)
    if ended is None:
        return "live"
    if declarations.minimised(doc):
        return "already"
    day, entry = indexes.health_due_key(doc["id"], ended)
    result = minimise.minimise_one(day, entry, now(), timedelta(0))
    return result if result in ("minimised", "already") else "gone"


def erase(runtime, subject: erasure.Subject) -> dict:
    """Minimise the subject's ended declarations now; counts and reasons only."""
    if subject.kind != "cccd":
        return {"found": 0, "erased": [], "kept": [{
            "what": "tờ khai có số điện thoại lái xe này / declarations that hold this phone number as the driver's",
            "why": f"tờ khai được tìm theo số CCCD của lái xe hoặc mã số thuế của doanh nghiệp; theo số điện thoại thì "
                   f"{NO_SCAN_VI}: hãy gửi yêu cầu kèm số CCCD. Số điện thoại tự bị xóa sau khi tờ khai kết thúc "
                   f"(BORDER_HEALTH_KEEP_DAYS) / declarations are found by the driver's CCCD or the declarant's tax "
                   f"code; by phone they {NO_SCAN}: make the request with the CCCD. The phone goes by itself a while "
                   "after the crossing ends (BORDER_HEALTH_KEEP_DAYS)",
            "law": KEPT_LAW}]}
    ids = declaration_ids(subject)
    more = len(ids) > LIMIT
    counts = {"minimised": 0, "already": 0, "live": 0, "gone": 0}
    phones: set[str] = set()
    for declaration_id in ids[:LIMIT]:
        try:
            doc = Declaration.get(declaration_id).data
        except (DoesNotExist, InvalidKey):
            counts["gone"] += 1   # an index entry of a create that never finished
            continue
        phone = (doc.get("driver") or {}).get("phone")
        result = _minimise_now(doc)
        counts[result] += 1
        if result == "minimised" and phone:
            phones.add(phone)
    forgot = erasure.forget_answers(runtime, sorted(phones)) if phones else 0
    found = sum(counts[k] for k in ("minimised", "already", "live"))
    ended = counts["minimised"] + counts["already"]
    kept = []
    if found:
        kept.append({
            "what": f"{found} tờ khai qua cửa khẩu: phương tiện, hàng hóa, họ tên và số giấy tờ lái xe, doanh nghiệp, "
                    f"quyết định của các cơ quan, kết luận kiểm dịch / {found} border declaration(s): vehicle, goods, "
                    "the driver's name and ID number, the enterprise, the agencies' decisions, the health verdict",
            "why": "hồ sơ hải quan, biên phòng, kiểm dịch về hàng hóa và phương tiện đã qua cửa khẩu / the customs, "
                   "border guard and quarantine record of the goods and vehicle that crossed",
            "law": KEPT_LAW})
    if counts["live"]:
        kept.append({
            "what": f"{counts['live']} tờ khai chưa kết thúc: câu trả lời khai báo y tế và số điện thoại lái xe / "
                    f"{counts['live']} declaration(s) not ended yet: the health answers and the driver's phone",
            "why": "cửa khẩu còn cần để kiểm dịch và gọi xe; tự tối giản sau khi tờ khai kết thúc "
                   "(BORDER_HEALTH_KEEP_DAYS), hoặc gửi lại yêu cầu sau khi kết thúc / the gate still needs them for "
                   "the quarantine check and to call the truck; minimised a while after the crossing ends "
                   "(BORDER_HEALTH_KEEP_DAYS), or at once by this request made again after it ends",
            "law": KEPT_LAW})
    if more:
        kept.append(erasure.beyond(LIMIT, "tờ khai", "declarations"))
    return {
        "found": found,
        "erased": [
            {"what": "tờ khai đã kết thúc: câu trả lời khai báo y tế (giữ kết luận kiểm dịch) và số điện thoại lái xe "
                     "/ ended declarations: the health answers (the gate's verdict stays) and the driver's phone",
             "count": counts["minimised"]},
            {"what": "câu trả lời lưu để gửi lại (idempotency) / answers stored for a client's retry", "count": forgot}]
        + ([{"what": "tờ khai đã kết thúc, đã được tối giản trước đó / ended declarations already minimised before",
             "count": ended - counts["minimised"]}] if ended > counts["minimised"] else []),
        "kept": kept,
    }
