"""An erasure request's part in identity: ``erase(runtime, subject) -> report`` (:mod:`lscloud.erasure`;
run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

Nothing is erased here, and the report says why:

- the population record (name, date of birth, sex) is the national population database's, which this
  function mirrors (:class:`.population.StoreRegistry`, the local cloud's seeded copy; in the
  cluster it asks that database and keeps no copy). Deleting the mirror would not delete the record,
  and the next seed would write it back: a correction or a deletion is asked of the database's
  controller;
- the counters of failed verifications of the person's number, or by the person signed in
  (:mod:`.mismatches`, a pseudonym and a count), protect citizens' data from being guessed at;
  deleting them would lift that brake for whoever is guessing. They go by themselves once their
  window has passed.

Both are found by the CCCD's pseudonyms, one GET and one listing. The function holds no phone number
or e-mail address.
"""

from __future__ import annotations

from lscloud import erasure

from .models import AttemptWindow, RegisteredCitizen

KEPT_LAW = erasure.TO_CONFIRM
WINDOWS = 100
"""Counter windows read at most (a few live at once: they expire within the hour)."""


def erase(runtime, subject: erasure.Subject) -> dict:
    """Whether the population record and counters of the subject's number are here, and why they stay."""
    if subject.kind != "cccd":
        return {"found": 0, "erased": [], "kept": []}   # no phone number or e-mail address is kept here
    registered = RegisteredCitizen.exists(subject.pseudonym(RegisteredCitizen.Meta.table, "{value}"))
    # the number guessed at by others, and the person's own failed attempts signed in (lscloud.ratelimit's
    # caller_subject): both counted under the caller-or-target subjects of .mismatches
    windows = sum(len(AttemptWindow.query(subject.pseudonym(AttemptWindow.Meta.table, form), limit=WINDOWS))
                  for form in ("target:{value}", "caller:sub:{value}"))
    kept = []
    if registered:
        kept.append({
            "what": "bản sao hồ sơ dân cư (họ tên, ngày sinh, giới tính) dùng để xác thực / the copy of the population "
                    "record (name, date of birth, sex) verifications are checked against",
            "why": "dữ liệu của Cơ sở dữ liệu quốc gia về dân cư, chức năng này chỉ sao lại; xóa bản sao không xóa hồ "
                   "sơ: yêu cầu sửa, xóa gửi đến cơ quan quản lý cơ sở dữ liệu đó / the national population "
                   "database's data, which this function only mirrors; deleting the copy would not delete the record: "
                   "a correction or deletion is asked of that database's controller",
            "law": KEPT_LAW})
    if windows:
        kept.append({
            "what": f"{windows} bộ đếm xác thực sai đối với số định danh này hoặc do người này (bút danh và số lần) / "
                    f"{windows} counter(s) of failed verifications of this number or by this person (a pseudonym and "
                    "a count)",
            "why": "chống dò đoán thông tin công dân; tự xóa khi hết khung thời gian (trong vòng một giờ theo mặc "
                   "định) / they protect citizens' data from being guessed at, and go by themselves once their "
                   "window has passed (within the hour by default)",
            "law": KEPT_LAW})
    return {"found": int(registered) + windows, "erased": [], "kept": kept}
