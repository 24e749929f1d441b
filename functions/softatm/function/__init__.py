"""The softatm function: cash-in / cash-out at post offices for partner banks (the soft ATM)."""

from .func import new

__all__ = ["new"]
