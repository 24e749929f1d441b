"""The language of the assistant's answers within one conversation: a question clearly in one
language is answered in it, in both directions (the widget keeps one session per tab, so an English
question must not hold the Vietnamese ones after it), and a question that could be either keeps the
conversation's language."""

from __future__ import annotations

import pytest

from functions.assistant.function import chat, dialogue, intents
from functions.assistant.function.retrieval import Index
from functions.procedures.function import catalogue


@pytest.fixture(scope="module")
def index():
    return Index(catalogue.build()["procedures"])


def turns(index, *questions, lang=None):
    context, out = None, []
    for q in questions:
        t = dialogue.understand(index, q, context, lang=lang)
        out.append(t)
        context = t["context"]
    return out


def test_a_vietnamese_question_after_an_english_one_is_answered_in_vietnamese(index):
    en, vi = turns(index, "how long does a birth registration take", "lệ phí cấp lại căn cước công dân là bao nhiêu")
    assert en["lang"] == "en" and vi["lang"] == "vi"
    assert (vi["procedure"]["code"], vi["intent"]) == ("CC-CL", "fees")
    # without marks, by its function words
    assert turns(index, "how much is the fee for a birth registration", "lam khai sinh mat bao lau")[1]["lang"] == "vi"
    # a status question too (its answer asks for the receipt's secret in the question's language)
    assert turns(index, "how long does a birth registration take", "hồ sơ LS-251122-7K3QZP của tôi đến đâu rồi")[1]["lang"] == "vi"


def test_the_answer_text_follows_the_switch_back(index):
    first = dialogue.understand(index, "how long does a birth registration take")
    out, _, _ = chat._answer(index, {"session": "s" * 16, "text": "lệ phí cấp lại căn cước công dân là bao nhiêu"},
                             first["context"], settings=chat.Settings(), source=None, authorization=None, status_of=None)
    assert out["lang"] == "vi" and "Lệ phí" in out["text"], out["text"]


def test_an_english_question_after_a_vietnamese_one_is_answered_in_english(index):
    vi, en = turns(index, "lệ phí cấp lại căn cước công dân là bao nhiêu", "how long does a birth registration take")
    assert vi["lang"] == "vi" and en["lang"] == "en"


@pytest.mark.parametrize("first, lang", [("how long does a birth registration take", "en"),
                                         ("làm giấy khai sinh cho con cần gì", "vi")])
@pytest.mark.parametrize("ambiguous", ["khai sinh", "HT-KS", "LS-251122-7K3QZP", "ok", "1.001193"])
def test_a_question_in_either_language_keeps_the_conversations(index, first, lang, ambiguous):
    assert intents.clear_language(ambiguous) is None
    assert turns(index, first, ambiguous)[1]["lang"] == lang


def test_a_language_asked_for_wins(index):
    assert turns(index, "how long does a birth registration take", "lệ phí cấp lại căn cước", lang="en")[1]["lang"] == "en"
    assert turns(index, "lệ phí cấp lại căn cước", "how long does a birth registration take", lang="vi")[1]["lang"] == "vi"


@pytest.mark.parametrize("q, lang", [
    ("lệ phí cấp lại căn cước công dân là bao nhiêu", "vi"), ("phí", "vi"), ("co nop online duoc khong", "vi"),
    ("how long does a birth registration take", "en"), ("What is the fee?", "en"),
    ("what’s the fee for a birth certificate", "en"),          # a phone's curly apostrophe is not Vietnamese
    ("where do I register a birth in Lạng Sơn", "en"),          # a place name does not make it Vietnamese
])
def test_clear_language(q, lang):
    assert intents.clear_language(q) == lang
