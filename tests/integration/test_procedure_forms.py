"""The printable procedure forms, read back as a citizen's PDF reader reads them: poppler's
``pdftotext`` finds every title, field label and note with its Vietnamese diacritics (the forms
were once written in Helvetica, "TO KHAI DANG KY KHAI SINH"), and a long label wraps inside the
page instead of running off it."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

import pytest

from functions.procedures.function import catalogue, seed, templates

pytestmark = pytest.mark.integration

DATA, BLOBS = seed.build_with_templates()
FORMS = {(p["code"], d["code"]): p["documents"][i] for p in catalogue.build()["procedures"]
         for i, d in enumerate(p["documents"]) if d.get("form")}   # with their labels (seeded docs lose them)
PROCEDURES = {p["code"]: p for p in DATA["procedures"]}
A4_WIDTH, MARGIN = 595.28, 50


def pdftotext(pdf: bytes, tmp: Path, *args: str) -> str:
    path = tmp / "form.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", *args, str(path), "-"], capture_output=True, text=True, timeout=60, check=True)
    return unicodedata.normalize("NFC", out.stdout)


def flat(text: str) -> str:
    """The text with every run of whitespace one space: a wrapped title or label reads as one line."""
    return re.sub(r"\s+", " ", text)


def pdf_of(procedure_code: str, document_code: str) -> bytes:
    doc = next(d for d in PROCEDURES[procedure_code]["documents"] if d["code"] == document_code)
    return BLOBS[doc["template"]["sha256"]]


def test_the_birth_registration_form_reads_in_vietnamese(tmp_path):
    text = flat(pdftotext(pdf_of("HT-KS", "to-khai"), tmp_path))
    for expected in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "TỜ KHAI ĐĂNG KÝ KHAI SINH",
                     "Thủ tục: Đăng ký khai sinh (HT-KS)", "Họ, chữ đệm, tên người được khai sinh:", "Quê quán:",
                     "Quan hệ với người được khai sinh:", "..., ngày ... tháng ... năm ...",
                     "NGƯỜI KHAI (Ký, ghi rõ họ tên)"):
        assert expected in text, (expected, text)


@pytest.mark.parametrize("key", sorted(FORMS), ids="/".join)
def test_every_form_keeps_its_catalogue_title_and_labels_with_diacritics(key, tmp_path):
    procedure, form = PROCEDURES[key[0]], FORMS[key]
    pdf = pdf_of(*key)
    text = flat(pdftotext(pdf, tmp_path))
    assert form["name"].upper() in text                    # the form's name as the catalogue writes it
    assert f"Thủ tục: {procedure['name']} ({procedure['code']})" in text
    for label in form["form"]:
        assert f"{label}:" in text, (label, text)
    assert "NGƯỜI KHAI (Ký, ghi rõ họ tên)" in text
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, timeout=60).stdout.decode()
    assert re.search(r"^Pages:\s+1$", info, re.M)            # every form of the catalogue fits on its page
    assert re.search(rf"^Title:\s+{re.escape(form['name'])}$", unicodedata.normalize("NFC", info), re.M)


def test_a_long_label_wraps_inside_the_page(tmp_path):
    procedure = PROCEDURES["HT-KS"]
    label = ("Họ, chữ đệm, tên và nơi cư trú của người đi đăng ký thay cho người được khai sinh "
             "theo văn bản ủy quyền đã được chứng thực hợp lệ")
    pdf = templates.form_pdf(procedure, {"name": "Tờ khai đăng ký khai sinh", "form": [label, "Quê quán"]})
    assert f"{label}:" in flat(pdftotext(pdf, tmp_path))
    boxes = pdftotext(pdf, tmp_path, "-bbox")
    right = max(float(x) for x in re.findall(r'xMax="([\d.]+)"', boxes))
    assert right <= A4_WIDTH - MARGIN + 0.5                 # nothing in the right margin, nothing off the page
    assert templates.form_pdf(procedure, {"name": "Tờ khai đăng ký khai sinh", "form": [label, "Quê quán"]}) == pdf
