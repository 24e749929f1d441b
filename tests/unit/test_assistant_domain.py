"""The assistant's understanding without servers: folding and segmentation, typo correction, intents,
retrieval over the real catalogue, multi-turn context, answers composed only from catalogue facts,
and the evaluation set's accuracy held above a floor (both the tuning part and the holdout)."""

from __future__ import annotations

import pytest

from functions.assistant.function import answers, dialogue, evaluation, intents, text
from functions.assistant.function.retrieval import Index
from functions.procedures.function import catalogue


@pytest.fixture(scope="module")
def index():
    return Index(catalogue.build()["procedures"])


def test_compounds_are_joined_and_syllables_kept():
    assert text.segment("dang ky khai sinh".split(), frozenset({"dang ky", "khai sinh"})) == ["dang_ky", "khai_sinh"]
    toks = text.tokens("Đăng ký KHAI SINH")
    assert {"dang", "ky", "khai", "sinh", "dang_ky", "khai_sinh"} <= set(toks)


def test_typos_are_corrected_against_the_vocabulary():
    sp = text.Speller(["giấy phép xây dựng", "đăng ký tạm trú online"])
    assert sp.correct("fep") == "phep" and sp.correct("onlin") == "online" and sp.correct("jay") == "giay"
    assert sp.correct("meo") == "meo"     # short unknown syllables are left alone


@pytest.mark.parametrize("q,intent", [
    ("làm giấy khai sinh cho con cần gì", "documents"), ("lam so do mat bao lau", "time"),
    ("đăng ký kết hôn với người nước ngoài ở đâu", "where"), ("phí cấp lại căn cước", "fees"),
    ("có nộp online được không", "online"), ("mẫu tờ khai kết hôn", "forms"), ("các bước đăng ký hộ kinh doanh", "steps"),
    ("hồ sơ 2025-000123 đến đâu rồi", "status"), ("hỗ trợ mai táng phí", None), ("how much is the fee", "fees")])
def test_intents(q, intent):
    assert intents.detect(q) == intent


def test_language():
    assert intents.language("how long does birth registration take") == "en"
    assert intents.language("lam khai sinh mat bao lau") == "vi" and intents.language("phí") == "vi"
    assert intents.language("khai sinh", "en") == "en"


@pytest.mark.parametrize("q,code", [("làm giấy khai sinh cho con cần gì", "HT-KS"), ("lam so do mat bao lau", "DD-GCN"),
                                    ("đăng ký kết hôn với người nước ngoài ở đâu", "HT-KHNN"),
                                    ("phí cấp lại căn cước", "CC-CL"), ("giay fep xay dung can gi", "XD-GPXD"),
                                    ("HT-KT", "HT-KT"), ("thủ tục 1.000894", "HT-KH")])
def test_retrieval(index, q, code):
    assert index.search(q).best["code"] == code


def test_a_follow_up_keeps_the_procedure_and_a_refinement_moves_it(index):
    t1 = dialogue.understand(index, "làm giấy khai sinh cho con cần gì")
    t2 = dialogue.understand(index, "còn lệ phí thì sao?", t1["context"])
    assert (t2["procedure"]["code"], t2["intent"]) == ("HT-KS", "fees")
    t3 = dialogue.understand(index, "đăng ký kết hôn ở đâu")
    t4 = dialogue.understand(index, "ý tôi là cho người nước ngoài", t3["context"])
    assert (t4["procedure"]["code"], t4["intent"]) == ("HT-KHNN", "where")


def test_nothing_found_is_not_guessed(index):
    context = dialogue.understand(index, "đăng ký kết hôn ở đâu")["context"]
    for q in ("con mèo nhà tôi bị lạc thì sao", "giá vàng hôm nay", "xin chào"):
        assert dialogue.understand(index, q)["procedure"] is None, q
        if not q.endswith("thì sao"):   # "… thì sao" reads as a follow-up of the conversation (a known limit)
            assert dialogue.understand(index, q, context)["procedure"] is None, q   # not pulled into it


def test_answers_use_only_catalogue_facts(index):
    p = index.by_code["CC-CL"]
    fee = answers.compose("fees", p, "vi")
    assert "70.000 đồng" in fee and "chưa được đối chiếu" in fee
    ks = index.by_code["HT-KS"]
    assert "trong ngày làm việc" in answers.compose("time", ks, "vi") and "15:00" in answers.compose("time", ks, "vi")
    forms = answers.compose("forms", ks, "vi", procedures_url="https://procedures.lscloud.cloud.langson.gov.vn")
    assert "https://procedures.lscloud.cloud.langson.gov.vn/v1/procedures/HT-KS/documents/to-khai/template" in forms
    assert answers.citation(ks) == {"procedure": "HT-KS", "national_code": "1.001193", "name": "Đăng ký khai sinh"}
    assert "chưa được đối chiếu" not in answers.compose("time", ks, "vi")   # HT-KS's days are verified


def test_the_evaluation_set_is_large_and_names_real_procedures(index):
    data = evaluation.cases()
    assert len(data["tuning"]) + len(data["holdout"]) >= 200 and len(data["holdout"]) >= 50
    for question, code, intent in data["tuning"] + data["holdout"]:
        assert code is None or code in index.by_code, code
        assert intent in intents.INTENTS, intent


def test_accuracy_holds_its_floor(index):
    """The floor is below today's figures (tuning 93%, holdout 92% top-1; top-3 99%+) so that a change
    making the assistant worse fails here; raise it when the figures rise."""
    results = evaluation.run(index)
    for part, floor in (("tuning", 0.90), ("holdout", 0.88)):
        s = results[part].summary()
        assert s["top1"] >= floor and s["top3"] >= 0.97 and s["intent"] >= 0.95, (part, s)
    assert results["conversations"].summary()["top1"] >= 0.85
