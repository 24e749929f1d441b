"""The community's own refusals (a domain 403 is not the door's: its type says why)."""

from __future__ import annotations

from lscloud import errors


class NotYourCommune(errors.Forbidden):
    """A commune officer (or a team's caller) acting outside their own commune."""

    type = "not-your-commune"
    title, title_vi = "Not your commune", "Không thuộc xã, phường của bạn"


class NotOnTheTeam(errors.Forbidden):
    """The caller is not on the team's roster, or not in the role the action needs."""

    type = "not-on-the-team"
    title, title_vi = "Not on this team", "Không thuộc tổ này"


def target_if_match_required() -> errors.PreconditionRequired:
    return errors.PreconditionRequired(
        "This commune's number of households is set already: read its progress (GET) and send its ETag in If-Match.",
        detail_vi="Số hộ của xã, phường này đã được đặt: hãy đọc lại tiến độ (GET) và gửi ETag trong If-Match.",
        errors=[errors.field("If-Match", "required: the ETag of the progress as read", "bắt buộc: ETag của lần đọc")])


def target_changed(current: int) -> errors.PreconditionFailed:
    return errors.PreconditionFailed(
        "Another officer set this commune's number of households since it was read: read it again and decide again.",
        detail_vi="Người khác đã cập nhật số hộ của xã, phường này sau khi bạn đọc: hãy đọc lại rồi quyết định.",
        errors=[errors.field("If-Match", "not the target's current version", "không phải phiên bản hiện tại")],
        current_version=current)
