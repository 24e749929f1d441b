"""The dossiers function: the one-stop shop's workflow (hồ sơ) from submission to result."""

from .func import new

__all__ = ["new"]
