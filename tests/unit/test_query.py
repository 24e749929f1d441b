"""Query parameters refused in both languages: every ``errors[]`` item :mod:`lscloud.query` gives
names the parameter and says, in natural Vietnamese too, what it should be (citizens and tellers
read these), through the runtime's one ``errors[]`` shape (:func:`lscloud.errors.field`)."""

from __future__ import annotations

import re

import pytest

from lscloud import errors
from lscloud.listing import list_params
from lscloud.query import InvalidQuery, Param, QueryError, parse

VI = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.IGNORECASE)
# what a citizen should never read: regex syntax, jsonschema's own wording
NOT_FOR_PEOPLE = re.compile(r"[\^$\\\[\]{}]|does not match|is not one of|is too long|minimum|maximum|should be",
                            re.IGNORECASE)

PARAMS = (
    *list_params(),   # q, limit (1 to 100), page_token (the cursor), offset: what every list declares
    Param("n", "", {"type": "integer", "minimum": 1}),
    Param("few", "", {"type": "integer", "maximum": 10}),
    Param("step", "", {"type": "integer", "multipleOf": 5}),
    Param("ratio", "", {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}),
    Param("flag", "", {"type": "boolean"}),
    Param("kind", "", {"type": "string", "enum": ["air", "noise"]}),
    Param("from", "", {"type": "string", "format": "date"}),
    Param("at", "", {"type": "string", "format": "date-time"}),
    Param("unit", "", {"type": "string", "pattern": "^[0-9]{5}$", "examples": ["06040"]}),
    Param("code", "", {"type": "string", "minLength": 1, "maxLength": 8}),
    Param("word", "", {"type": "string", "minLength": 3}),
)

CASES = [   # (query arguments, the parameter named, its Vietnamese sentence)
    ({"limit": "0"}, "limit", "Tham số 'limit' phải là số nguyên từ 1 đến 100."),
    ({"limit": "101"}, "limit", "Tham số 'limit' phải là số nguyên từ 1 đến 100."),
    ({"limit": "abc"}, "limit", "Tham số 'limit' phải là số nguyên từ 1 đến 100."),
    ({"limit": "1.5"}, "limit", "Tham số 'limit' phải là số nguyên từ 1 đến 100."),
    ({"limit": ["1", "2"]}, "limit", "Tham số 'limit' chỉ được truyền một lần."),
    ({"offset": "-3"}, "offset", "Tham số 'offset' phải là số nguyên từ 0 đến 1.000.000."),
    ({"page_token": "x" * 201}, "page_token", "Tham số 'page_token' chỉ được có tối đa 200 ký tự."),
    ({"page_token": "ab\x01"}, "page_token", "Tham số 'page_token' không được chứa ký tự điều khiển."),
    ({"q": "a\u0085b"}, "q", "Tham số 'q' không được chứa ký tự điều khiển."),
    ({"n": "0"}, "n", "Tham số 'n' phải là số nguyên từ 1 trở lên."),
    ({"few": "11"}, "few", "Tham số 'few' phải là số nguyên không vượt quá 10."),
    ({"step": "7"}, "step", "Tham số 'step' phải là bội số của 5."),
    ({"ratio": "1"}, "ratio", "Tham số 'ratio' phải là một số lớn hơn 0 và nhỏ hơn 1."),
    ({"ratio": "NaN"}, "ratio", "Tham số 'ratio' phải là một số lớn hơn 0 và nhỏ hơn 1."),
    ({"flag": "yes"}, "flag", "Tham số 'flag' phải là true hoặc false."),
    ({"kind": "fire"}, "kind", "Tham số 'kind' phải là một trong các giá trị: air, noise."),
    ({"from": "2026-02-30"}, "from",
     "Tham số 'from' phải là một ngày có thật, dạng năm-tháng-ngày (YYYY-MM-DD), ví dụ 2026-03-01."),
    ({"from": "0001-01-01"}, "from", "Tham số 'from' phải là ngày trong khoảng từ năm 1900 đến năm 2999."),
    ({"at": "2026-03-01T08:00:00"}, "at",
     "Tham số 'at' phải là ngày giờ kèm múi giờ (RFC 3339), ví dụ 2026-03-01T08:00:00+07:00."),
    ({"unit": "6040"}, "unit", "Tham số 'unit' không đúng định dạng (ví dụ: 06040)."),
    ({"code": ""}, "code", "Tham số 'code' không được để trống."),
    ({"code": "much too long"}, "code", "Tham số 'code' chỉ được có tối đa 8 ký tự."),
    ({"word": "ab"}, "word", "Tham số 'word' cần có ít nhất 3 ký tự."),
]


@pytest.mark.parametrize("args,name,vi", CASES, ids=[f"{c[1]}={c[0][c[1]]!r}"[:40] for c in CASES])
def test_a_bad_parameter_is_told_in_vietnamese_too(args, name, vi):
    with pytest.raises(InvalidQuery) as refused:
        parse(PARAMS, args)
    [item] = refused.value.errors
    assert item["field"] == name and item["message"]
    assert item["message_vi"] == vi
    assert VI.search(item["message_vi"]) and not NOT_FOR_PEOPLE.search(item["message_vi"])


def test_the_english_stays_what_it_was():
    with pytest.raises(InvalidQuery) as refused:
        parse(PARAMS, {"limit": "abc", "flag": "yes"})
    assert [(e["field"], e["message"]) for e in refused.value.errors] == [
        ("limit", "limit must be a whole number"), ("flag", "flag must be true or false")]


def test_a_missing_required_parameter_is_named_in_both_languages():
    with pytest.raises(InvalidQuery) as refused:
        parse([Param("code", "", required=True)], {})
    assert refused.value.errors == [errors.field("code", "code is required", "Thiếu tham số bắt buộc 'code'.")]


def test_every_bad_parameter_is_told_in_both_languages_at_once():
    with pytest.raises(InvalidQuery) as refused:
        parse(PARAMS, {"limit": "0", "page_token": "x" * 201, "kind": "fire"})
    assert [e["field"] for e in refused.value.errors] == ["limit", "page_token", "kind"]
    assert all(VI.search(e["message_vi"]) for e in refused.value.errors)


def test_a_query_error_carries_its_vietnamese_as_an_errors_item():
    told = QueryError("page_token", "page_token is not one this list issued",
                      "Tham số 'page_token' không phải mã trang mà danh sách này đã cấp.")
    assert told.message_vi == "Tham số 'page_token' không phải mã trang mà danh sách này đã cấp."
    assert told.errors == [errors.field("page_token", told.message, told.message_vi)]
    # a raiser that gives no Vietnamese still leaves the reader a Vietnamese sentence naming the parameter
    plain = QueryError("to", "to is on or after from, at most 31 days later")
    assert plain.errors == [{"field": "to", "message": "to is on or after from, at most 31 days later",
                             "message_vi": "Tham số 'to' không hợp lệ."}]
