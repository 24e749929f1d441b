"""The border function: Lạng Sơn's digital border gate (declarations, queue, clearance, devices)."""

from .func import new

__all__ = ["new"]
