"""What a question asks about (documents, fees, time, where, online, steps, forms, dossier status),
in which language, and whether it only refines the previous question.

Rules over the folded question, by priority: a dossier's status first (a dossier code or "hồ sơ
… đến đâu"), then the form templates, fees, time, online, where, documents and steps. A question
naming a procedure and nothing else is an ``overview``. The phrases are the ways people ask, with
and without diacritics (everything is folded before matching), in Vietnamese and English.
"""

from __future__ import annotations

import re

from lscloud.listing import fold

INTENTS = ("status", "forms", "fees", "time", "online", "where", "documents", "steps", "overview")

_PHRASES = {
    "status": ["den dau roi", "toi dau roi", "tinh trang ho so", "tra cuu ho so", "ho so cua toi", "ho so so",
               "da xong chua", "xong chua", "bao gio co ket qua ho so", "dossier status", "my dossier",
               "my application", "status of"],
    "forms": ["mau to khai", "bieu mau", "mau don", "to khai mau", "tai mau", "mau giay", "lay mau", "form mau",
              "mau so", "download the form", "the form", "template", "application form", "mau de nghi",
              "to khai o dau", "mau"],
    "fees": ["mat phi", "mat bao nhieu", "het bao nhieu tien", "le phi", "phi", "bao nhieu tien", "het bao nhieu", "ton bao nhieu", "mat bao nhieu tien",
             "mat tien", "tien", "fee", "fees", "cost", "how much", "price", "mien phi", "free of charge", "charge"],
    "time": ["mat bao lau", "mat may ngay", "bao lau", "may ngay", "bao nhieu ngay", "thoi gian", "thoi han", "bao gio", "khi nao co", "how long",
             "how many days", "mat may", "lau khong", "trong ngay", "may hom", "processing time", "when will"],
    "online": ["online", "truc tuyen", "qua mang", "tren mang", "dich vu cong", "tai nha", "internet",
               "nop qua", "tren dien thoai", "qua app", "tu xa", "khong can den"],
    "where": ["o dau", "noi nao", "co quan nao", "cho nao", "where", "which agency", "which office", "ai giai quyet",
              "ai cap", "nop o", "den dau", "lam o", "xin o", "co quan", "who issues", "ubnd nao", "phong nao"],
    "documents": ["can gi", "can nhung gi", "giay to", "ho so gom", "ho so can", "chuan bi", "mang theo", "documents",
                  "what do i need", "need to bring", "can giay", "nhung giay", "thanh phan ho so", "what papers",
                  "can mang", "can co", "yeu cau gi", "requirements", "papers"],
    "steps": ["cac buoc", "quy trinh", "trinh tu", "lam the nao", "nhu the nao", "the nao", "how to", "how do",
              "steps", "huong dan", "cach lam", "lam sao", "procedure for", "process"],
}
_COMPILED = {intent: [re.compile(r"(?<![a-z0-9])" + re.escape(p) + r"(?![a-z0-9])") for p in phrases]
             for intent, phrases in _PHRASES.items()}
ORDER = ("status", "forms", "time", "fees", "documents", "online", "where", "steps")
# nouns that hold an intent's word without asking it: "mai táng phí" is a benefit, not a fee
_NEUTRAL = re.compile(r"(?<![a-z])(mai tang phi|hoc phi|chi phi hoc tap|chi phi mai tang|dich vu cong truc tuyen"
                      r"|le phi truoc ba)(?![a-z])")
_DOCUMENTS_RE = re.compile(r"(?<![a-z])can (?:[a-z]+ ){0,2}gi(?![a-z])")

RECEIPT_CODE_RE = re.compile(r"LS-\d{6}-[A-Z0-9]{6}", re.IGNORECASE)
"""A receipt's code, as dossiers prints it (LS-<yymmdd>-<6 letters and digits>)."""
# a dossier on a receipt (LS-261122-7K3QZP) or a client-chosen dossier id with digits (2025-000123)
DOSSIER_RE = re.compile(r"\b(" + RECEIPT_CODE_RE.pattern + r"|\d{4}-\d{4,8}|[A-Za-z0-9_]*\d[A-Za-z0-9_]*-[A-Za-z0-9_-]{3,58})\b",
                        re.IGNORECASE)

_REFINE = [re.compile(r"(?<![a-z])" + re.escape(p) + r"(?![a-z])") for p in (
    "y toi la", "y ban la", "y la", "i mean", "what about", "how about", "con thi sao", "thi sao", "the con",
    "con neu", "vay con", "and for", "what if", "truong hop", "neu la")]
_STARTS_FOLLOW_UP = ("con ", "vay ", "the ", "and ", "also ", "neu ")

_EN_WORDS = frozenset("how what where when which who do does i my need to the is are a an for of get can much long "
                      "fee fees cost documents register registration certificate permit apply online office form "
                      "birth marriage death card land house building business licence license id renew lost "
                      "please status application it this that".split())
_VI_WORDS = frozenset("lam can gi o dau bao lau phi khong duoc cho toi thu tuc giay dang ky ho so nop xin mat "
                      "nhu the nao cua con va thi sao la nhung co tien ngay may".split())


def detect(text: str) -> str | None:
    """The intent a question asks about, or ``None`` (it names no intent)."""
    folded = fold(text)
    if DOSSIER_RE.search(text) and re.search(r"(?<![a-z])(ho so|dossier|application|bien nhan|ma)(?![a-z])", folded):
        return "status"
    folded = _NEUTRAL.sub(" ", folded)
    for intent in ORDER:
        if any(p.search(folded) for p in _COMPILED[intent]):
            return intent
        if intent == "documents" and _DOCUMENTS_RE.search(folded):
            return intent
    return None


def dossier_reference(text: str) -> str | None:
    """The dossier code or id a status question names, if any."""
    m = DOSSIER_RE.search(text)
    return m.group(1) if m else None


_ALL = sorted({p for phrases in _PHRASES.values() for p in phrases}, key=len, reverse=True)
_STRIP_RE = re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(p) for p in _ALL) + r")(?![a-z0-9])")


def strip(folded: str) -> str:
    """The folded question without the phrases that only say *what* is asked (fees, time …)."""
    return " ".join(_DOCUMENTS_RE.sub(" ", _STRIP_RE.sub(" ", _NEUTRAL.sub(lambda m: m.group(0), folded))).split())


def is_refinement(text: str) -> bool:
    """Does the question only refine or continue the previous one ("còn lệ phí thì sao?")?"""
    folded = fold(text)
    return any(p.search(folded) for p in _REFINE) or folded.startswith(_STARTS_FOLLOW_UP)


def without_refinement(text: str) -> str:
    """The folded question without its follow-up markers ("còn … thì sao", "ý tôi là")."""
    folded = fold(text)
    for p in _REFINE:
        folded = p.sub(" ", folded)
    words = folded.split()
    if words and words[0] + " " in _STARTS_FOLLOW_UP:
        words = words[1:]
    return " ".join(words)


def language(text: str, asked: str | None = None) -> str:
    """``vi`` unless the question is in English (or ``asked`` says which)."""
    if asked in ("vi", "en"):
        return asked
    return clear_language(text) or "vi"


_LETTERS = re.compile(r"[^\W\d_]+")


def clear_language(text: str) -> str | None:
    """``vi`` or ``en`` when the question clearly is in that language, ``None`` when it could be either
    ("khai sinh", a dossier code, "ok"): a conversation then keeps the language it had.

    A word with Vietnamese marks counts for Vietnamese; without marks, the usual function words of
    each language count. Only letters count: a phone's curly apostrophe ("what’s") is not Vietnamese,
    and an English question naming "Lạng Sơn" stays English."""
    en = vi = marked = 0
    for word in _LETTERS.findall(text.lower()):
        if not word.isascii():
            marked += 1
            continue
        en += word in _EN_WORDS
        vi += word in _VI_WORDS
    vi += marked
    if vi > en and (marked or vi >= 2):
        return "vi"
    if en >= 2 and en > vi:
        return "en"
    return None
