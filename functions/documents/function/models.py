"""The documents function's records in the store.

Object keys hold only generated ids, agency codes, years and pseudonyms: a signer's key material
is filed under the keyed pseudonym of their ``sub`` (:mod:`lscloud.pseudonyms`), never their
identifier, and every private key is stored encrypted.
"""

from lscloud.store import Model, attributes as A


class Document(Model):
    """An official document (văn bản đi / đến): metadata, signatures, registration, assignment."""

    class Meta:
        table = "documents"

    id = A.UnicodeAttribute(hash_key=True)
    status = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # the last move's transitions: a refused retry of a move cut off after its write finishes its
    # audit, indexes and events (Aggregate._finish_moved)
    moved = A.JSONAttribute(null=True)


class DocumentAudit(Model):
    class Meta:
        table = "documents-audit"

    document_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class RegisterEntry(Model):
    """One line of a register book (sổ đăng ký), created only once: the number is taken by writing it.

    ``book`` is ``<agency>.<year>.<di|den>[.mat]``; ``number`` is zero-padded so the book lists in order.
    """

    class Meta:
        table = "documents-registers"

    book = A.UnicodeAttribute(hash_key=True)
    number = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class RegisterHead(Model):
    """Where a book's numbering stands: a hint only (the entries are the truth), so a stale head
    costs a retry, never a gap or a repeat."""

    class Meta:
        table = "documents-register-heads"

    book = A.UnicodeAttribute(hash_key=True)
    last = A.NumberAttribute()
    version = A.VersionAttribute()


class PkiState(Model):
    """The development PKI (root, signing CA, TSA): certificates and encrypted private keys."""

    class Meta:
        table = "documents-pki"

    name = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()
    version = A.VersionAttribute()


class SigningIdentity(Model):
    """A signer's certificate and encrypted key (dev custody), under their pseudonym or agency code."""

    class Meta:
        table = "documents-signers"
        reference = True   # read at every signature: another replica's re-issue is seen within peer_fresh_s

    holder = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()
    version = A.VersionAttribute()


class RateWindow(Model):
    """Public verifications counted per caller and window (:mod:`lscloud.ratelimit`): a subject is
    a pseudonym, the tick sweeps old windows."""

    class Meta:
        table = "documents-rate"
        ttl_max_s = 2 * 86_400      # a window lives two of its length; windows are at most a day

    subject = A.UnicodeAttribute(hash_key=True)
    window = A.UnicodeAttribute(range_key=True)
    hits = A.NumberAttribute(default=0)
    expires_at = A.TTLAttribute()
