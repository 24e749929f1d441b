"""The assistant's records: expiring conversations and rate-limit windows.

- ``Conversation``: the context of one session (:data:`.dialogue.KEPT`): the procedure and intent
  last talked about, the language, and the ``terms`` a refinement is searched with — the tokens of
  the question that the procedures it was answered with are indexed with themselves, sorted
  (:meth:`.retrieval.Index.kept_terms`). No words of the caller's: not the question, nor an
  identifier, name or phrase in it. Keyed by a pseudonym of the caller and the client's session
  id, gone after ``ASSISTANT_SESSION_TTL_S``. A context written before kept the question's words
  as ``query``; it is read without them (:func:`.dialogue.remembered`) and rewritten without them.
- ``RateWindow``: messages counted per caller per window (:mod:`lscloud.ratelimit`).

Both carry a TTL, so the runtime sweeps them on the platform clock's tick.
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Conversation(Model):
    class Meta:
        table = "assistant-conversations"
        ttl_max_s = 86_400

    key = A.UnicodeAttribute(hash_key=True)          # pseudonym of caller + session
    context = A.JSONAttribute(default=dict)
    turns = A.NumberAttribute(default=0)
    expires_at = A.TTLAttribute()
    version = A.VersionAttribute()


class RateWindow(Model):
    class Meta:
        table = "assistant-rate"
        ttl_max_s = 7_200

    subject = A.UnicodeAttribute(hash_key=True)      # pseudonym of the caller
    window = A.UnicodeAttribute(range_key=True)
    hits = A.NumberAttribute(default=0)
    expires_at = A.TTLAttribute()
