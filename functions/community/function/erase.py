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
- the activities that named the household (the pseudonym, the team's notes and photo): no index
  leads from a household to them, so finding them would take reading every activity, which this
  does not do. They are kept, and the report says so;
- a team member (their sign-in id is their CCCD) on the rosters of their teams: the name the
  officer gave, and a pseudonym of the sign-in id with their role. Found by
  :class:`.models.TeamByMember` (keyed by that pseudonym; :mod:`.migrate` indexes the rosters
  written before it); in each roster the NAME is ERASED, replaced by :data:`.teams.ERASED`
  (:func:`.teams.erase_name`: conditional, through the team's aggregate, audited without the
  value), and so are the answers kept a day for a client's retry that hold it. The PLACE is KEPT
  (pseudonym, role), never removed: a roster has no "left" state, so every member on it is an
  active one; membership is the commune officer's grant that lets the person sign in and log the
  team's work (an erasure is not the officer's decision to take it away, and a team would lose its
  leader); the team's member count (in every team event, for the IOC) and the commune's list of its
  teams stay true while naming no one. The index entries are kept too: a request made again after a
  restore finds the rosters by them;
- the activities a member logged: they name the member only as the same pseudonym (``author``; no
  name), and they are the team's work, verified by the commune and counted in its progress: KEPT.

Only a CCCD names a household head or a member here; a phone number or an e-mail address is held by
no record of this function.
"""

from __future__ import annotations

from lscloud import erasure
from lscloud.aggregate import side_pool
from lscloud.statemachine import Actor
from lscloud.store import DoesNotExist

from . import targets, teams
from .models import CommuneProgress, Tally, TeamByMember

COMMUNES = 1000
"""Communes looked at most (the province has 65 commune-level units since 2025)."""
HOUSEHOLDS = "community-households"
""":func:`.activities.household_ref`'s purpose: its value is the identifier in upper case."""
TEAMS = 200
"""A member's teams looked at most (one person's: one or two); the report says when there were more."""
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


def rosters(subject: erasure.Subject) -> dict | None:
    """Erase the member's name from each roster their index entries lead to: counts (``erased``,
    ``already``), the names taken out (for the stored answers only), whether there were more than
    :data:`TEAMS`; None when a re-applied request never asked for the member's pseudonym."""
    try:
        ref = subject.pseudonym(teams.MEMBERS, "{value}")
    except erasure.NotReapplicable:
        return None
    ids = TeamByMember.query_keys(ref, limit=TEAMS + 1)
    actor = teams.recorded(Actor("operator", subject.operator or None))
    out: dict = {"erased": 0, "already": 0, "absent": 0, "names": set(), "more": len(ids) > TEAMS}
    for team_id in ids[:TEAMS]:
        result, names = teams.erase_name(team_id, ref, actor, subject.request)
        out[result] += 1
        out["names"].update(names)
    return out


def _roster_report(runtime, done: dict | None) -> tuple[list[dict], list[dict]]:
    """The erased and kept entries of the rosters' part."""
    if done is None:
        return [], [{"what": "danh sách thành viên tổ / team rosters",
                     "why": "yêu cầu được ghi trước khi danh sách tổ có chỉ mục theo thành viên: gửi lại yêu cầu "
                            "với số định danh / the request was recorded before rosters were indexed by member: "
                            "make the request again with the ID number",
                     "law": KEPT_LAW}]
    forgot = erasure.forget_answers(runtime, sorted(done["names"])) if done["names"] else 0
    erased = [
        {"what": f"tên thành viên trong danh sách tổ (thay bằng “{teams.ERASED.split(' / ')[0]}”) / the member's "
                 f"name in team rosters (replaced by “{teams.ERASED.split(' / ')[1]}”)", "count": done["erased"]},
        {"what": "câu trả lời lưu để gửi lại (idempotency) có tên thành viên / answers stored for a client's retry "
                 "that hold the member's name", "count": forgot}]
    if done["already"]:
        erased.append({"what": "danh sách tổ đã xóa tên thành viên trước đó / team rosters whose name for the member "
                               "was already erased before", "count": done["already"]})
    kept = []
    teams_found = done["erased"] + done["already"]
    if teams_found:
        kept.append({
            "what": f"chỗ của thành viên trong {teams_found} danh sách tổ: bút danh số định danh đăng nhập, vai trò / "
                    f"the member's place on {teams_found} team roster(s): a pseudonym of their sign-in ID, their role",
            "why": "tư cách thành viên do công chức xã giao, để người này đăng nhập ghi hoạt động của tổ; rời tổ là "
                   "quyết định của công chức xã, không phải của yêu cầu xóa; giữ chỗ thì số thành viên của tổ (IOC, "
                   "danh sách tổ của xã) vẫn đúng mà không nêu tên ai / membership is the commune officer's grant "
                   "that lets the person sign in and log the team's work; leaving the team is the officer's "
                   "decision, not an erasure's; keeping the place keeps the team's member count (the IOC, the "
                   "commune's list of teams) true while naming no one",
            "law": KEPT_LAW})
    kept.append({
        "what": "hoạt động thành viên này đã ghi (bút danh người ghi, ghi chú, ảnh) / activities this member logged "
                "(the author's pseudonym, notes, photo)",
        "why": "chỉ ghi người làm bằng bút danh, không có họ tên; là công việc của tổ đã được xã xác nhận và tính vào "
               "tiến độ Nghị quyết 49 / they name the member only by a pseudonym, never by name; they are the team's "
               "work, verified by the commune and counted in its Resolution 49 progress",
        "law": KEPT_LAW})
    if done["more"]:
        kept.append(erasure.beyond(TEAMS, "danh sách tổ", "team rosters"))
    return erased, kept


def erase(runtime, subject: erasure.Subject) -> dict:
    """Erase the household's memberships of the counted sets and the member's name from their teams'
    rosters; counts and reasons only."""
    if subject.kind != "cccd":
        return {"found": 0, "erased": [], "kept": [{
            "what": "hộ gia đình, thành viên tổ công nghệ số / households and team members",
            "why": f"được ghi theo mã hộ hoặc số định danh, không theo số điện thoại hay thư điện tử: {NO_SCAN_VI} / "
                   f"recorded by household code or ID number, never by phone or e-mail: they {NO_SCAN}",
            "law": KEPT_LAW}]}
    household = subject.pseudonym(HOUSEHOLDS, "{value}")
    sets = [f"{commune}.{name}" for commune in communes() for name in targets.indicators()]
    erased = sum(side_pool().map(lambda s: _erase_member(s, household), sets))
    done = rosters(subject)
    roster_erased, roster_kept = _roster_report(runtime, done)
    return {
        "found": erased + (done["erased"] if done else 0),
        "erased": [
            {"what": "hộ gia đình trong các tập đếm của xã (bút danh của hộ) / the household in its commune's counted "
                     "sets (the household's pseudonym)", "count": erased}, *roster_erased],
        "kept": [
            {"what": "số hộ đã tiếp cận của xã và của tổ / the commune's and the teams' counts of households reached",
             "why": "chỉ là con số, không gắn với hộ nào; lần tiếp cận sau hộ này sẽ được đếm thêm một lần / figures "
                    "only, linked to no household; a later visit to this household counts it once more",
             "law": KEPT_LAW},
            {"what": "hoạt động của tổ có nêu hộ này (bút danh, ghi chú, ảnh) / team activities that name this "
                     "household (its pseudonym, notes, photo)",
             "why": f"không có chỉ mục theo hộ: {NO_SCAN_VI} / no index leads to them: they {NO_SCAN}",
             "law": KEPT_LAW},
            *roster_kept],
    }
