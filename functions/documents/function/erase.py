"""An erasure request's part in official documents: ``erase(runtime, subject) -> report``
(:mod:`lscloud.erasure`; run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

A person is here as a signer (an officer whose sign-in subject is their CCCD): their certificate and
encrypted key (:class:`.models.SigningIdentity`, under the pseudonym of their subject), their name
and title in the signatures of the documents they signed; and as anyone named in a document's text.

- ERASED: the counters of public verifications the person made signed in (:class:`.models.RateWindow`,
  a pseudonym and a count): only a rate limit, which they reset;
- KEPT: the signer's certificate, which every document they signed embeds and which a verification
  is checked against (its key is encrypted and stays in custody), and the documents themselves,
  official documents of the agencies. No index leads from a person to the documents they signed or
  that name them, so those are not even counted: finding them would take reading every document.
"""

from __future__ import annotations

from lscloud import erasure
from lscloud.store import DoesNotExist, Model, attributes as A

from .models import RateWindow, SigningIdentity

KEPT_LAW = erasure.TO_CONFIRM
NO_SCAN_VI, NO_SCAN = "không tìm được nếu không đọc toàn bộ văn bản", "cannot be found without a full scan"
SIGNERS = "documents-signer"
"""The purpose of a signer's pseudonym (:meth:`.custody.DevCustody.person`): ``p-`` + it is their holder."""
WINDOWS = 100
"""Rate windows read at most (they expire within two of their length: a few at once)."""


class _Signer(Model):
    """:class:`.models.SigningIdentity` found by the holder key itself (not through the reference cache)."""

    class Meta:
        table = SigningIdentity.Meta.table

    holder = A.UnicodeAttribute(hash_key=True)


def _documents_kept() -> dict:
    return {"what": "văn bản đã ký hoặc có nêu người này (họ tên, chức vụ trong chữ ký, nội dung) / documents this "
                    "person signed or that name them (their name and title in the signatures, the text)",
            "why": f"văn bản hành chính của cơ quan; không có chỉ mục theo người: {NO_SCAN_VI} / the agencies' "
                   f"official documents; no index leads from a person to them: they {NO_SCAN}",
            "law": KEPT_LAW}


def erase(runtime, subject: erasure.Subject) -> dict:
    """Reset the subject's verification counters; say why their certificate and documents stay."""
    if subject.kind != "cccd":
        return {"found": 0, "erased": [], "kept": [_documents_kept()]}
    signer = _Signer.exists("p-" + subject.pseudonym(SIGNERS, "{value}"))
    erased = 0
    for window in RateWindow.query(subject.pseudonym(RateWindow.Meta.table, "sub:{value}"), limit=WINDOWS):
        try:
            RateWindow(window.subject, window.window).delete()   # a count only: a later hit starts a new one
            erased += 1
        except DoesNotExist:
            continue
    kept = [_documents_kept()]
    if signer:
        kept.insert(0, {
            "what": "chứng thư số của người ký (họ tên, chức vụ, cơ quan) và khóa bí mật đã mã hóa / the signer's "
                    "certificate (name, title, agency) and its encrypted private key",
            "why": "mọi văn bản người này đã ký đều chứa chứng thư, và việc kiểm tra chữ ký dựa vào nó / every "
                   "document they signed embeds the certificate, and verifying a signature relies on it",
            "law": KEPT_LAW})
    return {"found": int(signer) + erased,
            "erased": [{"what": "bộ đếm lượt kiểm tra văn bản của người này (giới hạn tần suất) / counters of the "
                                "document verifications this person made signed in (a rate limit)", "count": erased}],
            "kept": kept}
