"""A device simulator for the environment function (local cloud only): a test peer using the public API."""

from .func import new

__all__ = ["new"]
