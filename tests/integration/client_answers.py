"""What the integration tests ask of a Flask test client's answers, defined once."""

from __future__ import annotations

import uuid


def ok(r, status=200):
    """The JSON of a Flask test-client answer that must have ``status`` (its body shown if not)."""
    assert r.status_code == status, r.get_data(as_text=True)
    return r.get_json()


def idem(h: dict) -> dict:
    """``h`` (a caller's headers) with a fresh ``Idempotency-Key``."""
    return {**h, "Idempotency-Key": uuid.uuid4().hex}
