"""An erasure request's part in dossiers: ``erase(runtime, subject) -> report`` (:mod:`lscloud.erasure`;
run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

A dossier is the record of an administrative procedure: the applicant's details, the documents they
filed, every step, the result. Nothing of it is erased here. The procedure's record is the agency's
to keep, and in production the bucket holds it under object lock for ten years
(``infra/Pulumi.prod.yaml``, ``functions.dossiers.retention``): no write of this function could take
it away before. What the hook does is tell the person how many of their dossiers there are and why
they stay.

Found by the applicant's CCCD alone, through the "my dossiers" index (:class:`.models.OwnerRecent`,
keyed by its pseudonym): a listing, no dossier read. A phone number or an e-mail address a dossier
holds is not indexed, and a person named in another applicant's dossier (on whose behalf it was
filed) is not either: both would take reading every dossier, which this does not do.
"""

from __future__ import annotations

from lscloud import erasure

from .models import OwnerRecent

LIMIT = 5000
"""Index entries listed at most: one person's dossiers, with room to spare; the report says when
there were more."""
KEPT_LAW = erasure.TO_CONFIRM
NO_SCAN_VI, NO_SCAN = "không tìm được nếu không đọc toàn bộ hồ sơ", "cannot be found without a full scan"


def erase(runtime, subject: erasure.Subject) -> dict:
    """How many dossiers the subject filed, and why every one of them is kept; counts and reasons only."""
    if subject.kind != "cccd":
        return {"found": 0, "erased": [], "kept": [{
            "what": "hồ sơ có ghi số điện thoại hoặc thư điện tử này / dossiers that hold this phone number or e-mail "
                    "address",
            "why": f"hồ sơ chỉ được tìm theo số định danh (CCCD) của người nộp; theo số điện thoại, thư điện tử thì "
                   f"{NO_SCAN_VI}: hãy gửi yêu cầu kèm số CCCD / dossiers are found by the applicant's ID number "
                   f"(CCCD) only; by phone or e-mail they {NO_SCAN}: make the request with the CCCD",
            "law": KEPT_LAW}]}
    listed = OwnerRecent.query_keys(subject.pseudonym(OwnerRecent.Meta.table, "{value}"), limit=LIMIT + 1)
    found = min(len(listed), LIMIT)
    kept = [{
        "what": f"{found} hồ sơ thủ tục hành chính: thông tin người nộp, giấy tờ, tệp đính kèm, các bước xử lý, kết "
                f"quả, nhật ký / {found} administrative procedure dossier(s): the applicant's details, documents, "
                "attachments, processing steps, result, audit trail",
        "why": "hồ sơ giải quyết thủ tục hành chính do cơ quan lưu giữ; trên hệ thống chính thức, kho lưu trữ khóa "
               "chúng 10 năm (object lock) nên không thể xóa trước thời hạn / the record of an administrative "
               "procedure, the agency's to keep; in production the bucket holds it under object lock for ten years, "
               "so it cannot be deleted before",
        "law": KEPT_LAW}] if found else []
    if len(listed) > LIMIT:
        kept.append({"what": f"hồ sơ thứ {LIMIT + 1} trở đi / dossiers beyond the first {LIMIT}",
                     "why": "chưa đếm trong lần chạy này / not counted in this run", "law": KEPT_LAW})
    kept.append({
        "what": "hồ sơ của người khác có nêu tên người này (nộp thay, ủy quyền) / other applicants' dossiers that name "
                "this person (filed on their behalf)",
        "why": f"{NO_SCAN_VI} / {NO_SCAN}", "law": KEPT_LAW})
    return {"found": found, "erased": [], "kept": kept}
