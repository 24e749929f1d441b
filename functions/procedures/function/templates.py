"""Printable form templates: a small, valid one-page PDF per form, generated from the catalogue.

The PDF uses the standard Helvetica font, which has no Vietnamese glyphs, so the text is
written without diacritics (``Tờ khai`` → ``To khai``); the form's Vietnamese title and the
procedure code are in the document information and the file name keeps the form's identity.
Deterministic (no timestamps): the same form always gives the same bytes, hence the same
sha256 and blob key, so re-seeding stores nothing new.
"""

from __future__ import annotations

import re

from unidecode import unidecode

MEDIA_TYPE = "application/pdf"
_WIDTH, _HEIGHT = 595, 842  # A4 in points


def _ascii(text: str) -> str:
    return unidecode(text).replace("\r", " ").replace("\n", " ")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _utf16(text: str) -> str:
    """A PDF text string in UTF-16BE (for the document information: keeps the diacritics)."""
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def filename(procedure_code: str, document_code: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{procedure_code}-{document_code}".lower()).strip("-")
    return f"{slug}.pdf"


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def form_pdf(procedure: dict, document: dict) -> bytes:
    """The PDF of ``document``'s form (its ``form`` labels as blanks to fill in)."""
    ops = ["BT", "/F2 10 Tf", "50 800 Td", f"({_escape('CONG HOA XA HOI CHU NGHIA VIET NAM')}) Tj",
           "0 -14 Td", f"({_escape('Doc lap - Tu do - Hanh phuc')}) Tj", "/F2 14 Tf", "0 -36 Td"]
    for line in _wrap(_ascii(document["name"]).upper(), 60):
        ops += [f"({_escape(line)}) Tj", "0 -18 Td"]
    ops += ["/F1 9 Tf"]
    for line in _wrap(f"Thu tuc: {_ascii(procedure['name'])} ({procedure['code']})", 95):
        ops += [f"({_escape(line)}) Tj", "0 -12 Td"]
    ops += ["/F1 11 Tf", "0 -16 Td"]
    for label in document.get("form", []):
        ops += [f"({_escape(_ascii(label) + ': ' + '.' * max(8, 70 - len(_ascii(label))))}) Tj", "0 -24 Td"]
    ops += ["0 -24 Td", f"({_escape('..., ngay ... thang ... nam ...')}) Tj", "0 -16 Td",
            f"({_escape('NGUOI KHAI (Ky, ghi ro ho ten)')}) Tj", "ET"]
    stream = "\n".join(ops).encode("latin-1")
    info = (f"<< /Title {_utf16(document['name'])} /Subject {_utf16(procedure['name'] + ' (' + procedure['code'] + ')')} "
            f"/Producer (lscloud procedures) >>")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_WIDTH} {_HEIGHT}] "
        f"/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        info.encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)
