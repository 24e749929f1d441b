"""The procedures function: the province's catalogue of administrative procedures (thủ tục hành chính)."""

from .func import new

__all__ = ["new"]
