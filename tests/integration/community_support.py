"""What the community tests share: the commune and the people they use, and a team formed by its
commune's officer."""

from __future__ import annotations

import uuid

from digital_support import ok

DONG_DANG = "06184"
LEADER, MEMBER = "020088001111", "020090002222"


def form_team(client, officer: dict, team_id: str | None = None) -> dict:
    """A team of Đồng Đăng (a leader and a member) formed by ``officer``: the team as answered."""
    return ok(client.post("/v1/teams", json={
        "id": team_id or "to-" + uuid.uuid4().hex[:10], "name": "Tổ CNS thôn Pò Mỏ", "commune": DONG_DANG,
        "village": "Thôn Pò Mỏ", "leader": {"id": LEADER, "name": "Hoàng Văn Tú"},
        "members": [{"id": MEMBER, "name": "Lương Thị Mai"}]}, headers=officer), 201)
