"""Official documents and digital signatures (văn bản và chữ ký số)."""

from .func import new

__all__ = ["new"]
