"""The assistant function: the virtual assistant answering questions about administrative procedures."""

from .func import new

__all__ = ["new"]
