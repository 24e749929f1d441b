"""Redacting personal identifiers from what leaves a process for operators: spans, logs.

Object keys no longer hold personal identifiers (:mod:`lscloud.pseudonyms`), but requests still
carry them in places the instrumentations record: URL paths (``/identity/v1/cccd/{number}``),
query strings, error messages, a log line naming a record. :func:`redact` replaces every value
shaped like one, by pattern rather than by attribute name, so a new attribute or a new log line
is covered without a list to keep up to date:

========================  ===========================================================  ==============
what                      shape                                                        becomes
========================  ===========================================================  ==============
CCCD (citizen ID)         12 digits whose province code and birth year are plausible   ``[cccd]``
                          (also written in groups of 3 or 4, by spaces, dots or dashes);
                          any 12 digits in a ``url.*`` attribute or as a whole URL path
                          segment (a mistyped number in ``/identity/v1/cccd/…``)
CMND (old ID card)        9 digits                                                     ``[cmnd]``
passport                  1-2 capital letters and 7-8 digits                           ``[passport]``
phone (Vietnam)           ``0``/``+84``/``84`` + mobile prefix 3/5/7/8/9 + 8 digits,   ``[phone]``
                          landlines ``02`` + 9 digits (spaces, dots or dashes allowed,
                          after ``+84`` too; ``(+84) 912 345 678``, ``+84 (0)912345678``)
phone (international)     ``+`` and 8-15 digits (E.164)                                ``[phone]``
bank account              6-20 digits after ``account``/``acct``/``stk``/``số tài       ``[account]``
                          khoản`` and ``:``, ``=`` or a space, or in an attribute whose
                          name says account
e-mail address            ``local@domain.tld`` (a reporter's, an applicant's)          ``[email]``
any other number          9 or more digits standing alone in a ``url.*`` attribute     ``[number]``
                          (a CCCD a digit short or long, a mistyped account)
token (JWT)               three base64url parts, the first starting ``eyJ``: a bearer  ``[token]``
                          token or a download link's (:mod:`lscloud.web.downloads`)
secret query parameter    the value of ``name=`` for a name in                         ``name=REDACTED``
                          :data:`SENSITIVE_QUERY_KEYS` (a signed URL's signature, an
                          Open311 ``api_key``)
========================  ===========================================================  ==============

A match must stand alone: not inside a longer run of letters and digits, so trace and span ids
(hex), pseudonyms (base32), timestamps (10, 13, 16 or 19 digits), zero-padded counters and ports
are left as they are. In an object key a value may follow a ``~XX`` escape (``drv~3A<number>``),
which counts as a boundary. A 12-digit run is a CCCD only if it could be one (a province code
that exists, a birth year between 120 years ago and this year), so a padded epoch or a sequence
number is not mistaken for one; except where a request's address is written (a ``url.*`` attribute,
a path segment of its own in a log's request line), where people's numbers are what a route takes
and a mistyped one is as personal as a valid one.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from typing import Any

from .identifiers import CCCD_PROVINCES
from .timestamps import today_here

_BEFORE = r"(?:(?<=~[0-9A-F]{2})|(?<![0-9A-Za-z+]))"
_AFTER = r"(?![0-9A-Za-z])"
_SEP = r"[ .\-]?"
# +84 as people write it before a mobile number: "+84 ", "84.", "(+84) ", "+84 (0)"; or the trunk 0
_MOBILE_PREFIX = rf"(?:\(\+?84\)\s?|\+?84\s?\(0\)\s?|\+?84{_SEP}|0)"
_PATTERN = re.compile(
    _BEFORE + r"(?:"
    r"(?P<cccd>\d{12}|\d{3}([ .\-])\d{3}\2\d{3}\2\d{3}|\d{4}([ .\-])\d{4}\3\d{4})"
    r"|(?P<cmnd>\d{9})"
    r"|(?P<passport>[A-Z]{1,2}\d{7,8})"
    rf"|(?P<phone>{_MOBILE_PREFIX}[35789]\d{_SEP}\d{{3}}{_SEP}\d{{4}}|{_MOBILE_PREFIX}[35789]\d{{2}}{_SEP}\d{{3}}{_SEP}\d{{3}}"
    r"|(?:\+?84|0)2\d{9}|\+\d{8,15})"
    r")" + _AFTER)
# a field (account=…, "stk": "…") or words before the number ("STK 0011004123456", "số tài khoản: …")
_ACCOUNT_FIELD = re.compile(r"(?i)\b(account(?:_number|_no|[ _]number|[ _]no\.?)?|acct|stk|so_tai_khoan|"
                            r"s[ốo] t[àa]i kho[ảa]n)(\"?'?\s*[:=]\s*\"?'?|\s+)(\d{6,20})\b")
_ACCOUNT_NAME = re.compile(r"(?i)account|acct")
_DIGITS = re.compile(r"\d{6,20}")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
                    r"(?![A-Za-z0-9-])")
_ANY_DIGIT = re.compile(r"\d")
# in a URL, any other standalone run of 9 or more digits: a CCCD a digit short or long, a mistyped
# phone, an account: a route's number is someone's whatever its length
_URL_NUMBER = re.compile(r"(?<![0-9])\d{9,}(?![0-9])")
# a JWT: a credential while it lives (a link's token sits in a URL path, which spans record)
_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


SENSITIVE_QUERY_KEYS = ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "sig", "X-Goog-Signature",
                        "api_key", "secret", "token", "access_token", "password", "plate")
"""Query parameters whose values are credentials, matched case-sensitively and kept as ``name=REDACTED``:
OpenTelemetry's list for ``url.query`` and ``url.full`` (semantic conventions, ``url`` attributes:
"SHOULD be redacted by default and replaced by the value REDACTED", the key preserved), Open311's
``api_key``, which a GeoReport client may send in the query of any request, a dossier's tracking
``secret`` (``/v1/track``, which the assistant calls too) and other credentials by their usual names;
and the border lookup's vehicle ``plate``, which no pattern can tell from any other code. Spans
record ``url.query``, and a log line can quote a request line."""
_QUERY_SECRET = re.compile(r"(?<![0-9A-Za-z_-])(" + "|".join(re.escape(k) for k in SENSITIVE_QUERY_KEYS)
                           + r")=[^&#;\s'\"]+")


def _plausible_cccd(number: str) -> bool:
    if number[:3] not in CCCD_PROVINCES:
        return False
    year = 1900 + (int(number[3]) // 2) * 100 + int(number[4:6])
    this_year = today_here().year
    return this_year - 120 <= year <= this_year


# what may follow a path segment in a request line or a URL
_SEGMENT_END = frozenset("/?#;\"' \t\r\n")


def _path_segment(match: re.Match) -> bool:
    """Whether the match is a whole segment of a URL path: ``/v1/cccd/<it>``, then ``/``, ``?`` or the end."""
    start, end, text = match.start(), match.end(), match.string
    return start > 0 and text[start - 1] == "/" and (end == len(text) or text[end] in _SEGMENT_END)


def _replace(match: re.Match) -> str:
    kind = match.lastgroup
    if kind == "cccd" and not _plausible_cccd(re.sub(r"[ .\-]", "", match.group(0))) \
            and not (match.group(0).isdigit() and _path_segment(match)):
        return match.group(0)
    return f"[{kind}]"


def _replace_any(match: re.Match) -> str:
    # in a URL: a 12-digit run is a route's number, CCCD-shaped whether or not it could be a real one
    return "[cccd]" if match.lastgroup == "cccd" and match.group(0).isdigit() else _replace(match)


def redact(text: str) -> str:
    """``text`` with every identifier-shaped value replaced by ``[kind]``."""
    return _redact(text, _replace)


def _redact(text: str, replace) -> str:
    if not isinstance(text, str):
        return text
    # searched first: a sub with a template costs about 1.2 µs even when nothing matches
    if "=" in text and _QUERY_SECRET.search(text):
        text = _QUERY_SECRET.sub(r"\1=REDACTED", text)
    if "eyJ" in text:
        text = _TOKEN.sub("[token]", text)
    if "@" in text:   # a reporter's or an applicant's address (an Open311 form's email, a file name)
        text = _EMAIL.sub("[email]", text)
    if _ANY_DIGIT.search(text) is None:  # every other shape has a digit
        return text
    return _ACCOUNT_FIELD.sub(lambda m: m.group(1) + m.group(2) + "[account]", _PATTERN.sub(replace, text))


def redact_value(name: str, value: Any) -> Any:
    """An attribute value with identifiers redacted (strings, and strings inside sequences).

    In an attribute whose name says it holds an account, any 6-20 digit run is an account number;
    in a ``url.*`` attribute (``url.path``, ``url.full``, ``url.query``) any standalone 12-digit run
    is a CCCD, plausible or not, and any other run of 9 or more digits a ``[number]``: a mistyped
    number a route was given (a digit short or long) is still someone's.
    """
    if isinstance(value, str):
        if name.startswith("url."):
            return _URL_NUMBER.sub("[number]", _redact(value, _replace_any))
        out = _redact(value, _replace)
        return _DIGITS.sub("[account]", out) if _ACCOUNT_NAME.search(name) else out
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(name, v) for v in value)
    return value


# --- logs ------------------------------------------------------------------------------------------

class RedactingFilter(logging.Filter):
    """Redacts a record's message, string arguments and exception text in place; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_lscloud_redacted", False):
        return record
    record._lscloud_redacted = True
    try:
        # the arguments may be any object whose str() names someone: redact the message as it reads
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string is the logging module's to report
        message = None
    if message is not None:
        record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        # formatted now, redacted once: the handler's formatter then uses this text as is
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


_installed = False
_install_lock = threading.Lock()


def install_log_redaction() -> None:
    """Redact every log record this process creates, whatever logger or handler it goes to, and
    the tracebacks of exceptions nobody caught (the process's and its threads').

    A filter on a handler only sees what reaches that handler, and servers (uvicorn, the
    func-python middleware) bring their own; the record factory sees every record at birth.
    An uncaught exception is printed to stderr by the interpreter, not by logging.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        sys.excepthook = _print_uncaught
        threading.excepthook = _print_uncaught_in_thread
        _installed = True


def _print_uncaught(exc_type, exc, tb) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))
    sys.stderr.flush()


def _print_uncaught_in_thread(args) -> None:
    if args.exc_type is SystemExit:
        return  # as the default hook: a thread's SystemExit is silent
    name = args.thread.name if args.thread is not None else "?"
    sys.stderr.write(redact(f"Exception in thread {name}:\n"
                            + "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))))
    sys.stderr.flush()
