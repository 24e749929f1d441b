"""One turn of a conversation understood: which procedure, which intent, what to remember.

Pure: the previous turn's *context* (:data:`KEPT`: ``{"procedure", "intent", "terms", "lang"}``,
kept by the caller in an expiring conversation record) goes in, the turn and the next context come
out. The context holds no words of the caller's: ``terms`` are catalogue tokens
(:meth:`.retrieval.Index.kept_terms`), sorted, which a refinement is searched with.

- A question that names a procedure strongly enough is answered for it.
- A follow-up ("còn lệ phí thì sao?", "có nộp online được không") names no procedure: it is
  answered for the previous one, with its own intent.
- A refinement ("ý tôi là cho người nước ngoài") is searched together with what the previous
  question kept (its ``terms``, else the previous procedure's name), so it moves to the procedure
  both describe; the previous intent holds unless it asks another.
- Nothing found: ``procedure`` is None and the answer says it does not know.
"""

from __future__ import annotations

from typing import Mapping

from . import intents
from .retrieval import Index, Match

MIN_SCORE = 8.0        # below this weighted score a question names no procedure by itself (eval: real
                       # questions score 11 and more, questions about nothing in the catalogue 6.5 at most)
KEPT = ("procedure", "intent", "terms", "lang")


def remembered(context: Mapping | None) -> dict:
    """The part of a stored context a turn reads: :data:`KEPT` only. A conversation written before
    ``terms`` replaced the question's own words still holds them (``query``): dropped, not read."""
    context = context or {}
    terms = context.get("terms")
    return {"procedure": context.get("procedure"), "intent": context.get("intent"), "lang": context.get("lang"),
            "terms": [t for t in terms if isinstance(t, str)] if isinstance(terms, list) else []}


def understand(index: Index, question: str, context: Mapping | None = None, lang: str | None = None) -> dict:
    """``{"intent", "procedure", "candidates", "lang", "dossier", "context", "score"}`` for ``question``."""
    context = remembered(context)
    corrected = " ".join(index.speller.correct(w) for w in intents.fold(question).split())
    asked = intents.detect(question) if intents.detect(question) == "status" else intents.detect(corrected)
    # a question clearly in one language is answered in it, both ways (an English question earlier
    # in the tab does not hold a Vietnamese one); one that could be either keeps the conversation's
    language = intents.language(question, lang) if lang else \
        (intents.clear_language(question) or context.get("lang") or intents.language(question))
    if asked == "status":
        ref = intents.dossier_reference(question)
        return _turn("status", None, (), language, ref, {**context, "lang": language}, 0.0)

    previous = index.by_code.get(context.get("procedure") or "")
    refine = intents.is_refinement(question)
    own = intents.without_refinement(question) if previous else question
    match = index.search(own)
    strong = match.exact or (match.best is not None and match.score >= MIN_SCORE)
    carried = False
    if previous is not None and not match.exact:
        if not match.ranked and (asked or refine):
            # names no procedure ("còn lệ phí thì sao?", "có nộp online được không"): the same one
            match, strong, carried = Match(((previous, 100.0),)), True, True
        elif refine or (not strong and asked):
            # refines the previous question ("ý tôi là cho người nước ngoài"), or asks something of it
            # in words that name no procedure well enough by themselves: both together. A weak
            # question that asks nothing ("giá vàng hôm nay") is not pulled into the conversation.
            match = index.search(own, terms=context["terms"] or index.query_tokens(previous["name"]))
            strong = match.best is not None
    procedure = match.best if strong else None
    intent = asked or (context.get("intent") if previous is not None and refine else None) or "overview"
    new_context = {"procedure": procedure["code"] if procedure else context.get("procedure"), "intent": intent,
                   "terms": index.kept_terms(match) if procedure and not carried else context["terms"],
                   "lang": language}
    candidates = tuple(p["code"] for p, _ in match.ranked[:3]) if strong else ()
    return _turn(intent, procedure, candidates, language, None, new_context, match.score)


def _turn(intent, procedure, candidates, lang, dossier, context, score) -> dict:
    return {"intent": intent, "procedure": procedure, "candidates": list(candidates), "lang": lang,
            "dossier": dossier, "context": context, "score": round(float(score), 3)}
