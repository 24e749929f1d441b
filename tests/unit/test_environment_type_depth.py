"""The NGSI-LD type selection (4.17) as the environment broker reads it, without servers: parentheses
nest as deep as q's (MAX_DEPTH), and deeper is a 400 naming ``type``, never the interpreter's
recursion limit (a 500)."""

from __future__ import annotations

import pytest

from functions.environment.function import ngsi, ngsi_request
from functions.environment.function.ngsi_query import MAX_DEPTH


def test_nesting_up_to_the_bound_is_read():
    nested = "(" * MAX_DEPTH + "AirQualityObserved" + ")" * MAX_DEPTH
    assert ngsi_request.type_kinds(nested) == {"air"}
    inner = MAX_DEPTH - 1
    assert ngsi_request.type_kinds("(" * inner + "AirQualityObserved|(NoiseLevelObserved)" + ")" * inner) \
        == {"air", "noise"}
    # depth, not the count of groups: many groups side by side are fine
    assert ngsi_request.type_kinds(",".join(["(AirQualityObserved)"] * 60)) == {"air"}


@pytest.mark.parametrize("selection", [
    "(" * (MAX_DEPTH + 1) + "AirQualityObserved" + ")" * (MAX_DEPTH + 1),
    "(" * 340 + "AirQualityObserved",                  # the survey's: RecursionError, a 500
    "(" * 580 + "AirQualityObserved",                  # 598 characters: within the parameter's maxLength (600)
    "(" * 300 + "AirQualityObserved" + ")" * 300,
], ids=["one-past-the-bound", "survey-340-unclosed", "580-unclosed", "300-closed"])
def test_deeper_is_bad_request_data_naming_type(selection):
    with pytest.raises(ngsi.BadRequestData) as caught:
        ngsi_request.type_kinds(selection)
    problem = caught.value
    assert problem.status == 400 and problem.type.endswith("/BadRequestData")
    assert [e["field"] for e in problem.errors] == ["type"]
    assert str(MAX_DEPTH) in problem.errors[0]["message"] and problem.errors[0]["message_vi"]
