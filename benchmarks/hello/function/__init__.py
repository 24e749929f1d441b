"""A bare func-python function: the baseline for `lscloud bench`."""

from .func import new

__all__ = ["new"]
