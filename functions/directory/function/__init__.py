"""The directory function: Lạng Sơn's reference data (units, agencies, border gates, post offices)."""

from .func import new

__all__ = ["new"]
