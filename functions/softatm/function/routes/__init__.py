"""The soft ATM's HTTP surface, by who calls: tellers, operators (and auditors), partner banks."""

from . import operators, partners, tellers

BLUEPRINTS = (tellers.bp, operators.bp, partners.bp)

__all__ = ["BLUEPRINTS"]
