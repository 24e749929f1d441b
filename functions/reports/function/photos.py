"""The photos a report names: uploads (``POST /v1/photos``) claimed by the report that names them, so
the sweep of unclaimed uploads (:func:`lscloud.store.claimed_only`) keeps them for good; and which
``media_url`` of an Open311 request is one of those uploads.

A partner application uploads with the public ``POST /v1/photos`` and sends the URL it was answered
as the Open311 ``media_url``: kept as a URL alone, the upload was never claimed and was deleted two
days later, leaving every reader a dead link."""

from __future__ import annotations

import re
from typing import Callable, Iterable
from urllib.parse import urlsplit

from lscloud import errors, images, store

SHA256 = re.compile(r"[0-9a-f]{64}")
PATH = "/v1/photos/"
"""Where the function serves a photo, below its public base (``routes_v1.get_photo``)."""
PREFIX = "reports-photos"
MAX_BYTES = 8 * 1024 * 1024
# a photo no report names within two days is deleted (public uploads, kept for good before)
store.claimed_only(PREFIX, __name__, renditions=images.RENDITIONS)


def blobs():
    """The function's photo store: cleaned JPEG/PNG uploads of at most :data:`MAX_BYTES`, by sha256."""
    return store.blobs(PREFIX, max_bytes=MAX_BYTES, allowed_types=images.MEDIA_TYPES)


def url(settings, sha256: str) -> str:
    """A photo's address as reports keep it and show it to everyone (Open311's ``media_url``):
    below the platform's public address of the function (``settings.public_url()``), never one a
    request's headers could name."""
    return f"{settings.public_url()}{PATH}{sha256}"


def claim(blobs, shas: Iterable[str], pointer: Callable[[int], str]) -> None:
    """Claim each photo of ``shas`` in ``blobs`` (the function's photo store) for the report that
    names it, so it is never deleted as an unclaimed upload; a photo never uploaded (or already
    swept) is refused, 422 at ``pointer(i)``, before anything of the report is written."""
    for i, sha in enumerate(shas):
        if not blobs.claim(sha):
            raise errors.Invalid.at(pointer(i), "upload the photo first (POST /v1/photos)", "Cần tải ảnh lên trước.")


def own(url: str | None, bases: Iterable[str]) -> str | None:
    """The sha256 of the photo ``url`` names when it is this function's own photo URL, else None.

    ``bases`` are the function's public addresses (the platform's, and the one the caller reached it
    at: the gateway's host and prefix); ``url`` is one of ours only as ``<base>/v1/photos/<sha256>``
    exactly: the same scheme, host and port, no user, query or fragment, the path not spelt another
    way. It is matched on its parts, never fetched: any other URL is someone else's, kept as a URL."""
    if not url:
        return None
    mine = _parts(url)
    if mine is None or mine[3] or not mine[2].startswith("/"):
        return None
    origin, path = mine[:2], mine[2]
    for base in bases:
        theirs = _parts(base)
        if theirs is None or theirs[:2] != origin:
            continue
        prefix = theirs[2].rstrip("/") + PATH
        if path.startswith(prefix) and SHA256.fullmatch(path[len(prefix):]):
            return path[len(prefix):]
    return None


def _parts(url: str) -> tuple[str, str, str, bool] | None:
    """``(scheme, host:port, path, anything else)`` with the scheme and host lower-cased and the
    scheme's default port made explicit; None for what is not an absolute http(s) URL."""
    try:
        p = urlsplit(url.strip())
        port = p.port
    except ValueError:
        return None
    scheme = p.scheme.lower()
    if scheme not in ("http", "https") or not p.hostname:
        return None
    port = port or (443 if scheme == "https" else 80)
    extra = bool(p.query or p.fragment or p.username is not None or "?" in url or "#" in url)
    return scheme, f"{p.hostname.lower()}:{port}", p.path, extra
