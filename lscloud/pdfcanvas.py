"""Saving a reportlab canvas in a process of many threads.

reportlab embeds a TrueType font by subsetting it when a canvas is saved, reading the one font file
object its registration made through an unlocked cursor (``TTFontFile.makeSubset``'s ``seek`` and
``read_short``). Two canvases saved at once with the same font (two signature boxes, two stamp
sheets in Vietnamese) read each other's glyph offsets: an ``IndexError`` or ``KeyError`` (a 500) or,
worse, a PDF with the wrong glyphs embedded. Every save takes one lock for the process; a save is
CPU work under the GIL anyway, so little is lost.

:func:`find_font` says where a font file is, for what is printed with Vietnamese diacritics (the
image installs DejaVu: Debian's ``fonts-dejavu-core``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

_SAVING = threading.Lock()
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")
"""Where DejaVu is: Debian's fonts-dejavu-core, then Fedora's."""


def find_font(file: str) -> str | None:
    """The path of the font ``file`` (``DejaVuSans.ttf``) in :data:`FONT_DIRS`, or None."""
    return next((p for d in FONT_DIRS if os.path.isfile(p := os.path.join(d, file))), None)


def save(canvas: Any) -> None:
    """``canvas.save()`` under the process's lock (see the module docstring)."""
    with _SAVING:
        canvas.save()
