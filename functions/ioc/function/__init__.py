"""The intelligent operations centre (IOC): live indicators from the platforms' events, and its wall."""

from .func import new

__all__ = ["new"]
