"""The gateway's reading of a request path: accepted only in normal form, decided on once.

Why refuse rather than normalise: the gateway forwards the path byte for byte (``raw_path``), so
that a function sees exactly what the client sent (an id with an encoded ``?`` or ``#`` stays one
id). A path the gateway would have to rewrite before routing is therefore one it cannot forward
faithfully, and any spelling that means something else after a later decoding or normalising
step (``/x/../events``, ``/%2e/events``, ``//events``, ``/%65vents``, ``a%2Fb``) is exactly the
door the issue found. So the gateway decides on the *decoded* path, and refuses (400) every path
that is not already in normal form:

- raw bytes only from RFC 3986 ``pchar`` and ``/`` (unreserved, sub-delims, ``:``, ``@``,
  ``%HH``): no backslash, space, quote, control or raw non-ASCII byte;
- every ``%`` starts a valid escape, and the escapes decode to UTF-8 without control characters;
- no encoded ``/`` or ``\\`` (``%2F``, ``%5C``): one segment must stay one segment;
- no empty segment (``//``) except one trailing slash;
- no segment that ends in a dot (``.``, ``..``, ``...``, ``events.``) or starts or ends with
  whitespace (``events%20``): dot segments, and the trailing characters some servers strip;
- no escape left after decoding (``%252e``): decoded once, meant once.

What remains decodes one way only, and the decision (which function, and whether the rest is an
internal route) is taken on that decoding, which is also what the function's server will see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

# RFC 3986 pchar (unreserved / pct-encoded / sub-delims / ":" / "@") plus the "/" separator
_RAW_OK = re.compile(rb"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$")
_ENCODED_SEPARATOR = re.compile(rb"%(2[fF]|5[cC])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LEFTOVER_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")

INTERNAL_ROUTES = ("events", "health")
"""First segments of a function's own routes that only the platform calls: ``/events`` (event
deliveries, from the dispatcher) and ``/health/*`` (the probes). Never routed from outside."""


class MalformedPath(ValueError):
    """The path is not in normal form; the message says why (for a 400 problem)."""


@dataclass(frozen=True)
class RequestPath:
    """A path in normal form: ``/<function><rest>``."""

    function: str  # decoded first segment
    rest: str  # decoded path after it, starting with "/" ("/" when there is none)
    raw_rest: bytes  # the same, as the client sent it: forwarded as is

    @property
    def internal(self) -> bool:
        """True when ``rest`` is one of the platform's internal routes (:data:`INTERNAL_ROUTES`)."""
        first = self.rest.lstrip("/").split("/", 1)[0]
        # ";params" are stripped by some servers (Tomcat, Spring): "/events;x" would be "/events" there
        return first.split(";", 1)[0].lower() in INTERNAL_ROUTES


def parse(raw_path: bytes) -> RequestPath:
    """Check ``raw_path`` (the path as sent, without the query) and split it; MalformedPath if not normal."""
    if not raw_path.startswith(b"/"):
        raise MalformedPath("the path must start with '/'")
    if not _RAW_OK.match(raw_path):
        if b"%" in raw_path and re.search(rb"%(?![0-9A-Fa-f]{2})", raw_path):
            raise MalformedPath("'%' must start a percent-escape of two hex digits")
        raise MalformedPath("the path holds characters that must be percent-encoded (spaces, quotes, "
                            "backslashes, control or non-ASCII bytes)")
    if _ENCODED_SEPARATOR.search(raw_path):
        raise MalformedPath("an encoded '/' or '\\' (%2F, %5C) is not allowed in a path segment")
    raw_segments = raw_path[1:].split(b"/")
    if raw_segments and raw_segments[-1] == b"" and len(raw_segments) > 1:
        raw_segments = raw_segments[:-1]
        trailing = True
    else:
        trailing = False
    segments = []
    for raw in raw_segments:
        try:
            segment = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPath("the path does not decode to UTF-8") from None
        if _CONTROL.search(segment):
            raise MalformedPath("the path holds an (encoded) control character")
        if segment == "":
            raise MalformedPath("empty path segment ('//')")
        if segment.endswith("."):
            raise MalformedPath("a path segment may not end with '.' (no '.' or '..' segments)")
        if segment != segment.strip():
            raise MalformedPath("a path segment may not start or end with (encoded) whitespace")
        if _LEFTOVER_ESCAPE.search(segment):
            raise MalformedPath("the path is encoded twice (a percent-escape remains after decoding)")
        segments.append(segment)
    if not segments or raw_path == b"/":
        raise MalformedPath("the path names no function")
    function, rest = segments[0], segments[1:]
    raw_rest = b"/" + b"/".join(raw_segments[1:]) + (b"/" if trailing and rest else b"")
    decoded_rest = "/" + "/".join(rest) + ("/" if trailing and rest else "")
    return RequestPath(function, decoded_rest, raw_rest)


def shown(raw_path: bytes, limit: int = 200) -> str:
    """The path for an error message: printable ASCII only, percent-encoded otherwise, cut at ``limit``."""
    text = quote(raw_path, safe="/%:@!$&'()*+,;=-._~")
    return text if len(text) <= limit else text[: limit - 1] + "…"
