"""An erasure request's part in the community teams: ``erase(runtime, subject) -> report``
(:mod:`lscloud.erasure`; run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

What the function holds of a person, and what this does with it (the choice is the conservative one:
erase what no law and no one else's record needs, and say what stays):

- a household reached by a team, named by its register code or its head's ID number, kept only as a
  pseudonym (:func:`.activities.household_ref`). It is a member of its commune's counted sets, one per
  indicator (:class:`.models.Tally`, the pseudonym its range key): found with one HEAD per commune
  that has progress and per indicator, and ERASED. The commune's and the teams' counts keep the
  number it added (a figure, nobody's data); the cost is that a later visit to that household counts
  it once more;
- the activities that named the household (the pseudonym, the team's notes and photo) and the team
  rosters that name a member (the name the officer gave, a pseudonym of their sign-in id): no index
  leads from a person to them, so finding them would take reading every activity and every team,
  which this does not do. They are kept, and the report says so.

Only a CCCD names a household head or a member here; a phone number or an e-mail address is held by
no record of this function.
"""

from __future__ import annotations

from lscloud import erasure
from lscloud.aggregate import side_pool
from lscloud.store import DoesNotExist

from . import targets
from .models import CommuneProgress, Tally

COMMUNES = 1000
"""Communes looked at most (the province has 65 commune-level units since 2025)."""
HOUSEHOLDS = "community-households"
""":func:`.activities.household_ref`'s purpose: its value is the identifier in upper case."""
KEPT_LAW = erasure.TO_CONFIRM
NO_SCAN_VI, NO_SCAN = "không tìm được nếu không đọc toàn bộ dữ liệu", "cannot be found without a full scan"


def communes() -> list[str]:
    """The communes with counted progress (their sets are the only ones with members), from the
    listing of their progress documents (none read)."""
    return CommuneProgress.hash_keys(COMMUNES)


def _erase_member(tally: str, member: str) -> int:
    """1 if the member was there and is gone, 0 if it was not there."""
    if not Tally.exists(tally, member):
        return 0
    try:
        Tally(tally, member).delete()   # a member holds its key only: nothing to compare first
    except DoesNotExist:
        return 0   # taken by a concurrent request
    return 1


def erase(runtime, subject: erasure.Subject) -> dict:
    """Erase the household's memberships of the counted sets; counts and reasons only."""
    if subject.kind != "cccd":
        return {"found": 0, "erased": [], "kept": [{
            "what": "hộ gia đình, thành viên tổ công nghệ số / households and team members",
            "why": f"được ghi theo mã hộ hoặc số định danh, không theo số điện thoại hay thư điện tử: {NO_SCAN_VI} / "
                   f"recorded by household code or ID number, never by phone or e-mail: they {NO_SCAN}",
            "law": KEPT_LAW}]}
    household = subject.pseudonym(HOUSEHOLDS, "{value}")
    sets = [f"{commune}.{name}" for commune in communes() for name in targets.indicators()]
    erased = sum(side_pool().map(lambda s: _erase_member(s, household), sets))
    return {
        "found": erased,
        "erased": [
            {"what": "hộ gia đình trong các tập đếm của xã (bút danh của hộ) / the household in its commune's counted "
                     "sets (the household's pseudonym)", "count": erased}],
        "kept": [
            {"what": "số hộ đã tiếp cận của xã và của tổ / the commune's and the teams' counts of households reached",
             "why": "chỉ là con số, không gắn với hộ nào; lần tiếp cận sau hộ này sẽ được đếm thêm một lần / figures "
                    "only, linked to no household; a later visit to this household counts it once more",
             "law": KEPT_LAW},
            {"what": "hoạt động của tổ có nêu hộ này (bút danh, ghi chú, ảnh) / team activities that name this "
                     "household (its pseudonym, notes, photo)",
             "why": f"không có chỉ mục theo hộ: {NO_SCAN_VI} / no index leads to them: they {NO_SCAN}",
             "law": KEPT_LAW},
            {"what": "danh sách thành viên tổ có người này (họ tên, bút danh) / team rosters that name this person "
                     "(their name, a pseudonym)",
             "why": f"không có chỉ mục theo thành viên: {NO_SCAN_VI} / no index leads to them: they {NO_SCAN}",
             "law": KEPT_LAW}],
    }
