"""Files a function hands out (attachments, form templates, photos), served by the function itself.

The object store is private to the cluster: MinIO answers only on its cluster-internal address, so
a presigned URL of it resolves nowhere a citizen is, and the store is not to be published. A
function therefore serves its blobs itself:

- :func:`blob_response` answers a blob's bytes with its stored media type, its sha256 as a strong
  ETag (``If-None-Match`` answers 304, ``Range`` a part), ``nosniff`` and a sandboxing CSP, and
  either a public, immutable cache lifetime (photos that are public and addressed by content) or
  a private one;
- :func:`link` makes a short-lived link to one blob that works as a plain URL (a browser, a mail
  client, a 303's ``Location``): ``<the function's public URL>/downloads/<token>``. An app made
  with ``create_app(..., downloads=True)`` serves that path (:func:`add_route`; a ``PLATFORM`` row
  of :mod:`lscloud.rolematrix`); no other app has it.

The token is a JWT (HS256, PyJWT) that names the blob (its prefix and sha256), the name to save it
under and when it expires (``LSCLOUD_DOWNLOAD_LINK_TTL_S``: 1 s to 24 h). Its key is derived with
HKDF-SHA256 from the function's S3 secret key and the function's name: a link grants what a
presigned URL of the store granted (one object, for a while, from the same secret), through the
function that made it only, and needs no secret of its own. Rotating the S3 key ends the links made
before it, as it ended presigned URLs. While it lives the token is a credential: it is shaped as a
JWT, which :mod:`lscloud.redaction` takes out of spans and logs.

The link's origin is the one the caller used (:func:`lscloud.web.origin.public_base`).
"""

from __future__ import annotations

import functools
import io
import time

from flask import Flask, Response, current_app, send_file

from .. import errors, store
from ..context import app_state
from ..store.blobs import BlobStore, clean_filename
from .origin import public_base

__all__ = ["ROUTE", "MAX_LINK_S", "PUBLIC_CACHE", "add_route", "blob_response", "link", "mint", "read_token"]

ROUTE = '/downloads/<schema("lscloud/download-token.json", match=False):token>'
"""The path every function serves its links under (below its public URL). Any segment routes:
what is not a link this function made is the view's own 404."""

MAX_LINK_S = 24 * 3600
"""The longest a link may work."""

_PATH = "/downloads/"
_ENDPOINT = "lscloud_download"
_ALGORITHM = "HS256"
_MAX_TOKEN = 2048
# a stored file may be anything a citizen uploaded: never let a browser run it as a page
_CSP = "default-src 'none'; sandbox"
PUBLIC_CACHE = "public, max-age=31536000, immutable"
"""For public blobs addressed by their content: the bytes at a sha256 never change."""


@functools.lru_cache(maxsize=8)
def _key(secret: str, service: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"lscloud download links v1\x00" + service.encode()).derive(secret.encode())


def _audience(service: str) -> str:
    return f"{service}{_PATH.rstrip('/')}"


def mint(settings, blobs: BlobStore, sha256: str, ttl_s: int, *, filename: str | None = None,
         now: float | None = None) -> str:
    """The token of a link to one blob (no check that the blob exists: :func:`link` does that);
    ``now`` (epoch seconds) for a link made at another time (tests)."""
    import jwt

    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_LINK_S:
        raise ValueError(f"ttl_s must be an int from 1 to {MAX_LINK_S}")
    blobs.key_for(sha256)  # InvalidKey unless a sha256
    claims = {"aud": _audience(settings.service), "exp": int((time.time() if now is None else now) + ttl_s),
              "blob": f"{blobs.prefix}/{sha256.lower()}"}
    name = clean_filename(filename)
    if name:
        claims["name"] = name
    return jwt.encode(claims, _key(settings.s3_secret_key, settings.service), algorithm=_ALGORITHM)


def read_token(settings, token: str) -> dict:
    """The claims of a link this function made: NotFound if it did not make it (or it was altered),
    Gone if it has expired. The signature is checked before anything else is read."""
    import jwt

    if not isinstance(token, str) or len(token) > _MAX_TOKEN:
        raise _not_found()
    try:
        claims = jwt.decode(token, _key(settings.s3_secret_key, settings.service), algorithms=[_ALGORITHM],
                            audience=_audience(settings.service), options={"require": ["exp", "aud", "blob"]})
    except jwt.ExpiredSignatureError:
        raise errors.Gone("This download link has expired: ask for a new one.",
                          detail_vi="Liên kết tải xuống đã hết hạn: hãy lấy liên kết mới.") from None
    except jwt.InvalidTokenError:
        raise _not_found() from None
    if not isinstance(claims.get("blob"), str) or not isinstance(claims.get("name", ""), str):
        raise _not_found()
    return claims


def _not_found() -> errors.NotFound:
    return errors.NotFound("No file at this link.", detail_vi="Không có tệp tại liên kết này.")


def link(blobs: BlobStore, sha256: str, ttl_s: int, *, filename: str | None = None) -> str:
    """A URL that downloads the blob without credentials for ``ttl_s`` seconds (1 s to 24 h),
    through this function; ``filename`` (if any) is the name it is saved under.

    Raises DoesNotExist if there is no such blob, so nobody is handed a dead link, and InvalidKey
    unless ``sha256`` is one. Call it while serving a request (the link's origin is the caller's).
    """
    if _ENDPOINT not in current_app.view_functions:
        raise RuntimeError(f"{current_app.name} hands out links it does not serve: create_app(..., downloads=True)")
    if not blobs.exists(sha256):
        raise store.DoesNotExist(f"no blob {sha256.lower()}")
    return public_base() + _PATH + mint(app_state().settings, blobs, sha256, ttl_s, filename=filename)


def blob_response(blobs: BlobStore, sha256: str, *, filename: str | None = None,
                  cache_control: str = PUBLIC_CACHE) -> Response:
    """The blob's bytes (hash re-checked) as an answer: its stored media type, ETag the sha256 (a
    conditional or ranged request is answered as such), saved as ``filename`` if one is given.
    DoesNotExist if there is no such blob, InvalidKey unless ``sha256`` is one."""
    data, media_type = blobs.read(sha256)
    resp = send_file(io.BytesIO(data), mimetype=media_type, as_attachment=filename is not None,
                     download_name=filename, etag=sha256.lower(), conditional=True, max_age=None,
                     last_modified=None)
    resp.headers["Cache-Control"] = cache_control
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = _CSP
    return resp


def add_route(app: Flask) -> None:
    """``GET /downloads/<token>``: the file a link of :func:`link` names (public: the link is the credential)."""
    from ..auth import allow
    from .openapi import responds

    # the file as stored: its media type is the one it was kept with (an attachment, a template)
    @responds(None, binary=("*/*",), description="The file, in the media type it was stored with",
              headers={"ETag": "The file's sha256 (If-None-Match answers 304)",
                       "Content-Disposition": "attachment, with the name the link gives it (when it gives one)"},
              also={304: "Not modified"})
    def download(token: str):
        """Download a file by a short-lived link the function handed out.

        A dossier's attachment, a form template: the link is the credential, so no token is sent.
        404 if the function never made that link (or it was altered), 410 once it has expired."""
        claims = read_token(app_state().settings, token)
        prefix, _, digest = claims["blob"].partition("/")
        try:
            blobs = store.blobs(prefix)
            left = max(1, int(claims["exp"] - time.time()))
            return blob_response(blobs, digest, filename=claims.get("name") or None,
                                 cache_control=f"private, max-age={left}")
        except (store.DoesNotExist, store.InvalidKey):
            raise _not_found() from None

    app.add_url_rule(ROUTE, _ENDPOINT, allow("public")(download), methods=["GET"])
