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
