"""One message in, one answer out: understood (:mod:`.dialogue`), answered from the catalogue or the
dossier record (:mod:`.answers`, :mod:`.sources`), remembered in an expiring conversation record
(the procedure, intent, language and catalogue tokens: no words of the caller's), and logged for
quality review with identifiers masked."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from lscloud import config
from lscloud.aggregate import side_pool
from lscloud.pseudonyms import pseudonym
from lscloud.redaction import redact
from lscloud.store import ConditionalCheckFailed
from lscloud.store.recent import RecentItems

from . import answers, dialogue
from .models import Conversation
from .retrieval import Index

log = logging.getLogger("assistant.answers")
_LONG_NUMBER = re.compile(r"\d{6,}")
# a receipt's tracking secret typed into the question ("mã bí mật 7F3K9Q"): it opens the dossier
_SECRET = re.compile(r"(?i)\b(m[ãa] b[íi] m[ậa]t|secret)(\s*(?:l[àa]|is|[:=])?\s*)[A-Za-z0-9-]+")


@dataclass(frozen=True)
class Settings:
    """ASSISTANT_* settings (lscloud.config.section)."""

    rate_limit: int = field(default=60, metadata={"min": 1})        # messages per caller per window
    rate_window_s: int = field(default=60, metadata={"min": 1})
    session_ttl_s: int = field(default=1800, metadata={"min": 60})  # a conversation is forgotten after this
    catalogue_refresh_s: int = field(default=60, metadata={"min": 1})
    # the National Public Service Portal's hotline (as the portal shows it; not checked against an official text)
    hotline: str = "1800 1096"
    # where citizens reach the procedures catalogue (its form templates' links); empty: the platform's
    # public URL of the procedures function (LSCLOUD_PUBLIC_URL_TEMPLATE)
    procedures_url: str = ""


def settings_of(platform: config.Settings) -> Settings:
    own = config.section(platform, Settings)
    if not own.procedures_url:
        own = replace(own, procedures_url=platform.public_url("procedures"))
    return own


def masked(text: str) -> str:
    """The question as logged for review: identifiers (CCCD, phones, accounts) and long numbers masked."""
    return _LONG_NUMBER.sub("[số]", _SECRET.sub(r"\1\2[mã]", redact(text)))


def _remembered(context: Mapping) -> dict:
    """The context as written: :data:`.dialogue.KEPT` only, its terms the catalogue's tokens
    (:meth:`.retrieval.Index.kept_terms`) and, should the catalogue itself hold a word shaped like an
    identifier, not that one either."""
    kept = dialogue.remembered(context)
    return {**kept, "terms": [t for t in kept["terms"] if masked(t) == t]}


def _conversation_key(caller: str, session: str) -> str:
    return pseudonym(Conversation.Meta.table, caller + "\x00" + session)


# the sessions this replica answered last: a follow-up here is one conditional PUT, no read first
RECENT: RecentItems[Conversation] = RecentItems(Conversation, max_items=10_000)


def _fresh(key: str, ttl_s: int) -> Conversation:
    return Conversation(key, context={}, turns=0, expires_at=_expiry(ttl_s))


def _expiry(ttl_s: int) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=ttl_s)


def _status_text(view: Mapping | None, reference: str | None, lang: str, signed_in: bool) -> str:
    en = lang == "en"
    if not reference:
        return ("Please give the dossier code printed on your receipt." if en else
                "Vui lòng cho biết mã hồ sơ in trên giấy tiếp nhận.")
    if view is None:
        if not signed_in:
            return ("To see a dossier's status, sign in as its applicant or give the tracking secret printed on the "
                    "receipt." if en else "Để xem tình trạng hồ sơ, vui lòng đăng nhập bằng tài khoản người nộp hoặc "
                    "nhập mã bí mật in trên giấy tiếp nhận.")
        return (f"No dossier {reference} is found among yours." if en else
                f"Không tìm thấy hồ sơ {reference} trong các hồ sơ của bạn.")
    status = view.get("status_en" if en else "status_vi") or view.get("status")   # the state's words, not its code
    parts = [f"Dossier {view.get('code') or reference} ({view.get('procedure_name') or view.get('procedure')}): {status}."
             if en else f"Hồ sơ {view.get('code') or reference} ({view.get('procedure_name') or view.get('procedure')}): {status}."]
    if view.get("appointment_date"):
        parts.append(f"Appointment: {view['appointment_date']}." if en else f"Ngày hẹn trả kết quả: {view['appointment_date']}.")
    step = view.get("current_step") or {}
    if step.get("name"):
        parts.append(f"Current step: {step['name']}." if en else f"Bước hiện tại: {step['name']}.")
    if view.get("missing"):
        names = ", ".join(m.get("name", str(m)) if isinstance(m, dict) else str(m) for m in view["missing"])
        parts.append(f"Missing: {names}." if en else f"Cần bổ sung: {names}.")
    if view.get("overdue"):
        parts.append("It is past its deadline." if en else "Hồ sơ đã quá hạn giải quyết.")
    return " ".join(parts)


def reply(index: Index | Callable[[], Index], body: Mapping, *, caller: str, settings: Settings, source=None,
          authorization: str | None = None, status_of=None, admit: Callable[[], object] | None = None) -> dict:
    """The answer to ``body`` (``{"session", "text", "lang"?, "secret"?}``) from ``caller``.

    ``source`` names agencies (:class:`.sources.CatalogueSource`); ``status_of(reference)`` looks a
    dossier up on the caller's behalf (:func:`.sources.dossier_status`). ``admit()`` (the rate limit)
    runs while the answer is worked out, and its refusal is raised before anything is written.

    The conversation is changed as one read-modify-write (:class:`lscloud.store.recent.RecentItems`):
    from the copy this replica last wrote, or presumed new, straight to a conditional PUT; when the
    session moved on elsewhere (another replica, two messages at once) the condition fails and the
    answer is worked out again from the stored context — so a turn never answers from a context that
    was not the latest, and no turn's context is overwritten unseen."""
    key = _conversation_key(caller, body["session"])
    pending = side_pool().submit(admit) if admit is not None else None
    index = index() if callable(index) else index
    answered: dict = {}

    def answer(record: Conversation) -> None:
        out, context, score = _answer(index, body, record.context if record.turns else None, settings=settings,
                               source=source, authorization=authorization, status_of=status_of)
        if pending is not None:
            pending.result()   # a refusal (429) wins: nothing is written
        record.context, record.turns = _remembered(context), int(record.turns) + 1
        record.expires_at = _expiry(settings.session_ttl_s)
        answered["out"], answered["score"] = out, score

    try:
        RECENT.update(key, None, answer, create=lambda: _fresh(key, settings.session_ttl_s))
    except ConditionalCheckFailed:
        pass   # a session written by so many at once that the retries ran out: answered, not remembered
    out = answered["out"]
    log.info("answer", extra={"assistant.question": masked(body["text"]), "assistant.intent": out["intent"],
                              "assistant.procedure": out["procedure"], "assistant.score": answered["score"],
                              "assistant.candidates": [c["procedure"] for c in out["candidates"]]})
    return out


def _answer(index: Index, body: Mapping, context: Mapping | None, *, settings: Settings, source, authorization,
            status_of) -> tuple[dict, dict, float]:
    """The answer to one turn given the conversation's ``context``; the context to remember; the
    retrieval score (for the review log)."""
    turn = dialogue.understand(index, body["text"], context, lang=body.get("lang"))
    lang, intent, p = turn["lang"], turn["intent"], turn["procedure"]
    out = {"session": body["session"], "intent": intent, "lang": lang, "procedure": p["code"] if p else None,
           "dossier": None, "citations": [], "suggestions": [],
           "candidates": [{"procedure": c, "name": index.by_code[c]["name"]} for c in turn["candidates"]]}
    if intent == "status":
        view = status_of(turn["dossier"]) if status_of and turn["dossier"] else None
        out["text"] = _status_text(view, turn["dossier"], lang, bool(authorization or body.get("secret")))
        if view is not None:
            out["dossier"] = view.get("code") or turn["dossier"]
            out["citations"] = [{"dossier": out["dossier"], "procedure": view.get("procedure"), "national_code": None,
                                 "name": view.get("procedure_name")}]
    elif p is not None:
        agency_name = source.agency_name if source is not None else (lambda code: None)
        out["text"] = answers.compose(intent, p, lang, agency_name, procedures_url=settings.procedures_url)
        out["citations"] = [answers.citation(p)]
        alternatives = [index.by_code[c] for c in turn["candidates"][1:]]
        out["suggestions"] = answers.suggestions(intent, p, lang, alternatives)
    else:
        out.update(answers.unknown(lang, settings.hotline))
        out["intent"] = "unknown" if intent == "overview" else intent
    return out, dict(turn["context"]), turn["score"]
