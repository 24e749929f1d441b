"""Where the assistant's facts come from: the procedures function's catalogue and the dossiers
function's records, asked over HTTP (:mod:`lscloud.peers`) — the same data the catalogue search and
the dossiers read.

- :class:`CatalogueSource` pages through ``GET /procedures/v1/procedures`` and builds the
  :class:`~.retrieval.Index` once per catalogue version; it asks again at most every ``refresh_s``
  (each page revalidated by ETag, so an unchanged catalogue costs a 304). A cache only: a replica
  that restarts asks again.
- :func:`dossier_status` asks dossiers *on behalf of the caller* (their own token), or the public
  tracking by receipt code and secret: dossiers applies its own rules, and any refusal or unknown
  dossier reads the same ("not found or not yours"), so nothing about another person's dossier leaks.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Mapping
from urllib.parse import urlencode

from lscloud import errors, peers

from .retrieval import Index

MAX_PAGES = 20


class CatalogueUnavailable(errors.Unavailable):
    title, title_vi = "Catalogue unavailable", "Chưa đọc được danh mục thủ tục"


class CatalogueSource:
    def __init__(self, client: peers.PeerClient, refresh_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.client, self.refresh_s, self.clock = client, refresh_s, clock
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._key: tuple | None = None
        self._checked = float("-inf")
        self._agencies: dict[str, str | None] = {}

    def _fetch(self) -> list[dict]:
        items, token = [], None
        for _ in range(MAX_PAGES):
            query = {"limit": 100, **({"page_token": token} if token else {})}
            page = self.client.get_json("procedures", "/v1/procedures?" + urlencode(query))
            items += page["items"]
            token = page.get("next_page_token")
            if not token:
                return items
        return items

    def index(self) -> Index:
        """The index of the current catalogue (503 while the procedures function cannot be read)."""
        with self._lock:
            if self._index is not None and self.clock() - self._checked < self.refresh_s:
                return self._index
        try:
            items = self._fetch()
        except peers.PeerError as exc:
            with self._lock:
                if self._index is not None:    # a stale index beats no answer; asked again next time
                    return self._index
            raise CatalogueUnavailable("The procedures catalogue cannot be read right now.",
                                       detail_vi="Chưa đọc được danh mục thủ tục; vui lòng thử lại sau.") from exc
        key = tuple((p["code"], p.get("national_code"), p["name"], len(p["documents"]), p["processing_days"],
                     tuple(f["amount_vnd"] for f in p["fees"])) for p in items)
        with self._lock:
            if key != self._key or self._index is None:
                self._index, self._key = Index(items), key
            self._checked = self.clock()
            return self._index

    def agency_name(self, code: str) -> str | None:
        """The directory's name of an agency (None when the directory cannot say)."""
        if code not in self._agencies:
            try:
                self._agencies[code] = self.client.get_json("directory", peers.path("/v1/agencies", code)).get("name")
            except peers.PeerError:
                return None
        return self._agencies[code]


def dossier_status(client: peers.PeerClient, reference: str | None, *, authorization: str | None,
                   secret: str | None) -> Mapping | None:
    """The dossier's tracking view, or None when it is not found *or not the caller's*."""
    if not reference:
        return None
    try:
        if secret:
            return client.get_json("dossiers", "/v1/track?" + urlencode({"code": reference, "secret": secret}))
        if authorization:
            doc = client.get_json("dossiers", peers.path("/v1/dossiers", reference), authorization=authorization)
            step = doc.get("current_step") or {}
            return {"code": doc.get("code") or reference, "status": doc.get("status"),
                    "status_vi": doc.get("status_vi"), "procedure": (doc.get("procedure") or {}).get("code"),
                    "procedure_name": (doc.get("procedure") or {}).get("name"),
                    "appointment_date": doc.get("appointment_date"),
                    "current_step": {"name": step.get("name")} if step else None,
                    "missing": ((doc.get("pauses") or [{}])[-1] or {}).get("missing") or [] if doc.get("status") == "waiting" else [],
                    "overdue": doc.get("overdue")}
    except (peers.PeerNotFound, peers.PeerForbidden):
        return None
    except peers.PeerUnavailable as exc:
        raise errors.Unavailable("The dossiers function does not answer.",
                                 detail_vi="Chưa tra cứu được hồ sơ; vui lòng thử lại sau.") from exc
    return None
