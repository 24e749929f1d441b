"""Reference lookups by code: malformed is 400, unknown is 404, both naming the field in both
languages; never seeded is 503 with Retry-After."""

from __future__ import annotations

import re

import pytest

from lscloud import errors, reference


class Unit:
    class DoesNotExist(Exception):
        pass

    def __init__(self, code):
        self.code = code

    @classmethod
    def get(cls, code):
        if code != "06040":
            raise cls.DoesNotExist(code)
        return cls(code)


UNIT = reference.Code("unit", "đơn vị hành chính", lambda c: bool(re.fullmatch(r"\d{5}", c)), "a 5-digit code")


def test_a_known_code_gives_the_item():
    assert UNIT.get(Unit, "06040").code == "06040"


@pytest.mark.parametrize("code,status,slug,title", [("6040", 400, "invalid-parameter", "Malformed unit code"),
                                                    ("99999", 404, "not-found", "Unit not found")])
def test_bad_codes_name_the_field_in_both_languages(code, status, slug, title):
    with pytest.raises(errors.DomainError) as err:
        UNIT.get(Unit, code)
    p = errors.to_problem(err.value)
    assert (p.status, p.type.rsplit("/", 1)[-1], p.title, p.errors[0]["field"]) == (status, slug, title, "/code")
    assert "đơn vị hành chính" in p.title_vi and code in p.detail


def test_the_field_can_be_another_parameter():
    with pytest.raises(reference.MalformedCode) as err:
        UNIT.check("x", field="/doc")
    assert err.value.errors == [{"field": "/doc", "message": "expected a 5-digit code"}]


def test_not_seeded_is_503_retry_later_with_the_function_s_title():
    class CatalogueNotSeeded(reference.NotSeeded):
        title, title_vi = "Catalogue not loaded", "Chưa nạp danh mục thủ tục"

    p = errors.to_problem(CatalogueNotSeeded("run lscloud seed", detail_vi="chưa nạp"))
    assert (p.status, p.type.rsplit("/", 1)[-1], p.title, p.headers) == \
        (503, "not-seeded", "Catalogue not loaded", {"Retry-After": "30"})
