"""Messages people read come in Vietnamese and English: every ``errors[]`` item of a body that fails
its schema says, in both languages, which field and what it should be (never the regex, never the
schema's file name), and no refusal a function raises leaves its Vietnamese text out."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from lscloud import errors
from lscloud.web.bodies import SchemaSet, invalid_body

ROOT = Path(__file__).resolve().parents[2]
VI = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.IGNORECASE)
# what a citizen should never read: regex syntax, jsonschema's own wording, a schema file
NOT_FOR_PEOPLE = re.compile(r"[\^$\\\[\]{}]|does not match|is not valid under|required property|\.json|schema", re.IGNORECASE)

SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 5},
        "words": {"type": "string", "minLength": 3},
        "slug": {"type": "string", "pattern": "^[a-z]+(?:_[a-z]+)*(?:\\.v[0-9]+)?$"},
        "kind": {"enum": ["air", "noise", "water"]},
        "token": {"const": "Bearer"},
        "count": {"type": "integer"},
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "days": {"type": "number", "multipleOf": 0.5},
        "tags": {"type": "array", "minItems": 2, "maxItems": 3, "uniqueItems": True, "items": {"type": "string"}},
        "day": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "mail": {"type": "string", "format": "email"},
        "template": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["sha256"],
                                                  "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}]},
        "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
        "either": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        "limits": {"type": "object", "minProperties": 1, "maxProperties": 2, "propertyNames": {"enum": ["a", "b", "c"]}},
        "steps": {"type": "array", "items": {"type": "object", "required": ["code"]}},
        "reporter": {"type": "object", "properties": {"phone": {"type": "string", "pattern": "^\\+?[0-9 .-]{8,20}$"}}},
    },
}

CASES = [   # (validator, body, the field named)
    ("required", {}, "/name"),
    ("type", {"name": "x", "count": "3"}, "/count"),
    ("pattern", {"name": "x", "reporter": {"phone": "09l2 345 678"}}, "/reporter/phone"),
    ("pattern (not simple)", {"name": "x", "slug": "A B"}, "/slug"),
    ("enum", {"name": "x", "kind": "fire"}, "/kind"),
    ("const", {"name": "x", "token": "Basic"}, "/token"),
    ("minLength", {"name": ""}, "/name"),
    ("minLength (3)", {"name": "x", "words": "ab"}, "/words"),
    ("maxLength", {"name": "much too long"}, "/name"),
    ("minimum", {"name": "x", "n": 0}, "/n"),
    ("maximum", {"name": "x", "n": 11}, "/n"),
    ("exclusiveMinimum", {"name": "x", "ratio": 0}, "/ratio"),
    ("exclusiveMaximum", {"name": "x", "ratio": 1}, "/ratio"),
    ("multipleOf", {"name": "x", "days": 0.3}, "/days"),
    ("minItems", {"name": "x", "tags": ["a"]}, "/tags"),
    ("maxItems", {"name": "x", "tags": ["a", "b", "c", "d"]}, "/tags"),
    ("uniqueItems", {"name": "x", "tags": ["a", "a"]}, "/tags"),
    ("format date", {"name": "x", "day": "2026-02-30"}, "/day"),
    ("format date-time", {"name": "x", "at": "2026-03-01 08:00"}, "/at"),
    ("format email", {"name": "x", "mail": "an.example.vn"}, "/mail"),
    ("additionalProperties", {"name": "x", "colour": "red"}, "/colour"),
    ("oneOf (a branch's field)", {"name": "x", "template": {"sha256": "XYZ"}}, "/template/sha256"),
    ("oneOf (no branch's type)", {"name": "x", "template": 5}, "/template"),
    ("oneOf (more than one)", {"name": "x", "either": 1}, "/either"),
    ("anyOf", {"name": "x", "when": "tomorrow"}, "/when"),
    ("minProperties", {"name": "x", "limits": {}}, "/limits"),
    ("maxProperties", {"name": "x", "limits": {"a": 1, "b": 2, "c": 3}}, "/limits"),
    ("propertyNames", {"name": "x", "limits": {"zz": 1}}, "/limits/zz"),
    ("required in a list item", {"name": "x", "steps": [{"code": "a"}, {}]}, "/steps/1/code"),
    ("type of the body", ["not", "an", "object"], ""),
]


@pytest.fixture(scope="module")
def schemas(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemas")
    (root / "t.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    return SchemaSet(root)


def assert_readable(item: dict) -> None:
    """One errors[] item a person can read in both languages, naming its field."""
    assert set(item) == {"field", "message", "message_vi"}, item
    en, vi = item["message"], item["message_vi"]
    assert VI.search(vi), f"not Vietnamese: {vi!r}"
    for text in (en, vi):
        assert not NOT_FOR_PEOPLE.search(text), f"not for people: {text!r}"
        assert len(text) <= 160, text
    name = item["field"].rsplit("/", 1)[-1]
    if name and not name.isdigit():
        assert name in en and name in vi, item


@pytest.mark.parametrize("validator, body, field", CASES, ids=[c[0] for c in CASES])
def test_each_validator_is_said_in_both_languages(schemas, validator, body, field):
    found = schemas.errors("t.json", body)
    assert field in [e["field"] for e in found], found
    for item in found:
        assert_readable(item)


def test_a_pattern_is_said_in_words_without_the_regex(schemas):
    [phone] = schemas.errors("t.json", {"name": "x", "reporter": {"phone": "09l2 345 678"}})
    assert phone["message"] == "phone must be 8 to 20 characters: digits, spaces, '.' or '-', optionally after a '+'."
    assert phone["message_vi"] == ("Trường phone phải gồm từ 8 đến 20 ký tự: chữ số, dấu cách, '.' hoặc '-', "
                                   "có thể bắt đầu bằng dấu '+'.")


def test_the_survey_s_bodies_read_well_with_the_project_s_schemas():
    """The bodies a citizen sent in the survey, against the real schemas: the summary counts the
    fields in words a citizen reads; every item is readable."""
    real = SchemaSet(ROOT / "schemas")
    for schema, body, fields in [
        ("reports/report-create.json", {"service_code": "dien-chieu-sang", "reporter": {"phone": "09l2 345 678"}},
         ["/reporter/phone", "/service_code"]),
        ("dossiers/dossier-create.json", {"id": "ks 1", "unit": "6040", "procedure": "HT-KS", "documents": []},
         ["/id", "/unit"]),
    ]:
        found = real.errors(schema, body)
        assert [e["field"] for e in found] == fields
        for item in found:
            assert_readable(item)
        problem = invalid_body(found)
        assert problem.detail_vi.startswith(f"{len(fields)} trường chưa hợp lệ: ")
        assert problem.detail.startswith(f"{len(fields)} fields are not valid: ")
        for text in (problem.detail, problem.detail_vi):
            assert not NOT_FOR_PEOPLE.search(text), text


def test_an_error_at_one_field_never_puts_english_where_vietnamese_is_read():
    bare = errors.to_problem(errors.Invalid.at("/a", "a is wrong"))
    assert bare.detail == "a is wrong" and VI.search(bare.detail_vi) and bare.errors == [{"field": "/a", "message": "a is wrong"}]
    both = errors.to_problem(errors.Invalid.at("/a", "a is wrong", "Trường a sai."))
    assert both.detail_vi == "Trường a sai."
    assert both.errors == [{"field": "/a", "message": "a is wrong", "message_vi": "Trường a sai."}]
    assert errors.field("/b", "bad") == {"field": "/b", "message": "bad"}


# -- every refusal a function raises carries its Vietnamese text ---------------------------------------
# border is left out: its own change gives its refusals their Vietnamese texts

OTHERS = ("border",)


def _vietnamese(node: ast.expr | None) -> bool:
    """A text that is Vietnamese (a literal with diacritics), or one this test cannot read (a name,
    a call): those are the raiser's to have checked."""
    if node is None or isinstance(node, ast.Constant) and node.value is None:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(VI.search(node.value))
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and VI.search(str(v.value)) for v in node.values)
    return True


def _arg(call: ast.Call, index: int | None, keyword: str) -> ast.expr | None:
    if index is not None and len(call.args) > index and not isinstance(call.args[index], ast.Starred):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _capitalised(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name[:1].isupper()


def _sources():
    for path in sorted((ROOT / "functions").glob("*/function/**/*.py")):
        if path.relative_to(ROOT).parts[1] not in OTHERS and "__pycache__" not in path.parts:
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _helpers(trees) -> dict[str, tuple[int | None, str]]:
    """Functions of ours taking an optional Vietnamese text (``message_vi=None``): name -> its
    position and keyword."""
    out = {}
    for _, tree in trees:
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("__"):
                continue
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            defaults = dict(zip(params[len(params) - len(fn.args.defaults):], fn.args.defaults))
            defaults.update({a.arg: d for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults) if d is not None})
            for name in ("message_vi", "detail_vi"):
                if isinstance(defaults.get(name), ast.Constant) and defaults[name].value is None:
                    index = params.index(name) if name in params else None
                    if index is not None and params[:1] in (["self"], ["cls"]):
                        index -= 1
                    out[fn.name] = (index, name)
    return out


def missing_vietnamese() -> list[str]:
    trees = list(_sources())
    helpers = _helpers(trees)
    wrong = []
    for path, tree in trees:
        # a function of this file shadows a helper of the same name elsewhere (ngsi_request's own bad)
        own = {fn.name for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)} - set(_helpers([(path, tree)]))
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or not isinstance(call.func, (ast.Attribute, ast.Name)):
                continue
            func, where = call.func, f"{path.relative_to(ROOT)}:{call.lineno}"
            if isinstance(func, ast.Attribute) and func.attr == "at" and _capitalised(func.value):
                vi = _arg(call, 2, "message_vi")                    # Invalid.at(pointer, message, message_vi)
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "errors" \
                    and _capitalised(func) and (call.args or any(k.arg == "detail" for k in call.keywords)):
                vi = _arg(call, None, "detail_vi")                  # errors.Invalid("...", detail_vi=...)
            elif (func.attr if isinstance(func, ast.Attribute) else func.id if func.id not in own else "") in helpers:
                index, keyword = helpers[func.id if isinstance(func, ast.Name) else func.attr]
                vi = _arg(call, index, keyword)                     # ngsi.bad(param, message, message_vi)
            else:
                continue
            if any(k.arg is None for k in call.keywords) and vi is None:
                continue                                            # **kwargs: the caller's to fill
            if not _vietnamese(vi):
                wrong.append(f"{where}  {ast.unparse(call)[:120]}")
    return wrong


def test_every_refusal_a_function_raises_has_its_vietnamese_text():
    wrong = missing_vietnamese()
    assert not wrong, "no Vietnamese text (give message_vi / detail_vi):\n" + "\n".join(wrong)


def test_the_walk_sees_what_it_looks_for():
    """The walk finds refusals at all (a rename of Invalid.at would silently pass the test above)."""
    trees = list(_sources())
    ats = [c for _, t in trees for c in ast.walk(t) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
           and c.func.attr == "at" and _capitalised(c.func.value)]
    assert len(ats) > 30 and "bad" in _helpers(trees)
