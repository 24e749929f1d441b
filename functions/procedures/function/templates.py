"""Printable form templates: an A4 PDF per form, generated from the catalogue with reportlab.

Vietnamese needs a Unicode font: the forms embed DejaVu Sans (installed in the image) so the
titles and labels keep their diacritics (``Tờ khai``, not ``To khai``) on paper and for a screen
reader or a search that extracts the text. Without it (a machine with no DejaVu) they fall back to
Helvetica and write the text without diacritics rather than fail the seed.

Deterministic (``invariant=1``: no timestamps, a fixed document id): the same form always gives
the same bytes, hence the same sha256 and blob key, so re-seeding stores nothing new and the
catalogue's fingerprint (and the ETags built on it) stay the same from run to run.
"""

from __future__ import annotations

import io
import os
import re
import threading

from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from unidecode import unidecode

from lscloud import pdfcanvas

MEDIA_TYPE = "application/pdf"
_WIDTH, _HEIGHT = A4
_LEFT = _RIGHT = 50
_TOP, _BOTTOM = 42, 50
_TEXT_WIDTH = _WIDTH - _LEFT - _RIGHT
_BLANK = 90   # the least room left on a label's last line for the answer's dotted blank

_FONT_FILES = {"FormSans": "DejaVuSans.ttf", "FormSans-Bold": "DejaVuSans-Bold.ttf"}
_font_lock = threading.Lock()
_fonts: list[tuple[str, str, bool]] = []


def font_identity() -> tuple:
    """Which font files the forms would embed (path, size): what the forms' bytes depend on beyond
    the package, for the seed's fingerprint."""
    out = []
    for file in _FONT_FILES.values():
        path = pdfcanvas.find_font(file)
        out.append((path, os.path.getsize(path) if path else None))
    return tuple(out)


def _font_pair() -> tuple[str, str, bool]:
    """(regular font, bold font, whether they have Vietnamese glyphs), registered once."""
    with _font_lock:
        if not _fonts:
            found = set()
            for name, file in _FONT_FILES.items():
                path = pdfcanvas.find_font(file)
                if path:
                    pdfmetrics.registerFont(TTFont(name, path))
                    found.add(name)
            if "FormSans" in found:
                _fonts.append(("FormSans", "FormSans-Bold" if "FormSans-Bold" in found else "FormSans", True))
            else:   # no DejaVu here: a form without diacritics beats a seed that fails
                _fonts.append(("Helvetica", "Helvetica-Bold", False))
        return _fonts[0]


def filename(procedure_code: str, document_code: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{procedure_code}-{document_code}".lower()).strip("-")
    return f"{slug}.pdf"


class _Page:
    """A cursor down the page: writes lines, wraps them to the text width, turns the page when full."""

    def __init__(self, c: canvas.Canvas, unicode_ok: bool):
        self.c, self.unicode_ok, self.y = c, unicode_ok, _HEIGHT - _TOP

    def text(self, s: str) -> str:
        s = s.replace("\r", " ").replace("\n", " ")
        return s if self.unicode_ok else unidecode(s)

    def down(self, dy: float) -> None:
        self.y -= dy
        if self.y < _BOTTOM:
            self.c.showPage()
            self.y = _HEIGHT - _TOP - dy

    def draw(self, x: float, line: str, font: str, size: float, centred: bool = False) -> None:
        self.c.setFont(font, size)   # every time: a new page starts again in Helvetica
        (self.c.drawCentredString if centred else self.c.drawString)(x, self.y, line)

    def lines(self, s: str, font: str, size: float, width: float = _TEXT_WIDTH) -> list[str]:
        return simpleSplit(self.text(s), font, size, width) or [""]

    def centred(self, s: str, font: str, size: float, leading: float, x: float = _WIDTH / 2) -> None:
        """Wrapped to as few lines as the full width needs, but as even as those lines allow: a
        title ending in one stranded word ("… GIÁM HỘ / KÝ") reads as two titles."""
        lines = self.lines(s, font, size)
        lo, hi = _TEXT_WIDTH / len(lines), _TEXT_WIDTH
        while hi - lo > 1:
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if len(self.lines(s, font, size, mid)) == len(lines) else (mid, hi)
        for line in self.lines(s, font, size, hi):
            self.down(leading)
            self.draw(x, line, font, size, centred=True)

    def left(self, s: str, font: str, size: float, leading: float) -> None:
        for line in self.lines(s, font, size):
            self.down(leading)
            self.draw(_LEFT, line, font, size)

    def blank(self, label: str, font: str, size: float, gap: float, leading: float) -> None:
        """``label:`` then a dotted line to the right margin; a long label wraps, the dots follow its
        last line."""
        lines = self.lines(label + ":", font, size, _TEXT_WIDTH - _BLANK)
        for i, line in enumerate(lines):
            self.down(gap if i == 0 else leading)
            self.draw(_LEFT, line, font, size)
        start = _LEFT + stringWidth(lines[-1] + " ", font, size)
        self.c.drawString(start, self.y, "." * int((_WIDTH - _RIGHT - start) / stringWidth(".", font, size)))


def form_pdf(procedure: dict, document: dict) -> bytes:
    """The PDF of ``document``'s form (its ``form`` labels as blanks to fill in)."""
    regular, bold, unicode_ok = _font_pair()
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, invariant=1, pageCompression=1, pdfVersion=(1, 4))
    c.setTitle(document["name"])
    c.setSubject(f"{procedure['name']} ({procedure['code']})")
    c.setAuthor("Lạng Sơn Cloud — procedures")
    c.setCreator("lscloud procedures")
    c.setProducer("lscloud procedures")
    page = _Page(c, unicode_ok)
    page.centred("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold, 10, 14)
    page.centred("Độc lập - Tự do - Hạnh phúc", bold, 10, 14)
    page.down(16)
    page.centred(document["name"].upper(), bold, 14, 18)
    page.down(2)
    page.left(f"Thủ tục: {procedure['name']} ({procedure['code']})", regular, 9, 12)
    page.down(8)
    for label in document.get("form", []):
        page.blank(label, regular, 11, 24, 14)
    page.down(24)
    signer = _LEFT + _TEXT_WIDTH * 3 / 4   # the middle of the right half, where one signs
    page.centred("..., ngày ... tháng ... năm ...", regular, 11, 16, signer)
    page.centred("NGƯỜI KHAI (Ký, ghi rõ họ tên)", bold, 11, 16, signer)
    c.showPage()
    pdfcanvas.save(c)   # the font is subset as it saves: one save at a time in the process
    return out.getvalue()
