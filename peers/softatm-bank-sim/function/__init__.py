"""A simulated partner bank for the soft ATM (local cloud only): a test peer using the public API."""

from .func import new

__all__ = ["new"]
