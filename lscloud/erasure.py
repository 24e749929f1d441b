"""Erasure requests: one person's data found and erased in every function that holds it, and the
request recorded.

Law No. 91/2025/QH15 on personal data protection (in force 01/01/2026) gives a data subject the
right to have their data deleted (Art. 4), and has the controller delete it on request so that it
cannot be recovered, or tell the person why it cannot (another law keeps it) (Art. 14(1)). This is
the platform's one mechanism for that, modelled on the per-function hooks of :mod:`lscloud.serve`:

- a function that holds personal data has ``function/erase.py`` with ``erase(runtime, subject) ->
  report``. ``subject`` (:class:`Subject`) names the person by one identifier: a CCCD, a phone number
  or an e-mail address. The hook finds what it holds of that person through its own indexes (keyed
  by :meth:`Subject.pseudonym`, never by the clear value), erases it by conditional writes, and
  answers ``{"erased": [{"what", "count"}], "kept": [{"what", "why", "law"}], "found": n}`` — counts
  and reasons, never the identifier or any other personal value (:func:`run` checks, and masks
  what slipped through);
- :func:`run` runs the chosen hooks for one request, deletes the earlier versions of exactly the
  objects they changed (the cluster's buckets are versioned: :mod:`lscloud.store.history`), and records it: a create-only object
  ``_lscloud/erasures/<pseudonym of the identifier>/<request>.json`` with the time, the operator,
  the functions, their reports and the pseudonyms the hooks looked the person up by. The record is
  how the province shows it handled the request, and what re-applies it after a backup from before
  it was restored (:meth:`Subject.from_record`: the hooks find the person again by those
  pseudonyms, with no identifier kept anywhere). Keep a copy of each record (the command prints it)
  apart from the backups: a restore of an older backup takes the bucket's copy away too;
- the operator runs ``lscloud erase --kind phone --value - [--function NAME ...]`` (the local cloud,
  or ``--from-env`` with a function's environment), or in the cluster ``python -m lscloud.serve
  --erase phone --operator NAME functions/<name>`` with the function's own environment, as its
  migration is run. The identifier is read from stdin (or a prompt that does not echo), so it is in
  no shell history or process list (``lscloud erase`` takes a literal ``--value`` too, with a
  warning; ``lscloud.serve`` never does); it is never logged, put in a span, an object key or the
  record.

A hook may also call :func:`forget_answers`: the idempotency layer keeps a request's whole answer
for a client's retry (a day), and an answer may hold the person's data.
"""

from __future__ import annotations

import base64
import getpass
import importlib
import json
import logging
import re
import secrets
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TextIO
from xml.sax.saxutils import escape as xml_escape

from . import pseudonyms, redaction
from .store.history import forget as forget_history
from .timestamps import iso, now

log = logging.getLogger("lscloud.erasure")

KINDS = ("cccd", "phone", "email")
"""The identifiers a person can be named by."""
RECORD_PREFIX = "_lscloud/erasures"
PURPOSE = "lscloud-erasures"
TO_CONFIRM = "căn cứ pháp lý để giữ lại: cần tỉnh xác nhận / the legal ground for keeping it: to be confirmed by the province"
VERSIONS_KEPT = {
    "what": "bản sao lưu trước hôm nay; phiên bản cũ đang bị khóa lưu trữ (nếu có) / backups taken before today; "
            "earlier versions under object lock (if any)",
    "why": "phiên bản cũ của các đối tượng đã sửa được xóa ngay (earlier_versions), trừ phiên bản đang bị khóa lưu trữ "
           "(hồ sơ lưu theo thời hạn); bản sao lưu giữ bản đã xóa backup.keepDeletedDays rồi hết hạn — khôi phục bản "
           "sao lưu cũ thì áp dụng lại yêu cầu này / the earlier versions of the objects changed are deleted at once "
           "(earlier_versions), except versions under object lock (records under retention); backups keep a deleted "
           "object backup.keepDeletedDays, then forget it — after restoring an older one, re-apply this request",
    "law": "Luật 91/2025/QH15, Điều 14(1)"}
"""What every erasure leaves for a while, whatever the function: the store's own copies."""

Hook = Callable[[Any, "Subject"], dict]


def beyond(limit: int, what_vi: str, what_en: str) -> dict:
    """The "kept" entry of a hook that found more than it handles in one run (``limit``): the rest
    waits for the request made again (every hook is repeat-safe)."""
    return {"what": f"{what_vi} thứ {limit + 1} trở đi / {what_en} beyond the first {limit}",
            "why": "chưa xử lý trong lần chạy này: gửi lại yêu cầu / not handled in this run: make the request again",
            "law": TO_CONFIRM}


class InvalidSubject(ValueError):
    """The identifier is not one of its kind; the message says why and never repeats the value."""


class NotReapplicable(LookupError):
    """A re-applied request lacks a pseudonym a hook asks for (the hook changed since)."""


def normalise(kind: str, value: str) -> str:
    """The one spelling of an identifier every index is keyed by: a CCCD's 12 digits, a phone number's
    digits from its leading 0 (``+84 912 345 678`` is ``0912345678``), an e-mail address in lower case."""
    if kind not in KINDS:
        raise InvalidSubject(f"kind must be one of {', '.join(KINDS)}")
    text = (value or "").strip()
    if kind == "cccd":
        digits = re.sub(r"[\s.]", "", text)
        if not re.fullmatch(r"\d{12}", digits):
            raise InvalidSubject("a CCCD has 12 digits / CCCD gồm 12 chữ số")
        return digits
    if kind == "phone":
        if not re.fullmatch(r"\(?\+?[\d\s.()\-]{8,24}", text):
            raise InvalidSubject("a phone number has 8-15 digits / số điện thoại gồm 8-15 chữ số")
        digits = re.sub(r"\D", "", text)
        if digits.startswith("84") and ("+" in text or len(digits) == 11):
            digits = "0" + digits[2:]   # Vietnam's country code: the number as dialled at home
        if not 8 <= len(digits) <= 15:
            raise InvalidSubject("a phone number has 8-15 digits / số điện thoại gồm 8-15 chữ số")
        return digits
    address = text.lower()
    if len(address) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
        raise InvalidSubject("not an e-mail address / không phải địa chỉ thư điện tử")
    return address


class Subject:
    """The person an erasure request is about, named by one identifier.

    ``value`` is the identifier's :func:`normalise`\\ d spelling, or None when a recorded request is
    re-applied (:meth:`from_record`): then only the pseudonyms the hooks asked for the first time
    are known. ``request`` and ``operator`` say which request this is and who made it (for a hook's
    audit entries). ``repr``/``str`` never show the value.
    """

    def __init__(self, kind: str, value: str | None = None, *, operator: str = "", request: str = "",
                 recorded: Mapping[str, str] | None = None, reference: str | None = None):
        if kind not in KINDS:
            raise InvalidSubject(f"kind must be one of {', '.join(KINDS)}")
        if value is None and reference is None:
            raise InvalidSubject("a subject needs its identifier")
        self.kind = kind
        self._value = normalise(kind, value) if value is not None else None
        self._recorded = dict(recorded or {})
        self._asked: dict[str, str] = {}
        self.reference = reference or pseudonyms.pseudonym(PURPOSE, f"{kind}:{self._value}")
        """The pseudonym the request's record is kept under."""
        self.operator = operator
        self.request = request

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, operator: str = "") -> "Subject":
        """The subject of a recorded request, to re-apply it (after a restore): no identifier, only
        the pseudonyms the hooks looked it up by."""
        subject = record.get("subject") or {}
        return cls(subject.get("kind", ""), None, operator=operator, recorded=record.get("keys") or {},
                   reference=subject.get("pseudonym"), request=record.get("request", ""))

    @property
    def value(self) -> str | None:
        """The normalised identifier; None when re-applied from a record."""
        return self._value

    def __repr__(self) -> str:
        return f"Subject(kind={self.kind!r}, reference={self.reference[:8]}…)"

    __str__ = __repr__

    def pseudonym(self, purpose: str, form: str = "{kind}:{value}") -> str:
        """The pseudonym of ``form`` (``{kind}``, ``{value}``: the normalised identifier) for
        ``purpose``, as an index keyed by :func:`lscloud.pseudonyms.pseudonym` holds it. Remembered
        (:attr:`keys`), so a recorded request can be re-applied without the identifier."""
        slot = f"{purpose}|{form}"
        if self._value is None:
            if slot not in self._recorded:
                raise NotReapplicable(f"the record has no pseudonym for {slot!r}: erase again with the identifier")
            found = self._recorded[slot]
        else:
            found = pseudonyms.pseudonym(purpose, form.format(kind=self.kind, value=self._value))
        self._asked[slot] = found
        return pseudonyms.Pseudonym(found)   # a model keyed by a PseudonymAttribute takes it as it is

    @property
    def keys(self) -> dict[str, str]:
        """Every pseudonym asked for so far (``purpose|form`` → pseudonym): what a record keeps."""
        return {**self._recorded, **self._asked}

    def spellings(self) -> list[str]:
        """The identifier as people write it (for masking and for finding copies): a phone number
        with and without its country code, grouped by spaces, dots or dashes; none when re-applied."""
        v = self._value
        if v is None:
            return []
        if self.kind == "email":
            return [v]
        if self.kind == "cccd":
            return [v, f"{v[:3]} {v[3:6]} {v[6:9]} {v[9:]}", f"{v[:4]} {v[4:8]} {v[8:]}", f"{v[:3]}.{v[3:6]}.{v[6:9]}.{v[9:]}"]
        out = [v]
        if v.startswith("0") and len(v) == 10:
            rest = v[1:]
            out += ["+84" + rest, "84" + rest, "+84 " + rest]
            for sep in (" ", ".", "-"):
                out += [sep.join((v[:4], v[4:7], v[7:])), sep.join((v[:3], v[3:6], v[6:])),
                        "+84" + sep + sep.join((rest[:3], rest[3:6], rest[6:]))]
        return list(dict.fromkeys(out))

    def mask(self, text: str) -> str:
        """``text`` with every spelling of the identifier replaced by ``[kind]``."""
        if self.kind == "email" and self._value:
            return re.sub(re.escape(self._value), f"[{self.kind}]", text, flags=re.IGNORECASE)
        for s in sorted(self.spellings(), key=len, reverse=True):
            text = text.replace(s, f"[{self.kind}]")
        return text


def read_value(given: str, stdin: TextIO | None = None, *, prompt: str = "identifier: ") -> str:
    """The identifier: ``given`` itself, or with ``-`` the first line of stdin (a prompt that does
    not echo when stdin is a terminal), so it stays out of the shell history and the process list."""
    if given != "-":
        return given
    stream = stdin if stdin is not None else sys.stdin
    if stream.isatty():
        return getpass.getpass(prompt)
    return stream.readline().strip()


# -- running hooks --------------------------------------------------------------------------------

def hook_file(function_dir: Path) -> Path:
    """``<function_dir>/function/erase.py``: where a function's erasure hook is."""
    return Path(function_dir) / "function" / "erase.py"


def load_hooks(function_dirs: Mapping[str, Path]) -> tuple[dict[str, Hook], list[str]]:
    """The ``erase`` hooks of the functions (name → folder) that have one, and the names of those
    that have none."""
    from .loading import load_function

    hooks, without = {}, []
    for name, folder in sorted(function_dirs.items()):
        if not hook_file(folder).is_file():
            without.append(name)
            continue
        package = load_function(folder)
        module = importlib.import_module(f"{package.__name__}.erase")
        if not callable(getattr(module, "erase", None)):
            raise SystemExit(f"{hook_file(folder)} must define erase(runtime, subject)")
        hooks[name] = module.erase
    return hooks, without


def request_id() -> str:
    """A new request's id: when, and eight random hex digits (two requests in one second differ)."""
    return f"{now():%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def run(runtime, subject: Subject, hooks: Mapping[str, Hook], *, operator: str,
        without_hook: Iterable[str] = (), reapplies: str | None = None) -> dict:
    """Run every hook for ``subject`` (one failing does not stop the others: it is reported), then
    record the request create-only in ``runtime``'s bucket. ``reapplies``: the id of the recorded
    request this one re-applies (:meth:`Subject.from_record`). Returns the record (its key in
    ``record``): no identifier in it, only counts, reasons and pseudonyms."""
    at = now()
    request = subject.request = request_id()   # a re-application is a request of its own
    subject.operator = operator
    reports: dict[str, dict] = {}
    with runtime.objects.recording() as changed:
        for name, hook in sorted(hooks.items()):
            try:
                reports[name] = _checked(hook(runtime, subject), subject)
            except Exception as exc:  # noqa: BLE001 - reported in the record; the other hooks still run
                log.error("the erase hook of %s failed (%s)", name, exc.__class__.__name__)
                reports[name] = {"error": _clean(f"{exc.__class__.__name__}: {exc}", subject)[:500]}
    # the versioned bucket keeps what the hooks overwrote or deleted as earlier versions: those of
    # exactly these objects go now, not after noncurrentVersionDays
    history = forget_history(runtime.objects, changed)
    record = {"request": request, "at": iso(at), "operator": operator,
              "subject": {"kind": subject.kind, "pseudonym": subject.reference},
              "functions": sorted(hooks), "without_hook": sorted(without_hook),
              "found": sum(r.get("found", 0) for r in reports.values()),
              "found_by_function": {n: r["found"] for n, r in reports.items() if "found" in r},
              "erased": [{"function": n, **e} for n, r in sorted(reports.items()) for e in r.get("erased", [])],
              "kept": [{"function": n, **k} for n, r in sorted(reports.items()) for k in r.get("kept", [])]
              + ([VERSIONS_KEPT] if hooks else []),
              "earlier_versions": {"objects": len(changed), **history.as_dict()},
              "failed": {n: r["error"] for n, r in reports.items() if "error" in r},
              "keys": subject.keys}
    if reapplies:
        record["reapplies"] = reapplies
    key = f"{RECORD_PREFIX}/{subject.reference}/{request}.json"
    runtime.objects.put(runtime.settings.bucket, key, json.dumps(record, ensure_ascii=False).encode(),
                        if_none_match=True)
    return {**record, "record": key}


def recorded(runtime, subject: Subject) -> list[dict]:
    """The recorded requests about ``subject``, oldest first (what the province shows it did)."""
    from .store.errors import DoesNotExist

    objects, bucket = runtime.objects, runtime.settings.bucket
    out = []
    for info in objects.list(bucket, f"{RECORD_PREFIX}/{subject.reference}/"):
        try:
            out.append(json.loads(objects.get(bucket, info.key).body))
        except DoesNotExist:
            continue
    return out


def _clean(text: str, subject: Subject) -> str:
    return redaction.redact(subject.mask(text))


def _checked(report: Any, subject: Subject) -> dict:
    """A hook's report in the expected shape, with every string masked: a hook that let a value
    slip into it does not put it into the record."""
    if not isinstance(report, Mapping):
        raise TypeError("erase() must return a dict {erased, kept, found}")

    def text(value) -> str:
        return _clean(str(value), subject)

    return {"found": int(report.get("found") or 0),
            "erased": [{"what": text(e.get("what", "")), "count": int(e.get("count") or 0)}
                       for e in report.get("erased") or []],
            "kept": [{"what": text(k.get("what", "")), "why": text(k.get("why", "")), "law": text(k.get("law", ""))}
                     for k in report.get("kept") or []]}


# -- stored answers -------------------------------------------------------------------------------

def forget_answers(runtime, needles: Iterable[str]) -> int:
    """Delete the stored answers of idempotent requests (:mod:`lscloud.idempotency`, kept a day for
    a client's retry) whose body holds any of ``needles`` (values of at least four characters: a
    phone number, an address, a name as a function stored it), each only if unchanged since read.
    Returns how many went. A client that retries one of those requests runs it again: a function
    whose creates find their record by the request's stamp answers it from the record, now erased.

    Lists every stored answer of the bucket (at most a day of them) and reads each once."""
    from .aggregate import side_pool
    from .runonce import IDEMPOTENCY
    from .store.errors import ConditionalCheckFailed, DoesNotExist

    forms: set[bytes] = set()
    for n in needles:
        if n and len(n) >= 4:
            forms.update(f.encode() for f in (n, json.dumps(n)[1:-1], xml_escape(n)))
    if not forms:
        return 0
    objects, bucket = runtime.objects, runtime.settings.bucket

    def one(key: str) -> int:
        try:
            stored = objects.get(bucket, key)
            body = base64.b64decode(json.loads(stored.body)["response"]["body_b64"])
        except DoesNotExist:
            return 0
        except (ValueError, KeyError, TypeError):
            return 0   # in progress (no answer yet) or not an answer
        if not any(f in body for f in forms):
            return 0
        try:
            objects.delete(bucket, key, if_match=stored.etag)
            return 1
        except (DoesNotExist, ConditionalCheckFailed):
            return one(key)   # taken over or gone since read: judge what is there now

    return sum(side_pool().map(one, [info.key for info in objects.list(bucket, IDEMPOTENCY.prefix)]))
