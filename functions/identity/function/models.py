"""What the identity function keeps in the object store.

- ``RegisteredCitizen``: the local population registry (seeded; the cluster asks the national
  database over HTTP instead), one document per CCCD number, keyed by the number's pseudonym;
- ``AttemptWindow``: failed verifications of one subject (a caller, or a CCCD number being
  guessed at) in one fixed time window, counted by :mod:`lscloud.ratelimit` (:mod:`.mismatches`).

No CCCD number appears in an object key: both are keyed by keyed hashes (:mod:`lscloud.pseudonyms`).
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class RegisteredCitizen(Model):
    class Meta:
        table = "identity-population"

    id_number = A.PseudonymAttribute(hash_key=True)
    data = A.JSONAttribute()
    seeded = A.UTCDateTimeAttribute(default=A.utcnow)


class AttemptWindow(Model):
    class Meta:
        table = "identity-attempts"
        # a window lives two of its length (IDENTITY_WINDOW_S, 15 minutes by default): the sweep
        # reads an item once it is this old, not every window every minute. A longer window set by
        # an operator is read by each sweep after an hour, and kept until it ends: never lost
        ttl_max_s = 3600

    subject = A.UnicodeAttribute(hash_key=True)     # pseudonym of "caller:<who>" or "target:<cccd>"
    window = A.UnicodeAttribute(range_key=True)     # the window's start, epoch seconds, zero-padded
    hits = A.NumberAttribute(default=0)             # mismatches (lscloud.ratelimit's counter)
    expires_at = A.TTLAttribute()
