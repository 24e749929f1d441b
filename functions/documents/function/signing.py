"""PAdES signatures with pyHanko: one incremental update per signature, so earlier signatures stay
valid; a visible appearance with the signer's name, title and time (and the agency's seal when the
records office issues the document); an RFC 3161 timestamp and the revocation information embedded
(PAdES B-LT), and a document timestamp on top (B-LTA) so the evidence can be renewed later.

The signing key reaches this module as a pyHanko :class:`~pyhanko.sign.signers.Signer`: here the
development key custody's in-memory signer, in the cluster a ``PKCS11Signer`` (HSM) or a remote
signing service's signer behind the same interface (:mod:`.custody`).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from asn1crypto import crl as asn1_crl, keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from .pki import Issued

FONT_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                   "/usr/share/fonts/dejavu/DejaVuSans.ttf")
BOX_W, BOX_H, MARGIN = 170, 62, 28


def asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def asn1_key(issued: Issued) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(issued.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@dataclass(frozen=True)
class Trust:
    """What a signature is built and checked against: the root, the intermediate CAs, the CRLs."""

    root: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]

    def validation_context(self, **options) -> ValidationContext:
        return ValidationContext(
            trust_roots=[asn1_cert(self.root)], other_certs=[asn1_cert(c) for c in self.intermediates],
            crls=[asn1_crl.CertificateList.load(c.public_bytes(serialization.Encoding.DER)) for c in self.crls],
            allow_fetching=False, revocation_mode="hard-fail", **options)


@dataclass(frozen=True)
class Appearance:
    """What the visible signature box says, and where it goes (slot 0, 1, 2 … along the last page)."""

    name: str
    title: str | None
    agency: str | None
    slot: int
    seal: bool = False


def dev_timestamper(tsa: Issued, trust: Trust) -> TimeStamper:
    """The development timestamp authority (in the function's process); the cluster names an RFC 3161
    service instead (``pyhanko.sign.timestamps.HTTPTimeStamper``)."""
    return DummyTimeStamper(tsa_cert=asn1_cert(tsa.cert), tsa_key=asn1_key(tsa),
                            certs_to_embed=SimpleCertificateStore.from_certs(
                                [asn1_cert(c) for c in trust.intermediates]))


def simple_signer(issued: Issued, trust: Trust) -> signers.Signer:
    return signers.SimpleSigner(signing_cert=asn1_cert(issued.cert), signing_key=asn1_key(issued),
                                cert_registry=SimpleCertificateStore.from_certs(
                                    [asn1_cert(c) for c in trust.intermediates]))


def _font():
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory

    for path in FONT_CANDIDATES:
        if os.path.exists(path):
            return GlyphAccumulatorFactory(path)
    return None  # no Unicode font: pyHanko's built-in Courier (diacritics may be lost)


def _style(a: Appearance) -> TextStampStyle:
    lines = ["ĐÓNG DẤU / SEAL: %(agency)s" if a.seal else "Ký bởi / Signed by: %(name)s"]
    if a.title and not a.seal:
        lines.append("Chức vụ / Title: %(title)s")
    if a.agency and not a.seal:
        lines.append("Cơ quan / Agency: %(agency)s")
    lines.append("Thời gian / Time: %(ts)s")
    font = _font()
    box = TextBoxStyle(font=font, font_size=7) if font else TextBoxStyle(font_size=7)
    return TextStampStyle(stamp_text="\n".join(lines), text_box_style=box, timestamp_format="%d/%m/%Y %H:%M:%S %Z",
                          border_width=2 if a.seal else 1,
                          background=None)


def _field_box(slot: int) -> tuple[int, int, int, int]:
    col, row = slot % 3, slot // 3
    x1 = MARGIN + col * (BOX_W + 8)
    y1 = MARGIN + row * (BOX_H + 8)
    return x1, y1, x1 + BOX_W, y1 + BOX_H


def sign_pdf(pdf: bytes, *, signer: signers.Signer, trust: Trust, timestamper: TimeStamper, field: str,
             appearance: Appearance, reason: str, location: str = "Lạng Sơn", lta: bool = True) -> bytes:
    """``pdf`` with one more PAdES signature (an incremental update). Raises pyHanko's errors
    (``PdfReadError``, ``SigningError``) for a PDF that cannot be signed."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    meta = signers.PdfSignatureMetadata(
        field_name=field, subfilter=fields.SigSeedSubFilter.PADES, reason=reason, location=location,
        name=appearance.name, embed_validation_info=True, use_pades_lta=lta,
        validation_context=trust.validation_context())
    pdf_signer = signers.PdfSigner(
        meta, signer=signer, timestamper=timestamper, stamp_style=_style(appearance),
        new_field_spec=fields.SigFieldSpec(field, box=_field_box(appearance.slot), on_page=-1))
    out = io.BytesIO()
    pdf_signer.sign_pdf(writer, output=out, appearance_text_params={
        "name": appearance.name, "title": appearance.title or "", "agency": appearance.agency or ""})
    return out.getvalue()
