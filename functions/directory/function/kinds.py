"""The four kinds of reference data the directory serves, and how its answers name them.

One row per kind: the path segment (also the snapshot's key), how its codes look and what its
items are called in both languages (:class:`lscloud.reference.Code`), the texts a search looks in
and the filters its list takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lscloud.listing import Filter, list_params
from lscloud.reference import Code
from lscloud.store import Model

from . import agencies, gates, post_offices, units
from .models import ITEM_MODELS


@dataclass(frozen=True)
class Kind:
    """One kind of reference data."""

    name: str                       # snapshot key and path segment
    code: Code
    texts: Callable[[dict], list[str]]
    filters: tuple[Filter, ...]

    @property
    def model(self) -> type[Model]:
        return ITEM_MODELS[self.name][0]

    def list_params(self) -> tuple:
        """The query parameters of this kind's list route: search and paging, then its filters."""
        return list_params(self.filters)


KINDS = {k.name: k for k in (
    Kind("units", Code("unit", "đơn vị hành chính", units.valid_code,
                       '"20" (the province) or a 5-digit ward code such as "06040"'),
         units.search_texts, units.filters()),
    Kind("agencies", Code("agency", "cơ quan", agencies.valid_code,
                          "lowercase letters, digits and dashes, e.g. \"customs\""),
         agencies.search_texts, agencies.filters()),
    Kind("border-gates", Code("border gate", "cửa khẩu", gates.valid_code,
                              "lowercase letters, digits and dashes, e.g. \"huu-nghi\""),
         gates.search_texts, gates.filters()),
    Kind("post-offices", Code("post office", "điểm bưu điện", post_offices.valid_code,
                              '"bd-" and a unit code, e.g. "bd-06040"'),
         post_offices.search_texts, post_offices.filters()),
)}
