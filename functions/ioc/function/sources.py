"""Which sources are connected: a function that has sent events, or that answers when asked.

A source is *connected* when the IOC holds facts from it, or when its function answers
``GET /openapi.json`` (every function serves it; asked through :mod:`lscloud.peers`, the answer kept
for a minute). A function that does not exist in this deployment is therefore shown as
"no source connected" rather than as a row of zeros.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from lscloud import peers

from . import catalogue

TTL_S = 60.0


class Sources:
    def __init__(self, settings):
        self.settings = settings
        self._answered: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def _asks(self, name: str) -> bool:
        try:
            peers.client(self.settings).get_json(name, "/openapi.json")
            return True
        except peers.PeerError:
            return False
        except Exception:  # noqa: BLE001 - a peer that answers garbage is not connected either
            return False

    def connected(self, seen: set[str]) -> set[str]:
        """Sources with facts in ``seen``, plus those whose function answers (cached for TTL_S)."""
        now = time.monotonic()
        with self._lock:   # another request may be adding its probes' answers
            answered = dict(self._answered)
        todo = [s for s in catalogue.sources() if s not in seen
                and (s not in answered or now - answered[s][0] > TTL_S)]
        if todo:
            fns = {s: catalogue.sources()[s]["function"] for s in todo}
            with ThreadPoolExecutor(len(todo)) as pool:
                answers = dict(zip(todo, pool.map(lambda s: self._asks(fns[s]), todo)))
            with self._lock:
                for s, ok in answers.items():
                    self._answered[s] = (now, ok)
                answered = dict(self._answered)
        # iterated outside the lock, the dict another request was adding to raised "dictionary changed
        # size during iteration" (a 500 at start, when every request probes the sources not seen yet)
        return set(seen) | {s for s, (_, ok) in answered.items() if ok}
