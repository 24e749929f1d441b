"""An erasure request's part in citizen reports: ``erase(runtime, subject) -> report``
(:mod:`lscloud.erasure`; run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

The subject's reports are those filed with their phone, e-mail or CCCD (:mod:`.owners`, an index
written with each report; :mod:`.migrate` gives the reports stored before it their entries). From
each, the reporter's personal data goes, in the report and in every copy (:mod:`.anonymise`), and
so do the answers the function kept for a client's retry that still hold it
(:func:`lscloud.erasure.forget_answers`). The reports stay: they serve the public.

Not found this way: the subject's identifier written in *another* person's report (its public view
masks it; finding it would mean reading every report), and the pseudonym of a signed-in citizen
among the supporters of reports they backed ("me too").
"""

from __future__ import annotations

from lscloud import erasure
from lscloud.statemachine import Actor

from . import owners
from .anonymise import ON_REQUEST, anonymise

KEPT_LAW = erasure.TO_CONFIRM


def erase(runtime, subject: erasure.Subject) -> dict:
    """Erase the subject's personal data from the reports they filed; counts and reasons only."""
    key = owners.key_for(subject)
    actor = Actor("operator", subject.operator or None)
    done = [d for d in (anonymise(rid, ON_REQUEST, actor, found_by=key, details={"request": subject.request})
                        for rid in owners.reports_of(subject)) if d is not None]
    forgot = erasure.forget_answers(runtime, sorted({n for d in done for n in d["needles"]} | set(subject.spellings())))
    photos = sum(d["photos"] for d in done)
    return {
        "found": len(done),
        "erased": [
            {"what": "phản ánh: họ tên, điện thoại, thư điện tử, tài khoản người phản ánh; số định danh, điện thoại, "
                     "thư điện tử trong nội dung / reports: the reporter's name, phone, e-mail and account; ID "
                     "numbers, phones and e-mails in their text", "count": sum(d["changed"] for d in done)},
            {"what": "mục nhật ký (audit) đã che / audit entries masked", "count": sum(d["audit"] for d in done)},
            {"what": "câu trả lời lưu để gửi lại (idempotency) / answers stored for a client's retry",
             "count": forgot}],
        "kept": [
            {"what": f"{len(done)} phản ánh: vị trí, loại, cơ quan, trạng thái, lịch sử xử lý / report(s): place, "
                     "category, agency, states and their history",
             "why": "phục vụ công chúng và việc giải quyết phản ánh; không còn gắn với người phản ánh / they serve "
                    "the public and the handling of the problem; no longer linked to the reporter",
             "law": KEPT_LAW},
            {"what": f"{photos} ảnh hiện trường / photo(s) of the problem",
             "why": "ảnh đã bỏ EXIF (vị trí, thiết bị) khi nhận, nhưng có thể có khuôn mặt hoặc biển số: cán bộ cần xem "
                    "và che nếu có / re-encoded without EXIF (location, device) when received, but a photo may show "
                    "a face or a number plate: an officer has to look and blur it",
             "law": KEPT_LAW}] if done else [],
    }
