"""Answers composed from the catalogue's own facts, in Vietnamese or English, with their source.

Nothing is invented: a fee, a time, a document or an agency is read from the procedure record the
catalogue serves, and every answer cites it (``{"procedure", "national_code", "name"}``). A fact
the catalogue marks unverified is said to be so. When no procedure is found, the answer says it
does not know and offers the hotline or a question sent to the agency as a citizen report.
"""

from __future__ import annotations

from typing import Callable, Mapping

SUGGESTIONS = {
    "documents": ("Cần giấy tờ gì?", "What documents?"),
    "fees": ("Lệ phí bao nhiêu?", "What is the fee?"),
    "time": ("Mất bao lâu?", "How long does it take?"),
    "where": ("Nộp ở đâu?", "Where do I apply?"),
    "online": ("Nộp trực tuyến được không?", "Can I apply online?"),
    "steps": ("Các bước thực hiện?", "What are the steps?"),
    "forms": ("Mẫu tờ khai?", "Where is the form?"),
}
TEMPLATE_PATH = "/v1/procedures/{code}/documents/{doc}/template"   # below the procedures function's URL


def citation(p: Mapping) -> dict:
    return {"procedure": p["code"], "national_code": p.get("national_code"), "name": p["name"]}


def _name(p: Mapping, en: bool) -> str:
    return p.get("name_en") or p["name"] if en else p["name"]


def _money(amount: int, en: bool) -> str:
    return f"{amount:,} VND" if en else f"{amount:,}".replace(",", ".") + " đồng"


def unverified(p: Mapping, fact: str) -> bool:
    """True unless the catalogue cites a verified source for ``fact`` of ``p``: a fact with no source
    entry at all was never checked, and is said so as one marked ``verified: false`` is."""
    return not any(s.get("verified") for s in p.get("sources") or [] if s.get("fact") == fact)


def _caveat(p: Mapping, fact: str, en: bool) -> str:
    if not unverified(p, fact):
        return ""
    return (" (Not yet checked against the official text: please confirm with the agency.)" if en else
            " (Thông tin chưa được đối chiếu với văn bản gốc; vui lòng xác nhận lại với cơ quan giải quyết.)")


def _days(p: Mapping, en: bool) -> str:
    days = p["processing_days"]
    if days == 0:
        cutoff = p.get("same_day_cutoff")
        return (f"the same working day (after {cutoff}, the next working day)" if en else
                f"trong ngày làm việc (nộp sau {cutoff} thì trả kết quả trong ngày làm việc tiếp theo)")
    return f"{days} working days" if en else f"{days} ngày làm việc"


def _where(p: Mapping, en: bool, agency_name: Callable[[str], str | None]) -> str:
    if p["level"] == "commune":
        who = ("the People's Committee of the commune or ward where you live (or where the matter is)" if en else
               "Ủy ban nhân dân xã, phường nơi bạn cư trú (hoặc nơi có đối tượng của thủ tục)")
    else:
        who = agency_name(p["agency"]) or p["agency"]
    first = (p.get("steps") or [{}])[0].get("agency")
    counter = first == "public-service-centre"
    if en:
        out = f"Decided by {who}."
        if counter:
            out += " Dossiers are received at the Provincial Public Administration Service Centre (one-stop counter)."
        return out + " You can also submit through the National Public Service Portal where online submission is offered."
    out = f"Cơ quan giải quyết: {who}."
    if counter:
        out += " Hồ sơ được tiếp nhận tại Trung tâm Phục vụ hành chính công tỉnh (bộ phận một cửa)."
    return out


def compose(intent: str, p: Mapping, lang: str, agency_name: Callable[[str], str | None] = lambda code: None,
            *, procedures_url: str = "") -> str:
    """The answer's text for ``intent`` about procedure ``p``; ``procedures_url``: where citizens reach the
    procedures function (its form templates' links are below it)."""
    en = lang == "en"
    name = _name(p, en)
    if intent == "documents":
        docs = p["documents"]
        lines = [f"- {d['name_en'] if en else d['name']}" + ("" if d["required"] or "(if" in d["name_en"] + d["name"]
                 or "(nếu" in d["name"] else (" (if applicable)" if en else " (nếu có)")) + (f" ×{d['copies']}" if d.get("copies", 1) > 1 else "") for d in docs]
        head = f"Documents for “{name}”:" if en else f"Hồ sơ thủ tục “{name}” gồm:"
        return head + "\n" + "\n".join(lines) + _caveat(p, "documents", en)
    if intent == "fees":
        fees = p["fees"]
        if not fees:
            body = "The catalogue lists no fee or charge." if en else "Danh mục không ghi lệ phí hay phí nào."
        else:
            body = "\n".join(f"- {f['name']}: " + (("free" if en else "miễn phí") if f["amount_vnd"] == 0 else
                                                 _money(f["amount_vnd"], en)) for f in fees)
        head = f"Fees for “{name}”:" if en else f"Lệ phí thủ tục “{name}”:"
        return head + "\n" + body + _caveat(p, "fees", en)
    if intent == "time":
        return (f"“{name}” takes {_days(p, en)}." if en else f"Thời hạn giải quyết “{name}”: {_days(p, en)}.") + \
            _caveat(p, "processing_days", en)
    if intent == "where":
        return (f"“{name}”: " if en else f"“{name}”: ") + _where(p, en, agency_name) + _caveat(p, "level", en)
    if intent == "online":
        if p["online_mode"] == "full":
            body = ("Yes: fully online — submit, follow and receive the result on the public service portal." if en
                    else "Có: dịch vụ công trực tuyến toàn trình — nộp hồ sơ, theo dõi và nhận kết quả trên Cổng Dịch vụ công.")
        else:
            body = ("Partly: you can submit online, but some step (originals, signature or presence) is at the counter."
                    if en else "Một phần: có thể nộp hồ sơ trực tuyến, nhưng có bước phải thực hiện tại bộ phận một cửa "
                               "(xuất trình bản chính, ký hoặc có mặt).")
        return f"“{name}” — {body}" + _caveat(p, "online_mode", en)
    if intent == "steps":
        steps = p.get("steps") or []
        lines = [f"{i}. {s.get('name_en') if en else s.get('name')}" + (f" ({s['days']} working days)" if en else
                 f" ({s['days']} ngày làm việc)") * bool(s.get("days")) for i, s in enumerate(steps, 1)]
        head = f"Steps of “{name}”:" if en else f"Các bước thực hiện “{name}”:"
        return head + "\n" + "\n".join(lines) + "\n" + (f"In all: {_days(p, en)}." if en else f"Tổng thời gian: {_days(p, en)}.")
    if intent == "forms":
        forms = [d for d in p["documents"] if d.get("template") or d.get("form")]
        if not forms:
            return (f"The catalogue has no form template for “{name}”; the documents are listed under “documents”." if en
                    else f"Danh mục chưa có mẫu tờ khai cho “{name}”; thành phần hồ sơ xem ở mục “Cần giấy tờ gì?”.")
        head = f"Form templates for “{name}”:" if en else f"Mẫu tờ khai của “{name}”:"
        return head + "\n" + "\n".join(f"- {d['name_en'] if en else d['name']}: "
                                       + procedures_url + TEMPLATE_PATH.format(code=p["code"], doc=d["code"])
                                       for d in forms)
    # overview
    fee = sum(f["amount_vnd"] for f in p["fees"])
    if en:
        return (f"“{name}” ({'commune' if p['level'] == 'commune' else 'province'} level): {_days(p, en)}, "
                f"{'no fee' if not fee else 'fees from the catalogue under “fees”'}, {len(p['documents'])} document(s), "
                f"{'fully' if p['online_mode'] == 'full' else 'partly'} online.")
    return (f"“{name}” (cấp {'xã' if p['level'] == 'commune' else 'tỉnh'}): thời hạn {_days(p, en)}, "
            f"{'không mất lệ phí' if not fee else 'có lệ phí (xem “Lệ phí bao nhiêu?”)'}, {len(p['documents'])} loại giấy tờ, "
            f"{'nộp trực tuyến toàn trình' if p['online_mode'] == 'full' else 'nộp trực tuyến một phần'}.")


def suggestions(intent: str, p: Mapping | None, lang: str, alternatives: list[Mapping] = ()) -> list[str]:
    """Follow-up chips: the other questions about the same procedure, then the runners-up."""
    idx = 1 if lang == "en" else 0
    chips = [v[idx] for k, v in SUGGESTIONS.items() if k != intent][:4] if p else []
    for alt in alternatives[:2]:
        chips.append((f"Did you mean: {alt.get('name_en') or alt['name']}?" if lang == "en"
                      else f"Ý bạn là: {alt['name']}?"))
    return chips


def unknown(lang: str, hotline: str) -> dict:
    """What the assistant says when it does not know: never a guess."""
    if lang == "en":
        text = ("I could not find a procedure in the catalogue that answers this, so I will not guess. "
                f"You can send your question to the agency as a citizen report, or call the hotline {hotline}.")
        chips = ["Send my question to the agency", f"Call {hotline}"]
    else:
        text = ("Tôi chưa tìm thấy thủ tục phù hợp trong danh mục nên không thể trả lời chính xác. "
                f"Bạn có thể gửi câu hỏi tới cơ quan có thẩm quyền dưới dạng phản ánh, kiến nghị, hoặc gọi đường dây nóng {hotline}.")
        chips = ["Gửi câu hỏi tới cơ quan", f"Gọi {hotline}"]
    return {"text": text, "suggestions": chips}
