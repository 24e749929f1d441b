"""The digital market: shops with VietQR codes, traceable lots and their signed QR stamps."""

from .func import new

__all__ = ["new"]
