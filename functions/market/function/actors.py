"""The actor a market record and its events remember: the caller's role with a pseudonym for its
subject. A household's owner is a person and a household business's tax code is its owner's
personal number, so no audit entry or event carries the clear subject."""

from __future__ import annotations

from lscloud import pseudonyms
from lscloud.statemachine import Actor


def recorded(actor: Actor) -> Actor:
    return actor.pseudonymous("market-actors")


def owner_ref(sub: str) -> str:
    """How a shop names its owner: the pseudonym of the token's subject (the clear one is not kept)."""
    return pseudonyms.pseudonym("market-shop-owners", sub)
