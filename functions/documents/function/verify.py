"""Verifying any PDF's signatures against the published trust root: a report per signature.

pyHanko's validator reads the signatures; for each it reports the signer, the certificate chain to
a trusted root, the claimed signing time, the RFC 3161 timestamp, whether the signed bytes are
intact and whether the file was changed after signing beyond what later signatures may add, the
revocation status, and the PAdES level the signature reaches. A file that is not a readable PDF
raises :class:`Unreadable` (a 422 naming the body), never a 500. Anyone may send one: it is read
in a worker process with bounded memory and time (:mod:`.pdf_worker`), and one past those bounds
is refused as :class:`~.pdf_worker.TooCostly` (422).

Each claim rests on something checked, never on what a file merely contains:

* **modified after signing**: anything appended after a signature's revision other than later
  signature fields (with their appearances), the DSS, document timestamps and metadata counts,
  form field values included (:data:`DIFF_POLICY`);
* **level**: B-T needs the signature's timestamp to validate against our root; B-LT that the
  signer's chain validates at that time with only the revocation data the file carries (its
  DSS); B-LTA that a document timestamp after the signature validates against our root and the
  file as it covers already held that revocation data;
* **trusted**: validated now with the current CRLs, or, once the signer's certificate has expired
  (or the current check fails otherwise, short of a revocation), at the time the validated
  timestamp proves, with the embedded revocation data (``"validation": "long-term"``,
  ``validated_at``) — what B-LT is for.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime

from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY, FormUpdatingRule, SigFieldCreationRule, SigFieldModificationRule,
    StandardDiffPolicy)
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.errors import NoDSSFoundError, SignatureValidationError
from pyhanko.sign.validation.status import ModificationLevel

from lscloud import errors

from . import pdf_worker, signing

log = logging.getLogger("documents.verify")

# pyHanko's default policy accepts changed values and appearances of any form field after a
# signature (GenericFieldModificationRule, level FORM_FILLING): an amount in a signed form changed
# by an appended update read "unmodified". Without that rule, such a change is unexplained (OTHER);
# later signature fields stay FORM_FILLING, the DSS and document timestamps LTA_UPDATES.
DIFF_POLICY = StandardDiffPolicy(
    global_rules=DEFAULT_DIFF_POLICY.global_rules,
    form_rule=FormUpdatingRule(field_rules=[SigFieldCreationRule(), SigFieldModificationRule()]))
UNMODIFIED = (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES, ModificationLevel.FORM_FILLING)
# what pyHanko raises on a signature, a timestamp or a DSS it cannot check (a public caller's file)
CANNOT_CHECK = (SignatureValidationError, *pdf_worker.UNREADABLE)


class Unreadable(errors.Invalid):
    type = "unreadable-pdf"
    title, title_vi = "Not a readable PDF", "Không đọc được tệp PDF"


def _not_a_pdf(pdf: bytes) -> None:
    if not pdf.startswith(b"%PDF-"):
        raise Unreadable.at("", "the body is not a PDF (it does not start with %PDF-)", "Tệp gửi lên không phải là tệp PDF.")


def _reader(pdf: bytes):
    from pyhanko.pdf_utils.misc import PdfDecodeLimitError
    from pyhanko.pdf_utils.reader import PdfFileReader

    _not_a_pdf(pdf)
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False, decode_limits=pdf_worker.DECODE_LIMITS)
        sigs = list(reader.embedded_signatures)
        reader.root.get("/DSS")   # the catalog read here: a file without one is unreadable, not a 500 later
    except PdfDecodeLimitError:
        raise pdf_worker.too_costly("a stream decodes to more than this service reads") from None
    except pdf_worker.UNREADABLE as exc:   # a caller's odd PDF raised them: a 500 before
        raise Unreadable.at("", f"the PDF cannot be read: {type(exc).__name__}", "Không đọc được tệp PDF này.") from None
    return reader, sigs


def _names(cert) -> dict:
    subject = cert.subject.native
    return {"name": subject.get("common_name"), "title": subject.get("title"),
            "organization": subject.get("organization_name"), "serial": format(cert.serial_number, "x")}


def _embedded(trust: signing.Trust, reader, moment: datetime, revision: int | None = None):
    """A context trusting our root at ``moment`` whose revocation data is only what the file's DSS
    holds (as of ``revision``, else now): what a B-LT signature must carry. None without a DSS."""
    try:
        handler = reader if revision is None else reader.get_historical_resolver(revision)
        dss = DocumentSecurityStore.read_dss(handler)
        return dss.as_validation_context({
            "trust_roots": [signing.asn1_cert(trust.root)],
            "other_certs": [signing.asn1_cert(c) for c in trust.intermediates],
            "moment": moment, "allow_fetching": False, "revocation_mode": "hard-fail"})
    except NoDSSFoundError:
        return None
    except CANNOT_CHECK as exc:
        log.info("the DSS cannot be read: %s", type(exc).__name__)
        return None


def _modified(status) -> bool:
    # docmdp_ok is None for document timestamps (no DocMDP of their own): only signatures have one
    return (not status.intact) or status.modification_level not in UNMODIFIED or status.docmdp_ok is False


def _proven_stamps(reader, stamps, trust: signing.Trust) -> list[tuple[int, datetime]]:
    """The document timestamps that validate, newest first, as (signed revision, time). The newest
    is checked now against our root and the current CRLs; an older one (whose TSA certificate may
    have expired since) also at the time a later proven one shows, with the DSS it covers. One
    from another TSA (anyone may append one) proves nothing and is left out."""
    proven: list[tuple[int, datetime]] = []
    for stamp in sorted(stamps, key=lambda s: s.signed_revision, reverse=True):
        contexts = (trust.validation_context(), *(_embedded(trust, reader, t, rev) for rev, t in proven))
        for ctx in contexts:
            if ctx is None:
                continue
            try:
                st = validate_pdf_timestamp(stamp, validation_context=ctx, diff_policy=DIFF_POLICY)
            except CANNOT_CHECK as exc:
                log.info("document timestamp %s could not be validated: %s", stamp.field_name, type(exc).__name__)
                break
            if st.intact and st.valid and st.trusted and not _modified(st):
                proven.append((stamp.signed_revision, st.timestamp))
                break
    return proven


def _validate(sig, signer_ctx, ts_ctx, *, skip_diff: bool):
    return validate_pdf_signature(sig, signer_validation_context=signer_ctx, ts_validation_context=ts_ctx,
                                  diff_policy=DIFF_POLICY, skip_diff=skip_diff)


def _ts_ok(ts) -> bool:
    return bool(ts and ts.intact and ts.valid and ts.trusted)


def _stamped(sig, status, trust: signing.Trust, reader, proven):
    """(time, context) at which the signature's own timestamp validates: now, or, once its TSA
    certificate no longer does, at the time of a proven document timestamp covering it."""
    if _ts_ok(status.timestamp_validity):
        return status.timestamp_validity.timestamp, trust.validation_context()
    if status.timestamp_validity is None:
        return None, None
    for rev, when in proven:
        ctx = _embedded(trust, reader, when, rev) if rev > sig.signed_revision else None
        if ctx is not None and _ts_ok(_validate(sig, trust.validation_context(), ctx, skip_diff=True)
                                      .timestamp_validity):
            return status.timestamp_validity.timestamp, ctx
    return None, None


def _at_stamp(sig, trust: signing.Trust, reader, when, ts_ctx, revision=None):
    """The signature validated at ``when`` with only the embedded revocation data (or None)."""
    ctx = _embedded(trust, reader, when, revision)
    if ctx is None:
        return None
    status = _validate(sig, ctx, ts_ctx, skip_diff=True)
    return status if status.trusted and status.valid else None


def _one(sig, trust: signing.Trust, reader, proven) -> dict:
    out = {"field": sig.field_name, "type": sig.sig_object_type.name if hasattr(sig.sig_object_type, "name")
           else str(sig.sig_object_type)}
    try:
        status = _validate(sig, trust.validation_context(), trust.validation_context(), skip_diff=False)
    except CANNOT_CHECK as exc:
        log.info("signature %s could not be validated: %s", sig.field_name, type(exc).__name__)
        return {**out, "valid": False, "intact": False, "trusted": False, "modified_after_signing": True,
                "error": f"the signature cannot be checked: {type(exc).__name__}"}
    try:
        when, ts_ctx = _stamped(sig, status, trust, reader, proven)
        lt = _at_stamp(sig, trust, reader, when, ts_ctx) if when else None
        lta = lt is not None and any(rev > sig.signed_revision and _at_stamp(sig, trust, reader, when, ts_ctx, rev)
                                     for rev, _ in proven)
    except CANNOT_CHECK as exc:   # the evidence cannot be read: no level beyond B-B is claimed
        log.info("signature %s: its timestamp or revocation data could not be checked: %s", sig.field_name,
                 type(exc).__name__)
        when, lt, lta = None, None, False
    modified = _modified(status)
    revoked = getattr(status, "revocation_details", None) is not None
    # a revoked certificate gets no long-term pass: when it was revoked is not weighed here
    long_term = not status.trusted and not revoked and lt is not None
    trusted = bool(status.trusted) or long_term
    shown = lt if long_term else status
    cert = status.signing_cert
    path = getattr(shown, "validation_path", None)
    valid = bool(status.intact and status.valid and trusted and not modified)
    ts = status.timestamp_validity
    return {
        **out,
        "signer": _names(cert) if cert is not None else None,
        "chain": [c.subject.native.get("common_name") for c in path] if path is not None else [],
        "trusted": trusted,
        "intact": bool(status.intact),
        "valid": valid,
        "validation": "long-term" if long_term else "current",
        "validated_at": when.isoformat() if long_term else None,
        "signing_time": status.signer_reported_dt.isoformat() if status.signer_reported_dt else None,
        "timestamp": {"time": ts.timestamp.isoformat(), "trusted": when is not None} if ts else None,
        "coverage": status.coverage.name if status.coverage else None,
        "modification_level": status.modification_level.name if status.modification_level else None,
        "modified_after_signing": bool(modified),
        "revocation": "revoked" if revoked else ("good" if trusted else "unknown"),
        "level": "B-LTA" if lta else "B-LT" if lt else "B-T" if when else "B-B",
        "bottom_line": bool(valid and shown.bottom_line),
    }


def verify(pdf: bytes, trust: signing.Trust | None) -> dict:
    """The report (:func:`report`), made in a worker process (:mod:`.pdf_worker`). ``trust`` None:
    only whether the file can be read at all (a refusal, or a report of no signature)."""
    _not_a_pdf(pdf)   # no worker's time for what is plainly no PDF
    return pdf_worker.run(_report_of, pdf, trust.portable() if trust is not None else None)


def _report_of(pdf: bytes, trust: dict | None) -> dict:
    return report(pdf, signing.Trust.from_portable(trust) if trust is not None else None)


def report(pdf: bytes, trust: signing.Trust) -> dict:
    """The report: one entry per signature (document timestamps are counted, not listed). Reads
    ``pdf`` in this process: :func:`verify` for a PDF from outside."""
    reader, sigs = _reader(pdf)
    regular = [s for s in sigs if s.sig_object.get("/Type") != "/DocTimeStamp"]
    stamps = [s for s in sigs if s.sig_object.get("/Type") == "/DocTimeStamp"]
    try:
        proven = _proven_stamps(reader, stamps, trust)
    except CANNOT_CHECK as exc:   # a DSS or revision pyHanko cannot walk: no timestamp is proven
        log.info("document timestamps could not be validated: %s", type(exc).__name__)
        proven = []
    reports = [_one(s, trust, reader, proven) for s in regular]
    return {"signatures": reports, "document_timestamps": len(stamps),
            "document_timestamps_trusted": len(proven),
            "valid": bool(reports) and all(r.get("valid") for r in reports),
            "trust_root": trust.root.subject.rfc4514_string()}
