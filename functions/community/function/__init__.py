"""Community digital technology teams (Tổ công nghệ số cộng đồng): teams, field activities synced
offline, their verification, progress against Resolution 49 and rankings."""

from .func import new

__all__ = ["new"]
