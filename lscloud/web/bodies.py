"""Request bodies: the size limit, strict JSON, JSON Schema validation, raw (non-JSON) bodies.

- :func:`json_body` parses strictly (:mod:`lscloud.strictjson`: bounded nesting, no ``NaN`` /
  ``Infinity``, no duplicate keys);
- :func:`validate_body` checks the body against a schema file (the dialect of
  :mod:`lscloud.validation`: ``integer`` is an integer literal, patterns are ECMA-262) and reports
  every error with a JSON pointer;
- :func:`raw_body` lets a view take another media type (uploads, CloudEvents in binary mode),
  :func:`body_limit` raises or lowers one view's size limit;
- ``validate_body(schema, files=True)`` also takes the JSON body with its files in one
  ``multipart/form-data`` request (:data:`JSON_PART` and file parts: :class:`FilePart` in
  ``flask.g.files``), so a client sends a record and its attachments in one round trip.
"""

from __future__ import annotations

import functools
import io
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from flask import g, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import strictjson
from ..context import app_state
from ..problems import Problem

__all__ = ["SchemaSet", "json_body", "validate_body", "raw_body", "body_limit", "buffer_unsized_body", "FilePart",
           "JSON_PART", "MULTIPART", "files_limit"]

MULTIPART = "multipart/form-data"
JSON_PART = "body"  # the form field holding the JSON body in a multipart request


@dataclass(frozen=True)
class FilePart:
    """One file of a multipart request: its form field, file name, declared media type and bytes."""

    field: str
    filename: str | None
    media_type: str
    data: bytes


def _pointer(parts) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class SchemaSet:
    """Every ``*.json`` schema under a folder, loaded once, with ``$ref`` between files resolved.

    Validation uses ``jsonschema``'s draft 2020-12 validator rather than fastjsonschema because a
    caller fixing a form needs *all* errors at once, each with its JSON pointer
    (``iter_errors``); fastjsonschema stops at the first.

    The dialect is :class:`lscloud.validation.StrictValidator`: ``integer`` means an integer
    literal and ``pattern`` is ECMA-262 (``$`` is the end of the text, ``\\d`` is ASCII).
    """

    def __init__(self, root: Path):
        # jsonschema and referencing load with the first schema set (the first validated body),
        # not with the app: a function that only reads never needs them
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        from ..validation import StrictValidator

        self.root = root.resolve()
        self.documents: dict[str, dict] = {}
        resources = []
        for path in sorted(self.root.rglob("*.json")):
            rel = path.relative_to(self.root).as_posix()
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and "$id" not in doc:
                # relative $refs between files resolve against the file's own location
                doc = {"$id": path.as_uri(), **doc}
            self.documents[rel] = doc
            resource = Resource.from_contents(doc, default_specification=DRAFT202012)
            resources.append((doc.get("$id") if isinstance(doc, dict) else path.as_uri(), resource))
            if isinstance(doc, dict) and doc.get("$id") != path.as_uri():
                resources.append((path.as_uri(), resource))
        self.registry = Registry().with_resources(resources)
        self._validators: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._validator_cls = StrictValidator

    def validator(self, name: str):
        v = self._validators.get(name)
        if v is None:
            with self._lock:
                if name not in self.documents:
                    raise KeyError(f"no schema {name!r} under {self.root}")
                self._validator_cls.check_schema(self.documents[name])
                v = self._validators[name] = self._validator_cls(
                    self.documents[name], registry=self.registry,
                    format_checker=self._validator_cls.FORMAT_CHECKER)
        return v

    def errors(self, name: str, instance: Any) -> list[dict]:
        """Every validation error as ``{"field": pointer, "message": ...}``, sorted by field."""
        out: list[dict] = []
        for err in self.validator(name).iter_errors(instance):
            base = list(err.absolute_path)
            if err.validator == "required" and isinstance(err.instance, dict):
                missing = re.match(r"^'(.+)' is a required property$", err.message)
                name_ = missing.group(1) if missing else None
                out.append({"field": _pointer(base + ([name_] if name_ else [])), "message": err.message})
            elif err.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
                known = set((err.schema or {}).get("properties", {}))
                patterns = list((err.schema or {}).get("patternProperties", {}))
                extras = [k for k in err.instance if k not in known and not any(re.search(p, k) for p in patterns)]
                for k in extras or [None]:
                    out.append({"field": _pointer(base + ([k] if k else [])),
                                "message": "property is not allowed" if k else err.message})
            else:
                out.append({"field": _pointer(base), "message": _short(err.message)})
        seen, unique = set(), []
        for e in sorted(out, key=lambda e: (e["field"], e["message"])):
            if (e["field"], e["message"]) not in seen:
                seen.add((e["field"], e["message"]))
                unique.append(e)
        return unique


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def files_limit(view, settings) -> int | None:
    """The body limit of a multipart request to ``view`` (its JSON and its files together: the blob
    limit), or None when the view takes no files or the request is not multipart."""
    if getattr(view, "__lscloud_files__", False) and request.mimetype == MULTIPART:
        return settings.blob_max_bytes
    return None


def _multipart() -> tuple[bytes, list[FilePart]]:
    """The JSON part's bytes and the file parts of a multipart request (400 naming what is wrong)."""
    from werkzeug.formparser import parse_form_data

    env = dict(request.environ)
    raw = request.get_data(cache=True)
    env["wsgi.input"], env["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
    # the body is read whole already: parse those bytes by their length (a terminated input would
    # be read to its end against the limit, and a body of exactly that length refused)
    env.pop("wsgi.input_terminated", None)
    _, form, files = parse_form_data(env, max_form_memory_size=app_state().settings.max_body_bytes,
                                     max_content_length=len(raw))
    # the JSON part as a plain field, or as a part with a file name (some clients send a Blob)
    texts = [t.encode("utf-8") for t in form.getlist(JSON_PART)] + [f.read() for f in files.getlist(JSON_PART)]
    parts = [FilePart(field, f.filename or None, f.mimetype or "application/octet-stream", f.read())
             for field, f in files.items(multi=True) if field != JSON_PART]
    if len(texts) != 1 or set(form) - {JSON_PART}:
        raise Problem(400, "malformed-multipart", "Malformed multipart body",
                      f"A multipart body holds one form field {JSON_PART!r} (the JSON body) and files.",
                      title_vi="Nội dung multipart không hợp lệ",
                      detail_vi=f"Nội dung multipart gồm đúng một trường {JSON_PART!r} (JSON) và các tệp.",
                      errors=[{"field": JSON_PART, "message": "exactly one JSON form field, then files"}])
    return texts[0], parts


def json_body() -> Any:
    """The request body parsed as strict JSON (:mod:`lscloud.strictjson`); cached on ``g``.

    Malformed JSON answers 400 ``malformed-json``; JSON we refuse (nesting past
    :data:`~lscloud.strictjson.MAX_DEPTH`, ``NaN``/``Infinity``, duplicate keys) answers 400
    ``json-rejected`` naming the place as a JSON pointer in ``errors[]``. In a multipart request
    to a view that takes files, the JSON is the :data:`JSON_PART` field (the files land in
    ``g.files``).
    """
    if "lscloud_json" in g:
        return g.lscloud_json
    if request.mimetype == MULTIPART and "lscloud_files" in g:
        raw = g.lscloud_multipart_json
    else:
        raw = request.get_data(cache=True)
    if not raw.strip():
        raise Problem(400, "missing-body", "Missing request body", "This endpoint needs a JSON body.",
                      title_vi="Thiếu nội dung yêu cầu", detail_vi="Chức năng này yêu cầu nội dung JSON.")
    try:
        value = strictjson.loads(raw)
    except strictjson.JSONRejected as exc:
        raise Problem(400, "json-rejected", "JSON not accepted", f"The request body is refused: {exc}.",
                      title_vi="JSON không được chấp nhận",
                      detail_vi="Nội dung yêu cầu bị từ chối: lồng quá sâu, số không hữu hạn (NaN, Infinity) "
                                "hoặc khóa bị lặp lại.",
                      errors=[{"field": exc.pointer, "message": exc.message}]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise Problem(400, "malformed-json", "Malformed JSON", f"The request body is not valid UTF-8 JSON{where}.",
                      title_vi="JSON không hợp lệ", detail_vi=f"Nội dung yêu cầu không phải JSON UTF-8 hợp lệ{where}.") from None
    g.lscloud_json = value
    return value


def validate_body(schema: str, *, optional: bool = False, files: bool = False) -> Callable:
    """Validate the JSON body against ``<schemas_dir>/<schema>`` before the view runs.

    The parsed body lands in ``flask.g.body``; a mismatch answers 422 listing every error.
    ``optional=True`` is for a body whose members are all optional (a cancellation's reason): no
    body at all stands for ``{}``, validated like any other.

    ``files=True``: the view also takes ``multipart/form-data``, the JSON body in the form field
    :data:`JSON_PART` and any number of files beside it (up to the blob limit together), which
    land in ``flask.g.files`` (:class:`FilePart`, in order; ``[]`` for a JSON request). What a
    file may be is the view's to check.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            state = app_state()
            g.files = []
            if files and request.mimetype == MULTIPART:
                g.lscloud_multipart_json, g.files = _multipart()
                g.lscloud_files = True
            body = {} if optional and not request.get_data(cache=True).strip() else json_body()
            errors = state.schemas.errors(schema, body)
            if errors:
                raise Problem(422, "validation-failed", "Validation failed",
                              f"The request body does not match {schema} ({len(errors)} error{'s' if len(errors) != 1 else ''}).",
                              title_vi="Dữ liệu không hợp lệ",
                              detail_vi=f"Nội dung yêu cầu không đúng lược đồ {schema} ({len(errors)} lỗi).",
                              errors=errors)
            g.body = body
            return view(*args, **kwargs)

        wrapper.__lscloud_body_schema__ = schema
        wrapper.__lscloud_body_optional__ = optional
        wrapper.__lscloud_files__ = files
        return wrapper

    return decorate


def raw_body(*media_types: str) -> Callable:
    """Let a view take a non-JSON body (uploads, CloudEvents in binary mode).

    With ``media_types`` given, other types still answer 415.
    """

    def decorate(view):
        view.__lscloud_raw_body__ = tuple(media_types)
        return view

    return decorate


def body_limit(max_bytes: int | str) -> Callable:
    """Raise (or lower) the body size limit for one view (e.g. blob uploads).

    ``max_bytes`` is a number of bytes, or the name of a setting (``"blob_max_bytes"``) read from
    the serving app's settings: a blueprint declared at import follows each app's configuration.
    """
    from ..config import Settings

    if isinstance(max_bytes, str) and max_bytes not in Settings.__dataclass_fields__:
        raise ValueError(f"body_limit({max_bytes!r}): no such setting")

    def decorate(view):
        view.__lscloud_max_body__ = max_bytes if isinstance(max_bytes, str) else int(max_bytes)
        return view

    return decorate


def buffer_unsized_body(limit: int) -> None:
    """Read a body sent without Content-Length (chunked) up to ``limit`` + 1 bytes.

    Werkzeug would silently cut such a body at the limit; reading one byte more tells a
    too-large body (413) from one that just fits. The buffered body then stands in for the
    stream, with its length, before anything has read the request.
    """
    env = request.environ
    if env.get("CONTENT_LENGTH") or not env.get("wsgi.input_terminated"):
        return
    raw = env["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    env["wsgi.input"] = io.BytesIO(raw)
    env["CONTENT_LENGTH"] = str(len(raw))


