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
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from asn1crypto import crl as asn1_crl, keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from lscloud import pdfcanvas
from lscloud.workdays import TZ

from .pki import Issued

BOX_W, BOX_H, MARGIN = 170, 62, 28


def asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    """``cert`` as pyHanko takes it, parsed whole now (:func:`parsed_whole`)."""
    return parsed_whole(asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)))


def parsed_whole(cert: asn1_x509.Certificate) -> asn1_x509.Certificate:
    """``cert`` with every part parsed. asn1crypto parses lazily and without a lock, and the
    certificates held across requests (the timestamper's, a signer's registry) are read by every
    signature: two signatures reading one of them for the first time at once broke each other's
    parse (``KeyError: No field numbered 2``, a 500)."""
    cert.native               # every field, so no later read parses
    cert.key_identifier       # and the extensions' attributes, set once here (_set_extensions)
    cert.issuer.hashable, cert.subject.hashable   # what a certificate registry keys by
    return cert


def asn1_key(issued: Issued) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(issued.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


class Parsed(NamedTuple):
    root: asn1_x509.Certificate
    intermediates: tuple[asn1_x509.Certificate, ...]
    crls: tuple[asn1_crl.CertificateList, ...]


@dataclass(frozen=True)
class Trust:
    """What a signature is built and checked against: the root, the intermediate CAs, the CRLs.
    ``moment``: the time its validation contexts validate at (None: now); a trust for another day
    is ``dataclasses.replace(trust, moment=...)``."""

    root: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]
    moment: datetime | None = None   # validate as of then, not now

    @cached_property
    def parsed(self) -> Parsed:
        """The parts as pyHanko takes them, parsed once: a verification builds a context for each
        moment and revision it checks at, and parsing (names above all) was most of each build.
        A trust is made per use (the custody's ``trust()``): its parsed parts are not shared
        between threads."""
        der = serialization.Encoding.DER
        return Parsed(asn1_cert(self.root), tuple(asn1_cert(c) for c in self.intermediates),
                      tuple(asn1_crl.CertificateList.load(c.public_bytes(der)) for c in self.crls))

    def validation_context(self, **options) -> ValidationContext:
        if self.moment is not None:
            options.setdefault("moment", self.moment)
        parsed = self.parsed
        return ValidationContext(
            trust_roots=[parsed.root], other_certs=list(parsed.intermediates), crls=list(parsed.crls),
            allow_fetching=False, revocation_mode="hard-fail", **options)

    def portable(self) -> dict:
        """This trust as plain data for a worker process (:meth:`from_portable`): the DER of each
        part, and its moment."""
        der = serialization.Encoding.DER
        return {"root": self.root.public_bytes(der), "intermediates": [c.public_bytes(der) for c in self.intermediates],
                "crls": [c.public_bytes(der) for c in self.crls], "moment": self.moment}

    @classmethod
    def from_portable(cls, p: dict) -> "Trust":
        return cls(x509.load_der_x509_certificate(p["root"]),
                   tuple(x509.load_der_x509_certificate(c) for c in p["intermediates"]),
                   tuple(x509.load_der_x509_crl(c) for c in p["crls"]), p["moment"])


@dataclass(frozen=True)
class Appearance:
    """What the visible signature box says, and where it goes (slot 0, 1, 2 … along the last page).

    ``certified``: the name the signer's certificate gives them. When it is set, ``name`` and
    ``title`` are only what the signer stated (a request's body) and the box says so: ``tự khai``
    (self-declared), under the certified name. Without it (a seal, whose ``name`` is the
    directory's), ``name`` is what the certificate says."""

    name: str | None
    title: str | None
    agency: str | None
    slot: int
    seal: bool = False
    certified: str | None = None


class DevTimestampAuthority(DummyTimeStamper):
    """The development timestamp authority, in the function's process: pyHanko's dummy TSA with its
    RSA key loaded once (the dummy reloads it for every token, ~80 ms each: half a signature's time)."""

    def __init__(self, tsa: Issued, certs_to_embed: SimpleCertificateStore):
        super().__init__(tsa_cert=asn1_cert(tsa.cert), tsa_key=asn1_key(tsa), certs_to_embed=certs_to_embed)
        self._key = tsa.key

    def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime):
        from asn1crypto import cms, core
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
        from pyhanko.sign import general
        from pyhanko.sign.general import get_pyca_cryptography_hash, simple_cms_attribute

        md = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        md.update(tst_info_data)
        signed_attrs = cms.CMSAttributes([
            simple_cms_attribute("content_type", "tst_info"),
            simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
            simple_cms_attribute("signing_certificate", general.as_signing_certificate(self.tsa_cert)),
            simple_cms_attribute("message_digest", md.finalize()),
        ])
        signature = self._key.sign(signed_attrs.dump(), PKCS1v15(), get_pyca_cryptography_hash(md_algorithm.upper()))
        return signature, signed_attrs


def dev_timestamper(tsa: Issued, trust: Trust) -> TimeStamper:
    """The development timestamp authority; the cluster names an RFC 3161 service instead
    (``pyhanko.sign.timestamps.HTTPTimeStamper``). Made ready before it is shared: pyHanko's
    timestamper keeps a dummy token of its first use and the certificates it holds, taken from
    that token unparsed, which the first signatures at once then parsed together (a 500)."""
    import asyncio

    from pyhanko.sign import DEFAULT_MD

    stamper = DevTimestampAuthority(tsa, SimpleCertificateStore.from_certs([asn1_cert(c) for c in trust.intermediates]))
    asyncio.run(stamper.async_dummy_response(DEFAULT_MD)).native
    for cert in [*stamper._certs.values(), *stamper.cert_registry]:   # pyHanko keeps no public list of them
        parsed_whole(cert)
    return stamper


def simple_signer(issued: Issued, trust: Trust) -> signers.Signer:
    return signers.SimpleSigner(signing_cert=asn1_cert(issued.cert), signing_key=asn1_key(issued),
                                cert_registry=SimpleCertificateStore.from_certs(
                                    [asn1_cert(c) for c in trust.intermediates]))


FONT_SIZE = 7
_font_lock = threading.Lock()
_font_name: list[str] = []


def _font() -> str:
    """A Unicode font registered with reportlab (DejaVu Sans when installed, for Vietnamese)."""
    with _font_lock:
        if not _font_name:
            from reportlab.pdfbase import pdfmetrics
            from reportlab.pdfbase.ttfonts import TTFont

            name = "Helvetica"   # no Unicode font on the machine: diacritics may be lost
            path = pdfcanvas.find_font("DejaVuSans.ttf")
            if path:
                pdfmetrics.registerFont(TTFont("SigSans", path))
                name = "SigSans"
            _font_name.append(name)
        return _font_name[0]


def _lines(a: Appearance, at: datetime) -> list[str]:
    when = at.astimezone(TZ).strftime("%d/%m/%Y %H:%M:%S (UTC+7)")
    if a.seal:
        return ["CƠ QUAN BAN HÀNH / ISSUED BY", a.name, a.title or "", f"Thời gian: {when}"]
    if a.certified is None:
        out = [f"Ký bởi: {a.name}"] + ([f"Chức vụ: {a.title}"] if a.title else [])
    else:
        out = [f"Ký số: {a.certified}"]
        if a.name:
            out.append(f"Họ tên (tự khai): {a.name}")
        if a.title:
            out.append(f"Chức vụ (tự khai): {a.title}")
    if a.agency:
        out.append(f"Cơ quan: {a.agency}")
    return out + [f"Thời gian: {when}"]


def appearance_pdf(a: Appearance, at: datetime) -> bytes:
    """The visible box as a one-page PDF (reportlab: a real Unicode font, text shortened to fit)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    font, buf = _font(), io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(BOX_W, BOX_H))
    red = (0.78, 0.0, 0.0)
    c.setStrokeColorRGB(*(red if a.seal else (0.1, 0.1, 0.4)))
    c.setLineWidth(1.6 if a.seal else 0.8)
    c.rect(1, 1, BOX_W - 2, BOX_H - 2)
    c.setFillColorRGB(*(red if a.seal else (0, 0, 0)))
    y = BOX_H - 12
    for line in _lines(a, at):
        while line and stringWidth(line, font, FONT_SIZE) > BOX_W - 10:
            line = line[:-2] + "…"
        c.setFont(font, FONT_SIZE)
        c.drawString(5, y, line)
        y -= FONT_SIZE + 3
    c.showPage()
    pdfcanvas.save(c)   # the font is subset as it saves: one save at a time in the process
    return buf.getvalue()


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
    with tempfile.TemporaryDirectory(prefix="sig-appearance-") as tmp:
        box = Path(tmp) / "box.pdf"      # pyHanko imports a static appearance from a file
        box.write_bytes(appearance_pdf(appearance, datetime.now(timezone.utc)))
        return _sign(writer, StaticStampStyle.from_pdf_file(str(box), border_width=0), signer=signer, trust=trust,
                     timestamper=timestamper, field=field, appearance=appearance, reason=reason, location=location,
                     lta=lta)


def _sign(writer, style, *, signer, trust, timestamper, field, appearance, reason, location, lta) -> bytes:
    meta = signers.PdfSignatureMetadata(
        # no /Name: it held the name a caller typed, which a reader shows as the signer; ISO
        # 32000-1 (12.8.1) has it used only when the certificate cannot name the signer
        field_name=field, subfilter=fields.SigSeedSubFilter.PADES, reason=reason, location=location,
        name=None, embed_validation_info=True, use_pades_lta=lta,
        validation_context=trust.validation_context())
    pdf_signer = signers.PdfSigner(
        meta, signer=signer, timestamper=timestamper, stamp_style=style,
        new_field_spec=fields.SigFieldSpec(field, box=_field_box(appearance.slot), on_page=-1))
    out = io.BytesIO()
    pdf_signer.sign_pdf(writer, output=out)
    return out.getvalue()
