"""Cutting a run off at one call, as a store that failed or a process that died there would: the
retry tests stop a first run part-way through its writes, then check that its resend finishes it."""

from __future__ import annotations

import threading
from typing import Callable

from lscloud.store.errors import StoreUnavailable


def cut_once(monkeypatch, owner, name: str, when: Callable[..., bool] = lambda *args, **kwargs: True, *,
             error: BaseException | None = None) -> list:
    """Make ``owner.<name>`` (a plain function or method) raise ``error`` (by default
    ``StoreUnavailable("the store did not answer")``) the first time ``when`` holds of a call's
    arguments (a method's ``self`` first), as a store that failed or a process that died there
    would; every other call runs the real one. Returns the list the cut call's arguments go in:
    empty until the cut happened, one entry at most."""
    real, cuts, lock = getattr(owner, name), [], threading.Lock()
    error = StoreUnavailable("the store did not answer") if error is None else error

    def cut(*args, **kwargs):
        with lock:   # "the first time" even when requests run side by side: one cut, never two
            hit = not cuts and when(*args, **kwargs)
            if hit:
                cuts.append(args)
        if hit:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, cut)
    return cuts
