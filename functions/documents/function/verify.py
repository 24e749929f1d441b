"""Verifying any PDF's signatures against the published trust root: a report per signature.

pyHanko's validator reads the signatures; for each it reports the signer, the certificate chain to
a trusted root, the claimed signing time, the RFC 3161 timestamp, whether the signed bytes are
intact and whether the file was changed after signing beyond what later signatures may add, the
revocation status from the embedded CRLs, and the PAdES level the signature reaches. A file that
is not a readable PDF raises :class:`Unreadable` (a 422 naming the body), never a 500.
"""

from __future__ import annotations

import io
import logging

from lscloud import errors

from . import signing

log = logging.getLogger("documents.verify")


class Unreadable(errors.Invalid):
    type = "unreadable-pdf"
    title, title_vi = "Not a readable PDF", "Không đọc được tệp PDF"


def _reader(pdf: bytes):
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    if not pdf.startswith(b"%PDF-"):
        raise Unreadable.at("", "the body is not a PDF (it does not start with %PDF-)")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = list(reader.embedded_signatures)
        has_dss = "/DSS" in reader.root
    # pyHanko asserts a catalog is a dictionary and recurses into nested arrays: a public caller's
    # odd PDF raised AssertionError, RecursionError or KeyError (no /Root), a 500
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, AssertionError,
            RecursionError) as exc:
        raise Unreadable.at("", f"the PDF cannot be read: {type(exc).__name__}") from None
    return reader, sigs, has_dss


def _names(cert) -> dict:
    subject = cert.subject.native
    return {"name": subject.get("common_name"), "title": subject.get("title"),
            "organization": subject.get("organization_name"), "serial": format(cert.serial_number, "x")}


def _level(sig, has_dss: bool, ts_ok: bool) -> str:
    if not ts_ok:
        return "B-B"
    return "B-LT" if has_dss else "B-T"


def _one(sig, trust: signing.Trust, has_dss: bool, lta: bool) -> dict:
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import ModificationLevel

    out = {"field": sig.field_name, "type": sig.sig_object_type.name if hasattr(sig.sig_object_type, "name")
           else str(sig.sig_object_type)}
    try:
        status = validate_pdf_signature(sig, signer_validation_context=trust.validation_context(),
                                        ts_validation_context=trust.validation_context())
    except (SignatureValidationError, ValueError, KeyError, TypeError) as exc:
        log.info("signature %s could not be validated: %s", sig.field_name, type(exc).__name__)
        return {**out, "valid": False, "intact": False, "trusted": False, "modified_after_signing": True,
                "error": f"the signature cannot be checked: {type(exc).__name__}"}
    cert = status.signing_cert
    path = getattr(status, "validation_path", None)
    chain = [c.subject.native.get("common_name") for c in path] if path is not None else []
    ts = status.timestamp_validity
    ts_ok = bool(ts and ts.intact and ts.valid and ts.trusted)
    modified = (not status.intact) or status.modification_level not in (
        ModificationLevel.NONE, ModificationLevel.LTA_UPDATES, ModificationLevel.FORM_FILLING) or \
        not status.docmdp_ok
    revoked = getattr(status, "revocation_details", None) is not None
    return {
        **out,
        "signer": _names(cert) if cert is not None else None,
        "chain": chain,
        "trusted": bool(status.trusted),
        "intact": bool(status.intact),
        "valid": bool(status.intact and status.valid and status.trusted and not modified),
        "signing_time": status.signer_reported_dt.isoformat() if status.signer_reported_dt else None,
        "timestamp": {"time": ts.timestamp.isoformat(), "trusted": ts_ok} if ts else None,
        "coverage": status.coverage.name if status.coverage else None,
        "modification_level": status.modification_level.name if status.modification_level else None,
        "modified_after_signing": bool(modified),
        "revocation": "revoked" if revoked else ("good" if status.trusted else "unknown"),
        "level": _level(sig, has_dss, ts_ok) + ("A" if lta and ts_ok and has_dss else ""),
        "bottom_line": bool(status.bottom_line and not modified),
    }


def verify(pdf: bytes, trust: signing.Trust) -> dict:
    """The report: one entry per signature (document timestamps are counted, not listed)."""
    reader, sigs, has_dss = _reader(pdf)
    regular = [s for s in sigs if s.sig_object.get("/Type") != "/DocTimeStamp"]
    doc_ts = len(sigs) - len(regular)
    reports = [_one(s, trust, has_dss, doc_ts > 0) for s in regular]
    return {"signatures": reports, "document_timestamps": doc_ts,
            "valid": bool(reports) and all(r.get("valid") for r in reports),
            "trust_root": trust.root.subject.rfc4514_string()}
