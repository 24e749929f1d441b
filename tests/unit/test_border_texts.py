"""What drivers read at the border, from the domain alone: the barrier's reasons in their three
languages, the queue's rules as the lookup tells them, a driver's language by nationality, the
SMS bound of a traffic order."""

from __future__ import annotations

import re

import pytest

from functions.border.function import barrier, i18n, queue, traffic

CJK = re.compile(r"[\u4e00-\u9fff]")
VIETNAMESE = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE)


def test_every_barrier_refusal_reads_in_vietnamese_chinese_and_english():
    shut = barrier.decide({"status": "under_inspection", "gate": "tan-thanh", "flow": "out", "holds": {"weight": {}},
                           "vehicle": {"tractor_plate": "12C-999.99"}},
                          gate="huu-nghi", flow="in", plate_read="12C-111.11", confidence=0.1)
    reasons = shut.reasons + barrier.decide(None, gate="huu-nghi", flow="in", plate_read="x").reasons
    assert {r["code"] for r in reasons} == set(barrier.REASONS)
    for r in reasons:
        assert r["message"] and not CJK.search(r["message"]) and not VIETNAMESE.search(r["message"])
        assert VIETNAMESE.search(r["message_vi"]), r
        assert CJK.search(r["message_zh"]), r
    for lang in ("message", "message_vi", "message_zh"):
        assert len({r[lang] for r in reasons}) == len(reasons)


def test_the_lookup_tells_the_queue_s_own_rules():
    told = queue.explain_counts(queue.queue_key("1", "2026120713", queue.slot_start("2026120713"), "LSX"), 0, 0, 0, 30)
    assert i18n.rules("en") == told["rules"]
    assert all(len(i18n.rules(lang)) == len(told["rules"]) for lang in i18n.LANGUAGES)


@pytest.mark.parametrize("nationality,lang", [("VN", "vi"), ("CN", "zh"), ("LA", "en"), ("TH", "en"), (None, "en")])
def test_a_driver_is_texted_in_the_language_of_his_nationality(nationality, lang):
    assert i18n.of_nationality(nationality) == lang


def test_a_traffic_order_is_counted_in_ucs2_sms_parts():
    assert traffic.MAX_CHARS == 268
    assert traffic.sms_parts("Ừ" * 70) == 1 and traffic.sms_parts("Ừ" * 71) == 2
    assert traffic.sms_parts("口" * 268) == 4 and traffic.sms_parts("口" * 269) == 5
    assert traffic.sms_chars("🚚") == 2
