"""The identity function: CCCD decoding, verification against the population registry, dev sign-in."""

from .func import new

__all__ = ["new"]
