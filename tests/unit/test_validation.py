"""The runtime's JSON Schema dialect (lscloud.validation) and what a refused body is told (lscloud.web.bodies): bounded work."""


def test_an_array_past_its_bounds_is_refused_without_walking_it_and_unique_items_is_one_pass():
    """The bounds survey: 524k items past maxItems 5 were each checked and each error answered
    (12 s of CPU, a 79 MB answer), and uniqueItems compared every pair of items that do not sort
    (16,000 mixed items: 15 s). Neither walks a caller's array more than once now (told by the
    errors found, not timed)."""
    from lscloud.validation import StrictValidator

    schema = {"type": "array", "maxItems": 5, "items": {"type": "string"}}
    errors = list(StrictValidator(schema).iter_errors([0] * 100_000))
    assert [e.validator for e in errors] == ["maxItems"]   # the items not walked: no error of theirs
    unique = StrictValidator({"type": "array", "uniqueItems": True})
    assert not list(unique.iter_errors([i if i % 2 else str(i) for i in range(2_000)]))
    assert [e.validator for e in unique.iter_errors([1, "1", 1.0])] == ["uniqueItems"]   # 1 and 1.0 are equal
    assert not list(unique.iter_errors([True, 1, [1, 2], [2, 1], {"a": 1}, {"a": True}]))


def test_a_refused_body_is_told_at_most_fifty_errors(tmp_path):
    import json

    from lscloud.web.bodies import MAX_ERRORS, SchemaSet

    (tmp_path / "many.json").write_text(json.dumps({"type": "array", "items": {"type": "string"}}))
    errors = SchemaSet(tmp_path).errors("many.json", [0] * 10_000)
    assert len(errors) == MAX_ERRORS == 50

