"""Where the caller reached this function: its public origin and path prefix, for the URLs it answers.

A function does not know its public address: Kourier serves it at ``https://<function>.lscloud.<domain>/``
in the cluster, the local gateway at ``http://127.0.0.1:8080/<function>/``, and what reaches the
function is plain HTTP from the ingress. The ingress says what the caller used: ``X-Forwarded-Proto``
(Envoy sets it), ``X-Forwarded-Host`` (the local gateway; Envoy keeps ``Host``) and
``X-Forwarded-Prefix`` (the local gateway's ``/<function>``). A URL a function hands out (a download
link, a ``Location``, Open311's discovery document) is built from them, so it works where the caller
is. A value that is not a plain scheme, host or prefix is ignored, never copied into a URL.
"""

from __future__ import annotations

import re

from flask import request

__all__ = ["forwarded_prefix", "public_base", "public_path"]

_PREFIX = re.compile(r"/[a-z0-9][a-z0-9-]{0,62}")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def forwarded_prefix() -> str:
    """The path the ingress serves this function under (``X-Forwarded-Prefix``: ``/dossiers``
    behind the local gateway), or ``""`` when there is none or it is not a plain one."""
    prefix = request.headers.get("X-Forwarded-Prefix", "")
    return prefix if _PREFIX.fullmatch(prefix) else ""


def public_base() -> str:
    """The function's public URL as the caller reached it (scheme, host and the ingress's prefix)."""
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    scheme = proto if proto in ("http", "https") else request.scheme
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if not _HOST.fullmatch(host):
        host = request.host
    return f"{scheme}://{host}{forwarded_prefix()}"


def public_path(path: str) -> str:
    """``path`` (``/v1/dossiers/…``) as the caller addresses it: below the ingress's prefix (a ``Location``)."""
    return forwarded_prefix() + path
