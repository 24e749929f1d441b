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

import asyncio
import io
import logging
from dataclasses import replace
from datetime import datetime

from asn1crypto import crl as asn1_crl, ocsp as asn1_ocsp, x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY, FormUpdatingRule, SigFieldCreationRule, SigFieldModificationRule,
    StandardDiffPolicy)
from pyhanko.sign.validation import (
    DocumentSecurityStore, generic_cms, validate_pdf_signature, validate_pdf_timestamp)
from pyhanko.sign.validation.errors import NoDSSFoundError, SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import report_seed_value_validation
from pyhanko.sign.validation.status import ModificationLevel, PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

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


def _modified(status) -> bool:
    # docmdp_ok is None for document timestamps (no DocMDP of their own): only signatures have one
    return (not status.intact) or status.modification_level not in UNMODIFIED or status.docmdp_ok is False


def _sync(coro):
    return asyncio.run(coro)


class _Evidence:
    """What one report checks against, each built once: the context validating now (our root,
    intermediates and current CRLs), the DSS of each revision read, and a context per DSS content
    and moment. Every signature and timestamp is still checked in each context its claim needs;
    reading the DSS and building a context again for each check are what is gone."""

    def __init__(self, trust: signing.Trust, reader):
        self.trust, self.reader = trust, reader
        self.now = trust.validation_context()
        self._dss: dict[int | None, tuple | None] = {}
        self._parsed: dict[tuple, tuple] = {}
        self._contexts: dict[tuple, object] = {}

    def _read_dss(self, revision: int | None) -> tuple | None:
        """The DER of the DSS's certificates, CRLs and OCSP responses as of ``revision`` (else now),
        read as pyHanko's ``DocumentSecurityStore.as_validation_context`` reads them; None without one."""
        try:
            handler = self.reader if revision is None else self.reader.get_historical_resolver(revision)
            dss = DocumentSecurityStore.read_dss(handler)
            return tuple(tuple(ref.get_object().read_data(purpose) for ref in refs) for refs, purpose in (
                (dss.certs.values(), DecodePurpose.CERTIFICATE), (dss.crls, DecodePurpose.CRL),
                (dss.ocsps, DecodePurpose.OCSP_RESPONSE)))
        except NoDSSFoundError:
            return None
        except CANNOT_CHECK as exc:
            log.info("the DSS cannot be read: %s", type(exc).__name__)
            return None

    def embedded(self, moment: datetime, revision: int | None = None):
        """A context trusting our root at ``moment`` whose revocation data is only what the file's DSS
        holds (as of ``revision``, else now): what a B-LT signature must carry. None without a DSS.
        Revisions whose DSS holds the same data (the last document timestamp's and the file's,
        as a rule) share its parse and their contexts."""
        if revision not in self._dss:
            self._dss[revision] = self._read_dss(revision)
        dss = self._dss[revision]
        if dss is None:
            return None
        if (dss, moment) not in self._contexts:
            self._contexts[dss, moment] = self._context(dss, moment)
        return self._contexts[dss, moment]

    def _context(self, dss: tuple, moment: datetime):
        try:
            if dss not in self._parsed:
                certs, crls, ocsps = dss
                self._parsed[dss] = ([asn1_x509.Certificate.load(c) for c in certs],
                                     [asn1_crl.CertificateList.load(c) for c in crls],
                                     [asn1_ocsp.OCSPResponse.load(o) for o in ocsps])
            certs, crls, ocsps = self._parsed[dss]
            parsed = self.trust.parsed
            return ValidationContext(trust_roots=[parsed.root], other_certs=[*certs, *parsed.intermediates],
                                     crls=crls, ocsps=ocsps, moment=moment, allow_fetching=False,
                                     revocation_mode="hard-fail")
        except CANNOT_CHECK as exc:
            log.info("the DSS cannot be read: %s", type(exc).__name__)
            return None


def _proven_stamps(evidence: _Evidence, stamps) -> list[tuple[int, datetime]]:
    """The document timestamps that validate, newest first, as (signed revision, time). The newest
    is checked now against our root and the current CRLs; an older one (whose TSA certificate may
    have expired since) also at the time a later proven one shows, with the DSS it covers. One
    from another TSA (anyone may append one) proves nothing and is left out."""
    proven: list[tuple[int, datetime]] = []
    for stamp in sorted(stamps, key=lambda s: s.signed_revision, reverse=True):
        for i, (rev, t) in enumerate([(None, None), *proven]):
            ctx = evidence.now if i == 0 else evidence.embedded(t, rev)   # built only when the ones before fail
            if ctx is None:
                continue
            try:   # the changes after the stamp are the same in every context: reviewed at the first
                st = validate_pdf_timestamp(stamp, validation_context=ctx, diff_policy=DIFF_POLICY, skip_diff=i > 0)
            except CANNOT_CHECK as exc:
                log.info("document timestamp %s could not be validated: %s", stamp.field_name, type(exc).__name__)
                break
            if st.intact and st.valid and st.trusted and not _modified(st):
                proven.append((stamp.signed_revision, st.timestamp))
                break
    return proven


def _ts_ok(ts) -> bool:
    return bool(ts and ts.intact and ts.valid and ts.trusted)


# A signature's status in another context is pyHanko's validate_pdf_signature with only the part
# that reads that context done again (its steps, pyHanko 0.38: pdf_embedded.async_validate_pdf_signature):
# the digest, coverage, changes after signing and the CMS's own checks do not depend on it, and
# the timestamp token is checked once per context it is checked in, not once per signer context.

def _retimed(sig, status, ts_ctx):
    """``status`` with the signature's timestamps checked in ``ts_ctx``."""
    return replace(status, **_sync(generic_cms.collect_timing_info(sig.signer_info, ts_ctx,
                                                                   raw_digest=sig.compute_digest)))


def _signer_in(sig, timed, ctx):
    """``timed`` (a status whose timestamps were checked where they must be) with the signer's
    certificate validated in ``ctx``: its chain, revocation and the seed value's constraints."""
    checked = _sync(generic_cms.cms_basic_validation(
        sig.signed_data, raw_digest=sig.compute_digest(), validation_context=ctx,
        key_usage_settings=PdfSignatureStatus.default_usage_constraints(None)))
    checked.update(report_seed_value_validation(sig, checked["validation_path"], _ts_ok(timed.timestamp_validity)))
    return replace(timed, **checked)


def _stamped(sig, status, evidence: _Evidence, proven):
    """(time, status) where the signature's own timestamp validates: now, or, once its TSA
    certificate no longer does, at the time of a proven document timestamp covering it."""
    if _ts_ok(status.timestamp_validity):
        return status.timestamp_validity.timestamp, status
    if status.timestamp_validity is None:
        return None, None
    for rev, when in proven:
        ctx = evidence.embedded(when, rev) if rev > sig.signed_revision else None
        timed = _retimed(sig, status, ctx) if ctx is not None else None
        if timed is not None and _ts_ok(timed.timestamp_validity):
            return status.timestamp_validity.timestamp, timed
    return None, None


def _trusted_in(sig, timed, ctx):
    """The signature validated in ``ctx`` (at a timestamp's time, with only the embedded revocation
    data), or None: no such context, or the signer's chain does not validate in it."""
    if ctx is None:
        return None
    status = _signer_in(sig, timed, ctx)
    return status if status.trusted and status.valid else None


def _one(sig, evidence: _Evidence, proven) -> dict:
    out = {"field": sig.field_name, "type": sig.sig_object_type.name if hasattr(sig.sig_object_type, "name")
           else str(sig.sig_object_type)}
    try:
        status = validate_pdf_signature(sig, signer_validation_context=evidence.now,
                                        ts_validation_context=evidence.now, diff_policy=DIFF_POLICY)
    except CANNOT_CHECK as exc:
        log.info("signature %s could not be validated: %s", sig.field_name, type(exc).__name__)
        return {**out, "valid": False, "intact": False, "trusted": False, "modified_after_signing": True,
                "error": f"the signature cannot be checked: {type(exc).__name__}"}
    try:
        when, timed = _stamped(sig, status, evidence, proven)
        lt_ctx = evidence.embedded(when) if when else None
        lt = _trusted_in(sig, timed, lt_ctx)
        # a later document timestamp's revision whose DSS is the file's is the same check, done
        lta = lt is not None and any(ctx is lt_ctx or _trusted_in(sig, timed, ctx) for ctx in
                                     (evidence.embedded(when, rev) for rev, _ in proven if rev > sig.signed_revision))
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
    evidence = _Evidence(trust, reader)
    try:
        proven = _proven_stamps(evidence, stamps)
    except CANNOT_CHECK as exc:   # a DSS or revision pyHanko cannot walk: no timestamp is proven
        log.info("document timestamps could not be validated: %s", type(exc).__name__)
        proven = []
    reports = [_one(s, evidence, proven) for s in regular]
    return {"signatures": reports, "document_timestamps": len(stamps),
            "document_timestamps_trusted": len(proven),
            "valid": bool(reports) and all(r.get("valid") for r in reports),
            "trust_root": trust.root.subject.rfc4514_string()}
