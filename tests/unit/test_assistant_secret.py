"""A receipt's tracking secret typed into a question is not kept in the review log (the widget has a
field of its own for it, sent as ``secret`` and never logged; people type it into the question too)."""

from __future__ import annotations

import pytest

from functions.assistant.function import chat


@pytest.mark.parametrize("question", [
    "hồ sơ LS-261207-5BMU5G của tôi đến đâu rồi, mã bí mật 7F3K9Q2A",
    "ho so LS-261207-5BMU5G den dau roi ma bi mat: 7f3k9q2a",
    "status of my dossier LS-261207-5BMU5G, secret is 7F3K9Q2A",
])
def test_a_secret_typed_into_the_question_is_masked_in_the_log(question):
    logged = chat.masked(question)
    assert "7F3K9Q2A" not in logged.upper() and "[mã]" in logged
    assert "5BMU5G" in logged   # the dossier's code stays: the review needs to see what was asked


def test_a_question_without_a_secret_is_logged_as_asked():
    assert chat.masked("lệ phí cấp lại căn cước công dân là bao nhiêu") == "lệ phí cấp lại căn cước công dân là bao nhiêu"
