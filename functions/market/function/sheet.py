"""The printable sheet of a batch of stamps: A4 pages of QR stamps, made with reportlab.

Each stamp shows its QR code (the scan URL followed by the code, error correction M), the
product, the lot and the serial. The QR symbol is embedded as a 1-bit image, one pixel per module,
which PDF readers and printers scale without smoothing. Vietnamese needs a Unicode
font: the sheet embeds ``pdf_font`` (DejaVu Sans in the image) when it exists and otherwise
writes the text without diacritics in Helvetica.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import segno
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from unidecode import unidecode

from lscloud import pdfcanvas

COLUMNS, ROWS = 4, 6
MARGIN = 10 * mm
QR_SIZE = 28 * mm       # version 9 (53 modules): 0.53 mm a module
MASK = 2
_fonts: dict[str, str] = {}
_lock = threading.Lock()


def _font(path: str) -> tuple[str, bool]:
    """(font name, whether it has Vietnamese glyphs)."""
    with _lock:
        if path not in _fonts:
            name = "Helvetica"
            if path and Path(path).is_file():
                try:
                    pdfmetrics.registerFont(TTFont("StampSans", path))
                    name = "StampSans"
                except Exception:  # noqa: BLE001 - an unreadable font file: fall back, do not fail a sheet
                    name = "Helvetica"
            _fonts[path] = name
        name = _fonts[path]
    return name, name != "Helvetica"


def qr_image(text: str) -> Image.Image:
    """The QR symbol of ``text`` as a 1-bit image, one pixel per module (no quiet zone).

    The mask is fixed (pattern 2) instead of chosen by segno's penalty search: any of the eight masks
    gives a valid symbol every reader decodes, and the search is four fifths of the encoding time —
    the difference between a sheet in seconds and a sheet in half a minute.
    """
    matrix = segno.make(text, error="m", micro=False, mask=MASK).matrix
    n = len(matrix)
    return Image.frombytes("L", (n, n), bytes(0 if dark else 255 for row in matrix for dark in row)).convert("1")


def render(*, codes: list[str], first_serial: int, scan_url: str, product: str, lot_id: str, batch: str,
           font_path: str) -> bytes:
    """The PDF of ``codes`` (stamps ``first_serial`` …), COLUMNS × ROWS per A4 page."""
    font, unicode_ok = _font(font_path)

    def text(s: str) -> str:
        return s if unicode_ok else unidecode(s)

    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle(text(f"Tem truy xuất nguồn gốc — {product} — lô {lot_id}"))
    c.setAuthor("Lạng Sơn Cloud — market")
    width, height = A4
    cell_w = (width - 2 * MARGIN) / COLUMNS
    cell_h = (height - 2 * MARGIN) / ROWS
    per_page = COLUMNS * ROWS
    for i, code in enumerate(codes):
        if i and i % per_page == 0:
            c.showPage()
        slot = i % per_page
        col, row = slot % COLUMNS, slot // COLUMNS
        x0 = MARGIN + col * cell_w
        y0 = height - MARGIN - (row + 1) * cell_h
        c.setStrokeGray(0.8)
        c.rect(x0 + 1, y0 + 1, cell_w - 2, cell_h - 2, stroke=1, fill=0)
        # a 1-bit image scaled without interpolation: sharp modules at any print size
        c.drawImage(ImageReader(qr_image(scan_url + code)), x0 + (cell_w - QR_SIZE) / 2,
                    y0 + cell_h - QR_SIZE - 3 * mm, QR_SIZE, QR_SIZE)     # the text stays clear of the quiet zone
        c.setFont(font, 6.5)
        c.drawCentredString(x0 + cell_w / 2, y0 + 8 * mm, text(product[:40]))
        c.drawCentredString(x0 + cell_w / 2, y0 + 5 * mm, text("Lạng Sơn · truy xuất nguồn gốc"))
        c.drawCentredString(x0 + cell_w / 2, y0 + 2 * mm, f"{batch} #{first_serial + i:06d}")
    c.showPage()
    pdfcanvas.save(c)   # the font is subset as it saves: one save at a time in the process
    return out.getvalue()
