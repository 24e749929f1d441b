"""Helpers for the documents tests: PDFs made with reportlab, and the independent validators —
poppler's ``pdfsig`` (NSS) with the published dev root imported into a fresh NSS database, and
OpenSSL's ``ts -verify`` for a signature's RFC 3161 timestamp token."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
from pathlib import Path

from asn1crypto import cms
from reportlab.pdfgen import canvas


def make_pdf(text: str = "Quyết định cấp giấy phép", pages: int = 1) -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(595, 842))
    for i in range(pages):
        c.drawString(72, 760, f"{text} - page {i + 1}")
        c.showPage()
    c.save()
    return buf.getvalue()


def with_attachment(pdf: bytes, size: int) -> bytes:
    """``pdf`` with a file of ``size`` random bytes attached, stored as is: incompressible, as a
    scan is, so the document is as large on the wire as on disk."""
    from pyhanko.pdf_utils import embed
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    embed.embed_file(w, embed.FileSpec(file_spec_string="ban-chup.bin", embedded_data=embed.EmbeddedFileObject.from_file_data(
        w, os.urandom(size), compress=False, mime_type="application/octet-stream")))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def nss_db(root_pem: str, where: Path) -> Path:
    """A fresh NSS database that trusts only the published dev root."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "root.pem").write_text(root_pem)
    subprocess.run(["certutil", "-N", "-d", f"sql:{where}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{where}", "-n", "lscloud-dev-root", "-t", "CT,C,C",
                    "-i", str(where / "root.pem")], check=True, capture_output=True)
    return where


def pdfsig(pdf: bytes, db: Path, tmp: Path) -> list[dict]:
    """pdfsig's verdict per signature: field, signer, signature validation, certificate validation."""
    path = tmp / f"check-{hashlib.sha256(pdf).hexdigest()[:12]}.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdfsig", "-nssdir", f"sql:{db}", str(path)], capture_output=True,
                         text=True, timeout=120).stdout
    sigs = []
    for block in re.split(r"^Signature #\d+:\s*$", out, flags=re.M)[1:]:
        def grab(label):
            m = re.search(rf"- {label}: (.*)$", block, flags=re.M)
            return m.group(1).strip() if m else None
        sigs.append({"field": grab("Signature Field Name"), "signer": grab("Signer Certificate Common Name"),
                     "signature": grab("Signature Validation"), "certificate": grab("Certificate Validation"),
                     "type": grab("Signature Type")})
    return sigs


def signature_timestamps_verify(pdf: bytes, root_pem: Path, tmp: Path) -> list[bool]:
    """OpenSSL's verdict on each signature's RFC 3161 token (its unsigned attribute): the CMS blobs
    are dumped by pdfsig, each token must carry the hash of its signature's value and chain to the
    root. Document timestamps (whose content is the token itself) are skipped."""
    where = tmp / f"dump-{hashlib.sha256(pdf).hexdigest()[:12]}"
    where.mkdir(exist_ok=True)
    (where / "doc.pdf").write_bytes(pdf)
    subprocess.run(["pdfsig", "-nocert", "-dump", "doc.pdf"], cwd=where, capture_output=True, timeout=120)
    out = []
    for dump in sorted(where.glob("doc.pdf.sig*"), key=lambda p: int(p.name.rsplit("sig", 1)[1])):
        signed = cms.ContentInfo.load(dump.read_bytes())["content"]
        if signed["encap_content_info"]["content_type"].dotted == "1.2.840.113549.1.9.16.1.4":   # id-ct-TSTInfo
            continue
        signer_info = signed["signer_infos"][0]
        token = next(a["values"][0] for a in signer_info["unsigned_attrs"]
                     if a["type"].dotted == "1.2.840.113549.1.9.16.2.14")
        (where / "tst.der").write_bytes(token.dump())
        digest = hashlib.sha256(signer_info["signature"].native).hexdigest()
        (where / "untrusted.pem").write_bytes(b"".join(_pem(c.chosen.dump())
                                                       for c in token["content"]["certificates"]))
        r = subprocess.run(["openssl", "ts", "-verify", "-digest", digest, "-token_in", "-in", "tst.der",
                            "-CAfile", str(root_pem), "-untrusted", "untrusted.pem"],
                           cwd=where, capture_output=True, text=True, timeout=60)
        out.append(r.returncode == 0 and "Verification: OK" in r.stdout)
    return out


def _pem(der: bytes) -> bytes:
    import base64
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"
