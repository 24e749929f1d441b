"""Where the assistant's facts come from: the procedures function's catalogue and the dossiers
function's records, asked over HTTP (:mod:`lscloud.peers`) — the same data the catalogue search and
the dossiers read.

- :class:`CatalogueSource` pages through ``GET /procedures/v1/procedures`` and builds the
  :class:`~.retrieval.Index` once per catalogue version, first as the function starts; it asks
  again every ``refresh_s`` in the background (each page revalidated by ETag, so an unchanged
  catalogue costs a 304), never while a question waits. A cache only: a replica that restarts asks
  again.
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

from .intents import RECEIPT_CODE_RE
from .retrieval import Index

MAX_PAGES = 20


class CatalogueUnavailable(errors.Unavailable):
    title, title_vi = "Catalogue unavailable", "Chưa đọc được danh mục thủ tục"


class CatalogueSource:
    """The catalogue's index, kept current without making a question wait for it.

    The first index is built as the function starts (:meth:`warm`, in the background); a question
    that comes before it is ready waits for it. After that a question is always answered from the
    index in memory: once it is ``refresh_s`` old, the next question starts one revalidation in the
    background (stale-while-revalidate), so no answer pays for paging the catalogue or rebuilding
    the index. A catalogue that cannot be read keeps the last index (a 503 only before the first).
    """

    def __init__(self, client: peers.PeerClient, refresh_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.client, self.refresh_s, self.clock = client, refresh_s, clock
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()     # one fetch-and-build at a time
        self._index: Index | None = None
        self._key: tuple | None = None
        self._checked = float("-inf")
        self._refreshing = False
        self.warmed = False

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
        """The index of the current catalogue (503 while the procedures function cannot be read and
        no index was ever built)."""
        with self._lock:
            current, due = self._index, self.clock() - self._checked >= self.refresh_s
            start = current is not None and due and not self._refreshing
            if start:
                self._refreshing = True
        if current is None:
            return self._rebuild()
        if start:
            threading.Thread(target=self._refresh, name="assistant-catalogue", daemon=True).start()
        return current

    def warm(self) -> None:
        """Build the first index (and learn the agencies' names) before the first question needs it.
        ``warmed`` turns true once it has tried, built or not (an unreadable catalogue must not keep
        the replica out of service: its questions get the 503 and the next one asks again)."""
        try:
            index = self._rebuild()
            for code in sorted({p.get("agency") for p in index.by_code.values() if p.get("agency")}):
                self.agency_name(code)
        except CatalogueUnavailable:
            pass
        finally:
            self.warmed = True

    def _refresh(self) -> None:
        try:
            self._rebuild()
        except CatalogueUnavailable:
            pass     # the last index stands; the next question after refresh_s asks again
        finally:
            with self._lock:
                self._refreshing = False

    def _rebuild(self) -> Index:
        with self._build_lock:
            with self._lock:   # built by another thread while this one waited for the build lock
                if self._index is not None and self.clock() - self._checked < self.refresh_s:
                    return self._index
            try:
                items = self._fetch()
            except peers.PeerError as exc:
                with self._lock:
                    if self._index is not None:    # a stale index beats no answer; asked again next time
                        self._checked = self.clock()
                        return self._index
                raise CatalogueUnavailable("The procedures catalogue cannot be read right now.",
                                           detail_vi="Chưa đọc được danh mục thủ tục; vui lòng thử lại sau.") from exc
            key = tuple((p["code"], p.get("national_code"), p["name"], len(p["documents"]), p["processing_days"],
                         tuple(f["amount_vnd"] for f in p["fees"])) for p in items)
            index = Index(items) if key != self._key or self._index is None else self._index
            with self._lock:
                self._index, self._key, self._checked = index, key, self.clock()
                return index

    def agency_name(self, code: str) -> str | None:
        """The directory's name of an agency (None when the directory cannot say), through the peer
        client's cache: revalidated by ETag, so a renamed agency is named anew (a dict of its own
        held the first name for as long as the process lived)."""
        try:
            return self.client.get_json("directory", peers.path("/v1/agencies", code)).get("name")
        except peers.PeerError:
            return None


def dossier_status(client: peers.PeerClient, reference: str | None, *, authorization: str | None,
                   secret: str | None) -> Mapping | None:
    """The dossier's tracking view, or None when it is not found *or not the caller's*.

    ``reference`` is the receipt code (``LS-…``) or the dossier's id. With ``secret``, the public
    tracking answers (by code). Otherwise dossiers is asked with the caller's token: a receipt code
    at ``GET /v1/dossiers?code=`` (the one dossier with it that the caller may see, or none), an id
    at ``/v1/dossiers/{id}``."""
    if not reference:
        return None
    try:
        if secret:
            return client.get_json("dossiers", "/v1/track?" + urlencode({"code": reference, "secret": secret}))
        if authorization:
            doc = _own_dossier(client, reference, authorization)
            return _view(doc, reference) if doc is not None else None
    except (peers.PeerNotFound, peers.PeerForbidden):
        return None
    except peers.PeerUnavailable as exc:
        raise errors.Unavailable("The dossiers function does not answer.",
                                 detail_vi="Chưa tra cứu được hồ sơ; vui lòng thử lại sau.") from exc
    return None


def _own_dossier(client: peers.PeerClient, reference: str, authorization: str) -> Mapping | None:
    """The dossier the caller may read, named by its receipt code or its id (None: not found)."""
    if RECEIPT_CODE_RE.fullmatch(reference):
        page = client.get_json("dossiers", "/v1/dossiers?" + urlencode({"code": reference}),
                               authorization=authorization)
        if page.get("items"):
            return page["items"][0]
    try:   # a dossier's id (a client-chosen one may even look like a receipt code)
        return client.get_json("dossiers", peers.path("/v1/dossiers", reference), authorization=authorization)
    except peers.PeerNotFound:
        return None


def _view(doc: Mapping, reference: str) -> dict:
    """The dossier as the tracking view shows it (nothing personal)."""
    steps, at = doc.get("steps") or [], doc.get("current_step")
    step = steps[at] if isinstance(at, int) and not isinstance(at, bool) and 0 <= at < len(steps) else {}
    pauses = doc.get("pauses") or []
    pause = pauses[-1] if pauses and isinstance(pauses[-1], dict) and not pauses[-1].get("resumed_at") else {}
    procedure = doc.get("procedure") or {}
    return {"code": doc.get("code") or reference, "status": doc.get("status"),
            "status_vi": doc.get("status_vi") or doc.get("status"), "status_en": doc.get("status_en"),
            "procedure": procedure.get("code"),
            "procedure_name": procedure.get("name"), "appointment_date": doc.get("appointment_date"),
            "current_step": {"name": step.get("name")} if step.get("name") else None,
            "missing": pause.get("missing") or [] if doc.get("status") == "waiting" else [],
            "overdue": doc.get("overdue")}
